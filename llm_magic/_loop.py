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
import logging
import queue
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None


def private_loop() -> asyncio.AbstractEventLoop:
    """The shared private loop; a new one when there is none, or its thread has died.

    A dead thread leaves a loop that is not closed but never runs anything again: handing it
    out would make every later sync call wait forever.
    """
    global _loop, _thread
    with _lock:
        if _loop is None or _loop.is_closed() or _thread is None or not _thread.is_alive():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(
                target=_serve, args=(loop,), name="llm_magic-loop", daemon=True
            )
            thread.start()
            _loop, _thread = loop, thread
        return _loop


def _serve(loop: asyncio.AbstractEventLoop) -> None:
    """Run the loop until it is stopped on purpose.

    A SystemExit or KeyboardInterrupt raised by a callback escapes `run_forever`; if the thread
    ended there, the callers waiting on this loop would block forever. The task that raised
    already holds the exception, so its caller still gets it once the loop runs again.
    """
    while True:
        try:
            loop.run_forever()
            return
        except BaseException as exc:  # see the docstring
            logging.getLogger("llm_magic").warning("llm_magic's loop thread: %r escaped", exc)


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
