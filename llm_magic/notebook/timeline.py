"""The timeline controller: one run's events in, a live view out, a static view once it ends.

* Events fold into a `RunState` through `reducer.apply` (O(1) each), which names the entries they
  changed. A flush, at most every `INTERVAL` seconds on the loop thread, renders only those
  entries (`render`) and sends them to the widget as one patch: streamed text costs a few comm
  messages a second, not one per token, and an event's cost does not depend on the run's size.
* In a kernel the view is one anywidget model (`widget.TimelineWidget`). When the run ends, the
  display is replaced by the static HTML timeline and the widget is closed: a saved notebook
  shows the timeline everywhere (JupyterLab with no kernel, nbconvert, GitHub) and the kernel
  keeps no widget per run. In terminal IPython the view is text lines (`terminal`).
* Front-end messages (Approve/Deny with its reason, Cancel, open details, Edit & re-run) may
  arrive on the main thread or a subshell thread: each is handed to the loop captured at
  construction.
* A view still live after its run ended (`static_after_run=False`, or an editor view from
  `editing.edit`) offers "Edit & re-run" on each finished call: the re-run is a new run
  (`result.rerun`) that this same view then shows (`retarget`); see `editing`.

ipywidgets and anywidget are imported only when a widget view is built.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import events as ev
from ..options import Approval
from ..records import ToolCallRecord
from . import always_allow, saved_copy
from . import render as R
from .branch_view import branch_title_html, stack_html
from .cell_value import mark_shown
from .entries import Entries
from .highlight import code_arguments
from .reducer import HEAD, RunState, apply, show_branch
from .terminal import TerminalApprover, TextView

if TYPE_CHECKING:
    from ..chain import ChainRun
    from ..results import ChainResult
    from .widget import TimelineWidget

INTERVAL = 0.1  # seconds between widget flushes: at most ~10 updates a second
MIN_KERNEL = (7, 4)
# What a view does with an Edit & re-run click: (the timeline, the front end's message).
EditHandler = Callable[["Timeline", dict[str, Any]], None]

__all__ = ["INTERVAL", "Timeline"]


def _in_kernel() -> bool:
    """True in a Jupyter kernel (comms available), False in terminal IPython or plain Python."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _kernel_note() -> str | None:
    """A warning for kernels that cannot take button clicks while a cell runs."""
    try:
        import ipykernel
    except ImportError:
        return None
    version = getattr(ipykernel, "__version__", "0")
    parts: list[int] = []
    for piece in version.split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    if tuple(parts) >= MIN_KERNEL:
        return None
    return (
        f"This kernel (ipykernel {version}) cannot receive clicks while the cell runs: Approve, "
        f"Deny and Cancel only arrive after the cell ends, so a call that needs approval waits "
        f"until you interrupt the kernel. Upgrade to ipykernel >= 7.4 for live buttons."
    )


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _close_figure(value: Any) -> None:
    """A pyplot figure a tool returned is shown in the timeline; close it so the inline backend
    does not show it again below the cell."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None and type(value).__name__ == "Figure" and hasattr(value, "savefig"):
        try:
            pyplot.close(value)
        except Exception:
            pass


class Timeline:
    """A view of one chain run: header, one entry per model turn and per tool call."""

    def __init__(
        self,
        run: ChainRun | None,
        *,
        model: str,
        static_after_run: bool = True,
        on_edit: EditHandler | None = None,
    ) -> None:
        """run: the run to show; None to `attach` it later, so that `approve` can be passed to
        the run at construction. static_after_run: when the run ends, the live widget gives way
        to the static HTML timeline and is closed (the default; False keeps the widget).
        on_edit: what an Edit & re-run click does (`editing.rerun_clicked`); injected, so the
        timeline knows nothing of how a re-run is made."""
        self.on_edit = on_edit
        self._run = run
        self.static_after_run = static_after_run
        self.state = RunState(model=model)
        self._loop = _running_loop()
        self._mode = "none"  # "widget" | "text" | "none"
        self._widget: TimelineWidget | None = None
        self._text: TextView | None = None
        self._handle: Any = None
        self._copy: Any = None  # the saved copy's display, for a view that outlives its run
        self._approvals: dict[str, asyncio.Future[Approval]] = {}
        self.entries = Entries(self.state, self._approvals.keys(), self._code_arguments)
        self._dirty: set[str] = set()
        self._flush_timer: asyncio.TimerHandle | None = None
        self._last_flush = 0.0
        self._closed = False
        self.flushes = 0  # how many flushes reached the widget (tests, benchmarks)
        self._asking: set[asyncio.Task[None]] = set()
        self._terminal = TerminalApprover(self._describe)
        self.result: ChainResult[Any] | None = None  # the shown run's result, once it ended
        self.editable = False  # offer Edit & re-run (a view still live after its run ended)
        self.generation = 0  # which run the view shows: a click from an older one is stale
        self.widget_closed = False
        # Who holds the first run shown (named in its title once a re-run stacks below it);
        # the runs this view showed before the current one, oldest first: (title, HTML, text).
        self.holder = "the cell's result"
        self.past: list[tuple[str, str, str]] = []
        self.past_results: list[ChainResult[Any]] = []
        if run is not None:
            self.attach(run)

    def attach(self, run: ChainRun) -> None:
        """Show `run`. The timeline is the run's approver: a call that needs approval waits for
        its buttons (or the terminal's question), unless the run has an `approval_callback`
        (`approval_callback=timeline.approve` for a run built after this timeline)."""
        self._run = run
        show_branch(self.state, getattr(run, "branched_from", None))
        generation = self.generation

        def on_event(event: ev.Event) -> None:  # a run this view no longer shows (a re-run's
            if self.generation == generation:  # original) may still report a late thread
                self._on_event(event)

        run.subscribe(on_event, approver=True)
        run.viewed = True  # the notebook's run view (`views`) leaves this run alone

    # -- public API ----------------------------------------------------------------------------
    def show(self) -> None:
        """Display the timeline: a live widget in a kernel, compact text lines elsewhere."""
        from IPython.display import display

        if _in_kernel():
            # under %autoawait off the waiting thread reads the clicks (notebook/comm_pump.py)
            self.state.note = _kernel_note()
            self._ensure_widget()
            if not self.static_after_run:  # it stays live: its saved copy goes first
                copy = saved_copy.copy_bundle(self._static_bundle())
                self._copy = display(copy, raw=True, display_id=True)  # type: ignore[no-untyped-call]
            self._handle = display(self, display_id=True)  # type: ignore[no-untyped-call]
        else:
            self._mode = "text"
            self._text = TextView(self.state.model)

    async def approve(self, record: ToolCallRecord) -> Approval:
        """The approval callback: the entry's approval card, resolved by a click (none for a
        tool the person chose to always allow)."""
        if always_allow.allows(record.name):
            return Approval(True, None)
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        if self._mode == "text" or (self._mode == "none" and not _in_kernel()):
            if self._text is not None:
                self._text.end_line()
            return await self._terminal.ask(record)
        self._ensure_widget()
        future: asyncio.Future[Approval] = loop.create_future()
        self._approvals[record.id] = future
        self.mark(self._key(record))
        try:
            return await future
        finally:
            self._approvals.pop(record.id, None)
            self.mark(self._key(record))

    def _code_arguments(self, name: str) -> list[str]:
        """The arguments of a tool that hold Python source, for its approval card."""
        tool = self._run.tools.get(name) if self._run is not None else None
        return code_arguments(tool.schema) if tool is not None else []

    def _describe(self, name: str) -> str | None:
        """A tool's description, for the terminal question's `?`."""
        tool = self._run.tools.get(name) if self._run is not None else None
        return tool.description if tool is not None else None

    def _ask(self, rec: ToolCallRecord) -> None:
        """Ask the person and answer the run with `decide()`; the run's own
        `approval_callback`, when it has one, decides instead."""
        run = self._run
        if run is None or run.options.approval_callback is not None:
            return

        async def ask() -> None:
            decision = await self.approve(rec)
            run.decide(rec.id, decision.approved, decision.reason)

        task = asyncio.get_running_loop().create_task(ask())
        self._asking.add(task)
        task.add_done_callback(self._asking.discard)

    def close(self) -> None:
        """Render the final state; in a kernel, swap the widget for the static timeline."""
        self._closed = True
        for task in list(self._asking):  # a question outliving its run would keep the terminal
            task.cancel()
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        widget = self._widget
        if widget is not None:
            self.flush()
        if self._text is not None:
            self._text.finish(self.state)
        if self._handle is None:
            if not self.static_after_run:
                self.offer_edits()
            return
        if self.static_after_run and widget is not None:
            if self._copy is not None:  # the view becomes the static timeline itself
                self._copy.update(saved_copy.EMPTY, raw=True)
                self._copy = None
            self._handle.update(self._static_bundle(), raw=True)
            widget.close_all()
            self.widget_closed = True  # no click can reach this view any more
        else:
            self._handle.update(self)
            if self._copy is not None:
                self._copy.update(saved_copy.copy_bundle(self._static_bundle()), raw=True)
            self.offer_edits()

    def offer_edits(self) -> None:
        """Show Edit & re-run on the finished calls of the ended run (the view stays live)."""
        if self.result is None or self._widget is None or self.widget_closed:
            return
        self.editable = self._widget.editable = True
        self.entries.editable_ids = {c.id for c in self.result.tool_calls}
        self._dirty.update(self.state.keys.values())
        self._dirty.add(HEAD)
        self.flush()

    def retarget(self, run: ChainRun) -> None:
        """Show `run` (a re-run this view started) below the runs it showed, which stay as
        their static timelines (a branch adds to the history, it replaces nothing)."""
        self._stack_current()
        self.generation += 1
        self.editable = False
        self.result = None
        self.state = RunState(model=run.provider.model_id)
        self.entries = Entries(self.state, self._approvals.keys(), self._code_arguments)
        self._dirty = {HEAD}
        widget = self._widget
        if widget is not None:
            with widget.hold_sync():
                widget.generation = self.generation
                widget.editable = False
                widget.reset(self.entries.snapshot())
        self.attach(run)
        if widget is not None:
            widget.history = self._history_html()
        self.flush()

    def _title(self, number: int, state: RunState) -> str:
        if number == 0:
            return f"original run · {self.holder} holds this run"
        return f"branch {number} · {state.branch or 'a re-run'}"

    def _stack_current(self) -> None:
        """Keep the run shown now as a static section of the view's stack."""
        title = self._title(self.generation, self.state)
        html = R.static_html(self.state, self.entries.detail_html, self.entries.line)
        self.past.append((title, branch_title_html(title) + html, R.static_text(self.state)))
        if self.result is not None:
            self.past_results.append(self.result)

    def _history_html(self) -> str:
        """The live view's runs above the current one, and the current one's title."""
        if not self.past:
            return ""
        return "".join(p[1] for p in self.past) + branch_title_html(self._newest_title())

    def _newest_title(self) -> str:
        return (
            f"{self._title(self.generation, self.state)} · the newest: the notebook's last result"
        )

    @property
    def edit_errors(self) -> dict[str, tuple[int, str]]:
        """Per call key, the attempt and message of the last refused edit (shown in its editor)."""
        return self.entries.edit_errors

    @property
    def widget(self) -> TimelineWidget:
        """The live widget (built on first use)."""
        return self._ensure_widget()

    def flush(self) -> None:
        """Send every pending change to the widget now, as one message."""
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        widget = self._widget
        if widget is None or not self._dirty:
            return
        self._last_flush = time.monotonic()
        dirty, self._dirty = self._dirty, set()
        now = time.monotonic()
        order = sorted(dirty, key=self.entries.order)
        entries = [e for k in order if k != HEAD for e in self.entries.entries(k, now)]
        with widget.hold_sync():
            if HEAD in dirty:
                widget.header = R.header_html(self.state, now)
                widget.running = self.state.running
                widget.has_calls = bool(self.state.calls)
                widget.allowed = always_allow.allowed()
                widget.note = R.note_html(self.state.note) if self.state.note else ""
            if entries:
                widget.send_entries(entries)
        self.flushes += 1

    # -- rich output ----------------------------------------------------------------------------
    def _repr_mimebundle_(
        self, include: Any = None, exclude: Any = None, **kwargs: Any
    ) -> dict[str, Any]:
        bundle: dict[str, Any] = {}
        if self._widget is not None or _in_kernel():
            widget = self._ensure_widget()
            self.flush()
            shown: Any = widget._repr_mimebundle_(**kwargs) or {}
            bundle.update(shown[0] if isinstance(shown, tuple) else shown)
        if self._copy is None:
            bundle.update(self._static_bundle())
        else:  # the saved copy above holds the static timeline
            bundle["text/plain"] = saved_copy.WIDGET_TEXT
        return bundle

    def _static_bundle(self) -> dict[str, str]:
        text = R.static_text(self.state)
        html = R.static_html(self.state, self.entries.detail_html, self.entries.line)
        if self.past:  # every run this view showed, oldest first
            title = self._newest_title()
            html = stack_html([p[1] for p in self.past], title, html)
            text = "\n\n".join([*(f"{t}\n{x}" for t, _h, x in self.past), f"{title}\n{text}"])
        return {"text/plain": text, "text/html": html}

    def __repr__(self) -> str:
        return f"<Timeline {R.header_text(self.state)}>"

    # -- events (loop thread) ---------------------------------------------------------------------
    def _on_event(self, event: ev.Event) -> None:
        if self._loop is None:
            self._loop = _running_loop()
        if isinstance(event, ev.ToolCallAwaitingApproval):
            self._ask(event.call)
        changed = apply(self.state, event)
        text = self._text
        if text is not None:
            text.feed(self.state, event)
        if isinstance(event, ev.ToolCallFinished):
            _close_figure(event.call.result)
        if isinstance(event, ev.RunEnded):
            self.result = event.result
            if self._mode in ("widget", "text") and self.state.answer:
                mark_shown(event.result)
            self._dirty.update(changed)
            self.flush()  # the final state shows at once, not a throttle interval later
            return
        if changed:
            self._dirty.update(changed)
            if not self.state.running:  # a let-go thread ended after the run (ToolCallSettled)
                self._show_late()
            else:
                self._schedule()

    def _show_late(self) -> None:
        """Show a change after the run ended: live, or in place of the static timeline."""
        if self._handle is not None and self.widget_closed:
            self._dirty.clear()
            self._handle.update(self._static_bundle(), raw=True)
        else:
            self.flush()

    def _key(self, rec: ToolCallRecord) -> str:
        return self.state.keys.get(rec.id, "")

    def mark(self, *keys: str) -> None:
        """Show a change of these entries (and the header) at the next flush."""
        self._dirty.update(k for k in keys if k)
        self._dirty.add(HEAD)
        self._schedule()

    def _schedule(self) -> None:
        """Flush within INTERVAL of the first pending change; never more often than that."""
        if self._widget is None or self._flush_timer is not None:
            return
        delay = max(0.0, self._last_flush + INTERVAL - time.monotonic())
        loop = self._loop
        if loop is None or loop.is_closed() or not loop.is_running():
            if delay == 0.0:
                self.flush()  # no loop to wait on: flush when the interval has passed
            return
        if _running_loop() is loop:
            self._flush_timer = loop.call_later(delay, self._timed_flush)
        else:
            loop.call_soon_threadsafe(self._schedule)

    def _timed_flush(self) -> None:
        self._flush_timer = None
        self.flush()

    # -- the widget and its messages ----------------------------------------------------------------
    def _ensure_widget(self) -> TimelineWidget:
        if self._widget is None:
            from .widget import TimelineWidget

            self._mode = "widget"
            self._widget = TimelineWidget(self._snapshot, self._from_front_end)
            self._dirty.add(HEAD)
            self.flush()
        return self._widget

    def _snapshot(self) -> list[dict[str, Any]]:
        """Every entry of the run shown now (the widget keeps this, across re-runs)."""
        return self.entries.snapshot()

    def _from_front_end(self, message: dict[str, Any]) -> None:
        """A front-end message; may run on the main thread or a subshell thread."""
        loop = self._loop
        if loop is None or loop.is_closed() or not loop.is_running() or _running_loop() is loop:
            self._act(message)
        else:
            loop.call_soon_threadsafe(self._act, message)

    def _act(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "decide":
            reason = message.get("reason")
            reason = reason.strip() if isinstance(reason, str) else ""
            approved = bool(message.get("approved"))
            if approved and message.get("always") is True:
                self._always_allow(message.get("ids"))
            self._decide(message.get("ids"), approved, reason or None)
        elif kind == "revoke" and isinstance(message.get("tool"), str):
            always_allow.revoke(message["tool"])
            self.mark()
        elif kind == "cancel":
            if self.state.running and self._run is not None:
                self._run.cancel("cancelled from the timeline")
        elif kind == "open":
            self._set_open([message.get("id")], bool(message.get("open")))
        elif kind == "snapshot" and self._widget is not None:  # a view missed entries
            self._widget.reset(self.entries.snapshot())
        elif kind == "open_all":
            self._set_open(list(self.state.keys.values()), bool(message.get("open")))
        elif kind in ("rerun", "given") and self.on_edit is not None:
            self.on_edit(self, message)
        elif kind == "done" and self.editable:  # "Done": the view becomes the static timeline
            self.static_after_run = True
            self.close()

    def _set_open(self, keys: list[Any], opened: bool) -> None:
        for key in keys:
            if not isinstance(key, str) or not key.startswith("c"):
                continue
            if opened:
                self.entries.opened.add(key)
            else:
                self.entries.opened.discard(key)
            self._dirty.add(key)
        self._schedule()

    def _always_allow(self, keys: Any) -> None:
        """Always allow the tools of these calls; their other cards here are approved too."""
        wanted = set(keys) if isinstance(keys, list) else set()
        names = {r.name for r in self.state.calls if self.state.keys.get(r.id) in wanted}
        for name in names:
            always_allow.allow(name)
        others = [r for r in self.state.calls if r.name in names and r.id in self._approvals]
        self._decide([self.state.keys[r.id] for r in others], True, None)
        self.mark()

    def _decide(self, keys: Any, approved: bool, reason: str | None) -> None:
        wanted = set(keys) if isinstance(keys, list) else set()
        for call_id, future in list(self._approvals.items()):
            if self.state.keys.get(call_id) in wanted and not future.done():
                future.set_result(Approval(approved, reason))
