"""The live tool-call timeline: an ipywidgets view of a run, built from its events only.

Design (see ../shared/reference/jupyter-event-loop.md §3 and §6):

* Events update a plain `RunState` in O(1) and mark what changed. A flush, at most every
  `INTERVAL` seconds on the loop thread, pushes only the changed entries to their widgets, each
  inside `hold_sync()`; streamed text therefore costs a few comm messages a second, not one per
  token, and the cost of an event does not depend on how many entries the timeline holds.
* One small widget group per entry, created once. Entries live in fixed-size chunk boxes, so an
  append resends a short `children` list, never the whole timeline. Details (arguments, rich
  result, text sent to the model, traceback) are built only when an entry is first expanded.
* Button callbacks may run on the main thread or on a subshell thread: every one of them is
  handed to the loop captured at construction (`call_soon_threadsafe`).
* `_repr_mimebundle_` carries the widget view plus a self-contained `text/html` and a readable
  `text/plain`; `close()` refreshes the display (display_id) so a saved notebook holds the final
  state. In terminal IPython (no kernel) the timeline prints compact live text lines instead.

ipywidgets is imported lazily, only when a widget view is built.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import events as ev
from ..chain import Approval
from ..events import ToolCallRecord
from . import render as R
from .render import RunState, TurnState
from .terminal import _ask_in_terminal, _TextView

if TYPE_CHECKING:
    from ..chain import ChainRun

INTERVAL = 0.1  # seconds between widget flushes: at most ~10 updates a second
TICK = 1.0  # refresh of the elapsed time in the header while the run goes on
CHUNK = 50  # entries per chunk box
MIN_KERNEL = (7, 4)

__all__ = ["Timeline"]


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


class Timeline:
    """A live view of one chain run: header, one entry per model turn and per tool call."""

    def __init__(self, run: ChainRun, *, model: str, static_after_run: bool = False) -> None:
        """static_after_run: when the run ends, replace the live widget by the static timeline
        (see `LLMMagic.static_after_run`)."""
        self._run = run
        self.static_after_run = static_after_run
        self.state = RunState(model=model)
        self._loop = _running_loop()
        self._turn: TurnState | None = None
        self._mode = "none"  # "widget" | "text" | "none"
        self._view: _WidgetView | None = None
        self._text: _TextView | None = None
        self._handle: Any = None
        self._approvals: dict[str, asyncio.Future[Approval]] = {}
        self._dirty_turns: dict[int, TurnState] = {}
        self._dirty_calls: dict[str, ToolCallRecord] = {}
        self._header_dirty = True
        self._flush_timer: asyncio.TimerHandle | None = None
        self._tick_timer: asyncio.TimerHandle | None = None
        self._last_flush = 0.0
        self._closed = False
        self._details: dict[str, tuple[Any, str]] = {}
        self.flushes = 0  # how many flushes reached the widgets (tests, benchmarks)
        self._asking: set[asyncio.Task[None]] = set()
        # the timeline is the run's approver: calls needing approval wait for its buttons
        run.subscribe(self._on_event, approver=True)

    # -- public API ----------------------------------------------------------------------------
    def show(self) -> None:
        """Display the timeline: a live widget in a kernel, compact text lines elsewhere."""
        from IPython.display import display

        if _in_kernel():
            self.state.note = _kernel_note()
            self._ensure_view()
            self._handle = display(self, display_id=True)
            self._start_ticker()
        else:
            self._mode = "text"
            self._text = _TextView(self)

    async def approve(self, record: ToolCallRecord) -> Approval:
        """The approval callback: Approve/Deny (+ reason) on the entry, resolved by a click."""
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        if self._mode == "text" or (self._mode == "none" and not _in_kernel()):
            return await _ask_in_terminal(record)
        self._ensure_view()
        future: asyncio.Future[Approval] = loop.create_future()
        self._approvals[record.id] = future
        view = self._view
        if view is not None:
            view.expand(record.id, True)
        self._mark_call(record)
        try:
            return await future
        finally:
            self._approvals.pop(record.id, None)
            self._mark_call(record)

    def close(self) -> None:
        """Stop the timers, render the final state, refresh the display's saved text/html."""
        self._closed = True
        for task in list(self._asking):  # a question outliving its run would keep the terminal
            task.cancel()
        for timer in (self._flush_timer, self._tick_timer):
            if timer is not None:
                timer.cancel()
        self._flush_timer = self._tick_timer = None
        if self._view is not None:
            self._header_dirty = True
            self.flush()
            self._view.finish()
        if self._text is not None:
            self._text.finish()
        if self._handle is None:
            return
        if self.static_after_run and self._view is not None:
            self._handle.update(self._static_bundle(), raw=True)
            _close_tree(self._view.root)
        else:
            self._handle.update(self)

    @property
    def widget(self) -> Any:
        """The root ipywidgets box (built on first use)."""
        return self._ensure_view().root

    def flush(self) -> None:
        """Push every pending change to the widgets now."""
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        view = self._view
        if view is None:
            return
        self._last_flush = time.monotonic()
        turns, calls = self._dirty_turns, self._dirty_calls
        header = self._header_dirty
        if not (turns or calls or header or view.lists):
            return
        self._dirty_turns, self._dirty_calls, self._header_dirty = {}, {}, False
        view.flush(turns.values(), calls.values(), header)
        self.flushes += 1

    # -- rich output ----------------------------------------------------------------------------
    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None, **kwargs: Any) -> dict:
        bundle: dict[str, Any] = {}
        if self._view is not None or _in_kernel():
            view = self._ensure_view()
            self.flush()
            bundle.update(view.root._repr_mimebundle_(**kwargs) or {})
        bundle.update(self._static_bundle())
        return bundle

    def _static_bundle(self) -> dict[str, str]:
        return {
            "text/plain": R.static_text(self.state),
            "text/html": R.static_html(self.state, self._detail_html),
        }

    def __repr__(self) -> str:
        return f"<Timeline {R.header_text(self.state)}>"

    def _detail_html(self, rec: ToolCallRecord) -> str:
        """Detail markup of a call, cached while the call's state does not change."""
        key = (rec.status, rec.ended_at, rec.reason)
        cached = self._details.get(rec.id)
        if cached is not None and cached[0] == key:
            return cached[1]
        markup = R.call_detail_html(rec)
        self._details[rec.id] = (key, markup)
        return markup

    # -- events (loop thread) ---------------------------------------------------------------------
    def _on_event(self, event: ev.Event) -> None:
        if self._loop is None:
            self._loop = _running_loop()
        state = self.state
        if isinstance(event, ev.ToolCallEvent):
            rec = event.call
            if isinstance(event, ev.ToolCallAwaitingApproval):
                self._ask(rec)
            if rec.id not in state.seen:
                self._add_call(rec)
            state.count(rec)
            self._mark_call(rec)
            if self._text is not None:
                self._text.call(rec, event)
            return
        if isinstance(event, ev.TextDelta):
            turn = self._turn
            if turn is not None:
                turn.parts.append(event.text)
                self._mark_turn(turn)
                if self._text is not None:
                    self._text.delta(turn, event.text)
            return
        if isinstance(event, ev.RunStarted):
            state.status = "running"
            state.started_at = event.at
            if not state.model:
                state.model = event.model
        elif isinstance(event, ev.TurnStarted):
            turn = TurnState(step=event.step, started_at=event.at)
            state.turns.append(turn)
            self._turn = turn
            if self._view is not None:
                self._view.add_turn(turn)
            self._mark_turn(turn)
        elif isinstance(event, ev.UsageReported):
            state.usage = event.total
            if self._turn is not None:
                self._turn.usage = event.usage
                self._mark_turn(self._turn)
        elif isinstance(event, ev.TurnFinished):
            turn = self._turn
            if turn is not None:
                turn.final_text = event.text
                turn.ended_at = event.at
                turn.status = "done"
                self._mark_turn(turn)
                if self._text is not None:
                    self._text.turn_done(turn)
        elif isinstance(event, ev.RunEnded):
            self._run_ended(event)
        self._header_dirty = True
        self._schedule()

    def _ask(self, rec: ToolCallRecord) -> None:
        """Ask the person (buttons, or the terminal) and answer the run with `decide()`; the
        run's own `approval_callback`, when it has one, decides instead."""
        if self._run.options.approval_callback is not None:
            return

        async def ask() -> None:
            decision = await self.approve(rec)
            self._run.decide(rec.id, decision.approved, decision.reason)

        task = asyncio.get_running_loop().create_task(ask())
        self._asking.add(task)
        task.add_done_callback(self._asking.discard)

    def _add_call(self, rec: ToolCallRecord) -> None:
        state = self.state
        state.calls.append(rec)
        state.steps = max(state.steps, rec.step)
        turn = self._turn
        if turn is not None:
            turn.calls.append(rec)
            self._mark_turn(turn)
        if self._view is not None:
            self._view.add_call(turn, rec)

    def _run_ended(self, event: ev.RunEnded) -> None:
        state, result = self.state, event.result
        state.status = result.status
        state.ended_at = event.at
        state.steps = result.steps
        if isinstance(event, ev.RunFailed) and event.error is not None:
            state.error = f"{type(event.error).__name__}: {event.error}"
        turn = self._turn
        if turn is not None and turn.ended_at is None:
            turn.ended_at = event.at
            turn.status = "cancelled" if result.status == "cancelled" else "stopped"
            self._mark_turn(turn)
        if self._tick_timer is not None:
            self._tick_timer.cancel()
            self._tick_timer = None
        self._header_dirty = True
        if self._text is not None:
            self._text.run_ended()
        if self._view is not None:
            self._view.run_ended()
            self.flush()  # the final state shows at once, not a throttle interval later

    def _mark_turn(self, turn: TurnState) -> None:
        self._dirty_turns[id(turn)] = turn
        self._schedule()

    def _mark_call(self, rec: ToolCallRecord) -> None:
        self._dirty_calls[rec.id] = rec
        self._header_dirty = True
        self._schedule()

    def _schedule(self) -> None:
        """Flush within INTERVAL of the first pending change; never more often than that."""
        if self._view is None or self._flush_timer is not None:
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

    def _start_ticker(self) -> None:
        loop = self._loop
        if loop is None or self._tick_timer is not None or not self.state.running:
            return
        if _running_loop() is loop:
            self._tick_timer = loop.call_later(TICK, self._tick)

    def _tick(self) -> None:
        self._tick_timer = None
        if self._closed or not self.state.running:
            return
        self._header_dirty = True
        self._schedule()
        self._start_ticker()

    # -- view and buttons -----------------------------------------------------------------------
    def _ensure_view(self) -> _WidgetView:
        if self._view is None:
            self._mode = "widget"
            self._view = _WidgetView(self)
        return self._view

    def _post(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run fn on the loop thread (button callbacks arrive on main or subshell threads)."""
        loop = self._loop
        if loop is None or loop.is_closed() or not loop.is_running() or _running_loop() is loop:
            fn(*args)
        else:
            loop.call_soon_threadsafe(fn, *args)

    def _decide(self, call_id: str, approved: bool, reason: str | None) -> None:
        future = self._approvals.get(call_id)
        if future is not None and not future.done():
            future.set_result(Approval(approved, reason or None))

    def _cancel(self) -> None:
        if self.state.running:
            self._run.cancel("cancelled from the timeline")
            if self._view is not None:
                self._view.cancelling()


# -- widgets ------------------------------------------------------------------------------------


class _Chunked:
    """A box whose items sit in chunk boxes of CHUNK: an append resends one short list."""

    def __init__(self, W: Any, box: Any, chunk_layout: Any) -> None:
        self.W, self.box, self.chunk_layout = W, box, chunk_layout
        self.prefix: tuple[Any, ...] = ()  # widgets shown before the chunks (a group label)
        self.chunks: list[Any] = []
        self.items: list[list[Any]] = []
        self.pending: list[Any] = []

    def append(self, widget: Any) -> None:
        self.pending.append(widget)

    def set_prefix(self, *widgets: Any) -> None:
        self.prefix = widgets
        self.box.children = (*self.prefix, *self.chunks)

    def commit(self) -> None:
        if not self.pending:
            return
        touched: set[int] = set()
        grew = False
        for widget in self.pending:
            if not self.items or len(self.items[-1]) >= CHUNK:
                self.items.append([])
                self.chunks.append(self.W.VBox(layout=self.chunk_layout))
                grew = True
            self.items[-1].append(widget)
            touched.add(len(self.items) - 1)
        self.pending = []
        for index in sorted(touched):
            self.chunks[index].children = tuple(self.items[index])
        if grew:
            self.box.children = (*self.prefix, *self.chunks)


class _Shared:
    """Layouts and styles shared by every entry: no per-entry style/layout comms."""

    def __init__(self, W: Any) -> None:
        L = W.Layout
        from ipywidgets.widgets.widget_string import HTMLStyle

        self.html_style = HTMLStyle()
        self.button_style = W.ButtonStyle()
        self.caret_style = W.ButtonStyle(button_color="transparent", font_weight="bold")
        self.plain = L()
        self.chunk = L(width="100%", margin="0", padding="0", overflow="visible")
        self.entry = L(width="100%", margin="0", padding="0", overflow="visible")
        self.row = L(width="100%", margin="0", align_items="center", overflow="hidden")
        self.line = L(flex="1 1 auto", min_width="0", width="auto", margin="0", height="auto")
        self.caret = L(width="24px", height="22px", padding="0", margin="0 2px 0 0", flex="none")
        self.text = L(width="100%", margin="0 0 0 28px", height="auto")
        self.group = L(
            width="auto",
            margin="1px 0 4px 10px",
            padding="0 0 0 8px",
            border_left="2px solid var(--jp-border-color2, #d0d7de)",
            overflow="visible",
        )
        self.detail = L(width="auto", margin="0 0 4px 26px", padding="0 0 0 8px", height="auto")
        self.detail_html = L(width="100%", margin="0", height="auto")
        self.small_button = L(width="auto", height="24px", padding="0 10px", margin="2px 6px 2px 0")
        self.bar = L(width="auto", margin="2px 0 4px 26px", align_items="center")
        self.reason = L(width="260px", height="24px", margin="2px 0")
        self.copy = L(width="100%", height="180px", margin="2px 0")
        self.flex = L(flex="1 1 auto", min_width="0", width="auto", margin="0", height="auto")


class _CallView:
    __slots__ = (
        "bar",
        "bar_buttons",
        "box",
        "copy_area",
        "copy_what",
        "detail",
        "detail_html",
        "expanded",
        "line",
        "rec",
        "toggle",
    )

    def __init__(self, view: _WidgetView, rec: ToolCallRecord) -> None:
        W, S = view.W, view.S
        self.rec = rec
        self.expanded = False
        self.toggle = W.Button(
            description="▸",
            tooltip="show details",
            layout=S.caret,
            style=S.caret_style,
            _dom_classes=("llm-toggle",),
        )
        self.toggle.on_click(lambda _b, i=rec.id: view.tl._post(view.toggle, i))
        self.line = W.HTML(value=R.call_line_html(rec), layout=S.line, style=S.html_style)
        row = W.HBox([self.toggle, self.line], layout=S.row, _dom_classes=("llm-call-row",))
        self.box = W.VBox([row], layout=S.entry, _dom_classes=("llm-call",))
        self.detail: Any = None
        self.detail_html: Any = None
        self.bar: Any = None
        self.bar_buttons: tuple[Any, ...] = ()
        self.copy_area: Any = None
        self.copy_what = ""


class _TurnView:
    __slots__ = ("box", "calls", "group", "label", "line", "text", "turn")

    def __init__(self, view: _WidgetView, turn: TurnState) -> None:
        W, S = view.W, view.S
        self.turn = turn
        self.line = W.HTML(layout=S.plain, style=S.html_style, _dom_classes=("llm-turn-line",))
        self.text: Any = None
        self.group: Any = None
        self.label: Any = None
        self.calls: _Chunked | None = None
        self.box = W.VBox([self.line], layout=S.entry, _dom_classes=("llm-turn",))


class _WidgetView:
    """The ipywidgets tree of a timeline; touched only on the loop thread."""

    def __init__(self, tl: Timeline) -> None:
        import ipywidgets as W

        self.W, self.tl = W, tl
        self.S = S = _Shared(W)
        self.turns: dict[int, _TurnView] = {}
        self.calls: dict[str, _CallView] = {}
        self.lists: dict[int, _Chunked] = {}  # chunk lists with appends to commit
        self.header = W.HTML(layout=S.flex, style=S.html_style, _dom_classes=("llm-header",))

        def button(label: str, tip: str, fn: Callable[[], None], css: str, kind: str = "") -> Any:
            b = W.Button(
                description=label,
                tooltip=tip,
                button_style=kind,
                layout=S.small_button,
                style=S.button_style,
                _dom_classes=(css,),
            )
            b.on_click(lambda _b: tl._post(fn))
            return b

        self.expand_all = button(
            "Expand all", "expand every entry", lambda: self.set_all(True), "llm-expand-all"
        )
        self.collapse_all = button(
            "Collapse all", "collapse every entry", lambda: self.set_all(False), "llm-collapse-all"
        )
        self.cancel = button("Cancel", "stop the run", tl._cancel, "llm-cancel", "danger")
        bar = W.HBox(
            [self.header, self.expand_all, self.collapse_all, self.cancel],
            layout=W.Layout(
                width="auto",
                align_items="center",
                padding="4px 8px",
                border_bottom="1px solid var(--jp-border-color2, #d0d7de)",
            ),
        )
        self.note = W.HTML(
            layout=W.Layout(margin="4px 8px 0", display="none"), _dom_classes=("llm-note",)
        )
        self.body_box = W.VBox(layout=W.Layout(width="auto", padding="4px 8px 6px", margin="0"))
        self.body = _Chunked(W, self.body_box, S.chunk)
        self.root = W.VBox(
            [bar, self.note, self.body_box],
            layout=W.Layout(
                width="auto",
                border="1px solid var(--jp-border-color2, #d0d7de)",
                margin="4px 0",
                padding="0",
                overflow="hidden",
            ),
            _dom_classes=("llm-magic-timeline",),
        )
        state = tl.state
        for turn in state.turns:
            self.add_turn(turn)
            for rec in turn.calls:
                self.add_call(turn, rec)
        known = {rec.id for turn in state.turns for rec in turn.calls}
        for rec in state.calls:
            if rec.id not in known:
                self.add_call(None, rec)
        self.flush((), (), True)

    # structure
    def add_turn(self, turn: TurnState) -> None:
        tv = _TurnView(self, turn)
        self.turns[id(turn)] = tv
        self._append(self.body, tv.box)
        self.tl._dirty_turns[id(turn)] = turn

    def add_call(self, turn: TurnState | None, rec: ToolCallRecord) -> None:
        cv = _CallView(self, rec)
        self.calls[rec.id] = cv
        tv = self.turns.get(id(turn)) if turn is not None else None
        if tv is None:
            self._append(self.body, cv.box)
        else:
            if tv.calls is None:
                tv.group = self.W.VBox(layout=self.S.group, _dom_classes=("llm-group",))
                tv.calls = _Chunked(self.W, tv.group, self.S.chunk)
                tv.box.children = (*tv.box.children, tv.group)
            self._append(tv.calls, cv.box)
        self.tl._dirty_calls[rec.id] = rec

    def _append(self, lst: _Chunked, widget: Any) -> None:
        lst.append(widget)
        self.lists[id(lst)] = lst

    # rendering
    def flush(self, turns: Any, calls: Any, header: bool) -> None:
        tl = self.tl
        for lst in self.lists.values():
            lst.commit()
        self.lists.clear()
        for turn in turns:
            tv = self.turns.get(id(turn))
            if tv is not None:
                self._render_turn(tv)
        for rec in calls:
            cv = self.calls.get(rec.id)
            if cv is not None:
                self._render_call(cv)
        if header:
            self.header.value = R.header_html(tl.state)
            note = tl.state.note
            if note and self.note.layout.display == "none":
                with self.note.hold_sync():
                    self.note.value = R.note_html(note)
                    self.note.layout.display = ""

    def _render_turn(self, tv: _TurnView) -> None:
        turn, W, S = tv.turn, self.W, self.S
        tv.line.value = R.turn_line_html(turn, self.tl.state.model)
        text = turn.text
        if text:
            markup = R.turn_text_html(text, streaming=turn.status == "streaming")
            if tv.text is None:
                tv.text = W.HTML(
                    value=markup, layout=S.text, style=S.html_style, _dom_classes=("llm-text",)
                )
                tv.box.children = (tv.line, tv.text, *tv.box.children[1:])
            else:
                tv.text.value = markup
        if tv.calls is not None and tv.group is not None:
            n = len(turn.calls)
            if n > 1:
                label = R.group_label_html(n)
                if tv.label is None:
                    tv.label = W.HTML(value=label, layout=S.plain, style=S.html_style)
                    tv.calls.set_prefix(tv.label)
                else:
                    tv.label.value = label

    def _render_call(self, cv: _CallView) -> None:
        rec, W, S, tl = cv.rec, self.W, self.S, self.tl
        cv.line.value = R.call_line_html(rec)
        children: list[Any] = [cv.box.children[0]]
        waiting = rec.id in tl._approvals and rec.status == "awaiting_approval"
        if waiting and cv.bar is None:
            reason = W.Text(
                placeholder="reason (optional, sent to the model)",
                layout=S.reason,
                _dom_classes=("llm-reason",),
            )
            approve = W.Button(
                description="Approve",
                button_style="success",
                icon="check",
                layout=S.small_button,
                style=S.button_style,
                _dom_classes=("llm-approve",),
            )
            deny = W.Button(
                description="Deny",
                button_style="danger",
                icon="times",
                layout=S.small_button,
                style=S.button_style,
                _dom_classes=("llm-deny",),
            )
            approve.on_click(lambda _b, i=rec.id: tl._post(self.decide, i, True))
            deny.on_click(lambda _b, i=rec.id: tl._post(self.decide, i, False))
            prompt = W.HTML(
                value=f'<b style="font-size:13px">Run {R.esc(rec.name)}?</b>',
                layout=W.Layout(margin="0 10px 0 0", width="auto"),
            )
            cv.bar = W.HBox(
                [prompt, approve, deny, reason], layout=S.bar, _dom_classes=("llm-approval",)
            )
            cv.bar_buttons = (approve, deny, reason)
        elif not waiting and cv.bar is not None:
            cv.bar = None
            cv.bar_buttons = ()
        if cv.bar is not None:
            children.append(cv.bar)
        if cv.expanded:
            markup = tl._detail_html(rec)
            if cv.detail is None:
                cv.detail_html = W.HTML(
                    value=markup,
                    layout=S.detail_html,
                    style=S.html_style,
                    _dom_classes=("llm-detail-html",),
                )
                copy_args = W.Button(
                    description="Copy arguments (JSON)",
                    icon="copy",
                    layout=S.small_button,
                    style=S.button_style,
                    _dom_classes=("llm-copy-args",),
                )
                copy_result = W.Button(
                    description="Copy call (JSON)",
                    icon="copy",
                    layout=S.small_button,
                    style=S.button_style,
                    _dom_classes=("llm-copy-call",),
                )
                copy_args.on_click(lambda _b, i=rec.id: tl._post(self.copy, i, "arguments"))
                copy_result.on_click(lambda _b, i=rec.id: tl._post(self.copy, i, "call"))
                cv.detail = W.VBox(
                    [cv.detail_html, W.HBox([copy_args, copy_result])],
                    layout=S.detail,
                    _dom_classes=("llm-detail",),
                )
            else:
                cv.detail_html.value = markup
            if cv.copy_what:
                text = R.arguments_json(rec) if cv.copy_what == "arguments" else R.result_json(rec)
                if cv.copy_area is None:
                    cv.copy_area = W.Textarea(
                        value=text, layout=S.copy, _dom_classes=("llm-copy-area",)
                    )
                    cv.detail.children = (*cv.detail.children[:2], cv.copy_area)
                else:
                    cv.copy_area.value = text
            elif cv.copy_area is not None:
                cv.detail.children = cv.detail.children[:2]
                cv.copy_area = None
            children.append(cv.detail)
        with cv.toggle.hold_sync():
            cv.toggle.description = "▾" if cv.expanded else "▸"
            cv.toggle.tooltip = "hide details" if cv.expanded else "show details"
        if tuple(children) != cv.box.children:
            cv.box.children = tuple(children)

    # actions (loop thread)
    def expand(self, call_id: str, expanded: bool) -> None:
        cv = self.calls.get(call_id)
        if cv is not None and cv.expanded != expanded:
            cv.expanded = expanded
            self.tl._mark_call(cv.rec)

    def toggle(self, call_id: str) -> None:
        cv = self.calls.get(call_id)
        if cv is not None:
            self.expand(call_id, not cv.expanded)

    def set_all(self, expanded: bool) -> None:
        for call_id in self.calls:
            self.expand(call_id, expanded)

    def copy(self, call_id: str, what: str) -> None:
        cv = self.calls.get(call_id)
        if cv is not None:
            cv.copy_what = "" if cv.copy_what == what else what
            self.tl._mark_call(cv.rec)

    def decide(self, call_id: str, approved: bool) -> None:
        cv = self.calls.get(call_id)
        reason = None
        if cv is not None and cv.bar_buttons:
            approve, deny, text = cv.bar_buttons
            reason = text.value.strip() or None
            approve.disabled = deny.disabled = text.disabled = True
        self.tl._decide(call_id, approved, reason)

    def cancelling(self) -> None:
        with self.cancel.hold_sync():
            self.cancel.description = "Cancelling…"
            self.cancel.disabled = True

    def run_ended(self) -> None:
        with self.cancel.hold_sync():
            self.cancel.disabled = True
            self.cancel.layout = self.W.Layout(display="none")

    def finish(self) -> None:
        """Commit any chunk appends still pending (close())."""
        for lst in self.lists.values():
            lst.commit()
        self.lists.clear()


def _close_tree(widget: Any) -> None:
    """Close a widget and every widget below it: their comms are no longer shown anywhere."""
    for child in getattr(widget, "children", ()):
        _close_tree(child)
    widget.close()
