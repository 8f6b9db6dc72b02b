"""One tool call of a run, as a record: what the model asked, what ran, what came back.

A leaf module (it imports nothing of llm_magic at run time), so the options (an approval callback takes a
record), the events (call events carry the live record), the results and the views all import
the record from here without importing each other.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from .media import Media

CallStatus = Literal["queued", "awaiting_approval", "running", "ok", "error", "denied", "cancelled"]
# a sync call's worker thread after the run let the call go (cancelled, timed out): a thread
# cannot be stopped, so it may still run, end later, or have stopped when asked (`cancellable`)
ThreadState = Literal["running", "returned", "raised", "stopped"]


@dataclass(eq=False)
class ToolCallRecord:
    """One tool call of a run: what the model asked, what ran, what came back."""

    id: str
    name: str
    raw_arguments: str
    step: int
    arguments: dict[str, Any] | None = None  # parsed JSON, when it parsed
    status: CallStatus = "queued"
    result: Any = None  # the real Python object the tool returned
    output: str = ""  # the text sent back to the model
    media: list[Media] = field(default_factory=list)  # the images sent back with it
    truncated: bool = False  # output was cut for the model; `result` is whole
    error: BaseException | None = None
    traceback: str | None = None
    reason: str | None = None  # why denied / cancelled
    implementation: str | None = None  # "sync" or "async"
    started_at: float | None = None
    ended_at: float | None = None
    server: str | None = None  # the MCP server the tool belongs to; None: a notebook function
    thread: ThreadState | None = None  # None: nothing of the call runs on once it ended
    late_result: Any = None  # what the thread returned after the run let the call go
    late_error: BaseException | None = None  # what it raised then

    @property
    def thread_note(self) -> str | None:
        """What the call's thread did after the run let it go, in words for the user."""
        name = f"`{self.name}`"
        if self.thread == "running":
            return f"{name} is still running in its thread"
        if self.thread == "stopped":
            return f"{name} stopped when asked"
        if self.thread == "returned":
            return f"{name} returned later in its thread"
        if self.thread == "raised":
            err = self.late_error
            what = f"{type(err).__name__}: {err}" if err is not None else "an error"
            return f"{name} raised {what} later in its thread"
        return None

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return self.ended_at - self.started_at

    @property
    def is_error(self) -> bool:
        return self.status in ("error", "denied", "cancelled")

    def fail(self, status: CallStatus, output: str, error: BaseException | None = None) -> None:
        self.status = status
        self.output = output
        self.error = error
        if error is not None and error.__traceback__ is not None:
            self.traceback = "".join(traceback.format_exception(error))
        self.ended_at = time.monotonic()

    def __repr__(self) -> str:
        return f"<ToolCall {self.name}({self.raw_arguments}) {self.status}>"
