"""The chain: model turn, the turn's tool calls run concurrently, results back, repeat.

A `ChainRun` is the one engine. It is awaitable (the `ChainResult`), async-iterable (its
events, in order) and cancellable from any thread. The sync API drives this same object on a
private loop thread; there is no second executor.

Limits end a run with a status, not an exception: `max_steps` counts tool rounds (the model may
take `max_steps` rounds of tool calls, then answers), `max_tool_calls` counts calls, `timeout`
is wall time. Whatever ends the run, the conversation stays valid: every tool call in history
has a result, synthetic if the call never finished.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Generator
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from . import events as ev
from ._loop import CallerThread
from .errors import LLMMagicError, ToolArgumentsError, ToolError
from .events import ToolCallRecord
from .messages import FINAL_TURN_INSTRUCTION as FINAL_TURN_INSTRUCTION
from .messages import Message, ModelRequest, ModelTurn, ToolCall, ToolResult, Usage
from .tools import Tool, serialize_result

if TYPE_CHECKING:
    from .providers.base import Provider

Status = Literal[
    "pending", "running", "done", "max_steps", "max_tool_calls", "timeout", "cancelled", "failed"
]
CANCELLED_OUTPUT = "cancelled: the user stopped the run before this call finished"


@dataclass
class Approval:
    """A decision on a call that needs approval."""

    approved: bool
    reason: str | None = None


ApprovalCallback = Callable[[ToolCallRecord], Awaitable["Approval | bool"]]
Subscriber = Callable[[ev.Event], None]


@dataclass
class ChainOptions:
    """Per-run settings. Tools keep their own options; a run-level value overrides them."""

    max_steps: int | None = None  # None: the provider's default (Provider.default_max_steps)
    max_tool_calls: int = 100
    timeout: float | None = None
    final_turn_on_limit: bool = True
    approve: Collection[str] | Literal["all"] | None = None
    approval_callback: ApprovalCallback | None = None
    on_tool_error: Literal["model", "raise"] | None = None
    tool_timeout: float | None = None
    max_concurrency: int = 8
    stream: bool = True
    prefer_sync: bool = False  # the sync API prefers sync implementations of paired tools
    tool_choice: str | None = None
    model_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # 0 used to fall back to the default silently (10 rounds instead of none): say so now
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(
                f"max_steps must be 1 or more (None: the provider's default), got {self.max_steps}"
            )


@dataclass(eq=False)
class ChainResult:
    """What a run produced. Its repr is the answer, so a notebook cell shows it plainly."""

    text: str
    status: Status
    tool_calls: list[ToolCallRecord]
    usage: Usage
    steps: int
    model: str
    elapsed: float
    error: BaseException | None = None
    turns: list[ModelTurn] = field(default_factory=list)
    conversation: Any = field(default=None, repr=False)

    def __repr__(self) -> str:
        return self.text if self.text else f"<ChainResult {self.status}, no text>"

    def __str__(self) -> str:
        return self.text

    def _repr_markdown_(self) -> str | None:
        """Models answer in Markdown: a notebook renders the answer, `text/plain` keeps the raw."""
        return self.text or None

    @property
    def ok(self) -> bool:
        return self.status == "done"

    @property
    def messages(self) -> list[Message]:
        return list(self.conversation.messages) if self.conversation is not None else []

    def continue_(self, prompt: str, **kwargs: Any) -> Any:
        """Go on with this conversation: an awaitable run (async) or a response (sync)."""
        if self.conversation is None:
            raise LLMMagicError("this result has no conversation to continue")
        return self.conversation.chain(prompt, **kwargs)


class ChainRun:
    """One run of the chain. Await it, iterate its events, or cancel it."""

    def __init__(
        self,
        provider: Provider,
        conversation: Any,
        prompt: str | None,
        tools: list[Tool],
        options: ChainOptions,
        system: str | None = None,
    ) -> None:
        self.provider = provider
        self.conversation = conversation
        self.prompt = prompt
        self.tools = {t.name: t for t in tools}
        self.options = options
        self.system = system
        self.status: Status = "pending"
        self.records: list[ToolCallRecord] = []
        self.turns: list[ModelTurn] = []
        self._usage = Usage()
        self.steps = 0
        self.events: list[ev.Event] = []
        self._subscribers: list[Subscriber] = []
        self._readers = 0  # open `async for` consumers
        self._waiter: asyncio.Future[None] | None = None  # woken on the next event
        self._ended = False
        self._task: asyncio.Task[ChainResult] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._partial: list[str] = []
        self._pending: list[ToolCallRecord] = []
        self._cancel_reason: str | None = None
        self.final: ChainResult | None = None
        self.error_traceback: TracebackType | None = None  # a failed run's, for re-raising
        self.started_at = 0.0
        # The sync facade's waiting thread, where `on_loop` tools run; None: the loop's thread.
        self.caller: CallerThread | None = None

    # -- consuming -------------------------------------------------------------------------
    def subscribe(self, callback: Subscriber) -> Subscriber:
        """Receive every event, in order, on the loop thread; past events are replayed."""
        for past in self.events:
            callback(past)
        self._subscribers.append(callback)
        return callback

    def start(self) -> asyncio.Task[ChainResult]:
        if self._task is None:
            self._loop = asyncio.get_running_loop()
            self._task = self._loop.create_task(self._run())
        return self._task

    def __await__(self) -> Generator[Any, None, ChainResult]:
        return self._wait().__await__()

    async def _wait(self) -> ChainResult:
        task = self.start()
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            # The awaiting code was cancelled (a kernel interrupt): stop the run, let it
            # record what never finished, then let the cancellation go on.
            self.cancel("interrupted")
            await asyncio.wait([task])
            raise

    async def __aiter__(self) -> AsyncIterator[ev.Event]:
        # A cursor over `self.events`; one shared future wakes every waiting reader.
        task = self.start()
        self._readers += 1
        seen = 0
        try:
            while True:
                while seen < len(self.events):
                    seen += 1
                    yield self.events[seen - 1]
                if self._ended:
                    break
                if self._waiter is None or self._waiter.done():
                    self._waiter = asyncio.get_running_loop().create_future()
                await self._waiter
        finally:
            self._readers -= 1
            if not task.done() and not self._readers and not self._subscribers:
                self.cancel("the event iterator was closed")

    def cancel(self, reason: str = "cancelled by the user") -> None:
        """Cancel the run; safe to call from any thread (a widget's button callback)."""
        self._cancel_reason = reason
        task, loop = self._task, self._loop
        if task is None or loop is None or task.done():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._cancel_task()
        else:
            loop.call_soon_threadsafe(self._cancel_task)

    def _cancel_task(self) -> None:
        # A task cancelled before its first step never enters `_run`, so it would end without a
        # result (and leave the conversation busy); `_run` checks the reason when it starts.
        if self._task is not None and not self._task.done() and self.status != "pending":
            self._task.cancel()

    # -- the response vocabulary (awaited here; called plainly on the sync twin) -------------
    async def text(self) -> str:
        return (await self).text

    async def tool_calls(self) -> list[ToolCallRecord]:
        return (await self).tool_calls

    async def usage(self) -> Usage:
        return (await self).usage

    async def result(self) -> ChainResult:
        return await self

    # -- the engine ----------------------------------------------------------------------------
    def _emit(self, event: ev.Event) -> None:
        self.events.append(event)
        for callback in self._subscribers:
            try:
                callback(event)
            except Exception as exc:  # a broken view must not break the run
                import logging

                logging.getLogger("llm_magic").warning("event subscriber failed: %r", exc)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _run(self) -> ChainResult:
        self.started_at = time.monotonic()
        self.status = "running"
        if self.prompt is not None:
            self.conversation.messages.append(Message("user", self.prompt))
        self._emit(ev.RunStarted(self.provider.model, self.prompt or "", list(self.tools)))
        error: BaseException | None = None
        deadline = asyncio.timeout(self.options.timeout)
        try:
            if self._cancel_reason is not None:  # cancelled before it started
                raise asyncio.CancelledError
            async with deadline:
                await self._loop_turns()
        except asyncio.CancelledError:
            self.status = "cancelled"
        except Exception as exc:  # a TimeoutError raised by other code is a failure, not ours
            if isinstance(exc, TimeoutError) and deadline.expired():
                self.status = "timeout"
            else:
                self.status, error = "failed", exc
        finally:
            self._repair()
        result = self._finish(error)
        return result

    def _finish(self, error: BaseException | None) -> ChainResult:
        last = self.turns[-1].text if self.turns else ""
        text = last or "".join(self._partial)
        self.final = ChainResult(
            text=text,
            status=self.status,
            tool_calls=list(self.records),
            usage=self._usage,
            steps=self.steps,
            model=self.provider.model,
            elapsed=time.monotonic() - self.started_at,
            error=error,
            turns=list(self.turns),
            conversation=self.conversation,
        )
        if self.status == "cancelled":
            self._emit(ev.RunCancelled(self.final))
        elif self.status == "failed":
            self._emit(ev.RunFailed(self.final, error))
        else:
            self._emit(ev.RunFinished(self.final))
        self._ended = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        if error is not None:
            error.result = self.final  # type: ignore[attr-defined]
            self.error_traceback = error.__traceback__
            raise error
        return self.final

    async def _loop_turns(self) -> None:
        limit: Status | None = None
        while True:
            turn = await self._model_turn(tools_on=limit is None)
            if not turn.tool_calls:
                self.status = limit or "done"
                return
            if limit is not None:  # the model called tools on its no-tools turn: drop them
                self.status = limit
                return
            self.steps += 1
            await self._run_tools(turn.tool_calls)
            if len(self.records) >= self.options.max_tool_calls:
                limit = "max_tool_calls"
            elif self.steps >= self._max_steps():
                limit = "max_steps"
            if limit is not None and not (self.options.final_turn_on_limit and self.tools):
                self.status = limit
                return

    def _max_steps(self) -> int:
        steps = self.options.max_steps
        return steps if steps is not None else self.provider.default_max_steps

    async def _model_turn(self, tools_on: bool) -> ModelTurn:
        step = len(self.turns) + 1
        tool_choice = self.options.tool_choice if tools_on else "none"
        request = ModelRequest(
            messages=list(self.conversation.messages),
            tools=[t.spec() for t in self.tools.values()],
            system=self.system,
            final=not tools_on,  # each provider says "answer now" in its own wire form
            stream=self.options.stream,
            tool_choice=tool_choice if self.tools else None,
            options=self.options.model_options,
        )
        self._emit(ev.TurnStarted(step, tools_on and bool(self.tools)))
        self._partial = []

        def on_text(text: str) -> None:
            self._partial.append(text)
            self._emit(ev.TextDelta(step, text))

        turn = await self.provider.turn(request, on_text)
        self._partial = []
        if not tools_on:
            turn.tool_calls = []
        self.turns.append(turn)
        self.conversation.messages.append(turn.to_message())
        self._usage = self._usage + turn.usage
        self._emit(ev.UsageReported(step, turn.usage, self._usage))
        self._emit(ev.TurnFinished(step, turn.text, list(turn.tool_calls), turn.usage))
        return turn

    async def _run_tools(self, calls: list[ToolCall]) -> None:
        budget = self.options.max_tool_calls - len(self.records)
        batch = [ToolCallRecord(c.id, c.name, c.arguments, self.steps) for c in calls]
        self.records.extend(batch)
        self._pending = batch
        for rec in batch:
            self._emit(ev.ToolCallRequested(rec))
        semaphore = asyncio.Semaphore(max(1, self.options.max_concurrency))
        try:
            async with asyncio.TaskGroup() as group:
                for i, rec in enumerate(batch):
                    if i >= budget:
                        self._end(
                            rec,
                            "cancelled",
                            f"not run: the limit of "
                            f"{self.options.max_tool_calls} tool calls for this run was reached",
                        )
                    else:
                        group.create_task(self._run_one(rec, semaphore))
        except BaseExceptionGroup as group_error:
            raise _first(group_error) from None
        self._commit_results()

    def _commit_results(self) -> None:
        results = [ToolResult(r.id, r.name, r.output, r.is_error) for r in self._pending]
        self.conversation.messages.append(Message("tool", tool_results=results))
        self._pending = []

    def _end(
        self, rec: ToolCallRecord, status: Any, output: str, error: BaseException | None = None
    ) -> None:
        rec.fail(status, output, error)
        event = {
            "error": ev.ToolCallFailed,
            "denied": ev.ToolCallDenied,
            "cancelled": ev.ToolCallCancelled,
        }[status]
        self._emit(event(rec))

    async def _run_one(self, rec: ToolCallRecord, semaphore: asyncio.Semaphore) -> None:
        tool = self.tools.get(rec.name)
        if tool is None:
            known = ", ".join(self.tools) or "none"
            return self._end(
                rec, "error", f"error: there is no tool named {rec.name!r}; the tools are: {known}"
            )
        try:
            parsed = json.loads(rec.raw_arguments) if rec.raw_arguments.strip() else {}
        except ValueError as exc:
            return self._end(
                rec,
                "error",
                f"error: the arguments are not valid JSON ({exc}); "
                f"send a JSON object matching: {json.dumps(tool.schema)}",
            )
        rec.arguments = parsed if isinstance(parsed, dict) else None
        try:
            kwargs = tool.parameters.validate(parsed)
        except ToolArgumentsError as exc:
            return self._end(
                rec,
                "error",
                f"error: invalid arguments for {tool.name}: {exc}. "
                f"The parameters are: {json.dumps(tool.schema['properties'])}",
            )
        try:
            if self._needs_approval(tool):
                decision = await self._ask_approval(rec)
                if not decision.approved:
                    why = f": {decision.reason}" if decision.reason else ""
                    return self._end(
                        rec, "denied", f"denied: the user did not allow this call{why}"
                    )
            async with semaphore:
                await self._execute(tool, rec, kwargs)
        except asyncio.CancelledError:
            if rec.ended_at is None:
                rec.reason = self._cancel_reason
                self._end(rec, "cancelled", CANCELLED_OUTPUT)
            raise

    def _needs_approval(self, tool: Tool) -> bool:
        approve = self.options.approve
        if approve == "all":
            return True
        return tool.options.requires_approval or (approve is not None and tool.name in approve)

    async def _ask_approval(self, rec: ToolCallRecord) -> Approval:
        rec.status = "awaiting_approval"
        self._emit(ev.ToolCallAwaitingApproval(rec))
        callback = self.options.approval_callback
        if callback is None:
            return Approval(False, "approval is required and no approver was set")
        decision = await callback(rec)
        return decision if isinstance(decision, Approval) else Approval(bool(decision))

    async def _execute(self, tool: Tool, rec: ToolCallRecord, kwargs: dict[str, Any]) -> None:
        rec.status = "running"
        rec.implementation = tool.implementation(self.options.prefer_sync)
        rec.started_at = time.monotonic()
        self._emit(ev.ToolCallStarted(rec))
        limit = self.options.tool_timeout or tool.options.timeout
        deadline = asyncio.timeout(limit)
        try:
            async with deadline:
                value = await tool.call(
                    kwargs, prefer_sync=self.options.prefer_sync, caller=self.caller
                )
        # SystemExit too: a tool wrapping an argparse CLI must not end the run (nor, in the
        # sync API, the private loop's thread); the model gets the error like any other.
        except (Exception, SystemExit) as exc:
            if isinstance(exc, TimeoutError) and deadline.expired():
                rec.reason = f"timed out after {limit} s"
                return self._end(rec, "error", f"error: {tool.name} {rec.reason}", exc)
            return self._tool_failed(tool, rec, exc)
        rec.result = value
        rec.output, rec.truncated = serialize_result(value, tool.options.max_result_chars)
        rec.status = "ok"
        rec.ended_at = time.monotonic()
        self._emit(ev.ToolCallFinished(rec))

    def _tool_failed(self, tool: Tool, rec: ToolCallRecord, exc: BaseException) -> None:
        """The tool raised: tell the model, or end the run if the policy says raise."""
        self._end(rec, "error", f"error: {type(exc).__name__}: {exc}", exc)
        if (self.options.on_tool_error or tool.options.on_error) == "raise":
            raise ToolError(tool.name, exc) from exc

    def _repair(self) -> None:
        """Leave a conversation the provider accepts: partial text kept, every call answered."""
        if self._partial:
            self.turns.append(ModelTurn(text="".join(self._partial)))
            self.conversation.messages.append(Message("assistant", "".join(self._partial)))
            self._partial = []
        if self._pending:
            for rec in self._pending:
                if rec.ended_at is None:
                    rec.reason = rec.reason or self._cancel_reason or self.status
                    self._end(rec, "cancelled", CANCELLED_OUTPUT)
            self._commit_results()


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
