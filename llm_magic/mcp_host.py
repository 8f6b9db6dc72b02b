"""Where MCP sessions live: one private loop in one daemon thread, and the SDK it runs.

The SDK's clients (`mcp.Client` over `stdio_client` or `streamable_http_client`) are anyio
context managers: they must be entered and left in one task, and that task must outlive every
call. So each server's session is owned by one long-lived task (`MCPSession._own`), and every
session of the process lives on one private loop in one daemon thread (`llm_magic-mcp`); callers
hand work to that loop (`run_coroutine_threadsafe`, the loop's own thread-safe queue) and await
the answer on their own loop. One thread rather than a task on each caller's loop because:

* one session per server per kernel: the kernel's loop (`%%llm_chain`, `await chain()`) and
  the sync API's private loop share the session, hence one server process, not one per loop;
* closing works from anywhere: `%unload_ext`, `%llm_mcp remove` and the runtime's exit hook at
  kernel shutdown (mcp_session's `close_all`) run when the caller's loop is busy or already stopped;
* the process is forked by a thread that lives as long as the process, which is what
  `PR_SET_PDEATHSIG` needs (mcp_transport).

The SDK must be mcp 2.x (`mcp>=2.3,<3`): a server package installed into the notebook's
environment may have up- or downgraded it, and then `require_sdk` says so in one line (the
installed version, the supported range, the pip command) instead of a raw ImportError.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

from . import _runtime
from .mcp_results import MCPError

T = TypeVar("T")
SDK_RANGE = ((2, 3), (3, 0))  # mcp>=2.3,<3: the SDK whose Client speaks both protocol kinds
PIP_COMMAND = "pip install 'mcp>=2.3,<3'"

HOST_NAME = "llm_magic-mcp"


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


def host() -> asyncio.AbstractEventLoop:
    """The host loop, started on first use (its servers closed at exit); a new one when its
    thread has died (llm_magic._runtime)."""
    return _runtime.background(HOST_NAME, _first_start).get()


def _first_start() -> None:
    logging.getLogger("mcp.client.stdio").addFilter(_QuietSDK())


def host_running() -> bool:
    return _runtime.background(HOST_NAME, _first_start).running()


async def on_host(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` on the host loop and await it here; cancelling here cancels it there."""
    loop = host()
    if asyncio.get_running_loop() is loop:
        return await coro
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))


def on_host_sync(coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
    return asyncio.run_coroutine_threadsafe(coro, host()).result(timeout)


def describe(exc: BaseException) -> str:
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
