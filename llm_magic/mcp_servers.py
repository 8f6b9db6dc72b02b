"""MCP servers as tool sources, on the official `mcp` SDK 2.x (`pip install 'llm-magic[mcp]'`).

`llm_magic.mcp("python server.py")` or `llm_magic.mcp("https://host/mcp")` (mcp_registry) is an
`MCPServer`:
put it in `tools=[...]` next to plain functions, in the async and the sync API alike. Each run
asks it for its tools (`list_tools`), named `server_tool` and checked against the server's input
schema before a call; results map to `MCPResult` (see mcp_results).

Where the sessions live: one host loop for the process (mcp_host); the transport and the
watch on a server's end: mcp_transport.

The SDK is mcp 2.x (`mcp.Client`, `mode="auto"`): it asks a server `server/discover` (the
2026-07-28 protocol) and falls back to the `initialize` handshake for older servers, so both
kinds work. Another installed mcp is refused in one line (`require_sdk`), never a raw ImportError.

Cancellation: a cancelled caller (interrupt, Cancel, a tool timeout) cancels the call's task
on the host loop; the SDK then sends MCP's `notifications/cancelled` for the request.

A server that dies (process exit, lost connection) fails the call in flight with its error
(stderr tail included) and is restarted on the next call, once: a second death in a row leaves
it failed until `restart()` (`%llm_mcp restart NAME`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
import shlex
from collections.abc import (
    Awaitable,
    Callable,
    Collection,
    Coroutine,
    Mapping,
    Sequence,
)
from typing import Any, Literal, TypeVar

from ._tool_names import wire_names
from .mcp_host import at_exit, describe, host_running, on_host, on_host_sync, require_sdk
from .mcp_results import (
    MCPError,
    MCPResult,
    MCPToolError,
    argument_checker,
    to_result,
)
from .mcp_transport import all_tools, explain, open_transport, ping
from .tools import Tool

T = TypeVar("T")
State = Literal["not started", "starting", "ready", "crashed", "failed", "closed"]
STDERR_TAIL_LINES = 15

__all__ = ["MCPError", "MCPResult", "MCPServer", "MCPToolError", "close_all"]

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
        self.stderr: Any = None  # a stdio server's stderr (a temporary file): its tail in errors
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
        await on_host(self._ensure())
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
            for t in self._mcp_tools
            if (self.only is None or t.name in self.only) and (names is None or t.name in names)
        ]
        wire = wire_names(f"{self.name}_{info.name}" for info in chosen)
        return [self._tool(info, wire[f"{self.name}_{info.name}"]) for info in chosen]

    def check_names(self, names: Collection[str] | None) -> None:
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
        return await on_host(self._call(tool, arguments))

    async def restart(self) -> None:
        """Close the session and forget past deaths; the next use starts it afresh."""
        await on_host(self._close(final=False))

    async def aclose(self) -> None:
        await on_host(self._close(final=True))

    def close(self, timeout: float = 15.0) -> None:
        """Stop the server (its process, or its HTTP session); safe from any thread but the host."""
        if self._owner is None and self.state != "closed":
            self.state = "closed"
            return
        on_host_sync(self._close(final=True), timeout)

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
        pinger = None if self._url is None else asyncio.ensure_future(ping(client))
        try:
            raw = await self._unless_dead(client.call_tool(tool, arguments))
        except SDKError as exc:
            if exc.code == CONNECTION_CLOSED:
                self.lost(f"it exited or lost the connection during the call to {tool}")
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
            self._failed(explain(self._url, exc))

    def _failed(self, why: str) -> None:
        self._deaths += 1
        self.state = "failed" if self._deaths >= 2 else "crashed"
        self.error = self._scrub(
            f"MCP server {self.name!r} ({self.where}) could not start: {why}.{self._tail()}"
        )
        raise MCPError(self.error)

    def secrets(self) -> list[str]:
        """The values of its headers, environment and URL query that may be secrets: what
        errors and the run log must never show."""
        from .mcp_config import url_secrets

        tokens = [v for v in self._env.values() if len(v) >= 8]  # not `1` or `UTC`
        secrets = [*self._headers.values(), *tokens, *url_secrets(self._url or "")]
        for value in self._headers.values():  # `Bearer TOKEN`: the token alone too
            secrets.extend(value.split()[1:])
        return secrets

    def _scrub(self, text: str) -> str:
        """`text` without any of its `secrets()` (errors quote URLs and servers echo their
        environment on stderr)."""
        from .mcp_config import scrub

        return scrub(text, self.secrets())

    async def _own(self, ready: asyncio.Future[None]) -> None:
        """Own the transport and session for their whole life (see the module docstring)."""
        from mcp import Client

        self._stop = stop = asyncio.Event()
        self._gone = gone = asyncio.Event()
        try:
            client = Client(
                open_transport(self),
                mode="auto",
                cache=None,  # every run lists the tools it offers afresh
                message_handler=self._on_message,
                elicitation_callback=self._on_elicit,
            )
            async with client:
                self.protocol = client.protocol_version
                self._mcp_tools = await all_tools(client)
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
                self.lost(describe(exc))
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
            self._mcp_tools = await all_tools(client)

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

    def lost(self, why: str) -> None:
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
        if self.stderr is None:
            return ""
        with contextlib.suppress(Exception):
            self.stderr.flush()
            self.stderr.seek(0)
            lines = self.stderr.read().strip().splitlines()[-STDERR_TAIL_LINES:]
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
        if final and self.stderr is not None:
            self.stderr.close()
            self.stderr = None
        if not final:
            self.state, self._deaths, self.error = "not started", 0, None


_started: set[MCPServer] = set()  # servers with a session task, for `close_all`


def close_all(timeout: float = 15.0, final: bool = True) -> None:
    """Stop every server of this process: for good (kernel shutdown), or until their next use
    (`final=False`: `%unload_ext`, whose reload may use them again)."""
    live = [s for s in _started if s._owner is not None]
    if not live or not host_running():
        return

    async def close() -> None:
        await asyncio.gather(*(s._close(final) for s in live), return_exceptions=True)

    with contextlib.suppress(concurrent.futures.TimeoutError, RuntimeError):
        on_host_sync(close(), timeout)


at_exit.append(close_all)
