"""Running one turn's tool calls: concurrently, within limits, and always answered.

Apart from the turn loop because a call has its own life: its arguments checked, an approval
asked, a slot of `max_concurrency` taken, a timeout, and for a sync tool a worker thread that
cannot be stopped and so is let go (told to stop, given a grace if `cancellable`, reported when
it ends). Whatever stops a call, the model reads a result for it: an error, a denial, or a
synthetic "cancelled" that says whether the function may still be at work.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import events as ev
from ._approver import Approver
from .errors import ToolArgumentsError, ToolError
from .media import MediaPolicy, describe, result_media
from .messages import Message, ToolCall, ToolResult
from .records import ToolCallRecord
from .run_state import RunState
from .tools import CANCEL_GRACE, ThreadCall, Tool, serialize_result

if TYPE_CHECKING:
    from ._loop import CallerThread
    from .branches import Resume
    from .options import ChainOptions
    from .results import ConversationLike

CANCELLED_OUTPUT = "cancelled: the user stopped the run before this call finished"
STILL_RUNNING = "; it is still running in its thread, so what it does may still happen"
_FAILURES = {
    "error": ev.ToolCallFailed,
    "denied": ev.ToolCallDenied,
    "cancelled": ev.ToolCallCancelled,
}


class ToolRunner:
    """Runs a run's tool calls and answers them in its conversation."""

    def __init__(
        self,
        state: RunState,
        options: ChainOptions,
        conversation: ConversationLike[Any],
        emit: Callable[[ev.Event], None],
        approver: Approver,
        caller: CallerThread | None = None,
        media: MediaPolicy | None = None,
    ) -> None:
        self.state = state
        self.options = options
        self.conversation = conversation
        self.emit = emit
        self.approver = approver
        self.caller = caller  # the sync facade's waiting thread, where `on_loop` tools run
        self._order: Resume | None = None  # a branch turn's call order, while it runs
        self.media = media  # what the model takes of a result's images; None: text only

    async def run_branch(self, resume: Resume) -> list[ToolCallRecord]:
        """A branch's first act: its turn's calls run again, take a given value, or keep theirs."""
        given = {}
        for call in resume.calls:
            if call.id in resume.given:
                rec = ToolCallRecord(call.id, call.name, call.arguments, 0, status="ok")
                rec.result = resume.given[call.id]
                rec.output, rec.truncated = serialize_result(rec.result)
                self._images(rec, rec.result)  # a given image goes to the model as one
                given[call.id] = rec
        return await self.run([c for c in resume.calls if c.id in resume.run], given, resume)

    async def run(
        self,
        calls: list[ToolCall],
        given: dict[str, ToolCallRecord] | None = None,
        resume: Resume | None = None,
    ) -> list[ToolCallRecord]:
        """Run a turn's calls and answer them in one message; the calls run, as records. A
        branch's turn (`resume`) also has calls with a given result and calls that keep theirs."""
        state = self.state
        budget = self.options.max_tool_calls - len(state.records)
        batch = [ToolCallRecord(c.id, c.name, c.arguments, state.steps) for c in calls]
        state.records.extend([*(given or {}).values(), *batch])
        state.pending = [*(given or {}).values(), *batch]
        self._order = resume
        for rec in state.pending:
            rec.server = getattr(state.tools.get(rec.name), "server", None)  # an MCP server
            self.emit(ev.ToolCallRequested(rec))
        for rec in (given or {}).values():
            rec.ended_at = time.monotonic()
            self.emit(ev.ToolCallFinished(rec))
        semaphore = asyncio.Semaphore(max(1, self.options.max_concurrency))
        if len(batch) == 1 and budget >= 1:  # one call: awaited here, no task and group for it
            await self._run_one(batch[0], semaphore)
            self.commit()
            return batch
        try:
            async with asyncio.TaskGroup() as group:
                for i, rec in enumerate(batch):
                    if i >= budget:
                        limit = self.options.max_tool_calls
                        why = f"not run: the limit of {limit} tool calls for this run was reached"
                        self.end(rec, "cancelled", why)
                    else:
                        group.create_task(self._run_one(rec, semaphore))
        except BaseExceptionGroup as group_error:
            raise _first(group_error) from None
        self.commit()
        return batch

    def commit(self) -> None:
        """Answer the pending calls in one tool message (a branch turn's in its order)."""
        results = {
            r.id: ToolResult(r.id, r.name, r.output, r.is_error, tuple(r.media))
            for r in self.state.pending
        }
        resume, self._order = self._order, None
        if resume is not None:  # the branch turn's order, with the results kept as they were
            results = {c.id: results.get(c.id) or resume.kept[c.id] for c in resume.calls}
        self.conversation.messages.append(Message("tool", tool_results=list(results.values())))
        self.state.pending = []

    def answer_pending(self) -> None:
        """The run ended with calls unanswered: each gets a synthetic cancelled result."""
        state = self.state
        if not state.pending:
            return
        for rec in state.pending:
            if rec.ended_at is None:
                rec.reason = rec.reason or state.cancel_reason or state.status
                self.end(rec, "cancelled", cancelled_output(rec))
        self.commit()

    def end(
        self, rec: ToolCallRecord, status: Any, output: str, error: BaseException | None = None
    ) -> None:
        """A call ended without a result: record why, tell the views."""
        rec.fail(status, output, error)
        self.emit(_FAILURES[status](rec))

    async def _run_one(self, rec: ToolCallRecord, semaphore: asyncio.Semaphore) -> None:
        tool = self.state.tools.get(rec.name)
        if tool is None:
            known = ", ".join(self.state.tools) or "none"
            return self.end(
                rec, "error", f"error: there is no tool named {rec.name!r}; the tools are: {known}"
            )
        kwargs = self._arguments(tool, rec)
        if kwargs is None:
            return None
        try:
            if tool.options.requires_approval or self.options.needs_approval(tool.name):
                decision = await self.approver.ask(
                    rec, lambda: self.emit(ev.ToolCallAwaitingApproval(rec))
                )
                if not decision.approved:
                    why = f": {decision.reason}" if decision.reason else ""
                    return self.end(rec, "denied", f"denied: the user did not allow this call{why}")
            async with semaphore:
                await self._execute(tool, rec, kwargs)
        except asyncio.CancelledError:
            if rec.ended_at is None:
                rec.reason = self.state.cancel_reason
                self.end(rec, "cancelled", cancelled_output(rec))
            raise

    def _arguments(self, tool: Tool, rec: ToolCallRecord) -> dict[str, Any] | None:
        """The call's arguments checked against the tool's parameters; None (and the call
        ended with an error that quotes the schema) when they do not fit."""
        try:
            parsed = json.loads(rec.raw_arguments) if rec.raw_arguments.strip() else {}
        except ValueError as exc:
            self.end(
                rec,
                "error",
                f"error: the arguments are not valid JSON ({exc}); "
                f"send a JSON object matching: {json.dumps(tool.schema)}",
            )
            return None
        rec.arguments = parsed if isinstance(parsed, dict) else None
        try:
            return tool.parameters.validate(parsed)
        except ToolArgumentsError as exc:
            self.end(
                rec,
                "error",
                f"error: invalid arguments for {tool.name}: {exc}. "
                f"The parameters are: {json.dumps(tool.schema['properties'])}",
            )
            return None

    async def _execute(self, tool: Tool, rec: ToolCallRecord, kwargs: dict[str, Any]) -> None:
        rec.status = "running"
        prefer_sync = self.options.prefer_sync
        rec.implementation = tool.implementation(prefer_sync)
        rec.started_at = time.monotonic()
        self.emit(ev.ToolCallStarted(rec))
        limit = self.options.tool_timeout or tool.options.timeout
        deadline = asyncio.timeout(limit)
        thread = ThreadCall()
        try:
            async with deadline:
                value = await tool.call(
                    kwargs, prefer_sync=prefer_sync, caller=self.caller, thread=thread
                )
        except asyncio.CancelledError:
            await self._let_go(tool, rec, thread)
            raise
        # SystemExit too: a tool wrapping an argparse CLI must not end the run (nor, in the
        # sync API, the private loop's thread); the model gets the error like any other.
        except (Exception, SystemExit) as exc:
            if isinstance(exc, TimeoutError) and deadline.expired():
                rec.reason = f"timed out after {limit} s"
                await self._let_go(tool, rec, thread)
                output = f"error: {tool.name} {rec.reason}"
                if rec.thread == "running":
                    output += STILL_RUNNING
                return self.end(rec, "error", output, exc)
            return self._failed(tool, rec, exc)
        self._finished(tool, rec, value)

    def _finished(self, tool: Tool, rec: ToolCallRecord, value: Any) -> None:
        rec.result = value
        try:
            rec.output, rec.truncated = serialize_result(value, tool.options.max_result_chars)
        except Exception as exc:  # a broken __repr__, a list nested 5,000 deep
            rec.reason = "the result could not be turned into text for the model"
            return self.end(
                rec,
                "error",
                f"error: {tool.name} returned a {type(value).__name__} that "
                f"could not be turned into text ({type(exc).__name__}: {exc})",
                exc,
            )
        try:
            self._images(rec, value)
        except Exception as exc:  # past the limits without Pillow, a figure that cannot draw
            rec.reason = "the image it returned could not be sent to the model"
            return self.end(rec, "error", f"error: {tool.name} returned an image: {exc}", exc)
        rec.status = "ok"
        rec.ended_at = time.monotonic()
        self.emit(ev.ToolCallFinished(rec))

    def _images(self, rec: ToolCallRecord, value: Any) -> None:
        """A result that is (or holds) images: they go to the model as images, fitted to its
        limits, with a text that describes them (a figure's repr says nothing); a model that
        takes no images reads a line saying so instead."""
        found = result_media(value) if self.media is not None else []
        if not found or self.media is None:
            return
        kept, omitted = self.media.fit(found)
        rec.media = kept
        own_text = callable(getattr(value, "__llm_output__", None))  # an MCP result's text
        lines = [rec.output] if own_text else [describe(m) for m in kept]
        rec.output = "\n".join(lines + omitted + [m.note for m in kept if m.note])

    async def _let_go(self, tool: Tool, rec: ToolCallRecord, thread: ThreadCall) -> None:
        """The run stops waiting for a call (cancel, interrupt, timeout). A sync call's thread
        cannot be stopped: its `cancel_event()` is set, a `cancellable` tool gets CANCEL_GRACE
        seconds to return, and a thread still running is reported when it ends
        (`ToolCallSettled`, possibly after the run ended), so no one is told it stopped."""
        future = thread.future
        if future is None:  # not in a worker thread: nothing runs on
            return
        thread.stop.set()
        if tool.options.cancellable and not future.done():
            await asyncio.wait([asyncio.wrap_future(future)], timeout=CANCEL_GRACE)
        if future.done():
            _settle_thread(rec, future, stopped=tool.options.cancellable)
            return
        rec.thread = "running"
        loop = asyncio.get_running_loop()

        def ended(_: Any) -> None:  # on the tool's thread
            with contextlib.suppress(RuntimeError):  # the loop is closed: no one to tell
                loop.call_soon_threadsafe(self._thread_ended, rec, future)

        future.add_done_callback(ended)

    def _thread_ended(self, rec: ToolCallRecord, future: Any) -> None:
        _settle_thread(rec, future, stopped=False)
        self.emit(ev.ToolCallSettled(rec))

    def _failed(self, tool: Tool, rec: ToolCallRecord, exc: BaseException) -> None:
        """The tool raised: tell the model, or end the run if the policy says raise."""
        self.end(rec, "error", f"error: {type(exc).__name__}: {exc}", exc)
        if (self.options.on_tool_error or tool.options.on_error) == "raise":
            raise ToolError(tool.name, exc) from exc


def cancelled_output(rec: ToolCallRecord) -> str:
    """What the model reads for a cancelled call: whether the function may still be at work."""
    if rec.thread == "running":
        return CANCELLED_OUTPUT + STILL_RUNNING
    return CANCELLED_OUTPUT


def _settle_thread(rec: ToolCallRecord, future: Any, stopped: bool) -> None:
    """Record what a let-go call's thread did: returned, raised, or (a `cancellable` tool
    within its grace) stopped; a call that never left the pool's queue did nothing."""
    if future.cancelled():
        rec.thread = None
        return
    error = future.exception()
    if error is not None:
        rec.late_error = error
    else:
        rec.late_result = future.result()
    rec.thread = "stopped" if stopped else ("raised" if error is not None else "returned")


def _first(group: BaseExceptionGroup) -> BaseException:
    """The exception to re-raise from a TaskGroup: cancellation first, then the first error."""
    leaves: list[BaseException] = []

    def walk(e: BaseException) -> None:
        if isinstance(e, BaseExceptionGroup):
            for sub in e.exceptions:
                walk(sub)
        else:
            leaves.append(e)

    walk(group)
    for leaf in leaves:
        if isinstance(leaf, asyncio.CancelledError):
            return leaf
    return leaves[0]
