"""A finished run as a `SavedRun`, and the secrets to keep out of it.

Runs on the log's writer thread, never on the run's loop: the run hands over references (the
run, its result, how many events it had) and everything is read and copied here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .. import events as ev
from .origin import Clock, Where
from .record import SavedCall, SavedRun, SavedTurn

if TYPE_CHECKING:
    from ..chain import ChainRun
    from ..records import ToolCallRecord
    from ..results import ChainResult

# environment variables whose values are secrets wherever they turn up (an MCP server's token,
# a key a tool printed): OPENAI_API_KEY, GITHUB_TOKEN, AWS_SECRET_ACCESS_KEY, DB_PASSWORD ...
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)


def saved_run(
    run: ChainRun,
    result: ChainResult[Any],
    events: Sequence[ev.Event],
    clock: Clock,
    where: Where = Where(),
    parent: int | None = None,
) -> SavedRun:
    """What the log keeps of `run`, which ended with `result` after `events`."""
    start = next((e.at for e in events if isinstance(e, ev.RunStarted)), run.started_at)
    turn_times, call_turns = timings(events)
    saved = from_result(result, prompt=run.prompt, system=run.system, tools=tool_names(run))
    saved.started_at = clock.unix(start)
    saved.base_url = getattr(run.provider, "base_url", None) or None
    saved.model_id = getattr(getattr(run.conversation, "model", None), "model_id", None)
    saved.notebook, saved.cell = where.notebook, where.cell
    saved.branched_from = parent
    for turn, (began, ended, priced) in zip(saved.turns, turn_times, strict=False):
        turn.started = began - start
        turn.ended = ended - start if ended is not None else None
        turn.priced = priced
    for call in saved.calls:
        call.turn = call_turns.get(call.call_id)
        record = next(r for r in result.tool_calls if r.id == call.call_id)
        call.started = record.started_at - start if record.started_at is not None else None
        call.ended = record.ended_at - start if record.ended_at is not None else None
    return saved


def tool_names(run: ChainRun) -> list[str]:
    """The tools the run offered, by name; an MCP server's as `server:tool` (the form
    `tools=` takes), the typed answer's own tool left out (each run adds it again)."""
    from ..answers import FINAL_TOOL

    return [
        f"{t.server}:{t.name}" if t.server else t.name
        for t in run.tools.values()
        if t.name != FINAL_TOOL
    ]


def from_result(
    result: ChainResult[Any],
    *,
    prompt: str | None = None,
    system: str | None = None,
    tools: list[str] | None = None,
) -> SavedRun:
    """What a result alone says of its run (no times, no notebook): the export of a result."""
    if prompt is None:  # the user message the run added, if it added one
        first = result.step_ends[0] if result.step_ends else 0
        added = result.messages[first] if first < len(result.messages) else None
        prompt = added.text if added is not None and added.role == "user" else ""
    conversation = result.conversation
    point = result.branched_from
    return SavedRun(
        model=result.model,
        provider=result.provider,
        prompt=prompt,
        status=result.status,
        messages=list(result.messages),
        elapsed=result.elapsed,
        system=system if system is not None else getattr(conversation, "system", None),
        stop_reason=result.stop_reason,
        error=_error(result.error),
        answer=result.text,
        step_ends=list(result.step_ends),
        turns=[
            SavedTurn(t.text, t.usage, t.cost, t.finish_reason, priced=t.cost is not None)
            for t in result.turns
        ],
        tools=tools if tools is not None else [t.name for t in getattr(conversation, "tools", [])],
        usage=result.usage,
        cost=result.cost,
        conversation_cost=result.conversation_cost,
        branch=None
        if point is None
        else {
            "step": point.step,
            "kind": point.kind,
            "call_id": point.call_id,
            "arguments": point.arguments,
        },
        calls=[_call(r) for r in result.tool_calls],
    )


def _call(record: ToolCallRecord) -> SavedCall:
    return SavedCall(
        call_id=record.id,
        name=record.name,
        arguments=record.raw_arguments,
        output=record.output,
        status=record.status,
        step=record.step,
        server=record.server,
        error=_error(record.error),
        truncated=record.truncated,
    )


def _error(error: BaseException | None) -> str | None:
    return None if error is None else f"{type(error).__name__}: {error}"


def timings(
    events: Sequence[ev.Event],
) -> tuple[list[tuple[float, float | None, bool]], dict[str, int]]:
    """Each turn's (start, end, priced) and each call's turn index, from the run's events."""
    turns: list[list[Any]] = []
    calls: dict[str, int] = {}
    for event in events:
        if isinstance(event, ev.TurnStarted):
            turns.append([event.at, None, False])
        elif isinstance(event, ev.TurnFinished) and turns:
            turns[-1][1] = event.at
        elif isinstance(event, ev.CostReported) and 0 < event.step <= len(turns):
            turns[event.step - 1][2] = True
        elif isinstance(event, ev.ToolCallRequested) and turns:
            calls.setdefault(event.call.id, len(turns) - 1)
    return [(t[0], t[1], t[2]) for t in turns], calls


def secrets_of(run: ChainRun, environment: list[str] | None = None) -> list[str]:
    """Every value that must not reach the log: the provider's key, the MCP servers' headers,
    environment and URL secrets, and the values of secret-named environment variables
    (`environment`, when the caller read them once for many runs)."""
    found = [getattr(run.provider, "_api_key", None) or ""]
    for source in run.sources:
        own = getattr(source, "secrets", None)
        if callable(own):
            found.extend(own())
    env = environment_secrets() if environment is None else environment
    return [s for s in [*found, *env] if s]


def environment_secrets() -> list[str]:
    """The values of the environment variables named like secrets (8 characters or more)."""
    return [v for k, v in os.environ.items() if _SECRET_NAME.search(k) and len(v) >= 8]
