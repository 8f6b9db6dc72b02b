"""One registry of models: a model id picks its route (the wire adapter for the API, and the
vendor: its key and its base URL).

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
class Vendor:
    """Whose models they are: where the key and the base URL come from, and whether the catalog
    lists them. One per vendor, however many APIs reach it (OpenAI: Responses and Chat)."""

    name: str
    key_env: tuple[str, ...]  # environment variables for the key, first found wins
    base_url_env: str | None
    key_required: bool = True
    default_base_url: str | None = None
    in_catalog: bool = False  # llm_magic.catalog knows its models (shut-down dates, fields)


OPENAI = Vendor("openai", ("OPENAI_API_KEY",), "OPENAI_BASE_URL", in_catalog=True)
ANTHROPIC = Vendor("anthropic", ("ANTHROPIC_API_KEY",), "ANTHROPIC_BASE_URL", in_catalog=True)
GEMINI = Vendor("gemini", ("GEMINI_API_KEY", "GOOGLE_API_KEY"), "GEMINI_BASE_URL", in_catalog=True)
OLLAMA = Vendor(
    "ollama",
    ("OLLAMA_API_KEY",),
    "OLLAMA_BASE_URL",
    key_required=False,
    default_base_url="http://localhost:11434/v1",
)
OPENAI_COMPATIBLE = Vendor(
    "openai-compatible",
    ("OPENAI_COMPATIBLE_API_KEY",),
    "OPENAI_COMPATIBLE_BASE_URL",
    key_required=False,
)
EMBEDDED = Vendor("local", (), None, key_required=False)


@dataclass(frozen=True)
class Route:
    """A model-id prefix: the wire adapter that speaks the API (llm_magic.providers) and the
    vendor it reaches, as pydantic-ai separates its models from its providers."""

    prefix: str
    adapter: str  # "module:Class", imported on first use
    vendor: Vendor
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def catalog_vendor(self) -> str | None:
        """The vendor's name in the catalog, when the catalog lists its models."""
        return self.vendor.name if self.vendor.in_catalog else None


_CHAT = "llm_magic.providers.openai:OpenAIChatAdapter"
ROUTES: dict[str, Route] = {
    # OpenAI's own API over Responses, the API OpenAI recommends: `openai:MODEL` and bare
    # `gpt-*`/`o*` ids
    "openai": Route(
        "openai", "llm_magic.providers.openai_responses:OpenAIResponsesAdapter", OPENAI
    ),
    # OpenAI's own API over Chat Completions, chosen explicitly (`openai-chat:gpt-4.1`); models
    # that answer only on Responses are refused before sending (`refuse_wrong_api`)
    "openai-chat": Route("openai-chat", _CHAT, OPENAI),
    "anthropic": Route(
        "anthropic", "llm_magic.providers.anthropic:AnthropicMessagesAdapter", ANTHROPIC
    ),
    "gemini": Route("gemini", "llm_magic.providers.gemini:GeminiGenerateContentAdapter", GEMINI),
    "ollama": Route("ollama", _CHAT, OLLAMA, options=(("compat", "compatible"),)),
    "openai-compatible": Route(
        "openai-compatible", _CHAT, OPENAI_COMPATIBLE, options=(("compat", "compatible"),)
    ),
    "local": Route("local", "llm_magic.providers.embedded:LocalProvider", EMBEDDED),
}

_PATTERNS = [
    (re.compile(r"^(gpt-|o\d|chatgpt-|codex-|text-|davinci)"), "openai"),
    (re.compile(r"^claude-"), "anthropic"),
    (re.compile(r"^gemini-"), "gemini"),
]
# Defaults and the models `%llm_models` lists come from the catalog (llm_magic.catalog), the one
# place that knows which models exist today; its first current model of a vendor is the default.
VENDORS = tuple(v.name for v in (OPENAI, ANTHROPIC, GEMINI))
KEY_VENDORS = [(env, v.name) for v in (OPENAI, ANTHROPIC, GEMINI) for env in v.key_env]


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


def resolve(model_id: str) -> tuple[Route, str]:
    """The provider and the provider's own model name for a model id or alias."""
    seen = set()
    while model_id in aliases and model_id not in seen:
        seen.add(model_id)
        model_id = aliases[model_id]
    prefix, sep, rest = model_id.partition(":")
    if sep and prefix in ROUTES:
        if not rest.partition("@")[0].strip():
            raise ConfigError(f"model id {model_id!r} names no model: write {prefix}:MODEL_NAME")
        return ROUTES[prefix], rest
    if model_id == "local":
        return ROUTES["local"], model_id
    for pattern, name in _PATTERNS:
        if pattern.match(model_id):
            return ROUTES[name], model_id
    raise UnknownModelError(
        f"unknown model {model_id!r}: use a gpt-*, o*, claude-* or gemini-* id, 'local', or a "
        f"prefix ({', '.join(p + ':' for p in ROUTES if p != 'local')}); "
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
    route, name = resolve(model_id or default_model_id())
    if route.prefix == "openai-compatible" and "@" in name and not base_url:
        name, _, base_url = name.partition("@")
    if route.catalog_vendor:
        catalog.refuse_if_shut_down(route.catalog_vendor, name)
        refuse_wrong_api(route, name)
    key = _key(route, api_key)
    url = _base_url(route, base_url)
    if limits is not None:
        options["limits"] = limits
    cache_key = (f"{route.prefix}:{name}", url, _fingerprint(key), repr(sorted(options.items())))
    cache = cached_providers()
    if cache_key in cache:
        cache.move_to_end(cache_key)
        return cache[cache_key]
    cls = _import(route.adapter)
    kwargs: dict[str, Any] = dict(route.options)
    kwargs.update(options)
    if kwargs.get("compat") == "compatible":
        from .providers.openai import COMPATIBLE

        kwargs["compat"] = COMPATIBLE
    kwargs["name"] = route.prefix
    provider: Provider = cls(name, api_key=key, base_url=url, **kwargs)
    provider.model_id = resolved_id(route, name)
    cache[cache_key] = provider
    while len(cache) > CACHE_SIZE:
        cache.popitem(last=False)
    return provider


def _key(route: Route, given: str | None) -> str | None:
    """The key given, else the vendor's from the environment; a sentence when one is needed."""
    vendor = route.vendor
    key = given or next((os.environ[e] for e in vendor.key_env if os.environ.get(e)), None)
    if key is None and vendor.key_required:
        raise MissingKeyError(
            f"no API key for {route.prefix}: set the environment variable {vendor.key_env[0]}"
            + (f" (or {', '.join(vendor.key_env[1:])})" if len(vendor.key_env) > 1 else "")
            + " or pass api_key=..."
        )
    return key


def _base_url(route: Route, given: str | None) -> str | None:
    """The base URL given, else the vendor's from the environment, else its default."""
    vendor = route.vendor
    url = given or (os.environ.get(vendor.base_url_env) if vendor.base_url_env else None)
    url = url or vendor.default_base_url
    if url and not url.lower().startswith(("http://", "https://")):
        shown = url.rpartition("@")[2]  # never echo credentials written into a URL
        raise ConfigError(
            f"base URL {shown!r} for {route.prefix} needs http:// or https://, e.g. 'http://{shown}'"
        )
    if route.prefix == "openai-compatible" and not url:
        raise ConfigError(
            "openai-compatible models need a base URL: 'openai-compatible:MODEL@http://host:port/v1'"
            " or base_url=... or OPENAI_COMPATIBLE_BASE_URL"
        )
    return url


def resolved_id(route: Route, name: str) -> str:
    """The one id of a model on results, events and views: `prefix:model`, the prefix naming
    the API and vendor it reaches (what `get_model` takes back to reach the same), the model as
    the API is sent it; `local` alone."""
    return name if route.prefix == "local" else f"{route.prefix}:{name}"


def refuse_wrong_api(route: Route, model: str) -> None:
    """A model that answers only on Responses, asked for over Chat Completions, is refused here
    rather than by a 404 after the request (the catalog's `apis`)."""
    if route.prefix != "openai-chat":
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
