"""Models and conversations in two colours with one vocabulary.

`AsyncModel.chain()` returns a `ChainRun`: await it, or await its `text()`, `tool_calls()`,
`usage()`. `Model.chain()` returns a `ChainResponse` whose methods of the same names are called
plainly; it drives the same `ChainRun` on a private loop thread, so it works inside a notebook.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from . import events as ev
from ._loop import CallerThread, run_sync
from .chain import ChainOptions, ChainResult, ChainRun
from .errors import LLMMagicError
from .events import ToolCallRecord
from .messages import Message, Usage
from .providers.base import Provider
from .tools import Tool, to_tools

_OPTION_FIELDS = set(ChainOptions.__dataclass_fields__)


def _split_options(kwargs: dict[str, Any]) -> ChainOptions:
    unknown = set(kwargs) - _OPTION_FIELDS
    if unknown:
        raise TypeError(
            f"unknown option(s) {', '.join(sorted(unknown))}; the options are "
            f"{', '.join(sorted(_OPTION_FIELDS))}"
        )
    return ChainOptions(**kwargs)


class AsyncConversation:
    """A history of messages with one model; each `chain()` continues it."""

    def __init__(
        self,
        model: AsyncModel,
        *,
        system: str | None = None,
        tools: Iterable[Any] = (),
        messages: Sequence[Message] = (),
    ) -> None:
        self.model = model
        self.system = system
        self.tools: list[Tool] = to_tools(tools)
        self.messages: list[Message] = list(messages)
        self._running: ChainRun | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.model.model_id} {len(self.messages)} messages>"

    def chain(
        self,
        prompt: str | None,
        *,
        tools: Iterable[Any] | None = None,
        system: str | None = None,
        **options: Any,
    ) -> ChainRun:
        """Start a run on this conversation (lazily: it runs when awaited or iterated)."""
        if self._running is not None and self._running.final is None:
            raise LLMMagicError("this conversation has a run still going; await or cancel it first")
        if tools is not None:
            self.tools = to_tools(tools)
        if system is not None:
            self.system = system
        run = ChainRun(
            self.model.provider,
            self,
            prompt,
            self.tools,
            _split_options(options),
            system=self.system,
        )
        self._running = run
        return run

    def reset(self) -> None:
        self.messages.clear()


class AsyncModel:
    """One model at one provider, used from async code."""

    def __init__(self, provider: Provider, model_id: str | None = None) -> None:
        self.provider = provider
        self.model_id = model_id or provider.model

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.model_id!r}>"

    def conversation(self, **kwargs: Any) -> AsyncConversation:
        return AsyncConversation(self, **kwargs)

    def chain(
        self,
        prompt: str,
        *,
        tools: Iterable[Any] = (),
        system: str | None = None,
        **options: Any,
    ) -> ChainRun:
        """Run `prompt` with `tools` until the model answers; see ChainOptions for options."""
        return self.conversation(system=system, tools=tools).chain(prompt, **options)

    async def prompt(
        self, prompt: str, *, system: str | None = None, **options: Any
    ) -> ChainResult:
        """A single model turn without tools."""
        return await self.chain(prompt, system=system, **options)

    async def aclose(self) -> None:
        await self.provider.aclose()


class ChainResponse:
    """The sync twin of ChainRun: the same method names, called without await.

    `on_loop` tools run on the thread that waits here (in `result()`, `text()`, iteration):
    in sync code that is the thread the user called from.
    """

    def __init__(self, run: ChainRun) -> None:
        self._run = run
        self._caller = run.caller = CallerThread()

    def __repr__(self) -> str:
        state = self._run.final.status if self._run.final else "not run yet"
        return f"<ChainResponse {self._run.provider.model!r} {state}>"

    def __str__(self) -> str:
        return self.text()

    def start(self) -> None:
        """Start the run on the private loop without waiting; ask for its result later.

        A started run goes on in the background with no thread waiting for it, so its
        `on_loop` tools run on llm_magic's loop thread instead of waiting for one.
        """
        self._run.caller = None

        async def begin() -> None:
            self._run.start()

        run_sync(begin())

    def result(self) -> ChainResult:
        final = self._run.final
        if final is None:
            return run_sync(self._run.result(), self._caller)
        if final.error is not None:  # like `await run`: a failed run raises every time, with
            raise final.error.with_traceback(self._run.error_traceback)  # the same traceback
        return final

    def text(self) -> str:
        return self.result().text

    def tool_calls(self) -> list[ToolCallRecord]:
        return self.result().tool_calls

    def usage(self) -> Usage:
        return self.result().usage

    def subscribe(self, callback: Any) -> Any:
        return self._run.subscribe(callback)

    def cancel(self, reason: str = "cancelled by the user") -> None:
        self._run.cancel(reason)

    def __iter__(self) -> Iterator[ev.Event]:
        iterator = self._run.__aiter__()

        async def step() -> ev.Event:
            return await iterator.__anext__()

        while True:
            try:
                yield run_sync(step(), self._caller)
            except StopAsyncIteration:
                return


class Conversation:
    """The sync twin of AsyncConversation."""

    def __init__(self, model: Model, **kwargs: Any) -> None:
        self.model = model
        self._async = AsyncConversation(model._async, **kwargs)

    def __repr__(self) -> str:
        return f"<Conversation {self.model.model_id} {len(self.messages)} messages>"

    @property
    def messages(self) -> list[Message]:
        return self._async.messages

    def chain(
        self,
        prompt: str | None,
        *,
        tools: Iterable[Any] | None = None,
        system: str | None = None,
        **options: Any,
    ) -> ChainResponse:
        options.setdefault("prefer_sync", True)
        run = self._async.chain(prompt, tools=tools, system=system, **options)
        run.conversation = self
        return ChainResponse(run)

    def reset(self) -> None:
        self._async.reset()


class Model:
    """The sync twin of AsyncModel: same methods, no await, works inside a running loop."""

    def __init__(self, provider: Provider, model_id: str | None = None) -> None:
        self._async = AsyncModel(provider, model_id)

    @property
    def provider(self) -> Provider:
        return self._async.provider

    @property
    def model_id(self) -> str:
        return self._async.model_id

    def __repr__(self) -> str:
        return f"<Model {self.model_id!r}>"

    def conversation(self, **kwargs: Any) -> Conversation:
        return Conversation(self, **kwargs)

    def chain(
        self,
        prompt: str,
        *,
        tools: Iterable[Any] = (),
        system: str | None = None,
        **options: Any,
    ) -> ChainResponse:
        return self.conversation(system=system, tools=tools).chain(prompt, **options)

    def prompt(self, prompt: str, *, system: str | None = None, **options: Any) -> ChainResult:
        return self.chain(prompt, system=system, **options).result()

    def aclose(self) -> None:
        run_sync(self._async.aclose())
