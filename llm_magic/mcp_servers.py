"""MCP servers as tool sources, on the official `mcp` SDK 2.x (`pip install 'llm-magic[mcp]'`).

`llm_magic.mcp("python server.py")` or `llm_magic.mcp("https://host/mcp")` (mcp_registry) is an
`MCPServer`:
put it in `tools=[...]` next to plain functions, in the async and the sync API alike. Each run
asks it for its tools (`list_tools`), named `server_tool` and checked against the server's input
schema before a call; results map to `MCPResult` (see mcp_results).

A server is its settings (mcp_settings) plus its session (mcp_session: start, watch, restart,
close); this module lists and calls its tools. Where the sessions live: one host loop for the
process (mcp_host); the transport and the watch on a server's end: mcp_transport. Another
installed mcp is refused in one line (`require_sdk`), never a raw ImportError.

Cancellation: a cancelled caller (interrupt, Cancel, a tool timeout) cancels the call's task
on the host loop; the SDK then sends MCP's `notifications/cancelled` for the request.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Collection
from typing import Any

from ._tool_names import wire_names
from .mcp_host import on_host, on_host_sync
from .mcp_results import (
    MCPError,
    MCPResult,
    MCPToolError,
    argument_checker,
    to_result,
)
from .mcp_session import MCPSession, State
from .mcp_settings import MCPServerSettings
from .mcp_transport import ping
from .tools import Tool

__all__ = ["MCPError", "MCPResult", "MCPServer", "MCPToolError"]


class MCPServer(MCPServerSettings):
    """One MCP server: its session starts on first use and is shared by every run."""

    @functools.cached_property
    def session(self) -> MCPSession:
        """Its session, made on first use (and started on the first call or listing)."""
        return MCPSession(self)

    def __repr__(self) -> str:
        return f"<MCPServer {self.name!r} {self.transport} {self.where} {self.state}>"

    # -- the session's state, as shown (`%llm_mcp`) ---------------------------------------------

    @property
    def state(self) -> State:
        return self.session.state

    @property
    def error(self) -> str | None:
        """The last error, as shown to the user."""
        return self.session.error

    @property
    def restarts(self) -> int:
        return self.session.restarts

    @property
    def protocol(self) -> str | None:
        """The protocol version it speaks, once started."""
        return self.session.protocol

    @property
    def asked(self) -> list[str]:
        """What it asked the user during calls (shown, never the answers)."""
        return self.session.asked

    @property
    def noise(self) -> int:
        """Lines on its stdout that were not JSON-RPC (ignored)."""
        return self.session.noise

    # -- the public API ------------------------------------------------------------------------

    async def list_tools(self) -> list[Tool]:
        """This server's tools as llm_magic tools (starts the server if needed)."""
        await on_host(self.session.ensure())
        self.check_names(self.only)
        return self.tools()

    def tools(self, names: Collection[str] | None = None) -> list[Tool]:
        """The tools of the running (or last) session; empty before the first start. Only
        those of `names` (and of `only`), when given.

        Names are `server_tool`, made distinct when two of its tools map to one wire name
        (`files/read.v2` and `files_read_v2`): the one that is not valid as it is gets a short hash
        of its own name.
        """
        chosen = [
            t
            for t in self.session.listed
            if (self.only is None or t.name in self.only) and (names is None or t.name in names)
        ]
        wire = wire_names(f"{self.name}_{info.name}" for info in chosen)
        return [self._tool(info, wire[f"{self.name}_{info.name}"]) for info in chosen]

    def check_names(self, names: Collection[str] | None) -> None:
        """A tool name this server does not have is a typo to report, not a silent omission."""
        have = {t.name for t in self.session.listed}
        missing = sorted(set(names or ()) - have)
        if missing:
            raise MCPError(
                f"MCP server {self.name!r} has no tool {', '.join(map(repr, missing))}; "
                f"its tools: {', '.join(sorted(have)) or 'none'}"
            )

    async def call(self, tool: str, arguments: dict[str, Any]) -> MCPResult:
        """Call one of the server's tools by its own (unprefixed) name."""
        return await on_host(self._call(tool, arguments))

    async def restart(self) -> None:
        """Close the session and forget past deaths; the next use starts it afresh."""
        await on_host(self.session.close(final=False))

    async def aclose(self) -> None:
        await on_host(self.session.close(final=True))

    def close(self, timeout: float = 15.0) -> None:
        """Stop the server (its process, or its HTTP session); safe from any thread but the host."""
        if not self.session.started and self.state != "closed":
            self.session.state = "closed"
            return
        on_host_sync(self.session.close(final=True), timeout)

    # -- tools ---------------------------------------------------------------------------------

    def _tool(self, info: Any, name: str) -> Tool:
        server, tool_name = self, info.name

        async def call(**arguments: Any) -> MCPResult:
            return await server.call(tool_name, arguments)

        schema = dict(info.input_schema or {"type": "object"})
        return Tool.from_schema(
            name,
            info.description or info.title or "",
            schema,
            call,
            check=argument_checker(schema),
            server=self.name,
            requires_approval=self.needs_approval(tool_name),
            timeout=self.timeout,
        )

    # -- on the host loop ----------------------------------------------------------------------

    async def _call(self, tool: str, arguments: dict[str, Any]) -> MCPResult:
        from mcp import InputRequiredRoundsExceededError
        from mcp import MCPError as SDKError
        from mcp.types import CONNECTION_CLOSED

        session = self.session
        client = await session.ensure()
        session.calling = tool
        pinger = None if self.url is None else asyncio.ensure_future(ping(client))
        try:
            raw = await session.unless_dead(client.call_tool(tool, arguments))
        except SDKError as exc:
            if exc.code == CONNECTION_CLOSED:
                session.lost(f"it exited or lost the connection during the call to {tool}")
                raise MCPError(session.error) from None
            raise MCPError(
                self.scrub(f"MCP server {self.name!r}, tool {tool}: {exc.message}")
            ) from None
        except InputRequiredRoundsExceededError:
            raise MCPError(
                f"MCP server {self.name!r}, tool {tool}: it kept asking for input; "
                f"it asked: {'; '.join(session.asked[-3:])}"
            ) from None
        finally:
            if pinger is not None:
                pinger.cancel()
        session.answered()
        try:
            return to_result(self.name, tool, raw)
        except MCPToolError as exc:
            question = session.declined(tool)
            if question is not None:
                note = (
                    f" (it asked the user {question!r}; declined: nobody to answer here; "
                    "give the server ask= to answer such questions)"
                )
                raise MCPToolError(str(exc) + note, exc.result) from None
            raise
