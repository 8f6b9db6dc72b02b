"""Everything that happens in a run, as small event objects delivered in order.

Subscribers (the notebook timeline, a logger, a test) receive the same objects that an
`async for event in run` loop does. Tool-call events carry the live `ToolCallRecord`, so a view
can render its current state without reaching into the chain.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from .media import Media
from .messages import ToolCall, Usage

if TYPE_CHECKING:
    from .results import ChainResult

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


@dataclass
class Event:
    at: float = field(default_factory=time.monotonic, kw_only=True)
    type = "event"


@dataclass
class RunStarted(Event):
    model: str
    prompt: str
    tools: list[str]
    media: list[Media] = field(default_factory=list)  # the prompt's attachments, as sent
    type = "run_started"


@dataclass
class TurnStarted(Event):
    step: int
    tools_offered: bool = True
    type = "turn_started"


@dataclass
class TextDelta(Event):
    step: int
    text: str
    type = "text_delta"


@dataclass
class TurnFinished(Event):
    step: int
    text: str
    tool_calls: list[ToolCall]  # as the model sent them; the records follow as events
    usage: Usage
    type = "turn_finished"


@dataclass
class ToolCallEvent(Event):
    call: ToolCallRecord
    type = "tool_call"


@dataclass
class ToolCallRequested(ToolCallEvent):
    type = "tool_call_requested"


@dataclass
class ToolCallAwaitingApproval(ToolCallEvent):
    type = "tool_call_awaiting_approval"


@dataclass
class ToolCallStarted(ToolCallEvent):
    type = "tool_call_started"


@dataclass
class ToolCallFinished(ToolCallEvent):
    type = "tool_call_finished"


@dataclass
class ToolCallFailed(ToolCallEvent):
    type = "tool_call_failed"


@dataclass
class ToolCallDenied(ToolCallEvent):
    type = "tool_call_denied"


@dataclass
class ToolCallCancelled(ToolCallEvent):
    type = "tool_call_cancelled"


@dataclass
class ToolCallSettled(ToolCallEvent):
    """The thread of a sync call that the run let go (cancelled, timed out) has ended; the
    record's `thread`, `late_result` and `late_error` say how. It may come after `RunEnded`."""

    type = "tool_call_settled"


@dataclass
class UsageReported(Event):
    step: int
    usage: Usage
    total: Usage
    type = "usage"


@dataclass
class CostReported(Event):
    """The price of a finished turn in US dollars (None: the model's price is unknown).

    Sent after the turn's `TurnFinished`; in the first run of a process, while the price table
    still loads, later (before the next model turn or the end), never holding up tool calls.
    """

    step: int
    cost: Decimal | None
    total_cost: Decimal | None  # the run's, through this turn
    type = "cost"


@dataclass
class RunEnded(Event):
    result: ChainResult[Any]
    type = "run_ended"


@dataclass
class RunFinished(RunEnded):
    """The model answered, or a limit ended the run (see `result.status`)."""

    type = "run_finished"


@dataclass
class RunFailed(RunEnded):
    error: BaseException | None = None
    type = "run_failed"


@dataclass
class RunCancelled(RunEnded):
    type = "run_cancelled"


def describe(event: Event) -> dict[str, Any]:
    """A plain dict of an event, for logs and tests."""
    out: dict[str, Any] = {"type": event.type}
    call = getattr(event, "call", None)
    if call is not None:
        out.update(name=call.name, id=call.id, status=call.status)
    for key in ("step", "text"):
        if hasattr(event, key):
            out[key] = getattr(event, key)
    return out
