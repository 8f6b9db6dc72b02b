"""Models and conversations in two colours with one vocabulary.

`AsyncModel.chain()` returns a `ChainRun`: await it, or await its `text()`, `tool_calls()`,
`usage()`. `Model.chain()` returns a `ChainResponse` whose methods of the same names are called
plainly; it drives the same `ChainRun` on a private loop thread, so it works inside a notebook.

Lifetimes follow httpx2: a model owns its provider's HTTP clients (one per event loop); use it
as a context manager (`async with` / `with`) or call `aclose()` / `close()` when done. Models
from `get_model()` share a cached provider per model id and key; closing one closes the
clients of the loop it is closed on, and the cache itself can be emptied with
`llm_magic.registry.clear_cache()`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from types import TracebackType
from typing import TYPE_CHECKING, Any, Unpack, cast

from . import events as ev
from . import registry
from ._broadcast import Subscriber
from ._loop import CallerThread, run_sync
from .chain import ChainRun
from .errors import LLMMagicError
from .messages import Message, Usage
from .options import ChainKwargs, ChainOptions, build_options
from .providers.base import Provider
from .records import ToolCallRecord
from .results import ChainResult
from .sources import ToolSource, split_sources
from .tools import Tool

if TYPE_CHECKING:
    import httpx2

    from .branches import Plan, Resume


class AsyncConversation:
    """A history of messages with one model; each `chain()` continues it."""

    def __init__(
        self,
        model: AsyncModel,
        *,
        system: str | None = None,
        tools: Iterable[Any] = (),
        messages: Sequence[Message] = (),
        cost: Decimal | None = Decimal(0),
    ) -> None:
        self.model = model
        self.system = system
        self.tools: list[Tool]
        self.sources: list[ToolSource]  # MCP servers: each run lists their tools
        self.tools, self.sources = split_sources(tools)
        self._messages: list[Message] = list(messages)
        self._running: ChainRun | None = None
        self.cost: Decimal | None = cost  # US dollars spent on this history (None: unknown)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.model.model_id} {len(self.messages)} messages>"

    @property
    def messages(self) -> list[Message]:
        return self._messages

    def to_sync(self) -> Conversation:
        """The sync twin driving this very conversation (its messages, tools and cost)."""
        return Conversation.wrapping(self)

    def fork(
        self,
        messages: Sequence[Message],
        *,
        cost: Decimal | None = Decimal(0),
        model: AsyncModel | Model | str | None = None,
    ) -> AsyncConversation:
        """A new conversation with the same system prompt and tools, from `messages` (which
        cost `cost` US dollars), with the same model or `model` (an id, or a model)."""
        if isinstance(model, str):
            model = get_async_model(model)
        chosen = model.to_async() if isinstance(model, Model) else model
        return AsyncConversation(
            chosen or self.model, system=self.system, tools=self.tools, messages=messages, cost=cost
        )

    def branch(self, plan: Plan, prompt: str | None, options: ChainOptions) -> ChainRun:
        """A run from a branch point (`ChainResult.fork` / `rerun` build the plan)."""
        options = plan.options_for(options, self.model.provider)
        run = self._run(prompt, options, resume=plan.resume)
        run.branched_from = plan.point
        return run

    def chain(
        self,
        prompt: str | None,
        *,
        tools: Sequence[Any] | None = None,
        system: str | None = None,
        **options: Unpack[ChainKwargs],
    ) -> ChainRun:
        """Start a run on this conversation (lazily: it runs when awaited or iterated)."""
        return self._run(prompt, build_options(**options), tools=tools, system=system)

    def _run(
        self,
        prompt: str | None,
        options: ChainOptions,
        *,
        tools: Sequence[Any] | None = None,
        system: str | None = None,
        caller: CallerThread | None = None,
        owner: Any = None,
        resume: Resume | None = None,
    ) -> ChainRun:
        """`chain()` with a complete options object (what the sync twin and notebook build).

        `owner` is the conversation results continue from (the sync twin passes itself).
        """
        if self._running is not None and self._running.final is None:
            raise LLMMagicError("this conversation has a run still going; await or cancel it first")
        if tools is not None:
            self.tools, self.sources = split_sources(tools)
        if system is not None:
            self.system = system
        run = ChainRun(
            self.model.provider,
            owner if owner is not None else self,
            prompt,
            self.tools,
            options,
            system=self.system,
            caller=caller,
            resume=resume,
            sources=self.sources,
        )
        self._running = run
        return run

    def reset(self) -> None:
        self._messages.clear()


class AsyncModel:
    """One model at one provider, used from async code."""

    def __init__(self, provider: Provider, given_id: str | None = None) -> None:
        self.provider = provider
        self.given_id = given_id or provider.model_id  # as typed: an alias stays an alias

    @property
    def model_id(self) -> str:
        """The resolved `prefix:model` id: the one results, events and views show."""
        return self.provider.model_id

    @property
    def label(self) -> str:
        """What a view's header shows: the resolved id, and the alias when one was typed."""
        return registry.shown_id(self.model_id, self.given_id)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.label!r}>"

    def to_sync(self) -> Model:
        """The sync twin over the same provider (and so the same connections)."""
        return Model(self.provider, self.given_id)

    def conversation(
        self,
        *,
        system: str | None = None,
        tools: Iterable[Any] = (),
        messages: Sequence[Message] = (),
    ) -> AsyncConversation:
        return AsyncConversation(self, system=system, tools=tools, messages=messages)

    def chain(
        self,
        prompt: str,
        *,
        tools: Iterable[Any] = (),
        system: str | None = None,
        **options: Unpack[ChainKwargs],
    ) -> ChainRun:
        """Run `prompt` with `tools` until the model answers; the options are ChainOptions'."""
        return self.conversation(system=system, tools=tools).chain(prompt, **options)

    async def prompt(
        self, prompt: str, *, system: str | None = None, **options: Unpack[ChainKwargs]
    ) -> ChainResult[ChainRun]:
        """A single model turn without tools."""
        return await self.chain(prompt, system=system, **options)

    async def aclose(self) -> None:
        """Close the provider's HTTP client of the running loop (a real coroutine)."""
        await self.provider.aclose()

    async def __aenter__(self) -> AsyncModel:
        return self

    async def __aexit__(
        self,
        _exc_type: type[BaseException] | None,
        _exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class ChainResponse:
    """The sync twin of ChainRun: the same method names, called without await.

    `on_loop` tools run on the thread that waits here (in `result()`, `text()`, iteration):
    in sync code that is the thread the user called from.
    """

    def __init__(self, run: ChainRun, caller: CallerThread) -> None:
        self._run = run
        self._caller = caller

    def __repr__(self) -> str:
        state = self._run.final.status if self._run.final else "not run yet"
        return f"<ChainResponse {self._run.provider.model_id!r} {state}>"

    def __str__(self) -> str:
        return self.text()

    def start(self) -> None:
        """Start the run on the private loop without waiting; ask for its result later.

        A started run goes on in the background with no thread waiting for it, so its
        `on_loop` tools run on llm_magic's loop thread instead of waiting for one.
        """
        self._caller.detach()

        async def begin() -> None:
            self._run.start()

        run_sync(begin())

    def result(self) -> ChainResult[ChainResponse]:
        final = self._run.final
        if final is None:
            return cast(ChainResult[ChainResponse], run_sync(self._run._wait(), self._caller))
        if final.error is not None:  # like `await run`: a failed run raises every time, with
            raise final.error.with_traceback(self._run.error_traceback)  # the same traceback
        return cast(ChainResult[ChainResponse], final)

    def text(self) -> str:
        return self.result().text

    def tool_calls(self) -> list[ToolCallRecord]:
        return self.result().tool_calls

    def usage(self) -> Usage:
        return self.result().usage

    def subscribe(self, callback: Subscriber, *, approver: bool = False) -> Subscriber:
        return self._run.subscribe(callback, approver=approver)

    def decide(self, call_id: str, approved: bool, reason: str | None = None) -> None:
        self._run.decide(call_id, approved, reason)

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

    def __init__(
        self,
        model: Model,
        *,
        system: str | None = None,
        tools: Iterable[Any] = (),
        messages: Sequence[Message] = (),
        cost: Decimal | None = Decimal(0),
    ) -> None:
        self.model = model
        self._async = AsyncConversation(
            model._async, system=system, tools=tools, messages=messages, cost=cost
        )

    def __repr__(self) -> str:
        return f"<Conversation {self.model.model_id} {len(self.messages)} messages>"

    def to_async(self) -> AsyncConversation:
        """The async conversation this twin drives: the same messages, tools and cost."""
        return self._async

    @classmethod
    def wrapping(cls, conversation: AsyncConversation) -> Conversation:
        """The sync twin of an existing async conversation (not a copy of it)."""
        twin = cls.__new__(cls)
        twin.model = conversation.model.to_sync()
        twin._async = conversation
        return twin

    @property
    def messages(self) -> list[Message]:
        return self._async.messages

    @property
    def tools(self) -> list[Tool]:
        return self._async.tools

    @property
    def cost(self) -> Decimal | None:
        return self._async.cost

    @cost.setter
    def cost(self, value: Decimal | None) -> None:
        self._async.cost = value

    def fork(
        self,
        messages: Sequence[Message],
        *,
        cost: Decimal | None = Decimal(0),
        model: AsyncModel | Model | str | None = None,
    ) -> Conversation:
        if isinstance(model, str):
            model = get_model(model)
        elif isinstance(model, AsyncModel):
            model = Model(model.provider, model.given_id)
        return Conversation(
            model or self.model,
            system=self._async.system,
            tools=self._async.tools,
            messages=messages,
            cost=cost,
        )

    def branch(self, plan: Plan, prompt: str | None, options: ChainOptions) -> ChainResponse:
        caller = CallerThread()
        options = plan.options_for(options, self.model.provider)
        run = self._async._run(prompt, options, caller=caller, owner=self, resume=plan.resume)
        run.branched_from = plan.point
        return ChainResponse(run, caller)

    def chain(
        self,
        prompt: str | None,
        *,
        tools: Sequence[Any] | None = None,
        system: str | None = None,
        **options: Unpack[ChainKwargs],
    ) -> ChainResponse:
        options.setdefault("prefer_sync", True)
        caller = CallerThread()
        run = self._async._run(
            prompt,
            build_options(**options),
            tools=tools,
            system=system,
            caller=caller,
            owner=self,
        )
        return ChainResponse(run, caller)

    def reset(self) -> None:
        self._async.reset()


class Model:
    """The sync twin of AsyncModel: same methods, no await, works inside a running loop."""

    def __init__(self, provider: Provider, given_id: str | None = None) -> None:
        self._async = AsyncModel(provider, given_id)

    def to_async(self) -> AsyncModel:
        """The async model this twin drives (the same provider and connections)."""
        return self._async

    @property
    def provider(self) -> Provider:
        return self._async.provider

    @property
    def model_id(self) -> str:
        return self._async.model_id

    @property
    def given_id(self) -> str:
        return self._async.given_id

    @property
    def label(self) -> str:
        return self._async.label

    def __repr__(self) -> str:
        return f"<Model {self.label!r}>"

    def conversation(
        self,
        *,
        system: str | None = None,
        tools: Iterable[Any] = (),
        messages: Sequence[Message] = (),
    ) -> Conversation:
        return Conversation(self, system=system, tools=tools, messages=messages)

    def chain(
        self,
        prompt: str,
        *,
        tools: Iterable[Any] = (),
        system: str | None = None,
        **options: Unpack[ChainKwargs],
    ) -> ChainResponse:
        return self.conversation(system=system, tools=tools).chain(prompt, **options)

    def prompt(
        self, prompt: str, *, system: str | None = None, **options: Unpack[ChainKwargs]
    ) -> ChainResult[ChainResponse]:
        return self.chain(prompt, system=system, **options).result()

    def close(self) -> None:
        """Close the provider's HTTP clients on llm_magic's private loop."""
        run_sync(self._async.aclose())

    def __enter__(self) -> Model:
        return self

    def __exit__(
        self,
        _exc_type: type[BaseException] | None,
        _exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self.close()


def get_async_model(
    model_id: str | None = None,
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    limits: httpx2.Limits | None = None,
    **provider_options: Any,
) -> AsyncModel:
    """The async model for an id (default: see `default_model_id`).

    limits: the HTTP connection pool (`httpx2.Limits`; an `httpx.Limits` is refused), default
    `Limits(max_connections=100, max_keepalive_connections=100)`: as many idle connections kept
    as may be open, so bursts of concurrent chains do not reopen connections. `max_connections`
    also bounds the requests in flight per event loop (a given `transport` too): the rest wait
    their turn, first come first served, before they reach the pool; None lifts both bounds.
    provider_options: the provider class's own keyword arguments (retry, timeout, transport).
    """
    provider = registry.make_provider(
        model_id, api_key=api_key, base_url=base_url, limits=limits, **provider_options
    )
    return AsyncModel(provider, model_id or registry.default_model_id())


def get_model(
    model_id: str | None = None,
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    limits: httpx2.Limits | None = None,
    **provider_options: Any,
) -> Model:
    """The sync twin of `get_async_model`."""
    provider = registry.make_provider(
        model_id, api_key=api_key, base_url=base_url, limits=limits, **provider_options
    )
    return Model(provider, model_id or registry.default_model_id())
