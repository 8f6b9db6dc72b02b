"""Delivering a run's events: in order, to every subscriber and iterator, from the first.

A view may attach after the run began (a re-run shown in an existing timeline, a test that
subscribes late) and an `async for` may start at any time: each gets the events it missed
first, then the rest as they happen, so what it shows is the same whenever it joined. A broken
subscriber is logged and skipped; a view must never end the run it shows.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

from .events import Event

log = logging.getLogger("llm_magic")
Subscriber = Callable[[Event], None]


class Broadcast:
    """The events so far, the subscribers, and the waiter that wakes iterators."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.ended = False
        self._subscribers: list[Subscriber] = []
        self._waiter: asyncio.Future[None] | None = None  # woken on the next event

    def subscribe(self, callback: Subscriber) -> Subscriber:
        """Replay the past events to `callback`, then send it each new one, on the emitter's
        thread (the run's loop)."""
        for past in self.events:
            callback(past)
        self._subscribers.append(callback)
        return callback

    def emit(self, event: Event) -> None:
        self.events.append(event)
        for callback in self._subscribers:
            try:
                callback(event)
            except Exception as exc:  # a broken view must not break the run
                log.warning("event subscriber failed: %r", exc)
        waiter = self._waiter  # `_wake`, written out: this runs once per streamed token
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def end(self) -> None:
        """No more events: iterators stop after the last one."""
        self.ended = True
        self._wake()

    async def iterate(self) -> AsyncIterator[Event]:
        """Every event from the first, waiting for new ones until `end()`."""
        seen = 0
        while True:
            while seen < len(self.events):
                seen += 1
                yield self.events[seen - 1]
            if self.ended:
                return
            if self._waiter is None or self._waiter.done():
                self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
