"""What a timeline shows, folded from a run's events: `RunState` and `apply(state, event)`.

`apply` is the one place that interprets chain events for the notebook views. It does no I/O,
knows nothing of widgets or HTML, and costs O(1) per event whatever the size of the run; it
returns the keys of the entries the event changed, so a view re-renders only those. The live
widget, the static HTML and the terminal text all read the same `RunState`.

Keys: "head" for the header, "t<n>" for the n-th model turn, "c<n>" for the n-th tool call.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from .. import events as ev
from ..media import Media
from ..messages import Usage
from ..records import ToolCallRecord
from .look import shorten

if TYPE_CHECKING:
    from ..branches import BranchPoint

HEAD = "head"
_FINISHED = ("ok", "error", "denied", "cancelled")


@dataclass(eq=False)
class TurnState:
    """One model turn as the timeline sees it."""

    step: int
    started_at: float
    key: str = ""
    ended_at: float | None = None
    parts: list[str] = field(default_factory=list)
    final_text: str | None = None
    usage: Usage | None = None
    priced: bool = False  # a CostReported came for this turn (its cost may still be unknown)
    cost: Decimal | None = None  # US dollars; None once priced: the model's price is unknown
    status: str = "streaming"  # streaming | done | cancelled | stopped
    calls: list[ToolCallRecord] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # this turn's calls by status
    failed: list[ToolCallRecord] = field(default_factory=list)  # error / denied, in order
    _joined: str = ""
    _joined_parts: int = 0

    @property
    def text(self) -> str:
        if self.final_text is not None:
            return self.final_text
        if self._joined_parts != len(self.parts):  # join incrementally, once per read
            self._joined += "".join(self.parts[self._joined_parts :])
            self._joined_parts = len(self.parts)
        return self._joined

    @property
    def partial(self) -> bool:
        """The run ended while the model was still writing this turn's text."""
        return self.status in ("cancelled", "stopped") and bool(self.text)

    @property
    def duration(self) -> float | None:
        return None if self.ended_at is None else self.ended_at - self.started_at

    @property
    def usage_lost(self) -> bool:
        """The run ended this turn while the model wrote, before its usage came: billed, but
        by how much is unknown (a request that never got an answer shows no tokens at all)."""
        return self.usage is None and self.status in ("cancelled", "stopped") and bool(self.text)


@dataclass(eq=False)
class RunState:
    """Everything the timeline shows, kept up to date event by event in O(1)."""

    model: str
    status: str = "pending"
    started_at: float | None = None
    ended_at: float | None = None
    turns: list[TurnState] = field(default_factory=list)
    calls: list[ToolCallRecord] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # tool calls by status
    seen: dict[str, str] = field(default_factory=dict)  # call id -> last counted status
    keys: dict[str, str] = field(default_factory=dict)  # call id -> entry key
    parents: dict[str, TurnState] = field(default_factory=dict)  # call id -> its turn
    usage: Usage = field(default_factory=Usage)
    priced: bool = False  # some turn of the run was priced
    cost: Decimal | None = None  # the run's cost through its last priced turn (None: unknown)
    branch: str | None = None  # where the run branched from (`describe_branch`)
    branch_diff: list[tuple[str, str, str]] = field(default_factory=list)  # (key, old, new)
    prompt: str = ""  # the run's own prompt (a fork's new one), from its start
    steps: int = 0
    error: str | None = None
    note: str | None = None
    answer: str = ""  # the last turn's text once the run has ended
    media: list[Media] = field(default_factory=list)  # the prompt's images and files, as sent

    def count(self, rec: ToolCallRecord) -> None:
        old = self.seen.get(rec.id)
        if old == rec.status:
            return
        turn = self.parents.get(rec.id)
        for counts in (self.counts, turn.counts if turn is not None else None):
            if counts is None:
                continue
            if old is not None:
                counts[old] -= 1
                if not counts[old]:
                    del counts[old]
            counts[rec.status] = counts.get(rec.status, 0) + 1
        if turn is not None and rec.status in ("error", "denied"):
            turn.failed.append(rec)
        self.seen[rec.id] = rec.status

    @property
    def usage_lost(self) -> bool:
        """A turn's tokens were billed but never reported. Only the turn in progress when the
        run ended can be cut, the last one: no scan of every turn on each header update."""
        return bool(self.turns) and self.turns[-1].usage_lost

    def elapsed(self, now: float | None = None) -> float | None:
        if self.started_at is None:
            return None
        end = self.ended_at if self.ended_at is not None else (now or time.monotonic())
        return end - self.started_at

    @property
    def running(self) -> bool:
        return self.status in ("pending", "running")

    @property
    def waiting(self) -> int:
        """Calls waiting for the user's decision."""
        return self.counts.get("awaiting_approval", 0)

    @property
    def current(self) -> TurnState | None:
        return self.turns[-1] if self.turns else None

    def key_of(self, rec: ToolCallRecord) -> str:
        return self.keys[rec.id]


def apply(state: RunState, event: ev.Event) -> tuple[str, ...]:
    """Fold `event` into `state`; the keys of the entries it changed (see the module doc)."""
    if isinstance(event, ev.ToolCallEvent):
        return _call(state, event.call)
    turn = state.current
    if isinstance(event, ev.TextDelta):
        if turn is None:
            return ()
        turn.parts.append(event.text)
        return (turn.key,)
    if isinstance(event, ev.RunStarted):
        state.status = "running"
        state.started_at = event.at
        state.model = state.model or event.model
        state.media = list(event.media)
        state.prompt = event.prompt or state.prompt
        return (HEAD,)
    if isinstance(event, ev.TurnStarted):
        turn = TurnState(step=event.step, started_at=event.at, key=f"t{len(state.turns)}")
        state.turns.append(turn)
        return (HEAD, turn.key)
    if isinstance(event, ev.UsageReported):
        state.usage = event.total
        if turn is None:
            return (HEAD,)
        turn.usage = event.usage
        return (HEAD, turn.key)
    if isinstance(event, ev.TurnFinished):
        if turn is None:
            return ()
        turn.final_text = event.text
        turn.ended_at = event.at
        turn.status = "done"
        return (HEAD, turn.key)
    if isinstance(event, ev.CostReported):
        return _cost(state, event)
    if isinstance(event, ev.RunEnded):
        return _ended(state, event)
    return ()


def _cost(state: RunState, event: ev.CostReported) -> tuple[str, ...]:
    """A turn's price (it may come after the next turn started, while the table loads)."""
    state.priced = True
    state.cost = event.total_cost
    for turn in reversed(state.turns):
        if turn.step == event.step:
            turn.priced, turn.cost = True, event.cost
            return (HEAD, turn.key)
    return (HEAD,)


def describe_branch(point: BranchPoint | None) -> str | None:
    """`re-run of get_weather (call 2) with city="Rome"`: what a branched run is, in the
    words of the run it came from (its calls are counted from 1, its turns too)."""
    if point is None:
        return None
    if point.call_id is None:
        return "fork before turn 1" if point.step == 0 else f"fork after turn {point.step}"
    made = [c for m in point.result.messages for c in m.tool_calls if c.id == point.call_id]
    name = made[-1].name if made else point.call_id
    numbers = [i for i, r in enumerate(point.result.tool_calls, 1) if r.id == point.call_id]
    call = f"{name} (call {numbers[-1]})" if numbers else name
    if point.kind != "rerun":
        return f"{call} with a given result"
    changed = [f"{key}={new}" for key, _old, new in branch_diff(point) if new]
    if point.arguments is None or not branch_diff(point):
        return f"re-run of {call} with the same arguments"
    return f"re-run of {call} with {shorten(', '.join(changed) or 'fewer arguments', 80)}"


def branch_diff(point: BranchPoint | None) -> list[tuple[str, str, str]]:
    """A re-run's edited arguments against the call's own: (key, old JSON, new JSON), "" for
    a key one side lacks; only the keys that changed."""
    if point is None or point.arguments is None or point.call_id is None:
        return []
    made = [c for m in point.result.messages for c in m.tool_calls if c.id == point.call_id]
    try:
        before = made[-1].parsed_arguments() if made else {}
    except ValueError:
        before = {}
    before = before if isinstance(before, dict) else {}
    after = point.arguments

    def shown(d: dict[str, object], key: str) -> str:
        return json.dumps(d[key], default=str) if key in d else ""

    keys = [*before, *(k for k in after if k not in before)]
    return [
        (k, shown(before, k), shown(after, k)) for k in keys if shown(before, k) != shown(after, k)
    ]


def show_branch(state: RunState, point: BranchPoint | None) -> None:
    """Name the state's run after where it branched from, with its edited arguments."""
    state.branch = describe_branch(point)
    state.branch_diff = branch_diff(point)


def _call(state: RunState, rec: ToolCallRecord) -> tuple[str, ...]:
    turn = state.current
    if rec.id not in state.keys:
        state.keys[rec.id] = f"c{len(state.calls)}"
        state.calls.append(rec)
        state.steps = max(state.steps, rec.step)
        if turn is not None:
            turn.calls.append(rec)
            state.parents[rec.id] = turn
    state.count(rec)
    parent = state.parents.get(rec.id)
    if parent is None:
        return (HEAD, state.keys[rec.id])
    return (HEAD, parent.key, state.keys[rec.id])


def _ended(state: RunState, event: ev.RunEnded) -> tuple[str, ...]:
    result = event.result
    state.status = result.status
    state.ended_at = event.at
    state.steps = result.steps
    if isinstance(event, ev.RunFailed) and event.error is not None:
        state.error = f"{type(event.error).__name__}: {event.error}"
    if result.stop_reason:  # a limit's figures (max_cost: spent, and what the next turn needed)
        state.note = result.stop_reason
    changed = [HEAD]
    turn = state.current
    if turn is not None:
        if turn.ended_at is None:
            turn.ended_at = event.at
            turn.status = "cancelled" if result.status == "cancelled" else "stopped"
        state.answer = turn.text
        changed.append(turn.key)
    # calls that never finished are settled by the chain; their records changed in place
    changed += [state.keys[r.id] for r in state.calls if state.seen.get(r.id) not in _FINISHED]
    for rec in state.calls:
        state.count(rec)
    return tuple(changed)
