"""A private event loop on a daemon thread, for sync code that must drive async work.

The sync API runs the one async engine here, so it works the same in a plain script and inside
a running loop (a notebook cell), with async-only tools, and patches nothing global. Context
variables of the calling thread follow the work (run_coroutine_threadsafe schedules through
call_soon_threadsafe, which copies the caller's context), so a notebook's output routing does too.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


def private_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="llm_magic-loop", daemon=True)
            thread.start()
            _loop = loop
        return _loop


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code; Ctrl-C cancels it and re-raises."""
    loop = private_loop()
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        coro.close()
        raise RuntimeError("run_sync() called on llm_magic's own loop thread; await instead")
    future = asyncio.run_coroutine_threadsafe(coro, loop)
    try:
        return future.result()
    except KeyboardInterrupt:
        future.cancel()
        raise
