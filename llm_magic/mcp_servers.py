"""MCP servers as tool sources, on the official `mcp` SDK (`pip install 'llm-magic[mcp]'`).

`llm_magic.mcp("python server.py")` or `llm_magic.mcp("https://host/mcp")` (mcp_registry) is an
`MCPServer`:
put it in `tools=[...]` next to plain functions, in the async and the sync API alike. Each run
asks it for its tools (`list_tools`), named `server_tool` and checked against the server's input
schema before a call; results map to `MCPResult` (see mcp_results).

Where the sessions live. The SDK's clients (`stdio_client`, `streamable_http_client`,
`ClientSession`) are anyio context managers: they must be entered and left in one task, and
that task must outlive every call. So each server's session is owned by one long-lived task
(`_own`), and every session of the process lives on one private loop in one daemon thread
(`llm_magic-mcp`); callers hand work to that loop (`run_coroutine_threadsafe`, the loop's own
thread-safe queue) and await the answer on their own loop. One thread rather than a task on
each caller's loop because:

* one session per server per kernel: the kernel's loop (`%%llm_chain`, `await chain()`) and
  the sync API's private loop share the session, hence one server process, not one per loop;
* closing works from anywhere: `%unload_ext`, `%llm_mcp remove` and `atexit` at kernel shutdown
  run when the caller's loop is busy or already stopped;
* the process is forked by a thread that lives as long as the process, which is what
  `PR_SET_PDEATHSIG` needs (below).

Cancellation: a cancelled caller (interrupt, Cancel, a tool timeout) cancels the call's task
on the host loop, which sends MCP's `notifications/cancelled` for the request; SDK 1.x does not
send it by itself.

No orphans: a stdio server is the SDK's child in its own session (the SDK's choice, so a kernel
interrupt misses it); it gets EOF on stdin when the kernel goes, the SDK terminates its process
group when the session closes, and on Linux the kernel SIGTERMs it if the kernel process dies
(a tiny exec wrapper sets `PR_SET_PDEATHSIG`, since the SDK takes no `preexec_fn`).

A server that dies (process exit, lost connection) fails the call in flight with its error
(stderr tail included) and is restarted on the next call, once: a second death in a row leaves
it failed until `restart()` (`%llm_mcp restart NAME`).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import os
import shlex
import sys
import tempfile
import threading
from collections.abc import Collection, Coroutine, Mapping, Sequence
from typing import Any, Literal, TypeVar

from .mcp_results import (
    MCPError,
    MCPResult,
    MCPToolError,
    argument_checker,
    to_result,
    wire_name,
)
from .tools import Tool

T = TypeVar("T")
State = Literal["not started", "starting", "ready", "crashed", "failed", "closed"]
PIP_COMMAND = "pip install 'llm-magic[mcp]'"
STDERR_TAIL_LINES = 15
PING_SECONDS = 2.0

__all__ = ["MCPError", "MCPResult", "MCPServer", "MCPToolError", "close_all"]

# -- the host loop --------------------------------------------------------------------------------

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


def _host() -> asyncio.AbstractEventLoop:
    global _loop
    with _lock:
        if _loop is None:
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, name="llm_magic-mcp", daemon=True).start()
            atexit.register(close_all)
        return _loop


async def _on_host(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` on the host loop and await it here; cancelling here cancels it there."""
    loop = _host()
    if asyncio.get_running_loop() is loop:
        return await coro
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))


def _on_host_sync(coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
    return asyncio.run_coroutine_threadsafe(coro, _host()).result(timeout)


# Runs in the child: ask Linux to SIGTERM it when its parent (the kernel) dies, then become the
# server. Resolved on PATH with the environment the SDK built.
_EXEC_WITH_PDEATHSIG = r"""
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


# -- servers --------------------------------------------------------------------------------------


class MCPServer:
    """One MCP server: its session starts on first use and is shared by every run."""

    def __init__(
        self,
        name: str,
        *,
        command: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        url: str | None = None,
        headers: Mapping[str, str] | None = None,
        approve: bool | Collection[str] = False,
        timeout: float | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        if (command is None) == (url is None):
            raise MCPError("an MCP server needs either a command (stdio) or a url (HTTP)")
        if command is not None and not list(command):
            raise MCPError(f"MCP server {name!r}: the command is empty")
        self.name = name
        self.command = list(command) if command is not None else None
        self.env = dict(env or {})
        self.cwd = cwd
        self.url = url
        self._headers = dict(headers or {})  # may hold a token: never shown
        self.approve = approve
        self.timeout = timeout
        self.startup_timeout = startup_timeout
        self.state: State = "not started"
        self.error: str | None = None  # the last error, as shown to the user
        self.restarts = 0
        self._deaths = 0  # in a row, without a successful call in between
        self._session: Any = None
        self._owner: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None
        self._start_lock: asyncio.Lock | None = None
        self._mcp_tools: list[Any] = []
        self._stderr: Any = None
        self._background: set[asyncio.Task[Any]] = set()
        self._gone = asyncio.Event()  # set when the current session ends; new one per session

    def __repr__(self) -> str:
        return f"<MCPServer {self.name!r} {self.transport} {self.where} {self.state}>"

    @property
    def transport(self) -> str:
        return "stdio" if self.command is not None else "http"

    @property
    def where(self) -> str:
        """The command line or URL (headers never shown, only their names)."""
        if self.command is not None:
            return shlex.join(self.command)
        names = f" (headers: {', '.join(self._headers)})" if self._headers else ""
        return f"{self.url}{names}"

    def same_as(self, other: MCPServer) -> bool:
        keys = ("command", "env", "cwd", "url", "_headers", "approve", "timeout")
        return all(getattr(self, k) == getattr(other, k) for k in keys)

    # -- the public API ------------------------------------------------------------------------

    async def list_tools(self) -> list[Tool]:
        """This server's tools as llm_magic tools (starts the server if needed)."""
        await _on_host(self._ensure())
        return self.tools()

    def tools(self) -> list[Tool]:
        """The tools of the running (or last) session; empty before the first start."""
        return [self._tool(t) for t in self._mcp_tools]

    async def call(self, tool: str, arguments: dict[str, Any]) -> MCPResult:
        """Call one of the server's tools by its own (unprefixed) name."""
        return await _on_host(self._call(tool, arguments))

    async def restart(self) -> None:
        """Close the session and forget past deaths; the next use starts it afresh."""
        await _on_host(self._close(final=False))

    async def aclose(self) -> None:
        await _on_host(self._close(final=True))

    def close(self, timeout: float = 15.0) -> None:
        """Stop the server (its process, or its HTTP session); safe from any thread but the host."""
        if self._owner is None and self.state != "closed":
            self.state = "closed"
            return
        _on_host_sync(self._close(final=True), timeout)

    # -- tools ---------------------------------------------------------------------------------

    def _tool(self, info: Any) -> Tool:
        server, tool_name = self, info.name

        async def call(**arguments: Any) -> MCPResult:
            return await server.call(tool_name, arguments)

        schema = dict(info.inputSchema or {"type": "object"})
        approve = self.approve
        needs = approve is True or (not isinstance(approve, bool) and tool_name in approve)
        return Tool.from_schema(
            wire_name(self.name, tool_name),
            info.description or info.title or "",
            schema,
            call,
            check=argument_checker(schema),
            server=self.name,
            requires_approval=needs,
            timeout=self.timeout,
        )

    # -- on the host loop ----------------------------------------------------------------------

    async def _call(self, tool: str, arguments: dict[str, Any]) -> MCPResult:
        from mcp.shared.exceptions import McpError
        from mcp.types import CONNECTION_CLOSED

        session = await self._ensure()
        request_id = getattr(session, "_request_id", None)  # the id call_tool sends next
        pinger = None if self.url is None else asyncio.ensure_future(_ping(session))
        try:
            raw = await self._unless_dead(session.call_tool(tool, arguments))
        except asyncio.CancelledError:
            self._notify_cancelled(session, request_id)
            raise
        except McpError as exc:
            if exc.error.code == CONNECTION_CLOSED:
                self._died(f"it exited or lost the connection during the call to {tool}")
                raise MCPError(self.error) from None
            raise MCPError(f"MCP server {self.name!r}, tool {tool}: {exc.error.message}") from None
        finally:
            if pinger is not None:
                pinger.cancel()
        self._deaths = 0
        return to_result(self.name, tool, raw)

    async def _unless_dead(self, call: Coroutine[Any, Any, T]) -> T:
        """Await `call`, or fail as soon as the session dies: the SDK does not always fail the
        requests in flight (an HTTP server gone mid-response leaves them waiting)."""
        task = asyncio.ensure_future(call)
        gone = asyncio.ensure_future(self._gone.wait())
        try:
            await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            task.cancel()
            raise
        finally:
            gone.cancel()
        if not task.done():  # the session died first
            task.cancel()
            raise MCPError(self.error or f"MCP server {self.name!r} stopped")
        return task.result()

    def _notify_cancelled(self, session: Any, request_id: Any) -> None:
        """Tell the server the call was abandoned (MCP `notifications/cancelled`)."""
        if not isinstance(request_id, int) or self._session is not session:
            return
        from mcp import types

        note = types.ClientNotification(
            types.CancelledNotification(
                params=types.CancelledNotificationParams(
                    requestId=request_id, reason="the client cancelled or timed out the call"
                )
            )
        )
        task = asyncio.get_running_loop().create_task(session.send_notification(note))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _ensure(self) -> Any:
        """The live session: started on first use, restarted once after a death."""
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            if self._session is not None and self.state == "ready":
                return self._session
            if self.state == "closed":
                raise MCPError(f"MCP server {self.name!r} was closed; add it again to use it")
            if self._deaths >= 2:
                self.state = "failed"
                raise MCPError(
                    f"{self.error} It died again after a restart, so it stays stopped: "
                    f"restart it with %llm_mcp restart {self.name} (or `await server.restart()`)."
                )
            if self._owner is not None:  # a dead session's task: let it reap the process
                await self._reap()
            if self._deaths:
                self.restarts += 1
            await self._start()
            return self._session

    async def _start(self) -> None:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        self.state = "starting"
        self._owner = loop.create_task(self._own(ready), name=f"llm_magic-mcp-{self.name}")
        _started.add(self)
        try:
            async with asyncio.timeout(self.startup_timeout):
                await asyncio.shield(ready)
        except TimeoutError:
            await self._reap()
            self._failed(f"it did not answer within {self.startup_timeout} s")
        except Exception as exc:
            await self._reap()
            self._failed(_describe(exc))

    def _failed(self, why: str) -> None:
        self._deaths += 1
        self.state = "failed" if self._deaths >= 2 else "crashed"
        self.error = (
            f"MCP server {self.name!r} ({self.where}) could not start: {why}.{self._tail()}"
        )
        raise MCPError(self.error)

    async def _own(self, ready: asyncio.Future[None]) -> None:
        """Own the transport and session for their whole life (see the module docstring)."""
        from mcp import ClientSession

        self._stop = stop = asyncio.Event()
        self._gone = gone = asyncio.Event()
        try:
            async with contextlib.AsyncExitStack() as stack:
                read, write = await self._open(stack)
                read = await self._watch(stack, read)
                session = await stack.enter_async_context(ClientSession(read, write))
                await session.initialize()
                self._mcp_tools = await _all_tools(session)
                self._session, self.state = session, "ready"
                ready.set_result(None)
                await stop.wait()
        except asyncio.CancelledError:
            if not ready.done():
                ready.cancel()
            raise
        except Exception as exc:
            if not ready.done():
                ready.set_exception(exc)
            else:
                self._died(_describe(exc))
        finally:
            self._session = None
            gone.set()

    async def _open(self, stack: contextlib.AsyncExitStack) -> tuple[Any, Any]:
        if self.command is not None:
            from mcp import StdioServerParameters
            from mcp.client.stdio import stdio_client

            command, args = self.command[0], self.command[1:]
            if sys.platform.startswith("linux"):
                args = ["-c", _EXEC_WITH_PDEATHSIG, str(os.getpid()), command, *args]
                command = sys.executable
            params = StdioServerParameters(command=command, args=args, env=self.env, cwd=self.cwd)
            if self._stderr is not None:
                self._stderr.close()
            self._stderr = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")
            read, write = await stack.enter_async_context(stdio_client(params, self._stderr))
            return read, write
        import httpx
        from mcp.client.streamable_http import streamable_http_client

        client = httpx.AsyncClient(headers=self._headers, timeout=httpx.Timeout(30.0, read=300.0))
        await stack.enter_async_context(client)
        assert self.url is not None
        read, write, _ = await stack.enter_async_context(
            streamable_http_client(self.url, http_client=client)
        )
        return read, write

    async def _watch(self, stack: contextlib.AsyncExitStack, read: Any) -> Any:
        """Pass messages on to the session, and notice the end of the server (EOF, a failed
        HTTP request): the session then fails the calls in flight ("Connection closed")."""
        import anyio

        send, receive = anyio.create_memory_object_stream[Any](0)
        group = await stack.enter_async_context(anyio.create_task_group())
        stack.callback(group.cancel_scope.cancel)  # left before the transport closes `read`

        async def pump() -> None:
            lost = "it exited" if self.command is not None else "the connection closed"
            async with send:
                async for item in read:
                    if isinstance(item, Exception) and self.url is not None:
                        lost = f"the connection failed ({_describe(item)})"
                        break
                    await send.send(item)
            self._died(lost)

        group.start_soon(pump)
        return receive

    def _died(self, why: str) -> None:
        """The session ended without being asked to: record why."""
        if self.state != "ready":
            return
        self._deaths += 1
        self.state = "crashed"
        again = "\nIt restarts on the next call." if self._deaths < 2 else ""
        self.error = f"MCP server {self.name!r} stopped: {why}.{self._tail()}".strip() + again
        self._gone.set()
        # The owner task stays until the next use or close reaps it: stopping it now would cancel
        # the session before it fails the calls in flight (they would wait forever).

    def _tail(self) -> str:
        if self._stderr is None:
            return ""
        with contextlib.suppress(Exception):
            self._stderr.flush()
            self._stderr.seek(0)
            lines = self._stderr.read().strip().splitlines()[-STDERR_TAIL_LINES:]
            if lines:
                return "\nIts stderr ends with:\n" + "\n".join(lines) + "\n"
        return ""

    async def _reap(self) -> None:
        owner, self._owner = self._owner, None
        if owner is None:
            return
        if self._stop is not None:
            self._stop.set()
        _, pending = await asyncio.wait([owner], timeout=10)
        if pending:  # the transport did not close in time: cancel it (the SDK kills the group)
            owner.cancel()
            await asyncio.wait([owner], timeout=5)

    async def _close(self, final: bool) -> None:
        if final:
            self.state = "closed"  # first: the end of the session is no death
        await self._reap()
        self._session = None
        if not final:
            self.state, self._deaths, self.error = "not started", 0, None


async def _ping(session: Any) -> None:
    """Ping while an HTTP call is in flight: the SDK leaves a call waiting forever when the
    server goes away mid-response; a failed ping ends the connection, which fails the call.
    (MCP spec, basic/utilities/ping: "periodically issue pings to detect connection health".)"""
    with contextlib.suppress(Exception):
        while True:
            await asyncio.sleep(PING_SECONDS)
            await session.send_ping()


async def _all_tools(session: Any) -> list[Any]:
    tools: list[Any] = []
    cursor = None
    while True:
        page = await session.list_tools(cursor=cursor) if cursor else await session.list_tools()
        tools.extend(page.tools)
        cursor = page.nextCursor
        if not cursor:
            return tools


def _describe(exc: BaseException) -> str:
    """The first real error inside anyio's exception groups, in one line."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    from mcp.shared.exceptions import McpError

    if isinstance(exc, McpError):
        return exc.error.message
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


_started: set[MCPServer] = set()  # servers with a session task, for `close_all`


def close_all(timeout: float = 15.0, final: bool = True) -> None:
    """Stop every server of this process: for good (kernel shutdown), or until their next use
    (`final=False`: `%unload_ext`, whose reload may use them again)."""
    live = [s for s in _started if s._owner is not None]
    if not live or _loop is None or not _loop.is_running():
        return

    async def close() -> None:
        await asyncio.gather(*(s._close(final) for s in live), return_exceptions=True)

    with contextlib.suppress(concurrent.futures.TimeoutError, RuntimeError):
        _on_host_sync(close(), timeout)
