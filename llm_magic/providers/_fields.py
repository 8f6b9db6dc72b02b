"""Which request fields each model takes: the rules every adapter shares.

The catalog (llm_magic.catalog) says per model whether it refuses non-default sampling fields
and how it thinks; these functions turn that into what the adapters leave out or add, so the
Chat Completions adapter, the Responses adapter and the Anthropic adapter drop the same fields
for the same reason, and a fork onto another provider leaves the first one's fields behind.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..catalog import ModelInfo
from ..options import ThinkingLevel

if TYPE_CHECKING:
    from .base import Provider

# The value each sampling field has when it is not sent: sending it is accepted even by models
# that refuse any other (openai-python `types/chat/completion_create_params.py`: temperature and
# top_p "defaults to 1"); `top_k` has no such value.
SAMPLING_DEFAULTS: dict[str, float | None] = {"temperature": 1, "top_p": 1, "top_k": None}

# Thinking budgets by level, in tokens: Claude's `budget_tokens` (at least 1024, below
# max_tokens: docs.claude.com/en/docs/build-with-claude/extended-thinking) and Gemini 2.5's
# `thinkingBudget` (ai.google.dev/gemini-api/docs/thinking#set-budget); 0 turns Gemini's off.
THINKING_BUDGETS: dict[ThinkingLevel, int] = {"off": 0, "low": 2048, "medium": 8192, "high": 24576}

# model_options keys that belong to one wire format, and keys every format takes (each adapter
# renames them: max_tokens, stop). A fork onto another provider drops the first one's own keys.
GENERIC_OPTIONS = frozenset({"temperature", "top_p", "max_tokens", "stop"})
OWN_OPTIONS: dict[str, frozenset[str]] = {
    "openai": frozenset(
        {
            "reasoning_effort",
            "reasoning",
            "verbosity",
            "max_completion_tokens",
            "max_output_tokens",
            "frequency_penalty",
            "presence_penalty",
            "logit_bias",
            "logprobs",
            "top_logprobs",
            "seed",
            "n",
            "response_format",
            "parallel_tool_calls",
            "prompt_cache_key",
            "safety_identifier",
            "store",
            "user",
            "text",
            "truncation",
            "include",
        }
    ),
    "anthropic": frozenset(
        {"thinking", "output_config", "top_k", "stop_sequences", "metadata", "container"}
    ),
    "gemini": frozenset(
        {
            "generationConfig",
            "generation_config",
            "safetySettings",
            "safety_settings",
            "cachedContent",
            "cached_content",
            "labels",
            "thinkingConfig",
            "thinking_config",
            "topK",
            "stopSequences",
            "stop_sequences",
            "maxOutputTokens",
            "max_output_tokens",
            "responseMimeType",
            "response_mime_type",
            "candidateCount",
            "candidate_count",
        }
    ),
}


def refused_sampling(info: ModelInfo | None, options: Mapping[str, Any]) -> list[str]:
    """The sampling fields of `options` this model refuses: any other than its default on a
    model with fixed sampling (OpenAI reasoning models, Claude's adaptive-only models)."""
    if info is None or not info.fixed_sampling:
        return []
    return [
        k
        for k, default in SAMPLING_DEFAULTS.items()
        if k in options and (default is None or options[k] != default)
    ]


def drop_refused_sampling(provider: Provider, options: dict[str, Any]) -> list[str]:
    """Take out of `options` the sampling fields the provider's model refuses (its `info`, the
    catalog entry), with one warning per provider: the run goes on at the model's defaults
    rather than end in a 400. Returns what was dropped."""
    info = provider.info
    dropped = refused_sampling(info, options)
    for k in dropped:
        del options[k]
    if dropped:
        provider.warn_once(
            "sampling",
            f"{provider.model} takes only the default {', '.join(dropped)}; the option was left "
            "out",
        )
    return dropped


def wire_format(provider_name: str) -> str:
    """The wire format whose model_options a provider takes: "anthropic", "gemini", or
    "openai" for OpenAI's own APIs and every OpenAI-compatible server (the local model too)."""
    return provider_name if provider_name in ("anthropic", "gemini") else "openai"


def foreign_options(options: Mapping[str, Any], target: str) -> list[str]:
    """The keys of `options` that belong to another wire format than `target` ("openai",
    "anthropic", "gemini"): what a fork onto a `target` model leaves behind. Keys no table
    knows stay (the target's server says whether it takes them)."""
    own = OWN_OPTIONS.get(target, frozenset()) | GENERIC_OPTIONS
    others = frozenset().union(*(v for k, v in OWN_OPTIONS.items() if k != target))
    return [k for k in options if k in others and k not in own]
