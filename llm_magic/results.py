"""What a run produces: a `ChainResult`, and the conversation protocol it continues from.

A result is a point in history: its `messages` are the conversation as the run left it, and
`continue_()` goes on in a fork of its conversation, so no later run changes it. `fork()` and
`rerun()` go on from a point inside it (see llm_magic.branches).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar, Unpack

from .branches import NOT_GIVEN
from .errors import LLMMagicError
from .messages import Message, ModelTurn, Usage
from .options import ChainKwargs, ChainOptions, build_options
from .records import ToolCallRecord

if TYPE_CHECKING:
    from .branches import BranchPoint, Plan
    from .cost import LateCost

Status = Literal[
    "pending",
    "running",
    "done",
    "max_steps",
    "max_tool_calls",
    "max_cost",
    "timeout",
    "cancelled",
    "failed",
]
R = TypeVar("R", covariant=True)


class ConversationLike(Protocol[R]):
    """What a run needs of its conversation, and what a result continues from.

    `R` is what `chain()` returns: a `ChainRun` for async conversations, a `ChainResponse` for
    their sync twins, so `result.continue_(...)` has the colour of the run that made it.
    """

    @property
    def messages(self) -> list[Message]: ...

    @property
    def tools(self) -> Sequence[Any]: ...

    cost: Decimal | None  # US dollars spent on the history so far (None: unknown)

    def fork(
        self, messages: Sequence[Message], *, cost: Decimal | None = Decimal(0), model: Any = None
    ) -> ConversationLike[R]: ...

    def branch(self, plan: Plan, prompt: str | None, options: ChainOptions) -> R:
        """Run from a branch point (see llm_magic.branches); `R` as for `chain`."""
        ...

    def chain(
        self,
        prompt: str | None,
        *,
        tools: Sequence[Any] | None = None,
        system: str | None = None,
        **options: Unpack[ChainKwargs],
    ) -> R: ...


class _Settled:
    """A result's cost: reading it waits for a price that settles after the run (the price
    table still loading when the run ended; see `cost.LateCost`)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.slot = "_" + name

    def __get__(self, result: Any, owner: type | None = None) -> Decimal | None:
        if result is None:  # the dataclass asks for the field's default
            return Decimal(0)
        late = result.late
        if late is not None:
            late.wait()
        value: Decimal | None = result.__dict__[self.slot]
        return value

    def __set__(self, result: Any, value: Decimal | None) -> None:
        result.__dict__[self.slot] = value


@dataclass(eq=False)
class ChainResult(Generic[R]):
    """What a run produced: a point in history that later runs branch from.

    `messages` is the conversation as this run left it; `continue_` goes on from there in a
    fork, so a result never changes once made, whatever runs after it. Its repr is the answer.
    """

    text: str
    status: Status
    tool_calls: list[ToolCallRecord]
    usage: Usage
    steps: int
    model: str  # the resolved `prefix:model` id (`openai:gpt-5.4-mini`), as every view shows it
    elapsed: float
    error: BaseException | None = None
    turns: list[ModelTurn] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list, repr=False)
    conversation: ConversationLike[R] | None = field(default=None, repr=False)
    # US dollars this run spent (None: the price is unknown), and its whole history
    cost: _Settled = _Settled()
    conversation_cost: _Settled = _Settled()
    output: Any = None  # the answer validated into `output_type`, when one was given
    # len(messages) before the run's first model turn, then after each step (turn + results)
    step_ends: list[int] = field(default_factory=list, repr=False)
    options: ChainOptions | None = field(default=None, repr=False)
    branched_from: BranchPoint | None = field(default=None, repr=False)
    # the route it went by, the model id's prefix ("openai" over Responses, "openai-chat",
    # "anthropic", "gemini", "ollama", "openai-compatible", "local"): `Provider.name`
    provider: str = ""
    # Why a limit ended the run, with its figures (max_cost: what was spent and what the next
    # turn needed); None when the status says it all.
    stop_reason: str | None = None
    # the price, while it settles after the run (reading `cost` waits for it); None once it has
    late: LateCost | None = field(default=None, init=False, repr=False)

    def __repr__(self) -> str:
        if self.output is not None:  # a typed answer (its JSON is the text, natively)
            return repr(self.output)
        if self.text:
            return self.text
        return f"<ChainResult {self.status}, no text>"

    def __str__(self) -> str:
        return self.text

    @property
    def ok(self) -> bool:
        return self.status == "done"

    def continue_(
        self,
        prompt: str,
        *,
        tools: Sequence[Any] | None = None,
        system: str | None = None,
        **options: Unpack[ChainKwargs],
    ) -> R:
        """Go on from this result, in a fork: an awaitable run (async) or a response (sync)."""
        fork = self._conversation().fork(self.messages, cost=self.conversation_cost)
        return fork.chain(prompt, tools=tools, system=system, **options)

    def fork(
        self,
        *,
        at: int | str,
        prompt: str | None = None,
        result: Any = NOT_GIVEN,
        model: Any = None,
        **options: Unpack[ChainKwargs],
    ) -> R:
        """A new run from inside this result; this result never changes.

        at: a step (0: before this run's first model turn; N: after step N's tool results)
        or a call id (after its turn). result: with a call id, take this value as that call's
        result instead of what it returned. prompt: a new user message to go on with (needed
        at step 0). model: go on with another model (an id, or a model of this colour), even at
        another provider: the history is sent in its form. The options default to this run's.
        The new result's `branched_from` says where it came from.
        """
        from .branches import plan_fork

        plan = plan_fork(self, at, result)
        if prompt is None and plan.resume is None and at == 0:
            raise ValueError("a fork at step 0 replaces the prompt: give prompt=...")
        return self._branch(plan, prompt, options, model)

    def rerun(
        self,
        call_id: str,
        *,
        arguments: dict[str, Any] | None = None,
        prompt: str | None = None,
        model: Any = None,
        **options: Unpack[ChainKwargs],
    ) -> R:
        """Run tool call `call_id` again, with `arguments` edited (checked against the tool's
        schema first: a bad value raises ToolArgumentsError and nothing runs), and go on from
        there as a new run; this result never changes. The other calls of that turn keep
        their results. model: as for `fork`."""
        from .branches import plan_rerun

        conversation = self._conversation()
        tools = {t.name: t for t in conversation.tools}
        plan = plan_rerun(self, call_id, arguments, tools)
        return self._branch(plan, prompt, options, model)

    def _branch(self, plan: Plan, prompt: str | None, options: Mapping[str, Any], model: Any) -> R:
        from .cost import add

        opts = build_options(self.options, **options)
        if "attachments" not in options and plan.point.step > 0:
            opts = opts.replace(attachments=())  # this run's are in the history already
        spent = self.conversation_cost  # the history before this run, and its steps kept
        before = None if spent is None or self.cost is None else spent - self.cost
        cost = add(before, *(t.cost for t in self.turns[: plan.point.step]))
        fork = self._conversation().fork(plan.messages, cost=cost, model=model)
        if "model_options" not in options:  # this run's, written for its provider
            plan.options_from = self.provider
        return fork.branch(plan, prompt, opts)

    def _conversation(self) -> ConversationLike[R]:
        if self.conversation is None:
            raise LLMMagicError("this result has no conversation to continue")
        return self.conversation
