"""Opt-in smoke test against the real APIs: one tool round trip per provider whose key is set.

Run with `pytest -m live`; without `-m live`, or without a provider's key, each test is skipped.
"""

from __future__ import annotations

import os

import pytest

import llm_magic
from llm_magic import catalog
from llm_magic.errors import ModelNotFoundError
from llm_magic.registry import PROVIDERS

pytestmark = pytest.mark.live


def secret_word(name: str) -> str:
    """The secret word of a person (only this tool knows it)."""
    return {"ada": "lighthouse"}.get(name.lower(), "unknown")


def needs_key(provider: str) -> None:
    if not any(os.environ.get(env) for env in PROVIDERS[provider].key_env):
        pytest.skip(f"no {' or '.join(PROVIDERS[provider].key_env)} in the environment")


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
async def test_the_catalogs_default_makes_one_tool_round_trip(provider: str) -> None:
    needs_key(provider)
    model = llm_magic.get_async_model(catalog.default_model(provider))
    result = await model.chain(
        "Use the secret_word tool to find Ada's secret word, then tell me the word.",
        tools=[secret_word],
        max_steps=2,
    )
    assert result.status == "done", result.error
    assert [c.name for c in result.tool_calls][:1] == ["secret_word"]
    assert result.tool_calls[0].status == "ok" and "lighthouse" in result.text.lower()


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
async def test_a_model_the_api_does_not_serve_lists_what_the_key_can_use(provider: str) -> None:
    needs_key(provider)
    prefix = {"openai": "openai:gpt-", "anthropic": "claude-", "gemini": "gemini-"}[provider]
    model = llm_magic.get_async_model(prefix + "no-such-model-0")
    with pytest.raises(ModelNotFoundError) as info:
        await model.chain("hi")
    assert catalog.default_model(provider) in info.value.available
