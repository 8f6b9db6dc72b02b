"""When a view's pending changes go out: at most one flush every `interval` seconds, on the loop
thread, so that streamed text costs a few comm messages a second, not one per token.

A change marked on another thread (a sync tool's worker, a subshell) is handed to the loop; with
no running loop to wait on, the flush happens at once when the interval has passed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from .._approver import running_loop


class Throttle:
    """flush: sends the pending changes (and calls `flushed`); interval: seconds between two.
    loop: the loop the flushes run on (the one running at construction, else the first seen)."""

    def __init__(self, flush: Callable[[], None], interval: float) -> None:
        self._flush = flush
        self.interval = interval
        self.loop = running_loop()
        self._last = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def flushed(self) -> float:
        """A flush goes out now (returned): the next one waits a whole interval."""
        self._last = time.monotonic()
        return self._last

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def schedule(self) -> None:
        """Flush within `interval` of the first pending change; never more often than that."""
        if self._timer is not None:
            return
        delay = max(0.0, self._last + self.interval - time.monotonic())
        loop = self.loop
        if loop is None or loop.is_closed() or not loop.is_running():
            if delay == 0.0:
                self._flush()  # no loop to wait on: flush when the interval has passed
            return
        if running_loop() is loop:
            self._timer = loop.call_later(delay, self._timed)
        else:
            loop.call_soon_threadsafe(self.schedule)

    def _timed(self) -> None:
        self._timer = None
        self._flush()
