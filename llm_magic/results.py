"""What a run produces: a `ChainResult`, and the conversation protocol it continues from.

A result is a point in history: its `messages` are the conversation as the run left it, and
`continue_()` goes on in a fork of its conversation, so no later run changes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Protocol, TypeVar, Unpack

from .errors import LLMMagicError
from .events import ToolCallRecord
from .messages import Message, ModelTurn, Usage
from .options import ChainKwargs

Status = Literal[
    "pending", "running", "done", "max_steps", "max_tool_calls", "timeout", "cancelled", "failed"
]
R = TypeVar("R", covariant=True)


class ConversationLike(Protocol[R]):
    """What a run needs of its conversation, and what a result continues from.

    `R` is what `chain()` returns: a `ChainRun` for async conversations, a `ChainResponse` for
    their sync twins, so `result.continue_(...)` has the colour of the run that made it.
    """

    @property
    def messages(self) -> list[Message]: ...

    def fork(self, messages: Sequence[Message]) -> ConversationLike[R]: ...

    def chain(
        self,
        prompt: str | None,
        *,
        tools: Sequence[Any] | None = None,
        system: str | None = None,
        **options: Unpack[ChainKwargs],
    ) -> R: ...


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
    model: str
    elapsed: float
    error: BaseException | None = None
    turns: list[ModelTurn] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list, repr=False)
    conversation: ConversationLike[R] | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return self.text if self.text else f"<ChainResult {self.status}, no text>"

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
        if self.conversation is None:
            raise LLMMagicError("this result has no conversation to continue")
        fork = self.conversation.fork(self.messages)
        return fork.chain(prompt, tools=tools, system=system, **options)
