"""Tool sources: tools that exist only once something is reached (an MCP server's tools).

`tools=[...]` takes a source next to plain functions. Its tools cannot be listed when the
conversation is made (that may start a process), so a run asks each source when it starts, on
its own loop; `with_sources` is that step, shared by the chain and the notebook (which lists
them before the run, to check `--approve` names against them).
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable

from .errors import ToolDefinitionError
from .tools import Tool, to_tools

# OpenAI's most functions per request (API reference, Chat Completions `tools`: "A max of 128
# functions are supported", read 2026-12-07); the lowest limit among the providers.
TOOL_LIMIT = 128


@runtime_checkable
class ToolSource(Protocol):
    """Tools known only once something is reached (an MCP server): `tools=[...]` takes it
    next to functions, and each run asks it for its tools when the run starts."""

    async def list_tools(self) -> list[Tool]: ...


def _is_source(item: Any) -> bool:
    """A tool source and not a function: the test `isinstance(item, ToolSource)` makes (an
    attribute `list_tools` that is not None), without the runtime-checked Protocol's cost on
    every item of every run."""
    return getattr(item, "list_tools", None) is not None and not callable(item)


def split_sources(items: Iterable[Any]) -> tuple[list[Tool], list[ToolSource]]:
    """The tools of `items` (see `to_tools`) and the tool sources among them, apart.

    `"server:tool"` and `"server:*"` name tools of MCP servers registered by name.
    """
    items = list(items)
    sources = [i for i in items if _is_source(i)]
    named = [i for i in items if isinstance(i, str) and ":" in i]
    if named:
        from .mcp_registry import named_tools

        sources.extend(named_tools(named))
    taken = [*sources, *named]
    rest = [i for i in items if not any(i is s for s in taken)]
    return to_tools(rest), sources


async def with_sources(tools: list[Tool], sources: Iterable[ToolSource]) -> list[Tool]:
    """`tools` and every source's tools, in order; two tools with one name are an error.

    Sources start concurrently (eight servers of one second take one second, not eight). One
    that fails raises its own error (which names it), unless it is `optional`: then the run goes
    on without its tools, with a warning.
    """
    sources = list(sources)
    listed = await asyncio.gather(*(s.list_tools() for s in sources), return_exceptions=True)
    out = list(tools)
    for source, found in zip(sources, listed, strict=True):
        if isinstance(found, BaseException):
            if not getattr(source, "optional", False) or not isinstance(found, Exception):
                raise found
            warnings.warn(f"{found} The run goes on without its tools.", stacklevel=2)
            continue
        out.extend(found)
    if len(out) > TOOL_LIMIT:
        warnings.warn(
            f"{len(out)} tools in one run: above {TOOL_LIMIT}, what OpenAI accepts per request; "
            "offer fewer (an MCP server's `tools=[...]`, `--tools server:tool`)",
            stacklevel=2,
        )
    seen: set[str] = set()
    for t in out:
        if t.name in seen:
            raise ToolDefinitionError(f"two tools are named {t.name!r}; rename one")
        seen.add(t.name)
    return out
