"""The model catalog: which model ids each vendor serves, until when, and what their requests take.

Data in one place, so that keeping up with the vendors is a one-file change. Each entry says
where its facts come from (an official SDK file or deprecation page, and the day it was read);
defaults are picked from current entries only, and a model past its shutdown date is refused
before anything is sent (`refuse_if_shut_down`), with the date and the current alternatives.

An id the catalog does not list is not refused (vendors add models faster than we release):
its request rules come from its family (`FAMILIES`: `o*` and `gpt-5*` are reasoning models,
Claude Opus 4.7 and the 5.x models take adaptive thinking only, Gemini 3 takes a thinking
level). `python -m llm_magic.catalog --check` lists what shuts down within 30 days.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, replace
from datetime import date
from typing import Literal

from .errors import ConfigError, ModelShutDownError

# How a model thinks, which decides the request fields for the user's one thinking option:
# "effort": OpenAI reasoning (`reasoning.effort` / `reasoning_effort`);
# "adaptive": Claude `thinking: {type: "adaptive"}` with `output_config.effort`, nothing else;
# "budget": Claude `thinking: {type: "enabled", budget_tokens}` (adaptive too where noted);
# "level": Gemini 3 `thinkingConfig.thinkingLevel`; "gemini-budget": Gemini 2.5 `thinkingBudget`.
Thinking = Literal["effort", "adaptive", "budget", "level", "gemini-budget"]
# Which OpenAI wire API a model answers on.
Api = Literal["responses", "chat"]

# The sources, each with the day its facts were read.
OPENAI_SOURCE = (
    "openai-python src/openai/types/shared/chat_model.py (ids; 'Deprecated values' shutdown "
    "dates, openai 3.63) and platform.openai.com/docs/deprecations, read 2026-12-07"
)
OPENAI_RESPONSES_ONLY = (
    "platform.openai.com/docs/models: 'only supported in v1/responses', read 2026-12-07"
)
ANTHROPIC_SOURCE = (
    "anthropic-sdk-python src/anthropic/types/model_param.py and DEPRECATED_MODELS in "
    "resources/messages/messages.py; docs.anthropic.com/en/docs/resources/model-deprecations, "
    "read 2026-12-07"
)
GEMINI_SOURCE = "ai.google.dev/gemini-api/docs/deprecations and /models, read 2026-12-07"


@dataclass(frozen=True)
class ModelInfo:
    """What the catalog knows of one model id (or of its family, when `listed` is False)."""

    id: str
    vendor: str  # "openai", "anthropic", "gemini"
    source: str
    shutdown: date | None = None  # the vendor's announced shutdown (None: none announced)
    reasoning: bool = False  # refuses non-default temperature / top_p (OpenAI reasoning models)
    thinking: Thinking | None = None
    # Sampling fields (temperature, top_p, top_k) other than the default are refused.
    fixed_sampling: bool = False
    apis: tuple[Api, ...] = ("responses", "chat")  # OpenAI only
    listed: bool = True  # False: known by its family rule, not by its id

    def shut_down_on(self, today: date) -> bool:
        return self.shutdown is not None and self.shutdown <= today


def _openai(
    id: str,
    shutdown: date | None = None,
    *,
    reasoning: bool = True,
    responses_only: bool = False,
) -> ModelInfo:
    return ModelInfo(
        id,
        "openai",
        OPENAI_RESPONSES_ONLY if responses_only else OPENAI_SOURCE,
        shutdown,
        reasoning=reasoning,
        thinking="effort" if reasoning else None,
        fixed_sampling=reasoning,
        apis=("responses",) if responses_only else ("responses", "chat"),
    )


def _claude(id: str, shutdown: date | None = None, *, adaptive_only: bool = False) -> ModelInfo:
    return ModelInfo(
        id,
        "anthropic",
        ANTHROPIC_SOURCE,
        shutdown,
        thinking="adaptive" if adaptive_only else "budget",
        fixed_sampling=adaptive_only,
    )


def _gemini(id: str, shutdown: date | None = None) -> ModelInfo:
    three = id.startswith("gemini-3")
    return ModelInfo(
        id, "gemini", GEMINI_SOURCE, shutdown, thinking="level" if three else "gemini-budget"
    )


# Current models first: the first of each vendor is its default. Ids only, no dated snapshots
# unless they differ in lifetime.
MODELS: tuple[ModelInfo, ...] = (
    # ---- OpenAI
    _openai("gpt-5.4-mini"),
    _openai("gpt-5.6"),  # aliases the largest of the 5.6 family (released 2026-07-09)
    _openai("gpt-5.6-sol"),
    _openai("gpt-5.6-terra"),
    _openai("gpt-5.6-luna"),
    _openai("gpt-5.5"),
    _openai("gpt-5.4"),
    _openai("gpt-5.2"),
    _openai("gpt-5.4-nano", date(2027, 4, 1)),
    _openai("gpt-5.1", date(2027, 4, 1)),
    _openai("gpt-4.1", reasoning=False),
    _openai("gpt-4.1-mini", date(2027, 1, 14), reasoning=False),
    _openai("gpt-4o-mini", date(2027, 1, 14), reasoning=False),
    _openai("gpt-5", date(2026, 12, 11)),
    _openai("gpt-5-mini", date(2026, 12, 11)),
    _openai("o4-mini", date(2026, 10, 23)),
    _openai("o3"),
    _openai("gpt-5-pro", responses_only=True),
    _openai("gpt-5.2-pro", responses_only=True),
    _openai("gpt-5.5-pro", responses_only=True),
    _openai("o3-pro", responses_only=True),
    _openai("gpt-5.1-codex", responses_only=True),
    _openai("codex-mini-latest", responses_only=True),
    # ---- Anthropic
    _claude("claude-sonnet-4-6"),
    _claude("claude-opus-4-7", adaptive_only=True),
    _claude("claude-opus-4-8", adaptive_only=True),
    _claude("claude-sonnet-5", adaptive_only=True),
    _claude("claude-opus-5", adaptive_only=True),
    _claude("claude-haiku-4-5"),
    _claude("claude-opus-4-6"),
    _claude("claude-opus-4-5", date(2027, 1, 22)),
    _claude("claude-sonnet-4-5", date(2026, 11, 30)),
    _claude("claude-opus-4-0", date(2026, 6, 15)),
    _claude("claude-sonnet-4-0", date(2026, 6, 15)),
    _claude("claude-opus-4-20250514", date(2026, 6, 15)),
    _claude("claude-sonnet-4-20250514", date(2026, 6, 15)),
    _claude("claude-mythos-preview", date(2026, 6, 30)),
    _claude("claude-3-7-sonnet-latest", date(2026, 2, 19)),
    _claude("claude-3-5-haiku-latest", date(2026, 2, 19)),
    # ---- Gemini
    _gemini("gemini-3.5-flash"),
    _gemini("gemini-3.1-pro-preview"),
    _gemini("gemini-2.5-flash", date(2026, 12, 1)),
    _gemini("gemini-2.5-pro", date(2026, 12, 1)),
    _gemini("gemini-2.5-flash-lite", date(2026, 12, 1)),
    _gemini("gemini-3-pro-preview", date(2026, 3, 9)),
    _gemini("gemini-2.0-flash", date(2026, 2, 28)),
)

# Rules for ids the catalog does not list, first match wins: (vendor, pattern, entry template).
FAMILIES: tuple[tuple[str, re.Pattern[str], ModelInfo], ...] = (
    ("openai", re.compile(r"^(o\d|gpt-5)"), _openai("")),
    ("openai", re.compile(r"^"), _openai("", reasoning=False)),
    (
        "anthropic",
        re.compile(r"^claude-(opus-4-([7-9]|\d\d)|[a-z]+-([5-9]|\d\d))(\b|-)"),
        _claude("", adaptive_only=True),
    ),
    ("anthropic", re.compile(r"^"), _claude("")),
    ("gemini", re.compile(r"^"), _gemini("")),
)

_BY_ID: dict[tuple[str, str], ModelInfo] = {(m.vendor, m.id): m for m in MODELS}

# The most output tokens one request may ask for, by id prefix, first match wins: a larger
# `max_completion_tokens` / `maxOutputTokens` is refused ("max_tokens is too large ... This model
# supports at most 16384 completion tokens"), so a budget's output cap never goes above it.
# Sources: platform.openai.com/docs/models ("Max output tokens" of gpt-5, o3, gpt-4.1, gpt-4o)
# and ai.google.dev/gemini-api/docs/models ("Output token limit"), read 2026-12-07. Anthropic
# is absent: its adapter always sends `max_tokens` (the user's or its default) and only lowers it.
MAX_OUTPUT: tuple[tuple[str, str, int], ...] = (
    ("openai", "gpt-5", 128_000),
    ("openai", "o1", 100_000),
    ("openai", "o3", 100_000),
    ("openai", "o4", 100_000),
    ("openai", "gpt-4.1", 32_768),
    ("openai", "", 16_384),
    ("gemini", "gemini-2.0", 8_192),
    ("gemini", "", 65_536),
)


def max_output(vendor: str, model: str) -> int | None:
    """The most output tokens `model` takes in one request (None: no limit known here)."""
    for rule_vendor, prefix, limit in MAX_OUTPUT:
        if rule_vendor == vendor and model.startswith(prefix):
            return limit
    return None


def lookup(vendor: str, model: str) -> ModelInfo | None:
    """The catalog's entry for a vendor's model id, or its family's rules; None for vendors the
    catalog does not cover (OpenAI-compatible servers, Ollama, the local model)."""
    listed = _BY_ID.get((vendor, model))
    if listed is not None:
        return listed
    for family_vendor, pattern, template in FAMILIES:
        if family_vendor == vendor and pattern.match(model):
            info = replace(template, id=model, listed=False)
            if vendor == "gemini":  # the thinking kind depends on the generation
                info = replace(info, thinking=_gemini(model).thinking)
            return info
    return None


def current(vendor: str, today: date | None = None) -> list[str]:
    """The vendor's listed models not shut down by `today`, the default first."""
    day = today or date.today()
    return [m.id for m in MODELS if m.vendor == vendor and not m.shut_down_on(day)]


def default_model(vendor: str, today: date | None = None) -> str:
    """The vendor's default: the first current model in the catalog."""
    models = current(vendor, today)
    if not models:
        raise ConfigError(f"the model catalog lists no current {vendor} model")
    return models[0]


def refuse_if_shut_down(vendor: str, model: str, today: date | None = None) -> None:
    """Raise `ModelShutDownError` for a model the catalog knows to be shut down by `today`."""
    info = _BY_ID.get((vendor, model))
    day = today or date.today()
    if info is None or not info.shut_down_on(day):
        return
    raise ModelShutDownError(
        f"{vendor} shut {model!r} down on {info.shutdown:%Y-%m-%d}; current {vendor} models: "
        f"{', '.join(current(vendor, day)[:6])} (source: {info.source})"
    )


def shutting_down(within_days: int = 30, today: date | None = None) -> list[ModelInfo]:
    """Listed models whose shutdown falls within `within_days` of `today`, or has passed."""
    day = today or date.today()
    return [m for m in MODELS if m.shutdown is not None and (m.shutdown - day).days <= within_days]


def _check(argv: list[str]) -> int:
    """`python -m llm_magic.catalog --check [DAYS]`: the defaults and models shutting down."""
    days = int(argv[1]) if len(argv) > 1 else 30
    today = date.today()
    status = 0
    for vendor in ("openai", "anthropic", "gemini"):
        model = default_model(vendor, today)
        info = _BY_ID[(vendor, model)]
        soon = info.shutdown is not None and (info.shutdown - today).days <= days
        print(f"default {vendor}: {model}" + (f"  (shuts down {info.shutdown})" if soon else ""))
        status |= soon
    for m in shutting_down(days, today):
        when = "shut down on" if m.shut_down_on(today) else "shuts down on"
        print(f"{m.vendor} {m.id}: {when} {m.shutdown:%Y-%m-%d}")
    return int(status)


if __name__ == "__main__":  # pragma: no cover - a command-line entry
    if sys.argv[1:2] != ["--check"]:
        print("usage: python -m llm_magic.catalog --check [DAYS]", file=sys.stderr)
        raise SystemExit(2)
    raise SystemExit(_check(sys.argv[1:]))
