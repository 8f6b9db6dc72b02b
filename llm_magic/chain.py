"""The chain: model turn, the turn's tool calls run concurrently, results back, repeat.

A `ChainRun` is the one engine. It is awaitable (the `ChainResult`), async-iterable (its
events, in order) and cancellable from any thread. The sync API drives this same object on a
private loop thread; there is no second executor.

Limits end a run with a status, not an exception: `max_steps` counts tool rounds (the model may
take `max_steps` rounds of tool calls, then answers), `max_tool_calls` counts calls, `timeout`
is wall time. Whatever ends the run, the conversation stays valid: every tool call in history
has a result, synthetic if the call never finished. `max_cost` caps each turn's output to what
the rest of the budget pays for, and stops before a turn it cannot pay (llm_magic.cost), saying
the figures in `stop_reason`; `output_type` asks for the provider's native
structured output or adds the final tool, and ends the run with the validated value
(llm_magic.answers); a branched run first answers the calls of its branch turn
(llm_magic.branches).

Longer than 500 lines: the engine is one state machine whose steps (turns, tool calls, limits,
budget, typed answer, branch start) share its state; split apart they would pass it around.
"""

from __future__ import annotations

import asyncio
import collections.abc
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Collection, Generator
from decimal import Decimal
from types import TracebackType
from typing import TYPE_CHECKING, Any

from . import catalog, views
from . import cost as costs
from . import events as ev
from ._loop import CallerThread
from .answers import FINAL_TOOL, TypedAnswer, answer_choice
from .errors import ConfigError, ToolArgumentsError, ToolError
from .events import ToolCallRecord
from .messages import FINAL_TURN_INSTRUCTION as FINAL_TURN_INSTRUCTION
from .messages import Message, ModelRequest, ModelTurn, ToolCall, ToolResult, Usage
from .options import Approval, ApprovalCallback, ChainOptions
from .results import ChainResult, ConversationLike, Status
from .sources import ToolSource, with_sources
from .tools import CANCEL_GRACE, ThreadCall, Tool, serialize_result

if TYPE_CHECKING:
    from .branches import BranchPoint, Resume
    from .providers.base import Provider

__all__ = [
    "Approval",
    "ApprovalCallback",
    "ChainOptions",
    "ChainResult",
    "ChainRun",
    "ConversationLike",
]

log = logging.getLogger("llm_magic")
CANCELLED_OUTPUT = "cancelled: the user stopped the run before this call finished"
Subscriber = Callable[[ev.Event], None]


class ChainRun:
    """One run of the chain. Await it, iterate its events, or cancel it.

    Everything a run needs is given when it is built (options frozen, the caller thread, the
    conversation it appends to); views attach by subscribing, and a view that can ask a person
    subscribes as an approver and answers through `decide()`.
    """

    def __init__(
        self,
        provider: Provider,
        conversation: ConversationLike[Any],
        prompt: str | None,
        tools: list[Tool],
        options: ChainOptions,
        system: str | None = None,
        caller: CallerThread | None = None,
        resume: Resume | None = None,
        sources: Collection[ToolSource] = (),
    ) -> None:
        self.provider = provider
        self.conversation = conversation
        self.prompt = prompt
        self.tools = {t.name: t for t in tools}
        self.sources = list(sources)  # their tools join `self.tools` when the run starts
        self.options = options
        self.answer = (
            TypedAnswer(options.output_type, native=provider.native_output)
            if options.output_type
            else None
        )
        if self.answer is not None and not self.answer.native:
            self.tools[FINAL_TOOL] = self.answer.tool(self.tools)
        self.resume = resume  # a branch: the calls to answer before the first model turn
        self.cost: costs.Cost = Decimal(0)
        self._price_source = costs.price_source(provider)
        # the most output the model takes in one request, which a budget's cap never passes
        self._max_output = (
            catalog.max_output(provider.name, provider.model)
            if self._price_source is not None and "provider_id" in self._price_source
            else None
        )
        self.stop_reason: str | None = None  # why a limit ended the run, with its figures
        self._unpriced: list[int] = []  # steps whose turn is not priced yet
        self._history_cost = conversation.cost  # what the history cost before this run
        self._step_ends: list[int] = []
        self.system = system
        self.status: Status = "pending"
        self.records: list[ToolCallRecord] = []
        self.turns: list[ModelTurn] = []
        self._usage = Usage()
        self.steps = 0
        self.events: list[ev.Event] = []
        self._subscribers: list[Subscriber] = []
        self._approvers = 0  # subscribers that answer approvals through `decide()`
        self._decisions: dict[str, asyncio.Future[Approval]] = {}
        self._waiter: asyncio.Future[None] | None = None  # woken on the next event
        self._ended = False
        self._task: asyncio.Task[ChainResult[Any]] | None = None
        self._driving: Generator[Any, Any, ChainResult[ChainRun]] | None = None  # as a coroutine
        self._loop: asyncio.AbstractEventLoop | None = None
        self._partial: list[str] = []
        self._pending: list[ToolCallRecord] = []
        self._resume_order: Resume | None = None
        self.branched_from: BranchPoint | None = resume.point if resume is not None else None
        self._cancel_reason: str | None = None
        self.final: ChainResult[Any] | None = None
        self.error_traceback: TracebackType | None = None  # a failed run's, for re-raising
        self.started_at = 0.0
        # The sync facade's waiting thread, where `on_loop` tools run; None: the loop's thread.
        self.caller = caller

    # -- consuming -------------------------------------------------------------------------
    def subscribe(self, callback: Subscriber, *, approver: bool = False) -> Subscriber:
        """Receive every event, in order, on the loop thread; past events are replayed.

        `approver=True`: this subscriber shows calls that need approval to a person and
        answers with `decide()`; without an approver or an `approval_callback` such calls are
        denied with a reason the model sees.
        """
        for past in self.events:
            callback(past)
        self._subscribers.append(callback)
        self._approvers += approver
        return callback

    def decide(self, call_id: str, approved: bool, reason: str | None = None) -> None:
        """Answer a call awaiting approval; safe from any thread (a widget's button)."""
        loop = self._loop
        if loop is None:
            return

        def settle() -> None:
            future = self._decisions.get(call_id)
            if future is not None and not future.done():
                future.set_result(Approval(approved, reason))

        if _running_loop() is loop:
            settle()
        else:
            loop.call_soon_threadsafe(settle)

    # A view shows this run (set by the view when it subscribes); `views.attach` skips it.
    viewed = False

    def start(self) -> asyncio.Task[ChainResult[Any]]:
        """Run on the running loop (once): the registered views attach here, on the thread
        that starts the run and before its first event, so a run never started shows nothing."""
        if self._task is None:
            self._loop = asyncio.get_running_loop()
            views.attach(self)
            self._task = self._loop.create_task(self._run())
        return self._task

    def __await__(self) -> Generator[Any, None, ChainResult[ChainRun]]:
        return self._wait().__await__()

    # A run is also a coroutine (registered below), driving the same wait as `await run`:
    # `asyncio.run(model.chain(...))` and `loop.run_until_complete(...)` take coroutines only.
    def send(self, value: Any) -> Any:
        return self._driver().send(value)

    def throw(self, exc: BaseException, *rest: Any) -> Any:
        return self._driver().throw(exc, *rest)

    def close(self) -> None:
        if self._driving is not None:
            self._driving.close()

    def _driver(self) -> Generator[Any, Any, ChainResult[ChainRun]]:
        if self._driving is None:
            self._driving = self.__await__()
        return self._driving

    async def _wait(self) -> ChainResult[ChainRun]:
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
        """The run's events, in order, from the first. The iterator is a view: leaving the
        loop early (`break`) leaves the run going, and `await run` still gives its result;
        call `run.cancel()` to stop it."""
        self.start()
        seen = 0
        while True:
            while seen < len(self.events):
                seen += 1
                yield self.events[seen - 1]
            if self._ended:
                return
            if self._waiter is None or self._waiter.done():
                self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter

    def cancel(self, reason: str = "cancelled by the user") -> None:
        """Cancel the run; safe to call from any thread (a widget's button callback)."""
        self._cancel_reason = reason
        task, loop = self._task, self._loop
        if task is None or loop is None or task.done():
            return
        if _running_loop() is loop:
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

    async def result(self) -> ChainResult[ChainRun]:
        return await self

    # -- the engine ----------------------------------------------------------------------------
    def _emit(self, event: ev.Event) -> None:
        self.events.append(event)
        for callback in self._subscribers:
            try:
                callback(event)
            except Exception as exc:  # a broken view must not break the run
                log.warning("event subscriber failed: %r", exc)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _run(self) -> ChainResult[Any]:
        self.started_at = time.monotonic()
        self.status = "running"
        error: BaseException | None = None
        deadline = asyncio.timeout(self.options.timeout)
        announced = False
        try:
            if self._cancel_reason is not None:  # cancelled before it started: list nothing
                raise asyncio.CancelledError
            async with deadline:  # listing tool sources (starting servers) counts too
                unavailable = await self._add_source_tools()
                self._announce()
                announced = True
                if unavailable is not None:
                    raise unavailable
                await self._prepare()
                await self._loop_turns()
        except asyncio.CancelledError:
            self.status = "cancelled"
        except Exception as exc:  # a TimeoutError raised by other code is a failure, not ours
            if isinstance(exc, TimeoutError) and deadline.expired():
                self.status = "timeout"
            else:
                self.status, error = "failed", exc
        finally:
            if not announced:  # views learn of a run from its start, even one that never ran
                self._announce()
            self._repair()
        if self._unpriced and not costs.prices_ready():
            with contextlib.suppress(asyncio.CancelledError):  # else priced in `_finish`
                await costs.load_prices()
        result = self._finish(error)
        return result

    async def _prepare(self) -> None:
        """Before the first model turn: a budget's prices, a branch's calls answered, the prompt."""
        if self.options.max_cost is not None:
            await costs.load_prices()
        if self.options.max_cost is not None and self._turn_cost(Usage(1, 1)) is None:
            raise ConfigError(
                f"max_cost needs the price of {self.provider.model!r}, which the genai-prices "
                "table does not know; run without max_cost"
            )
        if self.resume is not None:
            await self._run_branch_calls(self.resume)
        self._step_ends.append(len(self.conversation.messages))
        if self.prompt is not None:
            self.conversation.messages.append(Message("user", self.prompt))

    async def _run_branch_calls(self, resume: Resume) -> None:
        """A branch's first act: its turn's calls run again, take a given value, or keep theirs."""
        given = {}
        for call in resume.calls:
            if call.id in resume.given:
                rec = ToolCallRecord(call.id, call.name, call.arguments, 0, status="ok")
                rec.result = resume.given[call.id]
                rec.output, rec.truncated = serialize_result(rec.result)
                given[call.id] = rec
        await self._run_tools([c for c in resume.calls if c.id in resume.run], given, resume)

    def _turn_cost(self, usage: Usage) -> costs.Cost:
        return costs.price(self.provider.model, usage, self._price_source)

    def _fit_budget(self, request: ModelRequest) -> bool:
        """Cap the next turn's output to what the rest of `max_cost` pays for; False (and the
        figures in `stop_reason`) when it cannot pay its prompt and a minimal answer.

        The prompt is estimated on the high side (`costs.estimate_tokens`) and priced at the
        input rate; what is left caps the output, reasoning included, at the output rate, never
        above what the model takes in one request. So a turn's real price stays within the
        budget however much the model writes; after it, its real usage is priced as reported.
        """
        if self.options.max_cost is None:
            return True
        budget = Decimal(str(self.options.max_cost))
        spent = self.cost if self.cost is not None else budget
        tokens = costs.estimate_tokens(request, self.provider.name)
        fit = costs.turn_budget(self.provider.model, self._price_source, budget - spent, tokens)
        if fit is None:  # the table knew the model at the start: it was updated since
            self.stop_reason = (
                f"stopped by max_cost before turn {len(self.turns) + 1}: the price of "
                f"{self.provider.model!r} is no longer known, so the turn cannot be budgeted"
            )
            return False
        if not fit.affordable:
            self.stop_reason = (
                f"stopped by max_cost before turn {len(self.turns) + 1}: "
                f"{costs.format_cost(spent)} spent of {costs.format_cost(budget)}, the next "
                f"turn needs at least {costs.format_cost(fit.minimal_cost)} (a prompt of some "
                f"{tokens:,} tokens and {costs.MIN_OUTPUT_TOKENS} output tokens)"
            )
            return False
        request.max_output_tokens = _smaller(fit.output_tokens, self._max_output)
        return True

    def _announce(self) -> None:
        self._emit(ev.RunStarted(self.provider.model, self.prompt or "", list(self.tools)))

    async def _add_source_tools(self) -> BaseException | None:
        """The tool sources' (MCP servers') tools join the run's; what failed, raised in `_run`."""
        try:
            tools = await with_sources(list(self.tools.values()), self.sources)
        except (Exception, asyncio.CancelledError) as exc:
            return exc
        self.tools = {t.name: t for t in tools}
        return None

    def _finish(self, error: BaseException | None) -> ChainResult[Any]:
        self._settle_costs()  # waits for the price table only if a turn ended before it loaded
        last = self.turns[-1].text if self.turns else ""
        text = last or "".join(self._partial)
        self.final = ChainResult(
            text=text,
            status=self.status,
            tool_calls=list(self.records),
            usage=self._usage,
            steps=self.steps,
            model=self.provider.model,
            provider=self.provider.name,
            elapsed=time.monotonic() - self.started_at,
            error=error,
            turns=list(self.turns),
            messages=list(self.conversation.messages),
            conversation=self.conversation,
            cost=self.cost,
            conversation_cost=costs.add(self._history_cost, self.cost),
            output=self.answer.value if self.answer is not None else None,
            step_ends=list(self._step_ends),
            options=self.options,
            branched_from=self.branched_from,
            stop_reason=self.stop_reason,
        )
        self.conversation.cost = self.final.conversation_cost
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
            if self._unpriced:
                await costs.load_prices()
                self._settle_costs()
            request = self._request(tools_on=limit is None)
            if not self._fit_budget(request):
                self.status = "max_cost"
                return
            turn = await self._model_turn(request)
            if not turn.tool_calls:
                self._step_ends.append(len(self.conversation.messages))
                if self.answer is not None and not self.answer.from_text(turn.text):
                    self.conversation.messages.append(Message("user", self.answer.reminder()))
                    self._step_ends[-1] += 1
                    continue
                # a typed answer ends the run "done", as through the final tool, limit or not
                self.status = "done" if self.answer is not None else limit or "done"
                return
            if limit is not None and self.answer is None:  # tools on its no-tools turn: dropped
                self.status = limit
                return
            self.steps += 1
            await self._run_tools(turn.tool_calls)
            self._step_ends.append(len(self.conversation.messages))
            if self.answer is not None and self.answer.done:
                self.status = "done"
                return
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

    def _request(self, tools_on: bool) -> ModelRequest:
        messages = list(self.conversation.messages)
        tool_choice = self.options.tool_choice if tools_on else "none"
        final = not tools_on  # each provider says "answer now" in its own wire form
        output = None
        if self.answer is not None and self.answer.native:  # the final text is the type's JSON
            output = self.answer.output_schema()
        elif self.answer is not None:  # a typed answer comes as a tool call, on every turn
            chosen = self.options.tool_choice
            tool_choice = answer_choice(
                chosen, tools_on, self.options.model_options, self.options.thinking
            )
            if not tools_on:  # the answer tool stays on: say "answer now" in the text
                messages.append(Message("user", FINAL_TURN_INSTRUCTION))
                final = False
        return ModelRequest(
            messages=messages,
            tools=[t.spec() for t in self.tools.values()],
            system=self.system,
            stream=self.options.stream,
            tool_choice=tool_choice if self.tools else None,
            options=dict(self.options.model_options),
            final=final,
            output=output,
            thinking=self.options.thinking,
        )

    async def _model_turn(self, request: ModelRequest) -> ModelTurn:
        step = len(self.turns) + 1
        tools_on = request.tool_choice != "none"
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
        self._unpriced.append(step)
        if costs.prices_ready() or self._price_source is None:
            self._settle_costs()
        return turn

    def _settle_costs(self) -> None:
        """Price the turns not priced yet, and report their cost.

        The price table is loaded (in a thread, awaited) only when a priced turn has ended and
        the run waits for nothing else: before its next model turn, or at its end. Loaded
        alongside the run's own work, its imports would hold the import lock that the first
        request's lazy imports (httpx2's transport) and tool threads wait on.
        """
        for step in self._unpriced:
            turn = self.turns[step - 1]
            turn.cost = self._turn_cost(turn.usage)
            self.cost = costs.add(self.cost, turn.cost)
            costs.ledger.record(self.provider.model, turn.usage, turn.cost)
            self._emit(ev.CostReported(step, turn.cost, self.cost))
        self._unpriced = []

    async def _run_tools(
        self,
        calls: list[ToolCall],
        given: dict[str, ToolCallRecord] | None = None,
        resume: Resume | None = None,
    ) -> None:
        """Run a turn's calls and answer them in one message. A branch's turn (`resume`) also
        has calls with a given result and calls that keep the result they had."""
        budget = self.options.max_tool_calls - len(self.records)
        batch = [ToolCallRecord(c.id, c.name, c.arguments, self.steps) for c in calls]
        self.records.extend([*(given or {}).values(), *batch])
        self._pending = [*(given or {}).values(), *batch]
        self._resume_order = resume
        for rec in self._pending:
            rec.server = getattr(self.tools.get(rec.name), "server", None)  # an MCP server's name
            self._emit(ev.ToolCallRequested(rec))
        for rec in (given or {}).values():
            rec.ended_at = time.monotonic()
            self._emit(ev.ToolCallFinished(rec))
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
        if self.answer is not None:
            self.answer.after_tools(batch)

    def _commit_results(self) -> None:
        results = {r.id: ToolResult(r.id, r.name, r.output, r.is_error) for r in self._pending}
        resume, self._resume_order = self._resume_order, None
        if resume is not None:  # the branch turn's order, with the results kept as they were
            results = {c.id: results.get(c.id) or resume.kept[c.id] for c in resume.calls}
        self.conversation.messages.append(Message("tool", tool_results=list(results.values())))
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
                self._end(rec, "cancelled", _cancelled_output(rec))
            raise

    def _needs_approval(self, tool: Tool) -> bool:
        return tool.options.requires_approval or self.options.needs_approval(tool.name)

    async def _ask_approval(self, rec: ToolCallRecord) -> Approval:
        """The approval callback decides, else a subscribed approver (`decide()`), else no."""
        rec.status = "awaiting_approval"
        callback = self.options.approval_callback
        future: asyncio.Future[Approval] | None = None
        if callback is None and self._approvers:
            future = self._decisions[rec.id] = asyncio.get_running_loop().create_future()
        self._emit(ev.ToolCallAwaitingApproval(rec))
        try:
            if callback is not None:
                decision = await callback(rec)
                return decision if isinstance(decision, Approval) else Approval(bool(decision))
            if future is not None:
                return await future
        finally:
            self._decisions.pop(rec.id, None)
        return Approval(False, "approval is required and no approver was set")

    async def _execute(self, tool: Tool, rec: ToolCallRecord, kwargs: dict[str, Any]) -> None:
        rec.status = "running"
        rec.implementation = tool.implementation(self.options.prefer_sync)
        rec.started_at = time.monotonic()
        self._emit(ev.ToolCallStarted(rec))
        limit = self.options.tool_timeout or tool.options.timeout
        deadline = asyncio.timeout(limit)
        thread = ThreadCall()
        try:
            async with deadline:
                value = await tool.call(
                    kwargs, prefer_sync=self.options.prefer_sync, caller=self.caller, thread=thread
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
                    output += (
                        "; it is still running in its thread, so what it does may still happen"
                    )
                return self._end(rec, "error", output, exc)
            return self._tool_failed(tool, rec, exc)
        rec.result = value
        try:
            rec.output, rec.truncated = serialize_result(value, tool.options.max_result_chars)
        except Exception as exc:  # a broken __repr__, a list nested 5,000 deep
            rec.reason = "the result could not be turned into text for the model"
            return self._end(
                rec,
                "error",
                f"error: {tool.name} returned a {type(value).__name__} that "
                f"could not be turned into text ({type(exc).__name__}: {exc})",
                exc,
            )
        rec.status = "ok"
        rec.ended_at = time.monotonic()
        self._emit(ev.ToolCallFinished(rec))

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
        self._emit(ev.ToolCallSettled(rec))

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
                    self._end(rec, "cancelled", _cancelled_output(rec))
            self._commit_results()


def _cancelled_output(rec: ToolCallRecord) -> str:
    """What the model reads for a cancelled call: whether the function may still be at work."""
    if rec.thread == "running":
        return f"{CANCELLED_OUTPUT}; it is still running in its thread, so what it does may still happen"
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


def _smaller(a: int | None, b: int | None) -> int | None:
    """The smaller of two limits, either of which may be absent (None)."""
    if a is None or b is None:
        return b if a is None else a
    return min(a, b)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


collections.abc.Coroutine.register(ChainRun)
