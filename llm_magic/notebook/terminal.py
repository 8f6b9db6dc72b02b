"""The timeline in a terminal (terminal IPython, plain Python): compact live text lines, and the
y/N approval question. Moved verbatim out of timeline.py; the `terminal` helper owns its design.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING

from .. import events as ev
from ..chain import Approval
from ..events import ToolCallRecord
from . import render as R
from .reducer import TurnState

if TYPE_CHECKING:
    from .timeline import Timeline


class _TextView:
    """Compact live text lines for terminal IPython and plain Python."""

    def __init__(self, tl: Timeline) -> None:
        self.tl = tl
        self.out = sys.stdout
        self.open_text = False
        self.ended = False
        self.write(f"LLM {tl.state.model}\n")

    def write(self, text: str) -> None:
        try:
            self.out.write(text)
            self.out.flush()
        except (OSError, ValueError):  # a closed stream must not break the run
            pass

    def _end_text(self) -> None:
        if self.open_text:
            self.write("\n")
            self.open_text = False

    def delta(self, turn: TurnState, text: str) -> None:
        if not self.open_text:
            self.write("  ")
            self.open_text = True
        self.write(_indent(text))

    def turn_done(self, turn: TurnState) -> None:
        if not self.open_text and turn.final_text:
            self.write("  " + _indent(turn.final_text))
            self.open_text = True
        self._end_text()

    def call(self, rec: ToolCallRecord, event: ev.Event) -> None:
        if isinstance(event, ev.ToolCallRequested | ev.ToolCallStarted):
            return  # one line per call, when it ends
        if isinstance(event, ev.ToolCallAwaitingApproval):
            return  # the approval prompt is the line
        self._end_text()
        self.write("    " + R.call_text(rec) + "\n")

    def run_ended(self) -> None:
        self._end_text()
        self.write(R.header_text(self.tl.state) + "\n")
        self.ended = True

    def finish(self) -> None:
        if not self.ended:
            self.run_ended()


def _indent(text: str) -> str:
    """Every line of the answer under the header (the first line's indent is written once)."""
    return text.replace("\n", "\n  ")


async def _ask_in_terminal(record: ToolCallRecord) -> Approval:
    call = f"{record.name}({R.arg_summary(record, 70)})"
    prompt = f"    ? approve {call}? [y/N, or a reason to deny] "
    try:
        answer = (await asyncio.to_thread(input, prompt)).strip()
    except (EOFError, OSError):
        return Approval(False, "no one was there to approve it")
    if answer.lower() in ("y", "yes"):
        return Approval(True)
    if answer.lower() in ("", "n", "no"):
        return Approval(False)
    return Approval(False, answer)
