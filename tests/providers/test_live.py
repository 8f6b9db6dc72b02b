"""Opt-in smoke test against the real APIs: one tool round trip per provider whose key is set.

Run with `pytest -m live`; without `-m live`, or without a provider's key, each test is skipped.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

import llm_magic
from llm_magic import catalog
from llm_magic.errors import ModelNotFoundError
from llm_magic.providers.openai_responses import REASONING_KEY
from llm_magic.registry import ROUTES

pytestmark = pytest.mark.live


def secret_word(name: str) -> str:
    """The secret word of a person (only this tool knows it)."""
    return {"ada": "lighthouse"}.get(name.lower(), "unknown")


def skip_without_key(provider: str) -> None:
    key_env = ROUTES[provider].vendor.key_env
    if not any(os.environ.get(env) for env in key_env):
        pytest.skip(f"no {' or '.join(key_env)} in the environment")


# "openai" is the Responses API (the default for OpenAI), "openai-chat" Chat Completions
@pytest.mark.parametrize("provider", ["openai", "openai-chat", "anthropic", "gemini"])
async def test_one_tool_round_trip(provider: str) -> None:
    skip_without_key(provider)
    vendor = ROUTES[provider].vendor.name
    await assert_tool_round(f"{provider}:{catalog.default_model(vendor)}")


async def test_responses_carries_reasoning_across_a_tool_round() -> None:
    """A reasoning model on Responses: its reasoning items come back encrypted (store false) and
    the second request, which sends them back, is accepted."""
    skip_without_key("openai")
    result = await assert_tool_round(f"openai:{catalog.default_model('openai')}")
    turn = next(m for m in result.messages if m.role == "assistant" and m.tool_calls)
    [item, *_] = turn.provider_data[REASONING_KEY]
    assert item["type"] == "reasoning" and item["encrypted_content"]


async def assert_tool_round(model_id: str, **options: Any) -> llm_magic.ChainResult:
    """One run that must call secret_word and answer with its word."""
    model = llm_magic.get_async_model(model_id)
    result = await model.chain(
        "Use the secret_word tool to find Ada's secret word, then tell me the word.",
        tools=[secret_word],
        max_steps=2,
        **options,
    )
    assert result.status == "done", result.error
    assert [c.name for c in result.tool_calls][:1] == ["secret_word"]
    assert result.tool_calls[0].status == "ok" and "lighthouse" in result.text.lower()
    return result


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
async def test_a_model_the_api_does_not_serve_lists_what_the_key_can_use(provider: str) -> None:
    skip_without_key(provider)
    prefix = {"openai": "openai:gpt-", "anthropic": "claude-", "gemini": "gemini-"}[provider]
    model = llm_magic.get_async_model(prefix + "no-such-model-0")
    with pytest.raises(ModelNotFoundError) as info:
        await model.chain("hi")
    assert catalog.default_model(provider) in info.value.available


async def test_adaptive_thinking_on_a_claude_model_that_takes_only_adaptive() -> None:
    """Claude Opus 4.7 refuses `budget_tokens`: the thinking option must reach it as adaptive
    thinking with an effort, and the turn's thinking blocks must go back with the tool result."""
    skip_without_key("anthropic")
    await assert_tool_round("claude-opus-4-7", thinking="low")


@pytest.mark.parametrize("level", ["low", "high"])
async def test_thinking_levels_reach_gemini_3_as_a_thinking_level(level: str) -> None:
    skip_without_key("gemini")
    await assert_tool_round(catalog.default_model("gemini"), thinking=level)
