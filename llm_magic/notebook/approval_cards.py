"""A timeline's questions to the person: the approval card of each call that waits for a
decision, resolved by a click (or by the terminal's question), and "Always allow" on a card.

A card is a future the run's approver awaits; Approve/Deny (with its reason) resolves it on the
loop thread. A tool always allowed (`always_allow`) gets no card. A run with its own
`approval_callback` is answered by that callback, not here.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from ..options import Approval
from ..records import ToolCallRecord
from . import always_allow
from .highlight import code_arguments
from .terminal import TerminalApprover

if TYPE_CHECKING:
    from .timeline import Timeline


class ApprovalCards:
    """The pending approvals of one timeline (every run it shows), by call id."""

    def __init__(self, timeline: Timeline) -> None:
        self.timeline = timeline
        self.pending: dict[str, asyncio.Future[Approval]] = {}
        self._asking: set[asyncio.Task[None]] = set()
        self.terminal = TerminalApprover(self._describe)

    def code_arguments(self, name: str) -> list[str]:
        """The arguments of a tool that hold Python source, for its approval card."""
        run = self.timeline.run
        tool = run.tools.get(name) if run is not None else None
        return code_arguments(tool.schema) if tool is not None else []

    def _describe(self, name: str) -> str | None:
        """A tool's description, for the terminal question's `?`."""
        run = self.timeline.run
        tool = run.tools.get(name) if run is not None else None
        return tool.description if tool is not None else None

    def _key(self, rec: ToolCallRecord) -> str:
        return self.timeline.state.keys.get(rec.id, "")

    async def card(self, record: ToolCallRecord) -> Approval:
        """Show the call's card and wait for its click."""
        future: asyncio.Future[Approval] = asyncio.get_running_loop().create_future()
        self.pending[record.id] = future
        self.timeline.mark(self._key(record))
        try:
            return await future
        finally:
            self.pending.pop(record.id, None)
            self.timeline.mark(self._key(record))

    def ask(self, rec: ToolCallRecord) -> None:
        """Ask the person and answer the run with `decide()`; the run's own
        `approval_callback`, when it has one, decides instead."""
        run = self.timeline.run
        if run is None or run.options.approval_callback is not None:
            return

        async def ask() -> None:
            decision = await self.timeline.approve(rec)
            run.decide(rec.id, decision.approved, decision.reason)

        task = asyncio.get_running_loop().create_task(ask())
        self._asking.add(task)
        task.add_done_callback(self._asking.discard)

    def cancel(self) -> None:
        """Stop asking: a question outliving its run would keep the terminal."""
        for task in list(self._asking):
            task.cancel()

    def act(self, message: dict[str, Any]) -> None:
        """A front end's "decide" (Approve/Deny, maybe Always allow) or "revoke" message."""
        if message.get("type") == "revoke":
            if isinstance(message.get("tool"), str):
                always_allow.revoke(message["tool"])
                self.timeline.mark()
            return
        reason = message.get("reason")
        reason = reason.strip() if isinstance(reason, str) else ""
        approved = bool(message.get("approved"))
        if approved and message.get("always") is True:
            self._always_allow(message.get("ids"))
        self._decide(message.get("ids"), approved, reason or None)

    def _always_allow(self, keys: Any) -> None:
        """Always allow the tools of these calls; their other cards here are approved too."""
        state = self.timeline.state
        wanted = set(keys) if isinstance(keys, list) else set()
        names = {r.name for r in state.calls if state.keys.get(r.id) in wanted}
        for name in names:
            always_allow.allow(name)
        others = [r for r in state.calls if r.name in names and r.id in self.pending]
        self._decide([state.keys[r.id] for r in others], True, None)
        self.timeline.mark()

    def _decide(self, keys: Any, approved: bool, reason: str | None) -> None:
        keyed = self.timeline.state.keys
        wanted = set(keys) if isinstance(keys, list) else set()
        for call_id, future in list(self.pending.items()):
            if keyed.get(call_id) in wanted and not future.done():
                future.set_result(Approval(approved, reason))
