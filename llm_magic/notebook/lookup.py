"""What names in a notebook cell mean: tools by name or by `@tool` mark, models by id or alias.

Plain lookups over the user's namespace and llm_magic's registry, with the one-line errors a
notebook user sees (close names suggested); nothing here runs a chain.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import registry
from ..errors import ConfigError, LLMMagicError, UnknownModelError
from ..kernel_tools import NotebookTools
from ..models import AsyncModel, Model, get_async_model
from ..sources import ToolSource, split_sources
from ..tools import Tool, is_marked_tool
from .config import get_config
from .errors import NotebookError, one_line

# `--tools notebook`: the notebook's read-only tools; `notebook+run` adds run_python
NOTEBOOK_WORDS = {"notebook": NotebookTools(), "notebook+run": NotebookTools(run_python=True)}


def hidden_names(ip: Any) -> set[str]:
    """The shell's own variables: never tools, never `{name}` placeholders."""
    hidden = set(getattr(ip, "user_ns_hidden", {}) or {}) if ip is not None else set()
    return hidden | {"In", "Out", "_", "__", "___", "exit", "quit", "get_ipython"}


def marked_tools(namespace: Mapping[str, Any]) -> list[Tool]:
    """Every function marked with `@tool` / `@async_tool_is` among the notebook's variables."""
    found: dict[str, tuple[str, Tool]] = {}
    for var, value in list(namespace.items()):
        if var.startswith("_"):
            continue
        try:
            if not is_marked_tool(value):
                continue
            marked = Tool.from_function(value)
        except Exception:
            continue
        seen = found.get(marked.name)
        # One tool per name: prefer the variable that carries the tool's own name.
        if seen is None or (seen[0] != marked.name and var == marked.name):
            found[marked.name] = (var, marked)
    return [t for _, t in found.values()]


def select_tools(
    tools: Any, namespace: Mapping[str, Any] | None
) -> tuple[list[Tool], list[ToolSource]]:
    """Tools from a list of callables, Tools or names, and the tool sources (MCP servers)
    among them; None: the marked functions (notebook)."""
    if tools is None:
        return (marked_tools(namespace) if namespace is not None else []), []
    if isinstance(tools, str):
        tools = [name.strip() for name in tools.split(",") if name.strip()]
    elif callable(tools) or isinstance(tools, Tool | ToolSource):
        tools = [tools]
    items: list[Any] = []
    for item in tools:
        mcp_tool = isinstance(item, str) and ":" in item  # "server:tool", "server:*"
        if isinstance(item, str) and not mcp_tool:
            item = _notebook_word(item, namespace) or _named_tool(item, namespace)
        items.append(item)
    try:
        return split_sources(items)
    except LLMMagicError as exc:  # a tool definition, an unknown MCP server
        raise one_line(exc) from None


def _notebook_word(name: str, namespace: Mapping[str, Any] | None) -> Any:
    """`notebook` / `notebook+run`: the notebook tools, unless a function of the notebook has
    that name (it stays the tool it was)."""
    if namespace is not None and callable(namespace.get(name)):
        return None
    return NOTEBOOK_WORDS.get(name)


def _named_tool(name: str, namespace: Mapping[str, Any] | None) -> Any:
    from .cell_options import close_names, lookup

    found, value = lookup(name, namespace or {})
    if not found:
        callables = [
            k for k, v in (namespace or {}).items() if not k.startswith("_") and callable(v)
        ]
        close = close_names(name, callables)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        where = "in the notebook" if namespace is not None else "(no notebook namespace here)"
        raise NotebookError(
            f"unknown tool {name!r}: no function of that name {where}{hint} "
            "(define it in a cell first, or pass the function itself)"
        )
    if not callable(value):
        raise NotebookError(
            f"tool {name!r} is a {type(value).__name__}, not a function; "
            "--tools takes names of functions (or obj.method)"
        )
    return value


# -- models ---------------------------------------------------------------------------------------


def model_choices() -> list[str]:
    prefixes = [f"{p}:" for p in registry.ROUTES if p != "local"]
    return [*registry.known_models(), *registry.aliases, *prefixes]


def default_model_id() -> str:
    return str(get_config().defaults()["model"] or registry.default_model_id())


def resolve_model(
    model: Any,
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    fallback: AsyncModel | None = None,
) -> AsyncModel:
    """An AsyncModel for an id, alias, Model or AsyncModel; None: the conversation's or default."""
    if isinstance(model, AsyncModel):
        return model
    if isinstance(model, Model):
        return model.to_async()
    if model is None and fallback is not None and api_key is None and base_url is None:
        return fallback
    if model is None:
        model = default_model_id()
    if not isinstance(model, str):
        raise NotebookError(
            f"model must be a model id such as 'gpt-4.1-mini', got {type(model).__name__}"
        )
    model = model.strip()
    try:
        registry.resolve(model)
    except UnknownModelError:
        from .cell_options import close_names

        close = close_names(model, model_choices())
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        raise NotebookError(
            f"unknown model {model!r}: {hint}Use a known id or alias (%llm_models lists them), "
            "or a provider prefix such as openai:NAME, ollama:NAME, "
            "openai-compatible:NAME@http://host:port/v1"
        ) from None
    except ConfigError as exc:
        raise one_line(exc) from None
    try:
        return get_async_model(model, api_key=api_key, base_url=base_url)
    except ConfigError as exc:
        raise one_line(exc) from None
