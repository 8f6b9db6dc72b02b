"""One MCP server's session on the host loop: started on first use, watched, restarted, closed.

The SDK's client is an anyio context manager that must be entered and left in one task, so one
long-lived task (`_own`) holds it for the session's whole life (mcp_host says why all sessions
share one loop). The start is bounded by the server's `startup_timeout` as a whole: a stuck
start is cancelled at once, not given the grace a running session gets to close.

A server that dies (process exit, lost connection) fails the call in flight with its error
(stderr tail included) and is restarted on the next call, once: a second death in a row leaves
it failed until `restart()` (`%llm_mcp restart NAME`).

The SDK is mcp 2.x (`mcp.Client`, `mode="auto"`): it asks a server `server/discover` (the
2026-07-28 protocol) and falls back to the `initialize` handshake for older servers, so both
kinds work; a 2026-07-28 server that announces tool changes is followed while the session
lasts, so the next run offers its new tools.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
from collections.abc import Coroutine
from typing import Any, Literal, TypeVar

from . import _runtime
from .mcp_host import describe, host_running, on_host_sync, require_sdk
from .mcp_results import MCPError
from .mcp_settings import MCPServerSettings
from .mcp_transport import all_tools, explain, open_transport

T = TypeVar("T")
State = Literal["not started", "starting", "ready", "crashed", "failed", "closed"]
STDERR_TAIL_LINES = 15


class MCPSession:
    """The live session of one server: its state, its tools as listed, its deaths."""

    def __init__(self, settings: MCPServerSettings) -> None:
        self.settings = settings
        self.asked: list[str] = []  # what it asked the user during calls (shown, never answers)
        self.calling = ""  # the tool of the latest call (what a question is about)
        self._declined: list[tuple[str, str]] = []  # (tool, question) declined for lack of `ask`
        self.noise = 0  # lines on stdout that were not JSON-RPC (ignored)
        self.protocol: str | None = None  # the protocol version it speaks, once started
        self.state: State = "not started"
        self.error: str | None = None  # the last error, as shown to the user
        self.restarts = 0
        self.listed: list[Any] = []  # the SDK's tool descriptions, as last listed
        self.stderr: Any = None  # a stdio server's stderr (a temporary file): its tail in errors
        self._deaths = 0  # in a row, without a successful call in between
        self._client: Any = None
        self._owner: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None
        self._start_lock: asyncio.Lock | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._gone = asyncio.Event()  # set when the current session ends; new one per session

    @property
    def started(self) -> bool:
        """Whether a session task exists (running, or dead and not yet reaped)."""
        return self._owner is not None

    def answered(self) -> None:
        """A call succeeded: the deaths before it no longer count towards giving up."""
        self._deaths = 0

    async def ensure(self) -> Any:
        """The live client: started on first use, restarted once after a death."""
        require_sdk()
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        name = self.settings.name
        async with self._start_lock:
            if self._client is not None and self.state == "ready":
                return self._client
            if self.state == "closed":
                raise MCPError(f"MCP server {name!r} was closed; add it again to use it")
            if self._deaths >= 2:
                self.state = "failed"
                raise MCPError(
                    f"{self.error} It died again after a restart, so it stays stopped: "
                    f"restart it with %llm_mcp restart {name} (or `await server.restart()`)."
                )
            if self._owner is not None:  # a dead session's task: let it reap the process
                await self._reap()
            if self._deaths:
                self.restarts += 1
            await self._start()
            return self._client

    async def unless_dead(self, call: Coroutine[Any, Any, T]) -> T:
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
            raise MCPError(self.error or f"MCP server {self.settings.name!r} stopped")
        return task.result()

    async def _start(self) -> None:
        """Start the session within `startup_timeout` (the module docstring)."""
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        self.state = "starting"
        name = f"llm_magic-mcp-{self.settings.name}"
        self._owner = loop.create_task(self._own(ready), name=name)
        started_sessions().add(self)
        _runtime.at_exit(close_all)
        timeout = self.settings.startup_timeout
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(ready)
        except TimeoutError:
            await self._reap(grace=0)
            self._failed(f"it did not answer within {timeout:g} s")
        except asyncio.CancelledError:  # the caller gave up: no half-started server is left
            await asyncio.shield(self._reap(grace=0))
            self.state = "not started"
            raise
        except Exception as exc:
            await self._reap(grace=0)
            self._failed(explain(self.settings.url, exc))

    def _failed(self, why: str) -> None:
        self._deaths += 1
        self.state = "failed" if self._deaths >= 2 else "crashed"
        settings = self.settings
        self.error = settings.scrub(
            f"MCP server {settings.name!r} ({settings.where}) could not start: {why}.{self._tail()}"
        )
        raise MCPError(self.error)

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
                self.listed = await all_tools(client)
                self._client, self.state = client, "ready"
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
            self._client = None
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
            self.listed = await all_tools(client)

    async def _on_message(self, message: Any) -> None:
        """Server notifications: `tools/list_changed` (legacy servers send it on their own)."""
        if getattr(message, "method", None) == "notifications/tools/list_changed":
            client = self._client
            if client is not None:
                task = asyncio.get_running_loop().create_task(self._refresh(client))
                self._background.add(task)
                task.add_done_callback(self._background.discard)

    async def _on_elicit(self, context: Any, params: Any) -> Any:
        """The server asks the user something mid-call: recorded in `asked`, answered by the
        settings' `ask` (a notebook prompt or a function), declined when nobody can answer."""
        from mcp.types import ElicitResult

        message = str(getattr(params, "message", "") or "")
        schema = dict(getattr(params, "requested_schema", None) or {})
        self.asked.append(message)
        ask = self.settings.ask
        answer: Any = None
        if ask is not None:
            answer = ask(self.settings.name, message, schema)
            if inspect.isawaitable(answer):
                answer = await answer
        if answer is None:
            self._declined = [*self._declined[-9:], (self.calling, message)]
            return ElicitResult(action="decline")
        return ElicitResult(action="accept", content=dict(answer))

    def declined(self, tool: str) -> str | None:
        """The question `tool`'s latest call asked and nobody answered, once."""
        if self._declined and self._declined[-1][0] == tool:
            return self._declined.pop()[1]
        return None

    def lost(self, why: str) -> None:
        """The session ended without being asked to: record why."""
        if self.state != "ready":
            return
        self._deaths += 1
        self.state = "crashed"
        again = "\nIt restarts on the next call." if self._deaths < 2 else ""
        error = f"MCP server {self.settings.name!r} stopped: {why}.{self._tail()}".strip() + again
        self.error = self.settings.scrub(error)
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

    async def close(self, final: bool) -> None:
        """End the session: for good (`final`), or until the next use, its deaths forgotten."""
        if final:
            self.state = "closed"  # first: the end of the session is no death
        await self._reap()
        self._client = None
        if final and self.stderr is not None:
            self.stderr.close()
            self.stderr = None
        if not final:
            self.state, self._deaths, self.error = "not started", 0, None


def started_sessions() -> set[MCPSession]:
    """The sessions of this process that were ever started (live resources: the runtime holds
    them), for `close_all`."""
    return _runtime.shared("mcp-sessions", set)


def close_all(timeout: float = 15.0, final: bool = True) -> None:
    """Stop every server of this process: for good (kernel shutdown), or until their next use
    (`final=False`: `%unload_ext`, whose reload may use them again)."""
    live = [s for s in started_sessions() if s.started]
    if not live or not host_running():
        return

    async def close() -> None:
        await asyncio.gather(*(s.close(final) for s in live), return_exceptions=True)

    with contextlib.suppress(concurrent.futures.TimeoutError, RuntimeError):
        on_host_sync(close(), timeout)
