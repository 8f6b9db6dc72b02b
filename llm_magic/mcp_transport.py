"""An MCP server's transport: its process (stdio) or HTTP client, and a watch on its end.

No orphans: a stdio server is the SDK's child in its own session (the SDK's choice, so a kernel
interrupt misses it); it gets EOF on stdin when the kernel goes, the SDK terminates its process
group when the session closes, and on Linux the kernel SIGTERMs it if the kernel process dies
(a tiny exec wrapper sets `PR_SET_PDEATHSIG`, since the SDK takes no `preexec_fn`).

HTTP goes through `httpx2` (what mcp 2's `streamable_http_client` takes). A start that fails on
the usual URL mistakes (an old HTTP+SSE endpoint, a wrong path) says what to try (`explain`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from .mcp_host import describe

PING_SECONDS = 2.0

if TYPE_CHECKING:
    from .mcp_session import MCPSession

# Runs in the child: ask Linux to SIGTERM it when its parent (the kernel) dies, then become the
# server. Resolved on PATH with the environment the SDK built.
EXEC_WITH_PDEATHSIG = r"""
import ctypes, os, signal, sys
parent = int(sys.argv[1])
try:
    ctypes.CDLL(None).prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG
except Exception:
    pass
if os.getppid() != parent:
    sys.exit(1)
try:
    os.execvp(sys.argv[2], sys.argv[2:])
except OSError as exc:
    print(f"llm_magic: cannot run {sys.argv[2]!r}: {exc.strerror}", file=sys.stderr)
    sys.exit(127)
"""


@contextlib.asynccontextmanager
async def open_transport(session: MCPSession) -> AsyncIterator[tuple[Any, Any]]:
    """The SDK's transport for `session`'s server, its messages passed through `_watch`."""
    async with contextlib.AsyncExitStack() as stack:
        if session.settings.command is not None:
            read, write = await _stdio(stack, session)
        else:
            read, write = await _http(stack, session)
        yield await _watch(stack, read, session), write


async def _stdio(stack: contextlib.AsyncExitStack, session: MCPSession) -> tuple[Any, Any]:
    from mcp import StdioServerParameters
    from mcp.client.stdio import stdio_client

    server = session.settings
    assert server.command is not None
    command, args = server.command[0], server.command[1:]
    if sys.platform.startswith("linux"):
        args = ["-c", EXEC_WITH_PDEATHSIG, str(os.getpid()), command, *args]
        command = sys.executable
    params = StdioServerParameters(
        command=command, args=args, env=server.env, cwd=server.cwd, encoding_error_handler="replace"
    )
    if session.stderr is not None:
        session.stderr.close()
    session.stderr = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")
    read, write = await stack.enter_async_context(stdio_client(params, session.stderr))
    return read, write


async def _http(stack: contextlib.AsyncExitStack, session: MCPSession) -> tuple[Any, Any]:
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    server = session.settings
    assert server.url is not None
    headers = server._headers  # secrets: they go to the server and nowhere else
    client = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0, read=300.0))
    await stack.enter_async_context(client)
    read, write = await stack.enter_async_context(
        streamable_http_client(server.url, http_client=client)
    )
    return read, write


async def _watch(stack: contextlib.AsyncExitStack, read: Any, session: MCPSession) -> Any:
    """Pass messages on to the session, and notice the end of the server (EOF, a failed
    HTTP request): the session then fails the calls in flight ("Connection closed").
    A stdio line that is not JSON-RPC is counted (`noise`), not passed on."""
    import anyio

    send, receive = anyio.create_memory_object_stream[Any](0)
    group = await stack.enter_async_context(anyio.create_task_group())
    stack.callback(group.cancel_scope.cancel)  # left before the transport closes `read`
    http = session.settings.url is not None

    async def pump() -> None:
        lost = "the connection closed" if http else "it exited"
        async with send:
            async for item in read:
                if isinstance(item, Exception) and http:
                    lost = f"the connection failed ({describe(item)})"
                    break
                if isinstance(item, Exception):
                    session.noise += 1
                    continue
                await send.send(item)
        session.lost(lost)

    group.start_soon(pump)
    return receive


def explain(url: str | None, exc: BaseException) -> str:
    """Why a start failed, with what to try for the usual HTTP mistakes."""
    why = describe(exc)
    if url is None:
        return why
    sse_path = urlparse(url).path.rstrip("/").endswith("/sse")
    if sse_path or "405" in why or "Method Not Allowed" in why:
        return (
            f"{why}; is it an old HTTP+SSE endpoint? llm_magic speaks streamable HTTP, "
            "which servers usually serve at .../mcp, not .../sse"
        )
    if "404" in why or "Session terminated" in why or "Not Found" in why:
        return f"{why}; nothing serves MCP at that path: check the URL (often .../mcp)"
    return why


async def ping(client: Any) -> None:
    """Ping while an HTTP call is in flight on a legacy server: the SDK leaves a call waiting
    when the server goes away mid-response; a failed ping ends the connection, which fails the
    call. (MCP spec 2025-11-25, basic/utilities/ping: "periodically issue pings to detect
    connection health"; 2026-07-28 removed ping, so a modern server is not pinged.)"""
    if getattr(client.session, "discover_result", None) is not None:
        return
    with contextlib.suppress(Exception):
        while True:
            await asyncio.sleep(PING_SECONDS)
            await client.session.send_ping()


async def all_tools(client: Any) -> list[Any]:
    tools: list[Any] = []
    cursor = None
    while True:
        page = await client.list_tools(cursor=cursor)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if not cursor:
            return tools
