"""Tool sources: tools that exist only once something is reached (an MCP server's tools).

`tools=[...]` takes a source next to plain functions. Its tools cannot be listed when the
conversation is made (that may start a process), so a run asks each source when it starts, on
its own loop; `with_sources` is that step, shared by the chain and the notebook (which lists
them before the run, to check `--approve` names against them).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable

from .errors import ToolDefinitionError
from .tools import Tool, to_tools


@runtime_checkable
class ToolSource(Protocol):
    """Tools known only once something is reached (an MCP server): `tools=[...]` takes it
    next to functions, and each run asks it for its tools when the run starts."""

    async def list_tools(self) -> list[Tool]: ...


def split_sources(items: Iterable[Any]) -> tuple[list[Tool], list[ToolSource]]:
    """The tools of `items` (see `to_tools`) and the tool sources among them, apart."""
    items = list(items)
    sources = [i for i in items if isinstance(i, ToolSource) and not callable(i)]
    return to_tools(i for i in items if not any(i is s for s in sources)), sources


async def with_sources(tools: list[Tool], sources: Iterable[ToolSource]) -> list[Tool]:
    """`tools` and every source's tools, in order; two tools with one name are an error."""
    out = list(tools)
    for source in sources:
        out.extend(await source.list_tools())
    seen: set[str] = set()
    for t in out:
        if t.name in seen:
            raise ToolDefinitionError(f"two tools are named {t.name!r}; rename one")
        seen.add(t.name)
    return out
