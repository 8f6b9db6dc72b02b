"""The timeline controller: one run's events in, a live view out, a static view once it ends.

* Events fold into a `RunState` through `reducer.apply` (O(1) each), which names the entries they
  changed. A flush, at most every `INTERVAL` seconds on the loop thread, renders only those
  entries (`render`) and sends them to the widget as one patch: streamed text costs a few comm
  messages a second, not one per token, and an event's cost does not depend on the run's size.
* In a kernel the view is one anywidget model (`widget.TimelineWidget`). When the run ends, the
  display is replaced by the static HTML timeline and the widget is closed: a saved notebook
  shows the timeline everywhere (JupyterLab with no kernel, nbconvert, GitHub) and the kernel
  keeps no widget per run; the widget is not sent a final state it would show for an instant.
  In terminal IPython the view is text lines (`terminal`).
* Front-end messages (Approve/Deny with its reason, Cancel, open details, Edit & re-run) may
  arrive on the main thread or a subshell thread: each is handed to the loop captured at
  construction.
* A view still live after its run ended (`static_after_run=False`, or an editor view from
  `editing.edit`) offers "Edit & re-run" on each finished call: the re-run is a new run
  (`result.rerun`) that this same view then shows (`retarget`); see `editing`.

The controller's parts, each in its own module: `entries` (what the widget gets, and caches),
`approval_cards` (the questions to the person), `outputs` (the cell's displays), `run_stack`
(the runs a view showed before). ipywidgets and anywidget are imported only when a widget view
is built.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import events as ev
from .._approver import running_loop
from ..options import Approval
from ..records import ToolCallRecord
from . import always_allow
from . import render as R
from .approval_cards import ApprovalCards
from .cell_value import mark_shown
from .entries import Entries
from .outputs import Outputs
from .reducer import HEAD, RunState, apply, show_branch
from .run_stack import RunStack
from .terminal import TextView
from .throttle import Throttle

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


def _close_figure(value: Any) -> None:
    """A pyplot figure a tool returned is shown in the timeline; close it so the inline backend
    does not show it again below the cell."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None and type(value).__name__ == "Figure" and hasattr(value, "savefig"):
        try:
            pyplot.close(value)
        except Exception:
            pass


def _head(state: RunState, now: float) -> dict[str, Any]:
    """The widget's header traits."""
    return {
        "header": R.header_html(state, now),
        "running": state.running,
        "has_calls": bool(state.calls),
        "allowed": always_allow.allowed(),
        "note": R.note_html(state.note) if state.note else "",
    }


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
        self.run = run
        self.static_after_run = static_after_run
        self.state = RunState(model=model)
        self.throttle = Throttle(self.flush, INTERVAL)
        self._mode = "none"  # "widget" | "text" | "none"
        self._widget: TimelineWidget | None = None
        self._head_sent: dict[str, Any] = {}  # the header traits the widget holds
        self._text: TextView | None = None
        self.outputs = Outputs(self._static_bundle)
        self.cards = ApprovalCards(self)
        self.entries = Entries(self.state, self.cards.pending.keys(), self.cards.code_arguments)
        self._dirty: set[str] = set()
        self.flushes = 0  # how many flushes reached the widget (tests, benchmarks)
        self.result: ChainResult[Any] | None = None  # the shown run's result, once it ended
        self.editable = False  # offer Edit & re-run (a view still live after its run ended)
        self.generation = 0  # which run the view shows: a click from an older one is stale
        self.widget_closed = False
        # the runs this view showed before the current one, and their results, oldest first
        self.stack = RunStack()
        self.past_results: list[ChainResult[Any]] = []
        if run is not None:
            self.attach(run)

    @property
    def holder(self) -> str:
        """Who holds the first run shown (named in its title once a re-run stacks below it)."""
        return self.stack.holder

    @holder.setter
    def holder(self, holder: str) -> None:
        self.stack.holder = holder

    def attach(self, run: ChainRun) -> None:
        """Show `run`. The timeline is the run's approver: a call that needs approval waits for
        its buttons (or the terminal's question), unless the run has an `approval_callback`
        (`approval_callback=timeline.approve` for a run built after this timeline)."""
        self.run = run
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
        if _in_kernel():
            # under %autoawait off the waiting thread reads the clicks (notebook/comm_pump.py)
            self.state.note = _kernel_note()
            self._ensure_widget()
            self.outputs.show(self, live=not self.static_after_run)
        else:
            self._mode = "text"
            self._text = TextView(self.state.model)

    async def approve(self, record: ToolCallRecord) -> Approval:
        """The approval callback: the entry's approval card, resolved by a click (none for a
        tool the person chose to always allow)."""
        if always_allow.allows(record.name):
            return Approval(True, None)
        if self.throttle.loop is None:
            self.throttle.loop = asyncio.get_running_loop()
        if self._mode == "text" or (self._mode == "none" and not _in_kernel()):
            if self._text is not None:
                self._text.end_line()
            return await self.cards.terminal.ask(record)
        self._ensure_widget()
        return await self.cards.card(record)

    def close(self) -> None:
        """Render the final state; in a kernel, swap the widget for the static timeline."""
        self.cards.cancel()
        self.throttle.cancel()
        widget = self._widget
        if widget is not None and not self._becomes_static():
            self.flush()
        if self._text is not None:
            self._text.finish(self.state)
        if not self.outputs.shown:
            if not self.static_after_run:
                self.offer_edits()
            return
        if self.static_after_run and widget is not None:
            self.outputs.become_static()  # the view becomes the static timeline itself
            widget.close_all()
            self.widget_closed = True  # no click can reach this view any more
        else:
            self.outputs.refresh(self)
            self.offer_edits()

    def _becomes_static(self) -> bool:
        """Whether `close` will put the static timeline in the live widget's place."""
        return self.static_after_run and self._widget is not None and self.outputs.shown

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
        self.stack.push(self.generation, self.state, self.entries)
        if self.result is not None:
            self.past_results.append(self.result)
        self.generation += 1
        self.editable = False
        self.result = None
        self.state = RunState(model=run.provider.model_id)
        self.entries = Entries(self.state, self.cards.pending.keys(), self.cards.code_arguments)
        self._dirty = {HEAD}
        widget = self._widget
        if widget is not None:
            with widget.hold_sync():
                widget.generation = self.generation
                widget.editable = False
                widget.reset(self.entries.snapshot())
        self.attach(run)
        if widget is not None:
            widget.history = self.stack.history_html(self.generation, self.state)
        self.flush()

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
        self.throttle.cancel()
        widget = self._widget
        if widget is None or not self._dirty:
            return
        now = self.throttle.flushed()
        dirty, self._dirty = self._dirty, set()
        order = sorted(dirty, key=self.entries.order)
        entries = [e for k in order if k != HEAD for e in self.entries.entries(k, now)]
        with widget.hold_sync():
            if HEAD in dirty:
                for name, value in _head(self.state, now).items():
                    # most header traits keep their value from one event to the next: setting
                    # one anyway costs its validation (a list's, element by element) for nothing
                    if self._head_sent.get(name) != value:
                        setattr(widget, name, value)
                        self._head_sent[name] = value
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
        return self.outputs.beside_widget(bundle)

    def _static_bundle(self) -> dict[str, str]:
        return self.stack.bundle(self.generation, self.state, self.entries)

    def __repr__(self) -> str:
        return f"<Timeline {R.header_text(self.state)}>"

    # -- events (loop thread) ---------------------------------------------------------------------
    def _on_event(self, event: ev.Event) -> None:
        if self.throttle.loop is None:
            self.throttle.loop = running_loop()
        if isinstance(event, ev.ToolCallAwaitingApproval):
            self.cards.ask(event.call)
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
            if self._becomes_static():  # close() swaps the widget for the static timeline: its
                self._schedule()  # final state is not sent, unless close() comes late
            else:
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
        if self.outputs.shown and self.widget_closed:
            self._dirty.clear()
            self.outputs.handle.update(self._static_bundle(), raw=True)
        else:
            self.flush()

    def mark(self, *keys: str) -> None:
        """Show a change of these entries (and the header) at the next flush."""
        self._dirty.update(k for k in keys if k)
        self._dirty.add(HEAD)
        self._schedule()

    def _schedule(self) -> None:
        """Flush within INTERVAL of the first pending change (see `throttle`)."""
        if self._widget is not None:
            self.throttle.schedule()

    # -- the widget and its messages ----------------------------------------------------------------
    def _ensure_widget(self) -> TimelineWidget:
        if self._widget is None:
            from .widget import TimelineWidget

            self._mode = "widget"
            # its opening message carries the header and every entry (a full snapshot, see
            # `TimelineWidget.get_state`): no update needs to follow it, and it counts as a
            # flush for the throttle
            head = _head(self.state, self.throttle.flushed())
            self._widget = TimelineWidget(self._snapshot, self._from_front_end, **head)
            self._head_sent = head  # only this view sets them (the front end never does)
            self._dirty.clear()
        return self._widget

    def _snapshot(self) -> list[dict[str, Any]]:
        """Every entry of the run shown now (the widget keeps this, across re-runs)."""
        return self.entries.snapshot()

    def _from_front_end(self, message: dict[str, Any]) -> None:
        """A front-end message; may run on the main thread or a subshell thread."""
        loop = self.throttle.loop
        if loop is None or loop.is_closed() or not loop.is_running() or running_loop() is loop:
            self._act(message)
        else:
            loop.call_soon_threadsafe(self._act, message)

    def _act(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind in ("decide", "revoke"):
            self.cards.act(message)
        elif kind == "cancel":
            if self.state.running and self.run is not None:
                self.run.cancel("cancelled from the timeline")
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
