"""Python callables as tools: schema from the signature, validated calls, results for the model.

A `Tool` wraps a sync implementation, an async one, or both (paired with `@async_tool_is`).
The chain calls `await tool.call(kwargs, prefer_sync=...)`, which is the one place that decides
where the code runs: async implementations as coroutines on the loop, sync ones in a worker thread
of llm_magic's own pool (with the caller's context variables, so the notebook's output routing
follows), or, for thread-affine code (`on_loop=True`), on the caller's thread: the loop thread in
async runs (the kernel's main thread in a notebook), the thread waiting for the result in sync
runs.

A thread cannot be stopped: a sync tool whose call is cancelled (or times out) goes on running
in its worker thread. The run says so (`ToolCallRecord.thread`) and reports what the thread did
when it ends (`ToolCallSettled`). A tool that can stop early checks `cancel_event()` and declares
`cancellable=True`; the run then sets the event and waits a moment (`CANCEL_GRACE`) for it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import dataclasses
import functools
import inspect
import threading
import types
from collections.abc import Callable, Iterable
from typing import Any, Literal, TypeVar, overload

from . import _runtime
from ._loop import CallerThread
from ._schema_refs import inline_root_ref
from ._serialize import DEFAULT_MAX_RESULT_CHARS, serialize_result
from ._tool_names import WIRE_NAME
from .docstrings import parse_docstring
from .errors import ToolArgumentsError, ToolDefinitionError
from .messages import ToolSpec
from .schema import Parameters, parameters_from_signature

F = TypeVar("F", bound=Callable[..., Any])
OnError = Literal["model", "raise"]

_TOOL_ATTR = "__llm_tool__"
_ASYNC_ATTR = "__llm_async_impl__"


@dataclasses.dataclass
class ToolOptions:
    """Per-tool policy; every field can also be set per run."""

    requires_approval: bool = False
    # run a sync tool on the caller's thread (matplotlib, widgets) instead of a worker thread:
    # the running loop's thread in async runs (it blocks that loop meanwhile), the thread that
    # waits for the result in sync runs
    on_loop: bool = False
    timeout: float | None = None
    on_error: OnError = "model"
    max_result_chars: int = DEFAULT_MAX_RESULT_CHARS
    # the sync tool checks `cancel_event()` and returns soon after it is set: a cancelled run
    # waits up to CANCEL_GRACE seconds for it instead of leaving it running in its thread
    cancellable: bool = False


CANCEL_GRACE = 5.0  # seconds a cancelled run waits for a `cancellable` tool's thread to end
_CANCEL: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar(
    "llm_magic_tool_cancel", default=None
)


def cancel_event() -> threading.Event:
    """The event set when the run stops wanting this tool call's result (a cancel, a kernel
    interrupt, the tool's timeout), for a sync tool in its worker thread to check:

        @llm_magic.tool(cancellable=True)
        def copy_rows(n: int) -> int:
            stop = llm_magic.cancel_event()
            for i in range(n):
                if stop.is_set():
                    return i  # stopped early: the timeline shows this late result
                ...

    Outside a tool's thread it is an event that is never set.
    """
    event = _CANCEL.get()
    return event if event is not None else threading.Event()


@dataclasses.dataclass(eq=False)
class ThreadCall:
    """Where a sync tool call runs in a worker thread: its future (which outlives a cancel, since
    a thread cannot be stopped) and the event `cancel_event()` gives the tool."""

    stop: threading.Event = dataclasses.field(default_factory=threading.Event)
    future: concurrent.futures.Future[Any] | None = None

    @property
    def running(self) -> bool:
        return self.future is not None and not self.future.done()


@dataclasses.dataclass(eq=False)
class Tool:
    """A function the model may call. Build it with `Tool.from_function` or `@tool`."""

    name: str
    description: str
    parameters: Parameters
    sync_impl: Callable[..., Any] | None = None
    async_impl: Callable[..., Any] | None = None
    options: ToolOptions = dataclasses.field(default_factory=ToolOptions)
    server: str | None = None  # where a tool from elsewhere runs (an MCP server's name)

    @property
    def schema(self) -> dict[str, Any]:
        return self.parameters.schema

    @classmethod
    def from_schema(
        cls,
        name: str,
        description: str,
        schema: dict[str, Any],
        call: Callable[..., Any],
        *,
        check: Callable[[dict[str, Any]], None] | None = None,
        server: str | None = None,
        **options: Any,
    ) -> Tool:
        """A tool whose JSON schema is given (an MCP server's tool), not read from a signature.

        `call(**arguments)` (sync or async) gets the model's arguments once `check` accepted
        them; `check` raises `ToolArgumentsError` on a mismatch, which goes back to the model.
        """
        if not WIRE_NAME.match(name):
            raise ToolDefinitionError(f"tool name {name!r} must match {WIRE_NAME.pattern}")
        async_call = _is_async_callable(call)
        return cls(
            name=name,
            description=description or f"Call {name}.",
            parameters=GivenParameters({}, set(), {}, {}, given=schema, check=check),
            sync_impl=None if async_call else call,
            async_impl=call if async_call else None,
            options=ToolOptions(**options),
            server=server,
        )

    def spec(self) -> ToolSpec:
        """What a provider declares; made once per name, description and parameters (a run
        sends it every turn, the parameters of a plain function's tool are kept between runs,
        and each provider's wire form of it is kept in it)."""
        specs = self.parameters.__dict__.setdefault("_specs", {})
        key = (self.name, self.description)
        made: ToolSpec | None = specs.get(key)
        if made is None:
            made = specs[key] = ToolSpec(self.name, self.description, self.schema)
        return made

    @classmethod
    def from_function(
        cls,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        **options: Any,
    ) -> Tool:
        """Make a tool from a function, `async def`, bound method, partial or callable object.

        A function decorated with `@tool(...)` or `@async_tool_is(...)` keeps what the decorator
        set; keyword arguments given here override it.
        """
        if isinstance(fn, Tool):
            return fn.with_options(name=name, description=description, **options)
        marked = getattr(fn, _TOOL_ATTR, None)
        if isinstance(marked, Tool):
            if inspect.ismethod(fn):
                marked = _bind_marked(marked, fn)
            return marked.with_options(name=name, description=description, **options)
        if not callable(fn):
            raise ToolDefinitionError(f"{fn!r} is not callable, so it cannot be a tool")
        tool_name = name or _callable_name(fn)
        if not tool_name.isidentifier():
            raise ToolDefinitionError(f"tool name {tool_name!r} must be a valid identifier")
        doc = parse_docstring(_callable_doc(fn))
        params = parameters_from_signature(fn, doc.params, tool_name)
        paired = getattr(fn, _ASYNC_ATTR, None)
        if paired is not None:
            sync_impl, async_impl = fn, paired
        elif _is_async_callable(fn):
            sync_impl, async_impl = None, fn
        else:
            sync_impl, async_impl = fn, None
        return cls(
            name=tool_name,
            description=description or doc.summary or f"Call {tool_name}.",
            parameters=params,
            sync_impl=sync_impl,
            async_impl=async_impl,
            options=ToolOptions(**options),
        )

    def with_options(
        self, *, name: str | None = None, description: str | None = None, **options: Any
    ) -> Tool:
        if not (name or description or options):
            return self
        return dataclasses.replace(
            self,
            name=name or self.name,
            description=description or self.description,
            options=dataclasses.replace(self.options, **options),
        )

    def implementation(self, prefer_sync: bool = False) -> Literal["sync", "async"]:
        """Which implementation a run in this colour uses."""
        if self.sync_impl is not None and (prefer_sync or self.async_impl is None):
            return "sync"
        return "async"

    async def call(
        self,
        kwargs: dict[str, Any],
        *,
        prefer_sync: bool = False,
        caller: CallerThread | None = None,
        thread: ThreadCall | None = None,
    ) -> Any:
        """Run the tool with validated keyword arguments; never blocks the loop (unless on_loop).

        `caller` is the thread of a sync run's caller: `on_loop` tools run there, since in sync
        code "the thread I called from" is that one, not llm_magic's private loop thread.
        `thread`: filled in when the call runs in a worker thread, so the caller can tell the
        thread to stop and learn what it did after a cancel.
        """
        if self.implementation(prefer_sync) == "async":
            assert self.async_impl is not None
            result = self.async_impl(**kwargs)
        elif self.options.on_loop:
            assert self.sync_impl is not None
            bound = functools.partial(self.sync_impl, **kwargs)
            result = bound() if caller is None else await caller.call(bound)
        else:
            result = await _in_thread(self.sync_impl, kwargs, thread or ThreadCall())
        while inspect.isawaitable(result):
            result = await result
        return result

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        impl = self.sync_impl or self.async_impl
        assert impl is not None
        return impl(*args, **kwargs)


@dataclasses.dataclass
class GivenParameters(Parameters):
    """Parameters described by a given JSON schema, checked by a given validator."""

    given: dict[str, Any] = dataclasses.field(default_factory=dict)
    check: Callable[[dict[str, Any]], None] | None = None

    @property
    def schema(self) -> dict[str, Any]:
        # "properties" always there: the chain quotes it back to the model on a mismatch; a root
        # `$ref` is inlined first, so that placeholder never hides the definition's properties
        return {"type": "object", "properties": {}, **inline_root_ref(self.given)}

    def validate(self, arguments: Any) -> dict[str, Any]:
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            raise ToolArgumentsError(f"arguments must be a JSON object, got {arguments!r:.80}")
        if self.check is not None:
            self.check(arguments)
        return dict(arguments)


async def _in_thread(
    fn: Callable[..., Any] | None, kwargs: dict[str, Any], thread: ThreadCall
) -> Any:
    """Like `asyncio.to_thread` (the context, and so the notebook's output routing, follows),
    but on llm_magic's own pool: the default one has cpu+4 threads, so 8 parallel calls on two
    cores would run in two waves, and it holds interpreter exit for a timed-out tool. The
    thread's future goes into `thread`, and its `stop` event is the tool's `cancel_event()`."""
    context = contextvars.copy_context()
    context.run(_CANCEL.set, thread.stop)
    call = functools.partial(context.run, fn, **kwargs)  # type: ignore[arg-type]
    thread.future = _runtime.tool_pool.submit(call)
    return await asyncio.wrap_future(thread.future)


def _callable_name(fn: Any) -> str:
    target = fn.func if isinstance(fn, functools.partial) else fn
    name = getattr(target, "__name__", None)
    if name is None or name == "<lambda>":
        name = type(target).__name__ if name is None else "lambda_tool"
    return str(name)


def _callable_doc(fn: Any) -> str | None:
    target = fn.func if isinstance(fn, functools.partial) else fn
    doc = inspect.getdoc(target)
    if doc and not inspect.isroutine(target) and doc == inspect.getdoc(type(target)):
        own = getattr(type(target).__call__, "__doc__", None)  # not object's inherited one
        return inspect.cleandoc(own) if own else doc
    return doc


def _is_async_callable(fn: Any) -> bool:
    while isinstance(fn, functools.partial):
        fn = fn.func
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(type(fn), "__call__", None)  # noqa: B004
    return not inspect.isroutine(fn) and inspect.iscoroutinefunction(call)


def _bind_marked(marked: Tool, method: Any) -> Tool:
    """The tool of a bound method whose function was marked in the class body.

    The decorator saw the plain function, so its tool takes `self`; the bound method's tool
    must not ask the model for it, and each implementation must run on the same instance.
    """
    func = method.__func__
    if func is not marked.sync_impl and func is not marked.async_impl:
        return marked

    def bind(impl: Callable[..., Any] | None) -> Callable[..., Any] | None:
        return types.MethodType(impl, method.__self__) if inspect.isfunction(impl) else impl

    sync_impl, async_impl = bind(marked.sync_impl), bind(marked.async_impl)
    params = parameters_from_signature(method, marked.parameters.descriptions, marked.name)
    return dataclasses.replace(
        marked, parameters=params, sync_impl=sync_impl, async_impl=async_impl
    )


def _attach(fn: F, marked: Tool) -> F:
    """Store the tool on `fn`; a bound method cannot carry attributes, so it gets the tool."""
    try:
        setattr(fn, _TOOL_ATTR, marked)
    except AttributeError:
        return marked  # type: ignore[return-value]  # callable like `fn`
    return fn


@overload
def tool(fn: F) -> F: ...
@overload
def tool(
    fn: None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    requires_approval: bool = False,
    on_loop: bool = False,
    timeout: float | None = None,
    on_error: OnError = "model",
    max_result_chars: int = DEFAULT_MAX_RESULT_CHARS,
    cancellable: bool = False,
) -> Callable[[F], F]: ...
def tool(fn: Any = None, **kwargs: Any) -> Any:
    """Mark a function as a tool (found by `%%llm_chain` without `--tools`).

    The function is returned unchanged, so it stays callable from your own code; the `Tool` is
    stored on it and built at decoration time, so a bad hint fails here, not mid-chain.
    """

    def mark(f: F) -> F:
        return _attach(f, Tool.from_function(f, **kwargs))

    return mark(fn) if fn is not None else mark


def async_tool_is(async_impl: Callable[..., Any]) -> Callable[[F], F]:
    """Pair a sync function with its async twin: one tool, each colour runs its own code.

    Async runs (`await chain(...)`, `%%llm_chain`) call `async_impl`; sync runs
    (`get_model(...).chain(...)`) call the decorated function. The signatures must match.
    Used in a class body, each instance's bound method is a tool without `self`; called on
    bound methods (`async_tool_is(obj.aget)(obj.get)`), it returns the `Tool` itself.
    """
    if not _is_async_callable(async_impl):
        raise ToolDefinitionError(
            f"async_tool_is() needs an async function, got {_callable_name(async_impl)!r}"
        )

    def pair(sync_fn: F) -> F:
        if _is_async_callable(sync_fn):
            raise ToolDefinitionError(
                f"@async_tool_is goes on the sync implementation; {_callable_name(sync_fn)!r} "
                "is async"
            )
        _check_compatible(sync_fn, async_impl)
        base = Tool.from_function(sync_fn)  # `@tool(...)` applied first keeps its options
        paired = dataclasses.replace(base, sync_impl=sync_fn, async_impl=async_impl)
        with contextlib.suppress(AttributeError):  # a bound method: `_attach` returns the tool
            setattr(sync_fn, _ASYNC_ATTR, async_impl)
        return _attach(sync_fn, paired)

    return pair


def _check_compatible(sync_fn: Callable[..., Any], async_fn: Callable[..., Any]) -> None:
    a, b = inspect.signature(sync_fn), inspect.signature(async_fn)
    pa = [(p.name, p.kind, p.default) for p in a.parameters.values()]
    pb = [(p.name, p.kind, p.default) for p in b.parameters.values()]
    if pa != pb:
        raise ToolDefinitionError(
            f"@async_tool_is: {_callable_name(sync_fn)}{a} and {_callable_name(async_fn)}{b} "
            "must take the same parameters (names, kinds and defaults)"
        )
    for p in a.parameters.values():
        q = b.parameters[p.name]
        if p.empty not in (p.annotation, q.annotation) and p.annotation != q.annotation:
            raise ToolDefinitionError(
                f"@async_tool_is: parameter {p.name!r} is {p.annotation!r} in the sync "
                f"implementation but {q.annotation!r} in the async one"
            )


def to_tools(items: Iterable[Any]) -> list[Tool]:
    """Tools from functions or tools; two tools with one name are an error."""
    tools: list[Tool] = []
    seen: dict[str, Any] = {}
    for item in items:
        t = Tool.from_function(item)
        if t.name in seen:
            raise ToolDefinitionError(
                f"two tools are named {t.name!r}; rename one with Tool.from_function(fn, name=...)"
            )
        seen[t.name] = item
        tools.append(t)
    return tools


def is_marked_tool(obj: Any) -> bool:
    return isinstance(getattr(obj, _TOOL_ATTR, None), Tool)


__all__ = [
    "CANCEL_GRACE",
    "DEFAULT_MAX_RESULT_CHARS",
    "ThreadCall",
    "Tool",
    "ToolOptions",
    "async_tool_is",
    "cancel_event",
    "is_marked_tool",
    "serialize_result",
    "to_tools",
    "tool",
]
