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

The loop moves one explicit state (`RunState`: status, steps, turns, calls, usage, cost) through
small steps; what each step needs beyond it has its own module: the cost meter
(`cost.CostMeter`), the tool runner (`tool_runner`), the approver (`_approver`), the event
broadcast (`_broadcast`).
"""

from __future__ import annotations

import asyncio
import collections.abc
import time
from collections.abc import AsyncIterator, Callable, Collection, Generator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from . import answers, views
from . import cost as pricing
from . import events as ev
from ._approver import Approver, running_loop
from ._broadcast import Broadcast, Subscriber
from ._loop import CallerThread
from .answers import TypedAnswer, answer_choice
from .cost import Cost, CostMeter
from .media import MediaPolicy, attachments
from .messages import FINAL_TURN_INSTRUCTION, Message, ModelRequest, ModelTurn, Usage
from .options import ChainOptions
from .records import ToolCallRecord
from .results import ChainResult, ConversationLike, Status
from .run_state import RunState
from .sources import ToolSource, with_sources
from .tool_runner import ToolRunner
from .tools import Tool

if TYPE_CHECKING:
    from .branches import BranchPoint, Resume
    from .providers.base import Provider

T = TypeVar("T")


class _FromState(Generic[T]):
    """A run's attribute that reads its `RunState` field of the same name."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, run: ChainRun, owner: type | None = None) -> T:
        # read several times a run: a `cast()` here would be one more call each time
        return getattr(run.state, self.name)  # type: ignore[no-any-return]


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
        self.system = system
        self.options = options
        self.state = RunState(tools={t.name: t for t in tools})
        self.sources = list(sources)  # their tools join `self.tools` when the run starts
        self.answer = answers.for_run(options.output_type, provider.native_output, self.tools)
        self.resume = resume  # a branch: the calls to answer before the first model turn
        self.branched_from: BranchPoint | None = resume.point if resume is not None else None
        self.meter = CostMeter(provider, options.max_cost, conversation.cost)
        self.broadcast = Broadcast()
        self.approver = Approver(options.approval_callback)
        # The sync facade's waiting thread, where `on_loop` tools run; None: the loop's thread.
        self.caller = caller
        media = MediaPolicy.of(provider)
        # the prompt's images and files as sent (a bad one raises here, before anything runs)
        self.attachments, self.omitted = media.fit(attachments(options.attachments), refuse=True)
        self.runner = ToolRunner(
            self.state, options, conversation, self.broadcast.emit, self.approver, caller, media
        )
        self.final: ChainResult[Any] | None = None
        self.error_traceback: TracebackType | None = None  # a failed run's, for re-raising
        self._task: asyncio.Task[ChainResult[Any]] | None = None
        self._driving: Generator[Any, Any, ChainResult[ChainRun]] | None = None  # as a coroutine
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- the run state, by its names (read-only: the run's steps move it) ---------------------
    status = _FromState[Status]()
    tools = _FromState[dict[str, Tool]]()
    records = _FromState[list[ToolCallRecord]]()
    turns = _FromState[list[ModelTurn]]()
    steps = _FromState[int]()
    cost = _FromState[Cost]()
    stop_reason = _FromState["str | None"]()
    started_at = _FromState[float]()

    @property
    def events(self) -> list[ev.Event]:
        return self.broadcast.events

    # -- consuming -------------------------------------------------------------------------
    def subscribe(self, callback: Subscriber, *, approver: bool = False) -> Subscriber:
        """Receive every event, in order, on the loop thread; past events are replayed.

        `approver=True`: this subscriber shows calls that need approval to a person and
        answers with `decide()`; without an approver or an `approval_callback` such calls are
        denied with a reason the model sees.
        """
        self.broadcast.subscribe(callback)
        if approver:
            self.approver.add_view()
        return callback

    def decide(self, call_id: str, approved: bool, reason: str | None = None) -> None:
        """Answer a call awaiting approval; safe from any thread (a widget's button)."""
        self.approver.decide(call_id, approved, reason)

    # A view shows this run (set by the view when it subscribes); `views.attach` skips it.
    viewed = False

    def start(self) -> asyncio.Task[ChainResult[Any]]:
        """Run on the running loop (once): the registered views attach here, on the thread
        that starts the run and before its first event, so a run never started shows nothing."""
        if self._task is None:
            self._loop = self.approver.loop = asyncio.get_running_loop()
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
        async for event in self.broadcast.iterate():
            yield event

    def cancel(self, reason: str = "cancelled by the user") -> None:
        """Cancel the run; safe to call from any thread (a widget's button callback)."""
        self.state.cancel_reason = reason
        task, loop = self._task, self._loop
        if task is None or loop is None or task.done():
            return
        if running_loop() is loop:
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
        self.broadcast.emit(event)

    async def _run(self) -> ChainResult[Any]:
        state = self.state
        state.started_at = time.monotonic()
        state.status = "running"
        error: BaseException | None = None
        deadline = asyncio.timeout(self.options.timeout)
        announced = False
        try:
            if state.cancel_reason is not None:  # cancelled before it started: list nothing
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
            state.status = "cancelled"
        except Exception as exc:  # a TimeoutError raised by other code is a failure, not ours
            if isinstance(exc, TimeoutError) and deadline.expired():
                state.status = "timeout"
            else:
                state.status, error = "failed", exc
        finally:
            if not announced:  # views learn of a run from its start, even one that never ran
                self._announce()
            self._repair()
        return self._finish(error)

    async def _prepare(self) -> None:
        """Before the first model turn: a budget's prices, a branch's calls answered, the prompt."""
        await self.meter.check_budget()
        if self.resume is not None:
            self._after_tools(await self.runner.run_branch(self.resume))
        self.state.step_ends.append(len(self.conversation.messages))
        if self.prompt is not None:
            text = "\n".join([self.prompt, *self.omitted])
            self.conversation.messages.append(Message("user", text, media=tuple(self.attachments)))

    def _announce(self) -> None:
        self._emit(
            ev.RunStarted(
                self.provider.model_id, self.prompt or "", list(self.tools), list(self.attachments)
            )
        )

    async def _add_source_tools(self) -> BaseException | None:
        """The tool sources' (MCP servers') tools join the run's; what failed, raised in `_run`."""
        try:
            tools = await with_sources(list(self.tools.values()), self.sources)
        except (Exception, asyncio.CancelledError) as exc:
            return exc
        self.state.tools = {t.name: t for t in tools}
        return None

    def _finish(self, error: BaseException | None) -> ChainResult[Any]:
        reports, late = self.meter.at_end(self.state.turns, self.conversation.cost)
        _report(self, reports)
        state = self.state
        last = state.turns[-1].text if state.turns else ""
        self.final = ChainResult(
            text=last or "".join(state.partial),
            status=state.status,
            tool_calls=list(state.records),
            usage=state.usage,
            steps=state.steps,
            model=self.provider.model_id,
            provider=self.provider.name,
            elapsed=time.monotonic() - state.started_at,
            error=error,
            turns=list(state.turns),
            messages=list(self.conversation.messages),
            conversation=self.conversation,
            cost=None if late else state.cost,
            conversation_cost=None if late else self.meter.conversation_cost,
            output=self.answer.value if self.answer is not None else None,
            step_ends=list(state.step_ends),
            options=self.options,
            branched_from=self.branched_from,
            stop_reason=state.stop_reason,
        )
        if late:
            self.final.late = pricing.defer(asyncio.get_running_loop(), lambda: _price_late(self))
        else:
            self.conversation.cost = self.final.conversation_cost
        if state.status == "cancelled":
            self._emit(ev.RunCancelled(self.final))
        elif state.status == "failed":
            self._emit(ev.RunFailed(self.final, error))
        else:
            self._emit(ev.RunFinished(self.final))
        self.broadcast.end()
        if error is not None:
            error.result = self.final  # type: ignore[attr-defined]
            self.error_traceback = error.__traceback__
            raise error
        return self.final

    async def _loop_turns(self) -> None:
        """Model turn, its calls, repeat; the status says what ended the loop."""
        state = self.state
        limit: Status | None = None
        while True:
            self._settle_costs()  # the turns before, if the table has loaded
            request = turn_request(
                self.conversation.messages,
                self.tools,
                self.system,
                self.options,
                self.answer,
                tools_on=limit is None,
            )
            stop = self.meter.fit(request, state.turn_number)
            if stop is not None:
                state.status, state.stop_reason = "max_cost", stop
                return
            turn = await self._model_turn(request)
            if not turn.tool_calls:
                state.step_ends.append(len(self.conversation.messages))
                if self.answer is not None and not self.answer.from_text(turn.text):
                    self.conversation.messages.append(Message("user", self.answer.reminder()))
                    state.step_ends[-1] += 1
                    continue
                # a typed answer ends the run "done", as through the final tool, limit or not
                state.status = "done" if self.answer is not None else limit or "done"
                return
            if limit is not None and self.answer is None:  # tools on its no-tools turn: dropped
                state.status = limit
                return
            state.steps += 1
            self._after_tools(await self.runner.run(turn.tool_calls))
            state.step_ends.append(len(self.conversation.messages))
            if self.answer is not None and self.answer.done:
                state.status = "done"
                return
            limit = state.limit_reached(self.options, self.provider.default_max_steps)
            if limit is not None and not (self.options.final_turn_on_limit and self.tools):
                state.status = limit
                return

    def _after_tools(self, batch: list[ToolCallRecord]) -> None:
        """The typed answer takes its value (or counts a failure) from a round's final-tool call."""
        if self.answer is not None:
            self.answer.after_tools(batch)

    async def _model_turn(self, request: ModelRequest) -> ModelTurn:
        state = self.state
        step = state.turn_number
        tools_on = request.tool_choice != "none"
        self._emit(ev.TurnStarted(step, tools_on and bool(self.tools)))
        state.partial = []
        on_text = _text_sink(state.partial, self.broadcast.emit, step)
        turn = await self.provider.turn(request, on_text)
        state.partial = []
        if not tools_on:
            turn.tool_calls = []
        state.turns.append(turn)
        self.conversation.messages.append(turn.to_message())
        state.usage = state.usage + turn.usage
        self._emit(ev.UsageReported(step, turn.usage, state.usage))
        self._emit(ev.TurnFinished(step, turn.text, list(turn.tool_calls), turn.usage))
        if self.meter.turn_ended(step):
            self._settle_costs()
        return turn

    def _settle_costs(self) -> None:
        """Price the turns the meter has not priced yet, if it can now, and report their cost."""
        if self.meter.unpriced and self.meter.ready():
            _report(self, self.meter.settle(self.state.turns))

    def _repair(self) -> None:
        """Leave a conversation the provider accepts: partial text kept, every call answered."""
        state = self.state
        if state.partial:  # its usage never came: the tokens it was billed are unknown
            state.turns.append(ModelTurn(text="".join(state.partial), finish_reason="cancelled"))
            self.conversation.messages.append(Message("assistant", "".join(state.partial)))
            state.partial = []
            self.meter.usage_lost()
            state.cost = None
            self._emit(ev.CostReported(len(state.turns), None, None))
        self.runner.answer_pending()


def _text_sink(
    partial: list[str], emit: Callable[[ev.Event], None], step: int
) -> Callable[[str], None]:
    """What a streamed turn's text deltas go to: kept as the partial text, sent as events.
    Called once per token, so it looks nothing up per delta."""
    delta = ev.TextDelta

    def on_text(text: str) -> None:
        partial.append(text)
        emit(delta(step, text))

    return on_text


def _report(run: ChainRun, reports: list[tuple[int, Cost, Cost]]) -> None:
    for step, turn_cost, total in reports:
        run.state.cost = total
        run.broadcast.emit(ev.CostReported(step, turn_cost, total))


def _price_late(run: ChainRun) -> None:
    """A run's price, once the table has loaded after the run: the result's cost and its
    conversation's first (reading them waits for this), then the events."""
    final = run.final
    assert final is not None
    reports = run.meter.settle(run.state.turns)
    cost = run.meter.cost
    spent = pricing.add(run.conversation.cost, cost)
    final.cost, final.conversation_cost = cost, spent
    final.late = None  # read from here on (by a subscriber too), the cost is there
    run.conversation.cost = spent
    _report(run, reports)


def turn_request(
    history: list[Message],
    tools: dict[str, Tool],
    system: str | None,
    options: ChainOptions,
    answer: TypedAnswer | None,
    tools_on: bool,
) -> ModelRequest:
    """The next model turn's request: the history, the tools, and how to answer. `tools_on`
    False is the turn after a limit, which must answer in text (or through the answer tool)."""
    messages = list(history)
    tool_choice = options.tool_choice if tools_on else "none"
    final = not tools_on  # each provider says "answer now" in its own wire form
    output = None
    if answer is not None and answer.native:  # the final text is the type's JSON
        output = answer.output_schema()
    elif answer is not None:  # a typed answer comes as a tool call, on every turn
        tool_choice = answer_choice(
            options.tool_choice, tools_on, options.model_options, options.thinking
        )
        if not tools_on:  # the answer tool stays on: say "answer now" in the text
            messages.append(Message("user", FINAL_TURN_INSTRUCTION))
            final = False
    return ModelRequest(
        messages=messages,
        tools=[t.spec() for t in tools.values()],
        system=system,
        stream=options.stream,
        tool_choice=tool_choice if tools else None,
        options=dict(options.model_options),
        final=final,
        output=output,
        thinking=options.thinking,
    )


collections.abc.Coroutine.register(ChainRun)
