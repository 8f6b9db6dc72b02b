"""One chain run from a notebook: model, tools, the notebook's conversation, timeline, ticker.

`run_chain` is what `await llm_magic.chain(...)` and `%%llm_chain` both call. It runs on the
loop of whoever awaits it (the kernel's own loop in Jupyter), so queued cells, widgets and
interrupts keep working, and it patches nothing.

While a run is awaited, a small ticker task wakes the loop every 0.1 s: ipykernel delivers a
kernel interrupt with a plain `call_soon` from the signal handler, which only runs when the loop
next wakes up (ipykernel issue 881); without the ticker an interrupt during a long tool or a
non-streaming request would wait for it to end.

Terminal IPython runs top-level await with `run_until_complete` on a loop that lives on: Ctrl-C
there raises KeyboardInterrupt out of the selector and leaves the run going into later cells.
For the duration of a run only, Ctrl-C cancels the awaiting task instead (as `asyncio.run`
does); the previous SIGINT handler is put back when the run ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from .. import registry
from .._loop import take_caller
from ..chain import Approval, ApprovalCallback, ChainOptions, ChainResult, ChainRun
from ..errors import ConfigError, ProviderError, ToolDefinitionError, UnknownModelError
from ..events import ToolCallRecord
from ..messages import Message
from ..models import AsyncConversation, AsyncModel, Conversation, Model
from ..tools import Tool, is_marked_tool, to_tools
from . import NotebookError, one_line
from .config import get_config

log = logging.getLogger("llm_magic")
TICK_SECONDS = 0.1
_OPTION_FIELDS = frozenset(ChainOptions.__dataclass_fields__)
_OWN_ARGS = frozenset(
    {
        "tools",
        "model",
        "system",
        "max_steps",
        "timeout",
        "approve",
        "quiet",
        "stream",
        "continue_",
        "reset",
        "history",
        "interpolate",
        "approval_callback",
        "api_key",
        "base_url",
        "namespace",
    }
)


class NotebookState:
    """What the notebook remembers between cells (module state, never ContextVars)."""

    def __init__(self) -> None:
        self.conversation: AsyncConversation | None = None
        self.last_result: ChainResult | None = None
        self.last_run: ChainRun | None = None


state = NotebookState()


def reset_conversation() -> None:
    """Forget the notebook's conversation: the next `--continue` starts afresh."""
    state.conversation = None


def current_conversation() -> AsyncConversation | None:
    return state.conversation


# -- environment -----------------------------------------------------------------------------------


def shell() -> Any:
    """The running IPython shell, or None; never imports IPython itself."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return None
    try:
        return ipython.get_ipython()
    except Exception:
        return None


def in_kernel(ip: Any) -> bool:
    return ip is not None and getattr(ip, "kernel", None) is not None


def _hidden_names(ip: Any) -> set[str]:
    hidden = set(getattr(ip, "user_ns_hidden", {}) or {}) if ip is not None else set()
    return hidden | {"In", "Out", "_", "__", "___", "exit", "quit", "get_ipython"}


# -- tools ----------------------------------------------------------------------------------------


def marked_tools(namespace: Mapping[str, Any]) -> list[Tool]:
    """Every function marked with `@tool` / `@async_tool_is` among the notebook's variables."""
    found: dict[str, tuple[str, Tool]] = {}
    for var, value in list(namespace.items()):
        if var.startswith("_"):
            continue
        try:
            if not is_marked_tool(value):
                continue
            marked = Tool.from_function(value)
        except Exception:
            continue
        seen = found.get(marked.name)
        # One tool per name: prefer the variable that carries the tool's own name.
        if seen is None or (seen[0] != marked.name and var == marked.name):
            found[marked.name] = (var, marked)
    return [t for _, t in found.values()]


def select_tools(tools: Any, namespace: Mapping[str, Any] | None) -> list[Tool]:
    """Tools from a list of callables, Tools or names; None: the marked functions (notebook)."""
    if tools is None:
        return marked_tools(namespace) if namespace is not None else []
    if isinstance(tools, str):
        tools = [name.strip() for name in tools.split(",") if name.strip()]
    elif callable(tools) or isinstance(tools, Tool):
        tools = [tools]
    items: list[Any] = []
    for item in tools:
        items.append(_named_tool(item, namespace) if isinstance(item, str) else item)
    try:
        return to_tools(items)
    except ToolDefinitionError as exc:
        raise one_line(exc) from None


def _named_tool(name: str, namespace: Mapping[str, Any] | None) -> Any:
    from .options import close_names, lookup

    found, value = lookup(name, namespace or {})
    if not found:
        callables = [
            k for k, v in (namespace or {}).items() if not k.startswith("_") and callable(v)
        ]
        close = close_names(name, callables)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        where = "in the notebook" if namespace is not None else "(no notebook namespace here)"
        raise NotebookError(
            f"unknown tool {name!r}: no function of that name {where}{hint} "
            "(define it in a cell first, or pass the function itself)"
        )
    if not callable(value):
        raise NotebookError(
            f"tool {name!r} is a {type(value).__name__}, not a function; "
            "--tools takes names of functions (or obj.method)"
        )
    return value


# -- models ---------------------------------------------------------------------------------------


def model_choices() -> list[str]:
    prefixes = [f"{p}:" for p in registry.PROVIDERS if p != "local"]
    return [*registry.KNOWN_MODELS, *registry.aliases, *prefixes]


def default_model_id() -> str:
    return get_config().default_model or registry.default_model_id()


def resolve_model(
    model: Any,
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    fallback: AsyncModel | None = None,
) -> AsyncModel:
    """An AsyncModel for an id, alias, Model or AsyncModel; None: the conversation's or default."""
    if isinstance(model, AsyncModel):
        return model
    if isinstance(model, Model):
        return model._async
    if model is None and fallback is not None and api_key is None and base_url is None:
        return fallback
    if model is None:
        model = default_model_id()
    if not isinstance(model, str):
        raise NotebookError(
            f"model must be a model id such as 'gpt-4.1-mini', got {type(model).__name__}"
        )
    model = model.strip()
    try:
        registry.resolve(model)
    except UnknownModelError:
        from .options import close_names

        close = close_names(model, model_choices())
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        raise NotebookError(
            f"unknown model {model!r}: {hint}Use a known id or alias (%llm_models lists them), "
            "or a provider prefix such as openai:NAME, ollama:NAME, "
            "openai-compatible:NAME@http://host:port/v1"
        ) from None
    except ConfigError as exc:
        raise one_line(exc) from None
    try:
        return registry.get_async_model(model, api_key=api_key, base_url=base_url)
    except ConfigError as exc:
        raise one_line(exc) from None


# -- conversations --------------------------------------------------------------------------------


def window(messages: list[Message], limit: int | None) -> list[Message]:
    """The last `limit` messages or fewer, starting at a user message (0/None: all).

    Starting at a user message means no tool call is separated from its result and every
    provider accepts the slice as the start of a conversation. The last exchange is never cut:
    when it alone is longer than `limit` (a run of many tool steps), it is sent whole.
    """
    if not limit or len(messages) <= limit:
        return list(messages)
    users = [i for i, m in enumerate(messages) if m.role == "user"]
    inside = [i for i in users if i >= len(messages) - limit]
    start = inside[0] if inside else (users[-1] if users else 0)
    return list(messages[start:])


def _fork(conversation: AsyncConversation) -> AsyncConversation:
    """A copy that grows on its own: a result is a point in history that later runs branch from,
    so continuing the notebook's conversation never changes what an earlier result holds."""
    return AsyncConversation(
        conversation.model,
        system=conversation.system,
        tools=conversation.tools,
        messages=conversation.messages,
    )


def _target(continue_: Any) -> AsyncConversation | None:
    """The conversation a run goes on with: None for a fresh one."""
    if continue_ is None or continue_ is False:
        return None
    if continue_ is True:
        return state.conversation
    if isinstance(continue_, ChainResult):
        conv = continue_.conversation
        if conv is None:
            raise NotebookError("that result has no conversation to continue")
        return _fork(conv._async if isinstance(conv, Conversation) else conv)
    if isinstance(continue_, Conversation):
        return continue_._async
    if isinstance(continue_, AsyncConversation):
        return continue_
    raise NotebookError(
        f"cannot continue from a {type(continue_).__name__}: pass a result of a chain, a "
        "conversation, or True for the notebook's conversation"
    )


# -- approvals ------------------------------------------------------------------------------------


def _no_approver(quiet: bool) -> ApprovalCallback:
    where = "--quiet hides the timeline" if quiet else "there is no timeline here"

    async def deny(record: ToolCallRecord) -> Approval:
        return Approval(
            False,
            f"{record.name} needs approval, but {where} to ask in; run it in a notebook without "
            "--quiet, or pass approval_callback=",
        )

    return deny


# -- the timeline (written in parallel; optional until it exists) ---------------------------------

_timeline_warned = False


def _warn_timeline(what: str, exc: BaseException) -> None:
    global _timeline_warned
    if not _timeline_warned:
        _timeline_warned = True
        warnings.warn(f"llm_magic: no timeline ({what}: {exc!r})", RuntimeWarning, stacklevel=3)


def timeline_class() -> Any:
    try:
        module = importlib.import_module("llm_magic.notebook.timeline")
    except ModuleNotFoundError as exc:
        if exc.name == "llm_magic.notebook.timeline":
            return None
        _warn_timeline("import failed", exc)
        return None
    except Exception as exc:
        _warn_timeline("import failed", exc)
        return None
    return getattr(module, "Timeline", None)


def make_timeline(run: ChainRun, model_id: str) -> Any:
    cls = timeline_class()
    if cls is None:
        return None
    try:
        return cls(run, model=model_id)
    except Exception as exc:
        _warn_timeline("it could not be created", exc)
        return None


def _safely(action: Callable[[], Any], what: str) -> None:
    try:
        action()
    except Exception as exc:
        log.warning("llm_magic: the timeline failed to %s: %r", what, exc)


async def _tick() -> None:
    while True:
        await asyncio.sleep(TICK_SECONDS)


@contextlib.contextmanager
def _ctrl_c_cancels(ip: Any) -> Iterator[None]:
    """In terminal IPython, Ctrl-C during the run cancels the awaiting task (see the module doc).

    Kernels deliver interrupts themselves, and only the main thread may set signal handlers.
    """
    in_terminal = ip is not None and getattr(ip, "kernel", None) is None
    if not in_terminal or threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    previous = signal.getsignal(signal.SIGINT)

    def interrupt(signum: int, frame: Any) -> None:
        if task is not None:
            loop.call_soon_threadsafe(task.cancel)

    signal.signal(signal.SIGINT, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


# -- the entry point ------------------------------------------------------------------------------


async def run_chain(
    prompt: str,
    *,
    tools: Iterable[Any] | Any | None = None,
    model: str | AsyncModel | Model | None = None,
    system: str | None = None,
    max_steps: int | None = None,
    timeout: float | None = None,
    approve: Iterable[str] | str | None = None,
    quiet: bool | None = None,
    stream: bool | None = None,
    continue_: ChainResult | AsyncConversation | Conversation | bool | None = None,
    reset: bool = False,
    history: int | None = None,
    interpolate: bool = False,
    approval_callback: ApprovalCallback | None = None,
    api_key: str | None = None,
    base_url: str | None = None,
    namespace: Mapping[str, Any] | None = None,
    **options: Any,
) -> ChainResult:
    """Run `prompt` with tools and show its timeline; returns the ChainResult.

    tools: callables, Tools or names of the notebook's functions; None: every `@tool`-marked
    function of the notebook (none outside IPython); [] for none. continue_: True goes on with the
    notebook's conversation, a ChainResult or conversation goes on with that one, None follows
    `LLMMagic.auto_continue`; `reset=True` forgets the notebook's conversation first. history:
    how many earlier messages a continued run sends (default `LLMMagic.history_window`).
    interpolate: fill `{name}` placeholders from the notebook (on in `%%llm_chain`; off here,
    where f-strings do it). approve: tool names or "all"; the timeline's Approve/Deny buttons
    decide, or `approval_callback`; with neither (quiet, no notebook) the call is denied with
    a reason the model sees. api_key / base_url: for the model given by id.
    Any `ChainOptions` field (max_tool_calls, tool_timeout, tool_choice, ...) is accepted too.
    A kernel interrupt cancels the run (marked "cancelled", history kept valid) and the
    CancelledError propagates; configuration and provider errors show as one line.
    """
    cfg = get_config()
    ip = shell()
    ns = namespace if namespace is not None else getattr(ip, "user_ns", None)
    _check_options(options)
    if not isinstance(prompt, str):
        raise NotebookError(f"the prompt must be a string, got {type(prompt).__name__}")
    if not prompt.strip():
        raise NotebookError("the prompt is empty: write what the model should do")
    if interpolate and ns is not None:
        from .options import interpolate as fill

        prompt = fill(prompt, ns, _hidden_names(ip))
    if reset:
        reset_conversation()
    if continue_ is None:
        continue_ = cfg.auto_continue and not reset
    store = _target(continue_)
    chosen = resolve_model(
        model,
        api_key=api_key,
        base_url=base_url,
        fallback=store.model if store is not None else None,
    )
    tool_list = select_tools(tools, ns)
    approve_opt = _approve_option(approve, tool_list)
    quiet = cfg.quiet if quiet is None else quiet
    chain_options: dict[str, Any] = {
        "max_steps": max_steps if max_steps is not None else (cfg.default_max_steps or None),
        "timeout": timeout if timeout is not None else cfg.timeout,
        "stream": cfg.stream if stream is None else stream,
        "approve": approve_opt,
        **options,
    }

    limit = cfg.history_window if history is None else history
    if store is None:
        store = view = chosen.conversation(system=system if system is not None else cfg.system)
    else:
        earlier = window(store.messages, limit)
        same_model = chosen is store.model or (
            chosen.provider is store.model.provider and chosen.model_id == store.model.model_id
        )
        if len(earlier) == len(store.messages) and same_model:
            view = store
        else:
            view = AsyncConversation(chosen, system=store.system, messages=earlier)
            dropped = len(store.messages) - len(earlier)
            if dropped and not quiet:
                print(
                    f"llm_magic: continuing a conversation of {len(store.messages)} messages; "
                    f"sending the last {len(earlier)} (history window {limit}: --history N or "
                    "%config LLMMagic.history_window)"
                )
        if system is not None:
            store.system = system
    base = len(view.messages)
    run = view.chain(prompt, tools=tool_list, system=system, **chain_options)
    run.caller = take_caller()  # the fallback magic's waiting thread, for `on_loop` tools

    timeline = None if quiet or ip is None else make_timeline(run, chosen.model_id)
    if approve_opt is not None or any(t.options.requires_approval for t in tool_list):
        if approval_callback is None:
            approval_callback = timeline.approve if timeline is not None else _no_approver(quiet)
    if approval_callback is not None:
        run.options.approval_callback = approval_callback
    if timeline is not None:
        _safely(timeline.show, "show")

    state.last_run = run
    ticker = asyncio.get_running_loop().create_task(_tick(), name="llm_magic-ticker")
    try:
        with _ctrl_c_cancels(ip):
            result = await run
    except asyncio.CancelledError as exc:
        run.cancel("interrupted")  # the run stops, marks itself cancelled and repairs history
        _interrupted_line(exc, run)
        raise
    except (ConfigError, ProviderError) as exc:
        one_line(exc)
        raise
    finally:
        ticker.cancel()
        if timeline is not None:
            _safely(timeline.close, "close")
        if view is not store:
            store.messages.extend(view.messages[base:])
        state.conversation = store
        if run.final is not None:
            run.final.conversation = _fork(store)
            state.last_result = run.final
    return result


def _interrupted_line(exc: asyncio.CancelledError, run: ChainRun) -> None:
    """An interrupt shows one line, not the chain's internals; it still propagates."""
    line = (
        "CancelledError: the chain was interrupted; the run is marked cancelled and its "
        "conversation stays usable (llm_magic.notebook.session.state.last_result)"
    )
    try:
        exc._render_traceback_ = lambda: [line]  # type: ignore[attr-defined]
    except (AttributeError, TypeError):
        pass


def _check_options(options: dict[str, Any]) -> None:
    unknown = sorted(set(options) - _OPTION_FIELDS)
    if unknown:
        from .options import close_names

        name = unknown[0]
        close = close_names(name, sorted(_OPTION_FIELDS | _OWN_ARGS))
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise NotebookError(
            f"chain() got an unknown option {name!r}{hint} "
            f"(the options are {', '.join(sorted(_OWN_ARGS | _OPTION_FIELDS))})"
        )


def _approve_option(approve: Any, tools: list[Tool]) -> set[str] | str | None:
    if approve is None:
        return None
    names = approve.split(",") if isinstance(approve, str) else list(approve)
    names = [n.strip() for n in names if n.strip()]
    if "all" in names:
        return "all"
    known = {t.name for t in tools}
    for name in names:
        if name not in known:
            from .options import close_names

            close = close_names(name, known)
            hint = f"did you mean {' or '.join(close)}? " if close else ""
            raise NotebookError(
                f"--approve names {name!r}, which is not one of this run's tools: {hint}"
                f"the tools are {', '.join(sorted(known)) or 'none'}"
            )
    return set(names)
