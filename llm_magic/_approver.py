"""Who answers a tool call that needs approval: one place, one order.

The options' `approval_callback` decides when there is one; else a view that can ask a person
(subscribed with `approver=True`) answers through `decide()`, from any thread (a widget's
button); else the call is denied with a reason the model reads. Kept apart from the run so
the order is written once and can be tested on its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from .options import Approval, ApprovalCallback
from .records import ToolCallRecord

NO_APPROVER = "approval is required and no approver was set"


class Approver:
    """Resolves approvals for one run: its callback, else its attached views, else no."""

    def __init__(self, callback: ApprovalCallback | None) -> None:
        self.callback = callback
        self.views = 0  # attached views that answer through `decide()`
        self.loop: asyncio.AbstractEventLoop | None = None  # the run's, set when it starts
        self._decisions: dict[str, asyncio.Future[Approval]] = {}

    def add_view(self) -> None:
        self.views += 1

    async def ask(self, rec: ToolCallRecord, announce: Callable[[], None]) -> Approval:
        """The decision on `rec`; `announce` tells the views the call waits (once a view's
        answer can be received, so an answer given at once is not lost)."""
        rec.status = "awaiting_approval"
        future: asyncio.Future[Approval] | None = None
        if self.callback is None and self.views:
            future = self._decisions[rec.id] = asyncio.get_running_loop().create_future()
        announce()
        try:
            if self.callback is not None:
                decision = await self.callback(rec)
                return decision if isinstance(decision, Approval) else Approval(bool(decision))
            if future is not None:
                return await future
        finally:
            self._decisions.pop(rec.id, None)
        return Approval(False, NO_APPROVER)

    def decide(self, call_id: str, approved: bool, reason: str | None = None) -> None:
        """Answer a call awaiting approval; safe from any thread."""
        loop = self.loop
        if loop is None:
            return

        def settle() -> None:
            future = self._decisions.get(call_id)
            if future is not None and not future.done():
                future.set_result(Approval(approved, reason))

        if running_loop() is loop:
            settle()
        else:
            loop.call_soon_threadsafe(settle)


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The running loop of this thread, or None outside one (asked on every event of a view
    that has no loop yet: asyncio's own accessor, exported for event loops, raises nothing)."""
    return asyncio._get_running_loop()
