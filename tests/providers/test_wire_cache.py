"""A continuation encodes only what is new: old messages' wire forms are reused, not rebuilt."""

from __future__ import annotations

import gc
import json

import pytest

from llm_magic.messages import Message, ModelRequest, ToolCall, ToolResult, ToolSpec
from llm_magic.providers.anthropic import AnthropicMessagesAdapter
from llm_magic.providers.gemini import GeminiGenerateContentAdapter
from llm_magic.providers.openai import OpenAIChatAdapter

SPEC = ToolSpec("add", "Add.", {"type": "object", "properties": {"a": {"type": "integer"}}})
PROVIDERS = {
    "openai": lambda: OpenAIChatAdapter("gpt-test", api_key="k"),
    "anthropic": lambda: AnthropicMessagesAdapter("claude-test", api_key="k"),
    "gemini": lambda: GeminiGenerateContentAdapter("gemini-test", api_key="k"),
}
KEY = {"openai": "messages", "anthropic": "messages", "gemini": "contents"}


def step(n: int) -> list[Message]:
    call = ToolCall(f"call_{n}", "add", json.dumps({"a": n}))
    return [
        Message("assistant", f"step {n}", [call]),
        Message("tool", tool_results=[ToolResult(call.id, "add", json.dumps({"sum": n}))]),
    ]


@pytest.mark.parametrize("kind", PROVIDERS)
def test_old_messages_are_not_encoded_again(kind: str) -> None:
    provider = PROVIDERS[kind]()
    history = [Message("user", "go"), *step(1)]
    first = provider.build_body(ModelRequest(history, [SPEC]))[KEY[kind]]
    history += step(2)
    second = provider.build_body(ModelRequest(history, [SPEC]))[KEY[kind]]
    assert second[: len(first)] == first
    old = [x for x in first if x.get("role") in ("assistant", "model")]
    again = [x for x in second if x.get("role") in ("assistant", "model")][: len(old)]
    # the very same objects: reused, not rebuilt
    content = "content" if kind == "anthropic" else ("parts" if kind == "gemini" else None)
    pairs = zip(old, again, strict=True)
    assert all((a[content] is b[content]) if content else a is b for a, b in pairs)
    fresh = PROVIDERS[kind]().build_body(ModelRequest(history, [SPEC]))[KEY[kind]]
    assert json.dumps(second) == json.dumps(fresh)  # what the cache gives is what encoding gives


@pytest.mark.parametrize("kind", PROVIDERS)
def test_a_changed_message_is_encoded_again_and_dead_ones_are_forgotten(kind: str) -> None:
    provider = PROVIDERS[kind]()
    history = [Message("user", "go"), *step(1)]
    provider.build_body(ModelRequest(history, [SPEC]))
    history[2].tool_results = [ToolResult("call_1", "add", '{"sum": 99}')]
    body = provider.build_body(ModelRequest(history, [SPEC]))
    assert "99" in json.dumps(body[KEY[kind]])
    assert len(provider.wire_cache) > 0
    del history, body
    gc.collect()
    assert len(provider.wire_cache) == 0
