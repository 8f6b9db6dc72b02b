"""Everything that happens in a run, as small event objects delivered in order.

Subscribers (the notebook timeline, a logger, a test) receive the same objects that an
`async for event in run` loop does. Tool-call events carry the live `ToolCallRecord`, so a view
can render its current state without reaching into the chain.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .media import Media
from .messages import ToolCall, Usage
from .records import ToolCallRecord

if TYPE_CHECKING:
    from .results import ChainResult


@dataclass
class Event:
    at: float = field(default_factory=time.monotonic, kw_only=True)
    type = "event"


@dataclass
class RunStarted(Event):
    model: str  # the resolved `prefix:model` id, as on the result
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
