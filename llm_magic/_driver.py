"""How a run is driven: in the task that awaits it, or in a task of its own; waited for,
followed, cancelled from any thread.

`await model.chain(...)` is the usual case, and the awaiting task runs the body in place: a
task of its own, and the shield that keeps an interrupted `await` from cancelling it, cost three
turns of the event loop per run (the task's first step, its end, the shield's callback), about
a tenth of a loopback chain's CPU. A run iterated (`async for`), started in the background
(`start()`) or awaited a second time gets its own task, or follows the one already running.

Either way, the awaiting code's cancellation (a kernel interrupt, an outer timeout) stops the
run, lets it record what never finished, and then goes on; `cancel()` stops the run and the
awaiting code gets its result. Run in place, both arrive as a cancellation of the same task:
the requests `cancel()` made are counted and taken back (`Task.uncancel`) when the body ends,
and any other request was the awaiting code's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

from ._approver import running_loop

T = TypeVar("T")


class Driver(Generic[T]):
    """Drives `body()` once, on the loop it is first awaited or started on (`begin()` then)."""

    def __init__(
        self, body: Callable[[], Coroutine[Any, Any, T]], begin: Callable[[], None]
    ) -> None:
        self._body = body
        self._begin = begin
        self.loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[T] | None = None  # its own task, or one following it in place
        self._here: asyncio.Task[Any] | None = None  # the awaiting task, while it runs the body
        self._in_place = False
        self._entered = False  # its own task has taken its first step
        self._interrupted = False  # an awaiting code's cancellation stopped it
        self._cancelling = 0  # the awaiting task's cancellation requests when the body began
        self._own_cancels = 0  # the requests `cancel()` made of it, taken back at the end
        self._ended: asyncio.Future[T] | None = None  # for a follower of a run in place
        self._outcome: tuple[T | BaseException] | None = None  # the body's, run in place

    def start(self) -> asyncio.Task[T]:
        """The task that gives the body's result (made once): the body's own, or one that
        follows the awaiting task running it in place."""
        if self._task is None:
            loop = asyncio.get_running_loop()
            if self._in_place:
                self._task = loop.create_task(self._follow())
            else:
                self._open(loop)
                self._task = loop.create_task(self._in_task())
        return self._task

    async def wait(self) -> T:
        """The body's result, in place if nothing has started it yet."""
        if self._task is None and not self._in_place:
            here = asyncio.current_task()
            if here is not None:
                return await self._run_here(here)
        task = self.start()
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            # The awaiting code was cancelled: stop the run, let it record what never
            # finished, then let the cancellation go on.
            self._interrupted = True
            self.cancel()
            await asyncio.wait([task])
            raise

    def cancel(self) -> None:
        """Cancel the body if it is running; safe from any thread (a widget's button)."""
        task, loop = self._here if self._in_place else self._task, self.loop
        if task is None or loop is None or task.done():
            return
        if running_loop() is loop:
            self._cancel()
        else:
            loop.call_soon_threadsafe(self._cancel)

    def interrupted(self) -> bool:
        """Whether the awaiting code's cancellation (not `cancel()`) is stopping the body."""
        here = self._here
        return self._interrupted or (
            here is not None and here.cancelling() > self._cancelling + self._own_cancels
        )

    def _open(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._begin()

    async def _in_task(self) -> T:
        self._entered = True
        return await self._body()

    async def _run_here(self, task: asyncio.Task[Any]) -> T:
        self._in_place = True
        self._open(asyncio.get_running_loop())
        self._here, self._cancelling = task, task.cancelling()
        try:
            result = await self._body()
        except BaseException as exc:
            self._end_here(task, exc)
            raise
        self._end_here(task, result)
        if task.cancelling() > self._cancelling:  # the awaiting code was cancelled meanwhile
            raise asyncio.CancelledError
        return result

    def _end_here(self, task: asyncio.Task[Any], outcome: T | BaseException) -> None:
        self._here, self._outcome = None, (outcome,)
        for _ in range(self._own_cancels):
            task.uncancel()
        ended = self._ended
        if ended is None or ended.done():
            return
        if isinstance(outcome, BaseException):
            ended.set_exception(outcome)
        else:
            ended.set_result(outcome)

    async def _follow(self) -> T:
        if self._outcome is not None:  # it ended: its result again, or its error
            (outcome,) = self._outcome
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome
        if self._ended is None:
            self._ended = asyncio.get_running_loop().create_future()
        return await asyncio.shield(self._ended)

    def _cancel(self) -> None:
        if self._in_place:
            if self._here is not None:  # still running: cancel the task that runs it
                self._own_cancels += 1
                self._here.cancel()
            return
        # A task cancelled before its first step never enters the body, so the run would end
        # without a result (and leave the conversation busy); the body checks for a
        # cancellation asked before it started.
        if self._task is not None and not self._task.done() and self._entered:
            self._task.cancel()
