"""One registry of models: a model id picks its provider, its key and its base URL.

`gpt-*`/`o1*`/`o3*`/`o4*`/`codex-*` go to OpenAI (over the Responses API), `claude-*` to Anthropic,
`gemini-*` to Gemini, `local` to the embedded model; anything else needs a prefix (`openai:`,
`openai-chat:` for OpenAI over Chat Completions, `anthropic:`, `gemini:`, `ollama:`,
`openai-compatible:MODEL@BASE_URL`; the last two speak Chat Completions). Aliases are the user's
own short names.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import httpx2

from . import _runtime, catalog
from .errors import ConfigError, MissingKeyError, UnknownModelError
from .providers.base import Provider


@dataclass(frozen=True)
class ProviderInfo:
    name: str
    factory: str  # "module:Class", imported on first use
    key_env: tuple[str, ...]  # environment variables for the key, first found wins
    base_url_env: str | None
    key_required: bool = True
    default_base_url: str | None = None
    options: tuple[tuple[str, Any], ...] = ()
    vendor: str | None = None  # whose models these are, for the catalog (None: no catalog)


PROVIDERS: dict[str, ProviderInfo] = {
    # OpenAI's own API over Responses, the API OpenAI recommends (llm_magic.providers.
    # openai_responses): `openai:MODEL` and bare `gpt-*`/`o*` ids
    "openai": ProviderInfo(
        "openai",
        "llm_magic.providers.openai_responses:OpenAIResponsesProvider",
        ("OPENAI_API_KEY",),
        "OPENAI_BASE_URL",
        vendor="openai",
    ),
    # OpenAI's own API over Chat Completions, chosen explicitly (`openai-chat:gpt-4.1`); models
    # that answer only on Responses are refused before sending (`refuse_wrong_api`)
    "openai-chat": ProviderInfo(
        "openai-chat",
        "llm_magic.providers.openai:OpenAIProvider",
        ("OPENAI_API_KEY",),
        "OPENAI_BASE_URL",
        vendor="openai",
    ),
    "anthropic": ProviderInfo(
        "anthropic",
        "llm_magic.providers.anthropic:AnthropicProvider",
        ("ANTHROPIC_API_KEY",),
        "ANTHROPIC_BASE_URL",
        vendor="anthropic",
    ),
    "gemini": ProviderInfo(
        "gemini",
        "llm_magic.providers.gemini:GeminiProvider",
        ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
        "GEMINI_BASE_URL",
        vendor="gemini",
    ),
    "ollama": ProviderInfo(
        "ollama",
        "llm_magic.providers.openai:OpenAIProvider",
        ("OLLAMA_API_KEY",),
        "OLLAMA_BASE_URL",
        key_required=False,
        default_base_url="http://localhost:11434/v1",
        options=(("compat", "compatible"),),
    ),
    "openai-compatible": ProviderInfo(
        "openai-compatible",
        "llm_magic.providers.openai:OpenAIProvider",
        ("OPENAI_COMPATIBLE_API_KEY",),
        "OPENAI_COMPATIBLE_BASE_URL",
        key_required=False,
        options=(("compat", "compatible"),),
    ),
    "local": ProviderInfo(
        "local", "llm_magic.providers.embedded:LocalProvider", (), None, key_required=False
    ),
}

_PATTERNS = [
    (re.compile(r"^(gpt-|o\d|chatgpt-|codex-|text-|davinci)"), "openai"),
    (re.compile(r"^claude-"), "anthropic"),
    (re.compile(r"^gemini-"), "gemini"),
]
# Defaults and the models `%llm_models` lists come from the catalog (llm_magic.catalog), the one
# place that knows which models exist today; its first current model of a vendor is the default.
VENDORS = ("openai", "anthropic", "gemini")
KEY_VENDORS = [
    ("OPENAI_API_KEY", "openai"),
    ("ANTHROPIC_API_KEY", "anthropic"),
    ("GEMINI_API_KEY", "gemini"),
    ("GOOGLE_API_KEY", "gemini"),
]


def known_models() -> list[str]:
    """The ids worth suggesting: the local model, every current catalog model, one Ollama id."""
    return ["local", *(m for v in VENDORS for m in catalog.current(v)), "ollama:llama3.2"]


aliases: dict[str, str] = {}
CACHE_SIZE = 32


def cached_providers() -> OrderedDict[tuple[str | None, ...], Provider]:
    """Providers by (model, URL, key fingerprint, options), so that `get_model()` twice reuses
    HTTP connections: live resources, so the runtime holds them. Bounded: the least recently
    used is dropped past CACHE_SIZE (its clients close with their loops, or when garbage
    collected); `clear_cache()` empties it."""
    return _runtime.shared("providers", OrderedDict)


def clear_cache() -> None:
    """Forget every cached provider (models already made keep theirs)."""
    cached_providers().clear()


def register_alias(alias: str, model_id: str) -> None:
    """`register_alias("fast", "gpt-4.1-mini")`: then `--model fast` works."""
    aliases[alias] = model_id


def shown_id(resolved: str, given: str) -> str:
    """The resolved id, followed by the alias the user typed for it, if any (never another
    form of the id: a base URL typed into it may hold credentials)."""
    return f"{resolved} ({given})" if given in aliases and given != resolved else resolved


def default_model_id() -> str:
    """LLM_MAGIC_MODEL, else a model of the first provider with a key, else the local model."""
    explicit = os.environ.get("LLM_MAGIC_MODEL")
    if explicit:
        return explicit
    for env, vendor in KEY_VENDORS:
        if os.environ.get(env):
            return catalog.default_model(vendor)
    return "local"


def resolve(model_id: str) -> tuple[ProviderInfo, str]:
    """The provider and the provider's own model name for a model id or alias."""
    seen = set()
    while model_id in aliases and model_id not in seen:
        seen.add(model_id)
        model_id = aliases[model_id]
    prefix, sep, rest = model_id.partition(":")
    if sep and prefix in PROVIDERS:
        if not rest.partition("@")[0].strip():
            raise ConfigError(f"model id {model_id!r} names no model: write {prefix}:MODEL_NAME")
        return PROVIDERS[prefix], rest
    if model_id == "local":
        return PROVIDERS["local"], model_id
    for pattern, name in _PATTERNS:
        if pattern.match(model_id):
            return PROVIDERS[name], model_id
    raise UnknownModelError(
        f"unknown model {model_id!r}: use a gpt-*, o*, claude-* or gemini-* id, 'local', or a "
        f"prefix ({', '.join(p + ':' for p in PROVIDERS if p != 'local')}); "
        f"known models: {', '.join(known_models())}"
    )


def make_provider(
    model_id: str | None = None,
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    limits: httpx2.Limits | None = None,
    **options: Any,
) -> Provider:
    """Build (or reuse) the provider for a model id. Reuse keeps its HTTP connections."""
    info, name = resolve(model_id or default_model_id())
    if info.name == "openai-compatible" and "@" in name and not base_url:
        name, _, base_url = name.partition("@")
    if info.vendor:
        catalog.refuse_if_shut_down(info.vendor, name)
        refuse_wrong_api(info, name)
    key = api_key or next((os.environ[e] for e in info.key_env if os.environ.get(e)), None)
    if key is None and info.key_required:
        raise MissingKeyError(
            f"no API key for {info.name}: set the environment variable {info.key_env[0]}"
            + (f" (or {', '.join(info.key_env[1:])})" if len(info.key_env) > 1 else "")
            + " or pass api_key=..."
        )
    url = base_url or (os.environ.get(info.base_url_env) if info.base_url_env else None)
    url = url or info.default_base_url
    if url and not url.lower().startswith(("http://", "https://")):
        shown = url.rpartition("@")[2]  # never echo credentials written into a URL
        raise ConfigError(
            f"base URL {shown!r} for {info.name} needs http:// or https://, e.g. 'http://{shown}'"
        )
    if info.name == "openai-compatible" and not url:
        raise ConfigError(
            "openai-compatible models need a base URL: 'openai-compatible:MODEL@http://host:port/v1'"
            " or base_url=... or OPENAI_COMPATIBLE_BASE_URL"
        )
    if limits is not None:
        options["limits"] = limits
    cache_key = (f"{info.name}:{name}", url, _fingerprint(key), repr(sorted(options.items())))
    cache = cached_providers()
    if cache_key in cache:
        cache.move_to_end(cache_key)
        return cache[cache_key]
    cls = _import(info.factory)
    kwargs: dict[str, Any] = dict(info.options)
    kwargs.update(options)
    if kwargs.get("compat") == "compatible":
        from .providers.openai import COMPATIBLE

        kwargs["compat"] = COMPATIBLE
    provider: Provider = cls(name, api_key=key, base_url=url, **kwargs)
    provider.model_id = resolved_id(info, name)
    cache[cache_key] = provider
    while len(cache) > CACHE_SIZE:
        cache.popitem(last=False)
    return provider


def resolved_id(info: ProviderInfo, name: str) -> str:
    """The one id of a model on results, events and views: `prefix:model`, the prefix naming
    the API and vendor it reaches (what `get_model` takes back to reach the same), the model as
    the API is sent it; `local` alone."""
    return name if info.name == "local" else f"{info.name}:{name}"


def refuse_wrong_api(info: ProviderInfo, model: str) -> None:
    """A model that answers only on Responses, asked for over Chat Completions, is refused here
    rather than by a 404 after the request (the catalog's `apis`)."""
    if info.name != "openai-chat":
        return
    entry = catalog.lookup("openai", model)
    if entry is not None and "chat" not in entry.apis:
        raise ConfigError(
            f"{model!r} answers only on OpenAI's Responses API, not Chat Completions: use "
            f"'openai:{model}' (source: {entry.source})"
        )


def _fingerprint(key: str | None) -> str | None:
    return hashlib.sha256(key.encode()).hexdigest()[:16] if key else None


def _import(path: str) -> Any:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)
