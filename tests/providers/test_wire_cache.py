"""A continuation encodes only what is new: old messages' wire forms are reused, not rebuilt."""

from __future__ import annotations

import gc
import json

import pytest

from llm_magic.messages import Message, ModelRequest, ToolCall, ToolResult, ToolSpec
from llm_magic.providers._wire_cache import WireCache
from llm_magic.providers.anthropic import AnthropicMessagesAdapter
from llm_magic.providers.gemini import GeminiGenerateContentAdapter
from llm_magic.providers.openai import OpenAIChatAdapter
from tests.providers.test_conformance import model_for
from tests.servers import Call, LoopbackServer, Reply

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


def test_encode_all_encodes_only_what_follows_the_last_history_and_stays_right() -> None:
    cache, encoded = WireCache(), []

    def encode(msg: Message) -> list[str]:
        encoded.append(msg)
        return [msg.text]

    history = [Message("user", "a"), Message("assistant", "b")]
    assert cache.encode_all(list(history), "k", encode) == ["a", "b"]
    history.append(Message("user", "c"))
    encoded.clear()
    assert cache.encode_all(list(history), "k", encode) == ["a", "b", "c"]
    assert encoded == [history[2]]  # a continuation: only the new message
    history[0] = Message("user", "A")  # a message replaced mid-history
    history[1].text = "B"  # a field replaced in place
    assert cache.encode_all(list(history), "k", encode) == ["A", "B", "c"]
    other = [Message("user", "x")]  # another conversation on the same provider
    assert cache.encode_all(other, "k", encode) == ["x"]
    assert cache.encode_all(history[:2], "k", encode) == ["A", "B"]  # a shorter one (a fork)
    assert cache.encode_all([], "k", encode) == []


def test_a_long_history_is_not_encoded_again_per_request() -> None:
    provider = PROVIDERS["openai"]()
    history = [Message("user", "go")]
    for n in range(50):
        history += step(n)
    provider.build_body(ModelRequest(list(history), [SPEC]))
    history += step(50)
    calls = []
    wire = provider._wire
    provider._wire = lambda m: calls.append(m) or wire(m)  # type: ignore[method-assign]
    body = provider.build_body(ModelRequest(list(history), [SPEC]))
    assert calls == history[-2:]
    fresh = PROVIDERS["openai"]().build_body(ModelRequest(history, [SPEC]))
    assert json.dumps(body) == json.dumps(fresh)


def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


HISTORY_KEY = {**KEY, "openai-strict": "messages", "openai-responses": "input"}


@pytest.mark.parametrize("stream", [True, False])
async def test_a_continued_conversation_sends_what_encoding_it_whole_sends(
    provider_server: LoopbackServer, stream: bool
) -> None:
    """Over real HTTP to each strict server: the history a continuation sends (its JSON kept
    from the requests before) is the one the adapter writes with nothing kept."""
    server = provider_server
    conversation = model_for(server).conversation(tools=[add], system="Be brief.")
    for n in range(3):
        server.push(Reply(calls=[Call("add", {"a": n, "b": 1})]), Reply(text=f"It is {n + 1}."))
        result = await conversation.chain(f"What is {n} + 1? Use the tool.", stream=stream)
        assert result.status == "done" and result.text == f"It is {n + 1}."
    provider = conversation.model.provider
    provider.wire_cache = WireCache()  # nothing kept: every message encoded anew
    request = ModelRequest(conversation.messages[:-1], [SPEC], system="Be brief.")
    whole = json.loads(json.dumps(provider.build_body(request)))
    key = HISTORY_KEY[server.kind]
    assert len(server.requests) == 6 and server.requests[-1].body[key] == whole[key]
