"""MCP servers as tool sources, on the official `mcp` SDK 2.x (`pip install 'llm-magic[mcp]'`).

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

The SDK is mcp 2.x (`mcp.Client`, `mode="auto"`): it asks a server `server/discover` (the
2026-07-28 protocol) and falls back to the `initialize` handshake for older servers, so both
kinds work. Another installed mcp is refused in one line (`require_sdk`), never a raw ImportError.

Cancellation: a cancelled caller (interrupt, Cancel, a tool timeout) cancels the call's task
on the host loop; the SDK then sends MCP's `notifications/cancelled` for the request.

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
import collections
import concurrent.futures
import contextlib
import inspect
import itertools
import logging
import os
import shlex
import sys
import tempfile
import threading
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Coroutine,
    Mapping,
    Sequence,
)
from typing import Any, Literal, TypeVar
from urllib.parse import urlparse

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
SDK_RANGE = ((2, 3), (3, 0))  # mcp>=2.3,<3: the SDK whose Client speaks both protocol kinds
PIP_COMMAND = "pip install 'mcp>=2.3,<3'"
STDERR_TAIL_LINES = 15
PING_SECONDS = 2.0

__all__ = ["MCPError", "MCPResult", "MCPServer", "MCPToolError", "close_all"]

# -- the host loop --------------------------------------------------------------------------------

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


class _QuietSDK(logging.Filter):
    """The SDK logs a full traceback for each stdout line of a server that is not JSON-RPC
    (mcp/client/stdio.py, `_parse_line`): 12 kB in a cell for one chatty call. Those records
    are kept here instead (`sdk_log`, the last 200), and each server counts its lines (`noise`,
    one line in `%llm_mcp`); LLM_MAGIC_MCP_DEBUG=1 lets them through."""

    def filter(self, record: logging.LogRecord) -> bool:
        if os.environ.get("LLM_MAGIC_MCP_DEBUG"):
            return True
        sdk_log.append(record)
        return False


sdk_log: collections.deque[logging.LogRecord] = collections.deque(maxlen=200)


def _host() -> asyncio.AbstractEventLoop:
    global _loop
    with _lock:
        if _loop is None:
            logging.getLogger("mcp.client.stdio").addFilter(_QuietSDK())
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

# What a server asks the user during a call (MCP elicitation; on 2026-07-28 an
# `InputRequiredResult` the SDK answers by retrying): (server, message, schema) -> the answer's
# fields, or None to decline. The default declines, so a call never waits on nobody.
AskUser = Callable[[str, str, dict[str, Any]], "Awaitable[dict[str, Any] | None] | None"]


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
        tools: Collection[str] | None = None,
        optional: bool = False,
        ask: AskUser | None = None,
    ) -> None:
        if (command is None) == (url is None):
            raise MCPError("an MCP server needs either a command (stdio) or a url (HTTP)")
        if command is not None and not list(command):
            raise MCPError(f"MCP server {name!r}: the command is empty")
        self.name = name
        self.command = list(command) if command is not None else None
        self._env = dict(env or {})  # may hold a token: never shown, only its names
        self.cwd = cwd
        self._url = url  # may hold `?api_key=...`: shown through `where` only, redacted
        self._headers = dict(headers or {})  # may hold a token: never shown
        self.approve = approve
        self.timeout = timeout
        self.startup_timeout = startup_timeout
        self.only = sorted(tools) if tools is not None else None  # a subset of its tools
        self.optional = optional  # a run goes on without it when it cannot start
        self.ask = ask
        self.asked: list[str] = []  # what it asked the user during calls (shown, never answers)
        self._declined: list[tuple[str, str]] = []  # (tool, question) declined for lack of `ask`
        self._calling = ""  # the tool of the latest call (what a question is about)
        self.noise = 0  # lines on stdout that were not JSON-RPC (ignored)
        self.protocol: str | None = None  # the protocol version it speaks, once started
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
    def env(self) -> dict[str, str]:
        """The environment given to a stdio server (a copy: values may be secrets)."""
        return dict(self._env)

    @property
    def url(self) -> str | None:
        return self._url

    @property
    def transport(self) -> str:
        return "stdio" if self.command is not None else "http"

    @property
    def where(self) -> str:
        """The command line or URL, for people: no header, environment or query value shown."""
        from .mcp_config import redact_url

        if self.command is not None:
            names = f" (env: {', '.join(self._env)})" if self._env else ""
            return shlex.join(self.command) + names
        names = f" (headers: {', '.join(self._headers)})" if self._headers else ""
        return f"{redact_url(self._url or '')}{names}"

    def same_as(self, other: MCPServer) -> bool:
        keys = ("command", "_env", "cwd", "_url", "_headers", "approve", "timeout", "only")
        return all(getattr(self, k) == getattr(other, k) for k in keys)

    # -- the public API ------------------------------------------------------------------------

    async def list_tools(self) -> list[Tool]:
        """This server's tools as llm_magic tools (starts the server if needed)."""
        await _on_host(self._ensure())
        self._check_names(self.only)
        return self.tools()

    def subset(self, names: Collection[str]) -> ServerTools:
        """Some of this server's tools, as a tool source (`tools=["server:tool"]`)."""
        return ServerTools(self, names)

    def tools(self, names: Collection[str] | None = None) -> list[Tool]:
        """The tools of the running (or last) session; empty before the first start. Only
        those of `names` (and of `only`), when given.

        Names are `server_tool`, made distinct when two of its tools map to one wire name
        (`files/read.v2` and `files_read_v2`): the second gets a short hash of its own name.
        """
        chosen = [
            t
            for t in self._mcp_tools
            if (self.only is None or t.name in self.only) and (names is None or t.name in names)
        ]
        taken: set[str] = set()
        out = []
        for info in chosen:
            name = wire_name(self.name, info.name)
            if name in taken:
                name = wire_name(self.name, info.name, distinct=True)
            taken.add(name)
            out.append(self._tool(info, name))
        return out

    def _check_names(self, names: Collection[str] | None) -> None:
        """A tool name this server does not have is a typo to report, not a silent omission."""
        have = {t.name for t in self._mcp_tools}
        missing = sorted(set(names or ()) - have)
        if missing:
            raise MCPError(
                f"MCP server {self.name!r} has no tool {', '.join(map(repr, missing))}; "
                f"its tools: {', '.join(sorted(have)) or 'none'}"
            )

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

    def _tool(self, info: Any, name: str) -> Tool:
        server, tool_name = self, info.name

        async def call(**arguments: Any) -> MCPResult:
            return await server.call(tool_name, arguments)

        schema = dict(info.input_schema or {"type": "object"})
        approve = self.approve
        needs = approve is True or (not isinstance(approve, bool) and tool_name in approve)
        return Tool.from_schema(
            name,
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
        from mcp import InputRequiredRoundsExceededError
        from mcp import MCPError as SDKError
        from mcp.types import CONNECTION_CLOSED

        client = await self._ensure()
        self._calling = tool
        pinger = None if self._url is None else asyncio.ensure_future(_ping(client))
        try:
            raw = await self._unless_dead(client.call_tool(tool, arguments))
        except SDKError as exc:
            if exc.code == CONNECTION_CLOSED:
                self._died(f"it exited or lost the connection during the call to {tool}")
                raise MCPError(self.error) from None
            raise MCPError(
                self._scrub(f"MCP server {self.name!r}, tool {tool}: {exc.message}")
            ) from None
        except InputRequiredRoundsExceededError:
            raise MCPError(
                f"MCP server {self.name!r}, tool {tool}: it kept asking for input; "
                f"it asked: {'; '.join(self.asked[-3:])}"
            ) from None
        finally:
            if pinger is not None:
                pinger.cancel()
        self._deaths = 0
        try:
            return to_result(self.name, tool, raw)
        except MCPToolError as exc:
            if self._declined and self._declined[-1][0] == tool:
                question = self._declined.pop()[1]
                note = (
                    f" (it asked the user {question!r}; declined: nobody to answer here; "
                    "give the server ask= to answer such questions)"
                )
                raise MCPToolError(str(exc) + note, exc.result) from None
            raise

    async def _unless_dead(self, call: Coroutine[Any, Any, T]) -> T:
        """Await `call`, or fail as soon as the session dies: the SDK does not always fail the
        requests in flight (an HTTP server gone mid-response leaves them waiting)."""
        task = asyncio.ensure_future(call)
        gone = asyncio.ensure_future(self._gone.wait())
        try:
            await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            task.cancel()  # the SDK sends notifications/cancelled for it
            raise
        finally:
            gone.cancel()
        if not task.done():  # the session died first
            task.cancel()
            raise MCPError(self.error or f"MCP server {self.name!r} stopped")
        return task.result()

    async def _ensure(self) -> Any:
        """The live session: started on first use, restarted once after a death."""
        require_sdk()
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
        """Start the session within `startup_timeout`: the timeout is the whole wait (a stuck
        start is cancelled at once, not given the grace a running session gets to close)."""
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        self.state = "starting"
        self._owner = loop.create_task(self._own(ready), name=f"llm_magic-mcp-{self.name}")
        _started.add(self)
        try:
            async with asyncio.timeout(self.startup_timeout):
                await asyncio.shield(ready)
        except TimeoutError:
            await self._reap(grace=0)
            self._failed(f"it did not answer within {self.startup_timeout:g} s")
        except asyncio.CancelledError:  # the caller gave up: no half-started server is left
            await asyncio.shield(self._reap(grace=0))
            self.state = "not started"
            raise
        except Exception as exc:
            await self._reap(grace=0)
            self._failed(self._explain(exc))

    def _explain(self, exc: BaseException) -> str:
        """Why a start failed, with what to try for the usual HTTP mistakes."""
        why = _describe(exc)
        if self._url is None:
            return why
        sse_path = urlparse(self._url).path.rstrip("/").endswith("/sse")
        if sse_path or "405" in why or "Method Not Allowed" in why:
            return (
                f"{why}; is it an old HTTP+SSE endpoint? llm_magic speaks streamable HTTP, "
                "which servers usually serve at .../mcp, not .../sse"
            )
        if "404" in why or "Session terminated" in why or "Not Found" in why:
            return f"{why}; nothing serves MCP at that path: check the URL (often .../mcp)"
        return why

    def _failed(self, why: str) -> None:
        self._deaths += 1
        self.state = "failed" if self._deaths >= 2 else "crashed"
        self.error = self._scrub(
            f"MCP server {self.name!r} ({self.where}) could not start: {why}.{self._tail()}"
        )
        raise MCPError(self.error)

    def _scrub(self, text: str) -> str:
        """`text` without any value of its headers, environment or URL query (errors quote
        URLs and servers echo their environment on stderr)."""
        from .mcp_config import scrub, url_secrets

        tokens = [v for v in self._env.values() if len(v) >= 8]  # not `1` or `UTC`
        secrets = [*self._headers.values(), *tokens, *url_secrets(self._url or "")]
        for value in self._headers.values():  # `Bearer TOKEN`: the token alone too
            secrets.extend(value.split()[1:])
        return scrub(text, secrets)

    async def _own(self, ready: asyncio.Future[None]) -> None:
        """Own the transport and session for their whole life (see the module docstring)."""
        from mcp import Client

        self._stop = stop = asyncio.Event()
        self._gone = gone = asyncio.Event()
        try:
            client = Client(
                self._transport(),
                mode="auto",
                cache=None,  # every run lists the tools it offers afresh
                message_handler=self._on_message,
                elicitation_callback=self._on_elicit,
            )
            async with client:
                self.protocol = client.protocol_version
                self._mcp_tools = await _all_tools(client)
                self._session, self.state = client, "ready"
                ready.set_result(None)
                await self._listen(client, stop)
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

    async def _listen(self, client: Any, stop: asyncio.Event) -> None:
        """Wait for the end of the session; on 2026-07-28 servers that announce tool changes,
        follow them meanwhile (`subscriptions/listen`: their only channel for
        `tools/list_changed`)."""
        caps = getattr(client.server_capabilities, "tools", None)
        modern = getattr(client.session, "discover_result", None) is not None
        if not (modern and caps is not None and getattr(caps, "list_changed", False)):
            await stop.wait()
            return
        follow = asyncio.ensure_future(self._follow(client))
        try:
            await stop.wait()
        finally:
            follow.cancel()
            await asyncio.gather(follow, return_exceptions=True)

    async def _follow(self, client: Any) -> None:
        with contextlib.suppress(Exception):
            async with client.listen(tools_list_changed=True) as subscription:
                async for _event in subscription:
                    await self._refresh(client)

    async def _refresh(self, client: Any) -> None:
        """The server's tools changed: list them again (the next run offers the new list)."""
        with contextlib.suppress(Exception):
            self._mcp_tools = await _all_tools(client)

    async def _on_message(self, message: Any) -> None:
        """Server notifications: `tools/list_changed` (legacy servers send it on their own)."""
        if getattr(message, "method", None) == "notifications/tools/list_changed":
            client = self._session
            if client is not None:
                task = asyncio.get_running_loop().create_task(self._refresh(client))
                self._background.add(task)
                task.add_done_callback(self._background.discard)

    async def _on_elicit(self, context: Any, params: Any) -> Any:
        """The server asks the user something mid-call: recorded in `asked`, answered by `ask`
        (a notebook prompt or a function), declined when nobody can answer."""
        from mcp.types import ElicitResult

        message = str(getattr(params, "message", "") or "")
        schema = dict(getattr(params, "requested_schema", None) or {})
        self.asked.append(message)
        answer: Any = None
        if self.ask is not None:
            answer = self.ask(self.name, message, schema)
            if inspect.isawaitable(answer):
                answer = await answer
        if answer is None:
            self._declined = [*self._declined[-9:], (self._calling, message)]
            return ElicitResult(action="decline")
        return ElicitResult(action="accept", content=dict(answer))

    @contextlib.asynccontextmanager
    async def _transport(self) -> AsyncIterator[tuple[Any, Any]]:
        """The SDK's transport with a watch on the server's end (see `_watch`)."""
        async with contextlib.AsyncExitStack() as stack:
            read, write = await self._open(stack)
            yield await self._watch(stack, read), write

    async def _open(self, stack: contextlib.AsyncExitStack) -> tuple[Any, Any]:
        if self.command is not None:
            from mcp import StdioServerParameters
            from mcp.client.stdio import stdio_client

            command, args = self.command[0], self.command[1:]
            if sys.platform.startswith("linux"):
                args = ["-c", _EXEC_WITH_PDEATHSIG, str(os.getpid()), command, *args]
                command = sys.executable
            params = StdioServerParameters(
                command=command,
                args=args,
                env=self._env,
                cwd=self.cwd,
                encoding_error_handler="replace",
            )
            if self._stderr is not None:
                self._stderr.close()
            self._stderr = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")
            read, write = await stack.enter_async_context(stdio_client(params, self._stderr))
            return read, write
        import httpx2
        from mcp.client.streamable_http import streamable_http_client

        client = httpx2.AsyncClient(headers=self._headers, timeout=httpx2.Timeout(30.0, read=300.0))
        await stack.enter_async_context(client)
        assert self._url is not None
        read, write = await stack.enter_async_context(
            streamable_http_client(self._url, http_client=client)
        )
        return read, write

    async def _watch(self, stack: contextlib.AsyncExitStack, read: Any) -> Any:
        """Pass messages on to the session, and notice the end of the server (EOF, a failed
        HTTP request): the session then fails the calls in flight ("Connection closed").
        A stdio line that is not JSON-RPC is counted (`noise`), not passed on."""
        import anyio

        send, receive = anyio.create_memory_object_stream[Any](0)
        group = await stack.enter_async_context(anyio.create_task_group())
        stack.callback(group.cancel_scope.cancel)  # left before the transport closes `read`

        async def pump() -> None:
            lost = "it exited" if self.command is not None else "the connection closed"
            async with send:
                async for item in read:
                    if isinstance(item, Exception) and self._url is not None:
                        lost = f"the connection failed ({_describe(item)})"
                        break
                    if isinstance(item, Exception):
                        self.noise += 1
                        continue
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
        error = f"MCP server {self.name!r} stopped: {why}.{self._tail()}".strip() + again
        self.error = self._scrub(error)
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

    async def _reap(self, grace: float = 10.0) -> None:
        """End the owner task: asked to stop, then cancelled after `grace` seconds (the SDK
        then kills the server's process group)."""
        owner, self._owner = self._owner, None
        if owner is None:
            return
        if self._stop is not None:
            self._stop.set()
        _, pending = await asyncio.wait([owner], timeout=grace) if grace else (set(), {owner})
        if pending:
            owner.cancel()
            await asyncio.wait([owner], timeout=5)

    async def _close(self, final: bool) -> None:
        if final:
            self.state = "closed"  # first: the end of the session is no death
        await self._reap()
        self._session = None
        if final and self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        if not final:
            self.state, self._deaths, self.error = "not started", 0, None


class ServerTools:
    """Some of one server's tools (`"server:tool"` in `tools=[...]` or `--tools`): a tool
    source of its own, sharing the server's session."""

    def __init__(self, server: MCPServer, names: Collection[str]) -> None:
        self.server, self.names = server, sorted(set(names))

    def __repr__(self) -> str:
        return f"<MCP tools {', '.join(self.names)} of {self.server.name!r}>"

    @property
    def name(self) -> str:
        return self.server.name

    @property
    def state(self) -> State:
        return self.server.state

    @property
    def optional(self) -> bool:
        return self.server.optional

    async def list_tools(self) -> list[Tool]:
        await self.server.list_tools()
        self.server._check_names(self.names)
        return self.server.tools(self.names)


async def _ping(client: Any) -> None:
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


async def _all_tools(client: Any) -> list[Any]:
    tools: list[Any] = []
    cursor = None
    while True:
        page = await client.list_tools(cursor=cursor)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if not cursor:
            return tools


def _describe(exc: BaseException) -> str:
    """The first real error inside anyio's exception groups, in one line."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    from mcp import MCPError as SDKError

    if isinstance(exc, SDKError):
        return exc.message
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def sdk_version() -> str | None:
    """The installed `mcp` distribution's version, or None when it is not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mcp")
    except PackageNotFoundError:
        return None


def require_sdk() -> None:
    """One clear line when the SDK is missing or outside the supported range (a server
    package installed next to llm_magic may have up- or downgraded it)."""
    installed = sdk_version()
    if installed is None:
        raise MCPError(f"MCP servers need the official SDK: {PIP_COMMAND}")
    parts = []
    for piece in installed.split(".")[:2]:
        digits = "".join(itertools.takewhile(str.isdigit, piece))
        parts.append(int(digits or 0))
    low, high = SDK_RANGE
    if not low <= tuple(parts) < high:
        raise MCPError(
            f"llm_magic's MCP support needs mcp>=2.3,<3; mcp {installed} is installed: "
            f"{PIP_COMMAND} (run servers that need another mcp in their own environment: "
            "uvx, pipx or npx)"
        )


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
