"""Edit & re-run from the timeline: an editor view of a finished result, and the re-run click.

A live view whose run has ended offers "Edit & re-run" on each finished call (see `Timeline`).
That is a view kept live on purpose: `%%llm_chain --live` (or `%config
LLMMagic.static_after_run = False`), or an editor view opened on a finished result with
`edit(result)` / `%llm_edit [name]`, which shows the result through the same reducer and
renderer as a live run (its events are rebuilt from the result, `replay`).

The click sends the edited arguments as one message (`rerun_clicked`): bad JSON or arguments
the tool's schema refuses are shown in that call's editor and nothing runs; otherwise
`result.rerun(call_id, arguments=...)` makes a new run, which the same view shows live with a
"branched from" line, and which ends like any run: static HTML by default (a saved notebook
reads everywhere: a live widget output reopens as "model not found"), live with `--live`. The
new result becomes the notebook's last result, and `Editor.result` / `Timeline.result`.
"""

from __future__ import annotations

import asyncio
import json
import shlex
from typing import TYPE_CHECKING, Any

from .. import events as ev
from ..errors import LLMMagicError
from .errors import NotebookError
from .reducer import apply, show_branch
from .state import shell, state

if TYPE_CHECKING:
    from ..chain import ChainRun
    from ..results import ChainResult
    from .timeline import Timeline

RUNNING_NOTE = "a re-run from this view is still running: wait for it to end, or Cancel it"


def replay(result: ChainResult[Any]) -> list[ev.Event]:
    """The events a finished run would have sent, rebuilt from its result (for the reducer)."""
    result.cost  # noqa: B018 - a price that settles after the run: its turns' costs, first
    out: list[ev.Event] = [ev.RunStarted(result.model, _prompt_of(result), [], at=0.0)]
    by_step: dict[int, list[Any]] = {}
    for rec in result.tool_calls:
        by_step.setdefault(rec.step, []).append(rec)
    out += [ev.ToolCallFinished(rec) for rec in by_step.pop(0, [])]  # a branch's re-run calls
    usage = None
    spent: Any = 0
    for step, turn in enumerate(result.turns, start=1):
        usage = turn.usage if usage is None else usage + turn.usage
        spent = None if spent is None or turn.cost is None else spent + turn.cost
        out += [
            ev.TurnStarted(step, at=0.0),
            ev.UsageReported(step, turn.usage, usage),
            ev.TurnFinished(step, turn.text, list(turn.tool_calls), turn.usage, at=0.0),
            ev.CostReported(step, turn.cost, spent),
            *(ev.ToolCallFinished(rec) for rec in by_step.pop(step, [])),
        ]
    out += [ev.ToolCallFinished(rec) for recs in by_step.values() for rec in recs]
    if result.status == "cancelled":
        out.append(ev.RunCancelled(result, at=result.elapsed))
    elif result.status == "failed":
        out.append(ev.RunFailed(result, result.error, at=result.elapsed))
    else:
        out.append(ev.RunFinished(result, at=result.elapsed))
    return out


def _prompt_of(result: ChainResult[Any]) -> str:
    """The prompt the run itself sent (a fork's new one), "" when it went on without one."""
    first = result.step_ends[0] if result.step_ends else len(result.messages)
    message = result.messages[first] if first < len(result.messages) else None
    if message is None or message.role != "user" or message.tool_results:
        return ""
    return message.text


class Editor:
    """What `edit()` returns: the editor view's timeline and its latest result.

    It is displayed already; shown again (the cell's value), it shows nothing more, so a second
    copy of the live widget never lands in the notebook.
    """

    def __init__(self, timeline: Timeline) -> None:
        self.timeline = timeline

    @property
    def result(self) -> ChainResult[Any] | None:
        """The result the view shows: the edited result, then each re-run's once it ended."""
        return self.timeline.result

    @property
    def results(self) -> list[ChainResult[Any]]:
        """Every result the view shows, oldest first: the edited one, then each re-run's."""
        latest = self.timeline.result
        return [*self.timeline.past_results, *([latest] if latest is not None else [])]

    def _ipython_display_(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"<llm_magic editor of {self.timeline!r}>"


def edit(result: ChainResult[Any], *, live: bool = False, holder: str | None = None) -> Editor:
    """Show a finished `result` as a live timeline whose calls can be edited and re-run.

    live: keep the view live after a re-run ends (another edit can follow); by default a
    re-run ends as static HTML, like every run, so a saved notebook reads everywhere.
    holder: who holds `result`, named over it once a re-run stacks below it.
    """
    from .timeline import _in_kernel

    timeline = editor_timeline(result, live=live)
    if holder is not None:
        timeline.holder = holder
    if not _in_kernel():
        raise NotebookError("edit() needs a notebook (a Jupyter kernel): the editor is a widget")
    timeline.show()
    timeline.offer_edits()
    return Editor(timeline)


def editor_timeline(result: ChainResult[Any], *, live: bool = False) -> Timeline:
    """The timeline of a finished `result`, through the same reducer as a live run."""
    from ..results import ChainResult
    from .timeline import Timeline

    if not isinstance(result, ChainResult):
        raise NotebookError(f"edit() takes the result of a chain, got {type(result).__name__}")
    timeline = Timeline(None, model=result.model, static_after_run=not live, on_edit=rerun_clicked)
    show_branch(timeline.state, result.branched_from)
    for event in replay(result):
        apply(timeline.state, event)
    for turn in timeline.state.turns:  # rebuilt turns have no timing of their own
        turn.ended_at = None
    timeline.result = result
    return timeline


def llm_edit(line: str = "") -> None:
    """`%llm_edit [--live] [NAME]`: edit the calls of result NAME (default: the last result)
    and re-run from there, in a live timeline."""
    from ..results import ChainResult

    words = shlex.split(line)
    live = "--live" in words
    names = [w for w in words if w != "--live"]
    if len(names) > 1 or any(n.startswith("-") for n in names):
        raise NotebookError("%llm_edit: usage: %llm_edit [--live] [NAME]")
    if names:
        ns = getattr(shell(), "user_ns", {})
        result = ns.get(names[0])
        if not isinstance(result, ChainResult):
            what = "nothing" if result is None else f"a {type(result).__name__}"
            raise NotebookError(
                f"%llm_edit: {names[0]!r} is {what}, not the result of a chain "
                "(bind one with %%llm_chain --out NAME)"
            )
    else:
        result = state.last_result
        if result is None:
            raise NotebookError("%llm_edit: no result yet; run a %%llm_chain cell first")
    edit(result, live=live, holder=f"the variable {names[0]}" if names else "no variable")


def rerun_clicked(timeline: Timeline, message: dict[str, Any]) -> None:
    """The "Re-run from here" click (type "rerun": edited arguments) or "Use this result"
    (type "given": a result to take as the call's): check, then branch from the call and show
    the new run in this view."""
    if timeline.widget_closed or not timeline.editable:
        if timeline.state.running and not timeline.widget_closed:
            _note(timeline, RUNNING_NOTE)
        return  # a click from a view that no longer offers editing: nothing runs
    if message.get("generation") != timeline.generation:
        return  # from a stale view of an earlier run
    key = message.get("id")
    result = timeline.result
    if not isinstance(key, str) or not key.startswith("c") or not key[1:].isdigit():
        return
    index = int(key[1:])
    if result is None or index >= len(timeline.state.calls):
        return
    rec = timeline.state.calls[index]
    try:
        asyncio.get_running_loop()  # the re-run runs on it (the kernel's loop)
    except RuntimeError:
        _note(timeline, "no event loop is running here to re-run on")
        return
    try:
        if message.get("type") == "given":
            value = _parse(message.get("value"), any_value=True)
            made = result.fork(at=rec.id, result=value)
        else:
            arguments = _parse(message.get("arguments"))
            made = result.rerun(rec.id, arguments=arguments)
        run = _run_of(made)
    except (ValueError, LLMMagicError) as exc:
        attempt = timeline.edit_errors.get(key, (0, ""))[0] + 1
        timeline.edit_errors[key] = (attempt, str(exc))
        timeline.mark(key)
        timeline.flush()  # the answer to a click shows at once
        return
    _note(timeline, None)
    timeline.retarget(run)

    def ended(event: ev.Event) -> None:
        if isinstance(event, ev.RunEnded):
            state.last_result = event.result
            if timeline.state.note == RUNNING_NOTE:
                _note(timeline, None)
            timeline.close()

    run.subscribe(ended)
    task = made.start()  # a sync result's re-run starts on llm_magic's own loop thread
    if task is not None:  # a failed run's error is in its result and the view; retrieve it
        task.add_done_callback(lambda t: t.cancelled() or t.exception())


def _parse(text: Any, any_value: bool = False) -> Any:
    if not isinstance(text, str):
        raise ValueError("nothing was sent")
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"not valid JSON: {exc}") from None
    if not any_value and not isinstance(value, dict):
        raise ValueError(f"the arguments must be a JSON object ({{...}}), not {text.strip()!r}")
    return value


def _run_of(made: Any) -> ChainRun:
    """The run of what `result.rerun` / `fork` made: a run, or its sync twin's response.

    A branch shows nothing until it starts, and the view that asked for it subscribes first
    (`Timeline.retarget`), so it is shown there, not as a new output."""
    from ..chain import ChainRun
    from ..models import ChainResponse

    run = made._run if isinstance(made, ChainResponse) else made  # the sync twin wraps one
    if not isinstance(run, ChainRun):
        raise LLMMagicError(f"cannot show a re-run of type {type(made).__name__} here")
    return run


def _note(timeline: Timeline, text: str | None) -> None:
    timeline.state.note = text
    timeline.mark()
    timeline.flush()
