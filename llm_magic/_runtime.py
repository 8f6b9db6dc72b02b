"""llm_magic's background runtime: every thread it starts, and the one exit hook that ends them.

A sync API over an async engine, MCP sessions that outlive the caller's loop, sync tools that
must not block the loop, and a price table too slow to import on it all need work done off the
caller's thread. Kept in one place, each such thread is started once, by name, recovers when it
died, and is known to the one `atexit` handler, so no module writes its own thread code:

* `loop(name)`: an event loop on a daemon thread, one per purpose (`llm_magic-loop` for the
  sync API, `llm_magic-mcp` for MCP sessions); a new one when the thread died.
* `tool_pool`: the worker threads of sync tools, daemon threads that never hold up exit.
* `load_once(name, fn)`: a one-off job in a daemon thread (importing the price table).
* `worker(name)`: jobs run in order on one daemon thread (the run log's writes).
* `daemon(name, fn)`: a daemon thread for work that lasts as long as something else does (the
  thread that forks the local model's server stays while that child lives).
* `shared(name, make)`: the one object of the process for a live resource (the local model's
  server process, the providers that keep HTTP connections, MCP sessions, the TLS context),
  made on first use.
* `at_exit(fn)`: cleanup run once at interpreter exit, newest first (as `atexit` does).

This module imports nothing from llm_magic: every other core module may use it.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import functools
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar, cast

T = TypeVar("T")
log = logging.getLogger("llm_magic")
_lock = threading.RLock()  # re-entrant: a `shared` maker may use the runtime itself


class BackgroundLoop:
    """An event loop served by one daemon thread, made again when that thread has died.

    A dead thread leaves a loop that is not closed but never runs anything again: handing it
    out would make every later caller wait forever.
    """

    def __init__(self, name: str, on_start: Callable[[], None] | None = None) -> None:
        self.name = name
        self._on_start = on_start  # once, before the first loop starts (a log filter, say)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def get(self) -> asyncio.AbstractEventLoop:
        """The running loop; a new one when there is none, it was closed, or its thread died."""
        with self._lock:
            loop, thread = self._loop, self._thread
            if loop is None or loop.is_closed() or thread is None or not thread.is_alive():
                if self._on_start is not None:
                    self._on_start()
                    self._on_start = None
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=_serve, args=(loop, self.name), name=self.name, daemon=True
                )
                thread.start()
                self._loop, self._thread = loop, thread
            return loop

    def running(self) -> bool:
        """Whether a loop was started and its thread still serves it."""
        return self._loop is not None and self._loop.is_running()

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread


def _serve(loop: asyncio.AbstractEventLoop, name: str) -> None:
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
            log.warning("llm_magic's %s thread: %r escaped", name, exc)


_loops: dict[str, BackgroundLoop] = {}


def background(name: str, on_start: Callable[[], None] | None = None) -> BackgroundLoop:
    """The background loop named `name`, made on first use (`on_start` then runs once)."""
    with _lock:
        found = _loops.get(name)
        if found is None:
            found = _loops[name] = BackgroundLoop(name, on_start)
        return found


def loop(name: str) -> asyncio.AbstractEventLoop:
    """The running event loop named `name` (see `background`)."""
    return background(name).get()


class DaemonPool(concurrent.futures.Executor):
    """Worker threads for sync tools, made as needed up to `size`, all daemon threads.

    Python's ThreadPoolExecutor joins its workers at interpreter exit, so one sync tool that
    outlived its timeout (a thread cannot be stopped) held the process open until it returned
    (measured: a 0.3 s timeout on an 8 s tool delayed exit by 7.7 s). A timed-out tool goes on
    running in its thread until it returns, its result discarded; at exit it is abandoned.
    """

    def __init__(self, size: int, name: str = "llm_tool") -> None:
        self._size = size
        self._name = name
        self._work: queue.SimpleQueue[tuple[concurrent.futures.Future[Any], Callable[[], Any]]]
        self._work = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._work.put((future, functools.partial(fn, *args, **kwargs)))
        with self._lock:  # as ThreadPoolExecutor does: an idle worker takes it, else a new one
            if self._idle:
                self._idle -= 1
            elif self._threads < self._size:
                self._threads += 1
                threading.Thread(target=self._serve, name=self._name, daemon=True).start()
        return future

    def _serve(self) -> None:
        while True:
            future, call = self._work.get()
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(call())
                except BaseException as exc:  # the awaiting side decides
                    future.set_exception(exc)
            del future, call
            with self._lock:
                self._idle += 1


tool_pool = DaemonPool(32)
_jobs: dict[str, threading.Thread] = {}


def load_once(name: str, fn: Callable[[], Any]) -> threading.Thread:
    """Run `fn` in a daemon thread named `name`, once per process; the thread, to join."""
    with _lock:
        job = _jobs.get(name)
        if job is None:
            job = _jobs[name] = daemon(name, fn)
        return job


def job(name: str) -> threading.Thread | None:
    """The thread `load_once(name, ...)` started, if it did."""
    return _jobs.get(name)


def daemon(name: str, fn: Callable[[], Any]) -> threading.Thread:
    """Run `fn` in a new daemon thread named `name` (it never holds up the interpreter's exit)."""
    thread = threading.Thread(target=fn, name=name, daemon=True)
    thread.start()
    return thread


_shared: dict[str, Any] = {}


def shared(name: str, make: Callable[[], T]) -> T:
    """The process's one object named `name`, made by `make` on first use (under the runtime's
    lock, so two threads asking at once get the same one)."""
    with _lock:
        if name not in _shared:
            _shared[name] = make()
        return cast(T, _shared[name])


_at_exit: list[Callable[[], None]] = []


def at_exit(fn: Callable[[], None]) -> None:
    """Call `fn` at interpreter exit, once, newest first; a failing one does not stop the rest."""
    with _lock:
        if fn not in _at_exit:
            _at_exit.append(fn)


def shutdown() -> None:
    """Run the exit hooks, newest first; the daemon threads end with the process."""
    while _at_exit:
        fn = _at_exit.pop()
        try:
            fn()
        except Exception as exc:  # one broken cleanup must not skip the others
            log.warning("llm_magic exit hook %r failed: %r", fn, exc)


atexit.register(shutdown)


class SerialWorker:
    """Jobs run one after another on one daemon thread, made on first use and again if it died.

    For work that must stay off every event loop and keep its order (the run log's writes): a
    job's exception is logged and the next job runs. `drain` waits until every job submitted so
    far has run (tests, the exit hook).
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._jobs: queue.Queue[Callable[[], None]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, job: Callable[[], None]) -> None:
        self._jobs.put(job)
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._serve, name=self.name, daemon=True)
                self._thread.start()

    def drain(self, timeout: float | None = None) -> bool:
        """Wait for the jobs submitted so far; False when `timeout` seconds were not enough."""
        done = threading.Event()
        self.submit(done.set)
        return done.wait(timeout)

    def _serve(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                job()
            except Exception as exc:  # one broken job must not stop the ones behind it
                log.warning("llm_magic's %s thread: a job failed: %r", self.name, exc)
            del job


_workers: dict[str, SerialWorker] = {}


def worker(name: str) -> SerialWorker:
    """The serial worker named `name`, made on first use."""
    with _lock:
        found = _workers.get(name)
        if found is None:
            found = _workers[name] = SerialWorker(name)
        return found
