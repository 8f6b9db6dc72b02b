"""A private event loop on a daemon thread, for sync code that must drive async work.

The sync API runs the one async engine here, so it works the same in a plain script and inside
a running loop (a notebook cell), with async-only tools, and patches nothing global. Context
variables of the calling thread follow the work (run_coroutine_threadsafe schedules through
call_soon_threadsafe, which copies the caller's context), so a notebook's output routing does too.

Code that must run on the caller's own thread (`on_loop=True` tools: matplotlib, widgets) is
handed back through a `CallerThread`: the caller is blocked waiting for the run anyway, so it
runs that work while it waits.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import queue
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from . import _runtime

T = TypeVar("T")
LOOP_NAME = "llm_magic-loop"


def private_loop() -> asyncio.AbstractEventLoop:
    """The shared private loop (llm_magic._runtime: a new one when its thread has died)."""
    return _runtime.loop(LOOP_NAME)


class CallerThread:
    """Work that the loop thread hands back to the thread waiting in `run_sync`.

    idle: also called every `every` seconds while waiting, on the waiting thread (the notebook
    layer reads a blocked kernel's button clicks there).
    """

    def __init__(self, idle: Callable[[], None] | None = None, every: float = 0.02) -> None:
        self._queue: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._idle = idle
        self._every = every
        self._detached = False

    def detach(self) -> None:
        """No thread will wait (a run started in the background): work runs where it is asked."""
        self._detached = True

    async def call(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the waiting thread, in the current context, and await its result."""
        if self._detached:
            return fn()
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        context = contextvars.copy_context()

        def work() -> None:
            if not future.set_running_or_notify_cancel():
                return  # the call was cancelled before the caller got to it
            try:
                future.set_result(context.run(fn))
            except KeyboardInterrupt:  # Ctrl-C on the caller: cancel the call, stop the wait
                future.set_exception(asyncio.CancelledError())
                raise
            except BaseException as exc:  # the awaiting side decides
                future.set_exception(exc)

        self._queue.put(work)
        return await asyncio.wrap_future(future)

    def serve(self, done: concurrent.futures.Future[Any]) -> None:
        """Run handed-back work on this thread until `done` completes."""
        done.add_done_callback(lambda _: self._queue.put(None))
        while not done.done():
            try:
                work = self._queue.get(timeout=self._every if self._idle else None)
            except queue.Empty:
                work = None
            if work is not None:
                work()
            if self._idle is not None:
                self._idle()


# A CallerThread handed to the one run that a coroutine given to `run_sync` will create (the
# notebook's fallback magic): `run_coroutine_threadsafe` carries the caller's context over, and
# `take_caller` empties it so that tools and the runs they start never inherit it.
current_caller: contextvars.ContextVar[CallerThread | None] = contextvars.ContextVar(
    "llm_magic_caller", default=None
)


def take_caller() -> CallerThread | None:
    """The CallerThread handed over in this context, once (see `current_caller`)."""
    caller = current_caller.get()
    if caller is not None:
        current_caller.set(None)
    return caller


def run_sync(coro: Coroutine[Any, Any, T], caller: CallerThread | None = None) -> T:
    """Run a coroutine to completion from sync code; Ctrl-C cancels it and re-raises.

    With `caller`, this thread runs the work the coroutine hands back to it while waiting.
    """
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
        if caller is not None:
            caller.serve(future)
        return future.result()
    except KeyboardInterrupt:
        future.cancel()
        raise
