"""One chain run from a notebook: a plan (model, tools, history window, options), then its
execution (the run, its timeline, the ticker, the notebook's bookkeeping).

`%%llm_chain` and `await llm_magic.notebook.chain(...)` both make a `Request` (the prompt, the
notebook's `CellOptions` and the run's `ChainOptions`, complete) and hand it to `plan` and
`execute`. The run goes on the loop of whoever awaits it (the kernel's own loop in Jupyter), so
queued cells, widgets and interrupts keep working, and it patches nothing.

While a run is awaited, a small ticker task wakes the loop every 0.1 s: ipykernel delivers a
kernel interrupt with a plain `call_soon` from the signal handler, which only runs when the loop
next wakes up (ipykernel issue 881); without the ticker an interrupt during a long tool or a
non-streaming request would wait for it to end.

Terminal IPython runs top-level await with `run_until_complete` on a loop that lives on: Ctrl-C
there raises KeyboardInterrupt out of the selector and leaves the run going into later cells.
For the duration of a run only, Ctrl-C cancels the awaiting task instead (as `asyncio.run`
does); the previous SIGINT handler is put back when the run ends.

Runs started elsewhere (`await llm_magic.chain(...)`, `result.fork()`, `result.continue_()`)
get their timeline from `view.show_run`, which `%load_ext` registers in `llm_magic.views`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Unpack, cast

from .._loop import take_caller
from ..chain import ChainRun
from ..cost import add
from ..errors import ConfigError, ProviderError, ToolDefinitionError
from ..messages import Message
from ..models import AsyncConversation, AsyncModel, Conversation, Model
from ..options import (
    Approval,
    ApprovalCallback,
    ApproveSpec,
    ChainKwargs,
    ChainOptions,
    build_options,
)
from ..records import ToolCallRecord
from ..results import ChainResult
from ..sources import ToolSource, with_sources
from ..tools import Tool
from .cell_options import CellOptions
from .config import get_config
from .errors import NotebookError, one_line
from .lookup import hidden_names, resolve_model, select_tools
from .state import reset_conversation, shell, state
from .view import CtrlC, make_timeline, safely

log = logging.getLogger("llm_magic")
TICK_SECONDS = 0.1

Continue = ChainResult[Any] | AsyncConversation | Conversation | bool | None


@dataclass(frozen=True)
class Request:
    """One run asked for: the prompt, the notebook's options and the run's, both complete.

    What the options hold as names, the request holds as values: `tools` (callables, Tools or
    names; None: every `@tool`-marked function), `model` (an id or a model; None: the
    configured default), `continue_` (a result, a conversation, True for the notebook's; None:
    `cell.auto_continue`), `mcp` (servers or their names).
    """

    prompt: str
    cell: CellOptions
    chain: ChainOptions
    tools: Iterable[Any] | Any | None = None
    model: str | AsyncModel | Model | None = None
    continue_: Continue = None
    mcp: Iterable[Any] | str | None = None
    namespace: Mapping[str, Any] | None = None
    api_key: str | None = None
    base_url: str | None = None


@dataclass
class Plan:
    """What a request resolves to before anything runs: the model, the tools (MCP tools
    listed), the options, the notebook conversation to keep (`store`) and the one the run
    goes on (`view`: the store, or a window of its last messages)."""

    prompt: str
    model: AsyncModel
    tools: list[Tool]
    options: ChainOptions
    store: AsyncConversation
    view: AsyncConversation
    system: str | None
    quiet: bool
    live: bool
    shell: Any
    out: str | None = None  # the variable `--out` binds the result to (named in its view)


# The keywords of `run_chain` that are not `ChainOptions` fields: named in its errors' hints.
_OWN_KEYWORDS = (
    "tools", "model", "system", "quiet", "continue_", "reset", "history", "interpolate",
    "api_key", "base_url", "namespace", "mcp", "live", "context",
)  # fmt: skip


async def run_chain(
    prompt: str,
    *,
    tools: Iterable[Any] | Any | None = None,
    model: str | AsyncModel | Model | None = None,
    system: str | None = None,
    quiet: bool | None = None,
    continue_: Continue = None,
    reset: bool = False,
    history: int | None = None,
    interpolate: bool = False,
    api_key: str | None = None,
    base_url: str | None = None,
    namespace: Mapping[str, Any] | None = None,
    mcp: Iterable[Any] | str | None = None,
    live: bool | None = None,
    context: Iterable[str] | str | None = None,
    **options: Unpack[ChainKwargs],
) -> ChainResult[ChainRun]:
    """Run `prompt` with tools and show its timeline; returns the ChainResult.

    tools: callables, Tools or names of the notebook's functions; None: every `@tool`-marked
    function of the notebook (none outside IPython); [] for none. continue_: True goes on with the
    notebook's conversation, a ChainResult or conversation goes on with that one, None follows
    `LLMMagic.auto_continue`; `reset=True` forgets the notebook's conversation first. history:
    how many earlier messages a continued run sends (default `LLMMagic.history_window`).
    interpolate: fill `{name}` placeholders from the notebook (on in `%%llm_chain`; off here,
    where f-strings do it). approve: tool names or "all"; the timeline's Approve/Deny buttons
    decide, or `approval_callback`; with neither (quiet, no notebook) the call is denied with
    a reason the model sees. api_key / base_url: for the model given by id. mcp: MCP servers
    (or names given to `%llm_mcp add` / `llm_magic.mcp(name=...)`) whose tools join `tools`
    (and `approve` may name them); they start here if needed. live: keep the timeline a
    live widget after the run, with Edit & re-run on each call (None: the opposite of
    `LLMMagic.static_after_run`, by default static HTML once the run ends). context: names of
    notebook variables described to the model after the prompt (`--context`). The other keyword
    arguments are `ChainOptions` fields; their defaults come from `%config LLMMagic`.
    A kernel interrupt cancels the run (marked "cancelled", history kept valid) and the
    CancelledError propagates; configuration and provider errors show as one line.
    """
    defaults = get_config().defaults()
    cell = CellOptions(
        **{f.name: defaults[f.name] for f in dataclasses.fields(CellOptions) if f.name in defaults}
    )
    cell = dataclasses.replace(
        cell,
        system=system,
        reset=reset,
        interpolate=interpolate,
        quiet=cell.quiet if quiet is None else quiet,
        history=cell.history if history is None else history,
        static_after_run=cell.static_after_run if live is None else not live,
        context=_context_names(context),
    )
    request = Request(
        prompt,
        cell,
        _chain_options(defaults, dict(options)),
        tools=tools,
        model=model,
        continue_=continue_,
        mcp=mcp,
        namespace=namespace,
        api_key=api_key,
        base_url=base_url,
    )
    return await execute(await plan(request))


def _context_names(context: Iterable[str] | str | None) -> list[str] | None:
    if context is None:
        return None
    names = context.split(",") if isinstance(context, str) else list(context)
    return [n.strip() for n in names if n.strip()]


def _chain_options(defaults: Mapping[str, Any], given: dict[str, Any]) -> ChainOptions:
    """The run's complete options: `%config` defaults, then what the caller gave."""
    names = {f.name for f in dataclasses.fields(ChainOptions)}
    base = {k: v for k, v in defaults.items() if k in names}
    try:
        return build_options(ChainOptions(**base), others=_OWN_KEYWORDS, **given)
    except (TypeError, ValueError) as exc:
        raise NotebookError(f"chain(): {exc}") from None


async def plan(request: Request) -> Plan:
    """Resolve a request: prompt, model, tools (MCP servers started), options, conversations.

    Nothing runs yet, but the notebook's conversation is reset when the request says so.
    """
    cell, ip = request.cell, shell()
    ns = request.namespace if request.namespace is not None else getattr(ip, "user_ns", None)
    images: list[Any] = []  # the `{fig}`s of the prompt, sent as images
    prompt = _prompt(request.prompt, cell.interpolate, ns, ip, images)
    if cell.context:
        from .shell_tools import context_text

        prompt += "\n\n" + context_text(cell.context, ns or {}, ip)
    if cell.reset:
        reset_conversation()
    continue_ = request.continue_
    if continue_ is None:
        continue_ = cell.auto_continue and not cell.reset
    store = _target(continue_)
    chosen = resolve_model(
        request.model,
        api_key=request.api_key,
        base_url=request.base_url,
        fallback=store.model if store is not None else None,
    )
    tools = await _tools(request, ns, cell.quiet)
    options = request.chain
    if images:
        options = options.replace(attachments=(*options.attachments, *images))
    _check_approve(options.approve, tools)
    if (cell.quiet or ip is None) and options.approval_callback is None:
        # no timeline to ask in: a call that needs approval is denied, saying why
        options = options.replace(approval_callback=_no_approver(cell.quiet))
    system = cell.system
    if system is None and store is None:
        system = get_config().defaults()["system"]
    store, view = _conversations(store, chosen, system, cell.history, cell.quiet)
    return Plan(
        prompt,
        chosen,
        tools,
        options,
        store,
        view,
        system,
        cell.quiet,
        not cell.static_after_run,
        ip,
        cell.out,
    )


def _prompt(
    prompt: object,
    interpolate: bool,
    ns: Mapping[str, Any] | None,
    ip: Any,
    images: list[Any] | None = None,
) -> str:
    """The prompt to send: checked (a clear error for none), its `{name}`s filled when asked."""
    if not isinstance(prompt, str):
        raise NotebookError(f"the prompt must be a string, got {type(prompt).__name__}")
    if not prompt.strip():
        raise NotebookError("the prompt is empty: write what the model should do")
    if interpolate and ns is not None:
        from .cell_options import interpolate as fill

        return fill(prompt, ns, hidden_names(ip), images)
    return prompt


async def _tools(request: Request, ns: Mapping[str, Any] | None, quiet: bool) -> list[Tool]:
    tool_list, sources = select_tools(request.tools, ns)
    if request.mcp is not None:
        from .mcp_magic import named_servers

        sources += named_servers(request.mcp)
    return await _with_sources(tool_list, sources, quiet)


async def execute(plan: Plan) -> ChainResult[ChainRun]:
    """Run a plan on the awaiting loop with its timeline, then keep what it added in the
    notebook's conversation and its result as the last one (also when it fails)."""
    view = plan.view
    base = len(view.messages)
    run = view._run(
        plan.prompt, plan.options, tools=plan.tools, system=plan.system, caller=take_caller()
    )
    run.viewed = True  # its view is decided here (none when quiet), not by `show_run`
    timeline = (
        None
        if plan.quiet or plan.shell is None
        else make_timeline(run, plan.model.label, plan.live)
    )
    if timeline is not None:
        if plan.out:
            timeline.holder = f"the variable {plan.out}"
        safely(timeline.show, "show")
    state.last_run = run
    ticker = asyncio.get_running_loop().create_task(_tick(), name="llm_magic-ticker")
    try:
        with _ctrl_c_cancels(plan.shell):
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
            safely(timeline.close, "close")
        _keep(plan, base, run)
    return result


def _keep(plan: Plan, base: int, run: ChainRun) -> None:
    """The notebook's bookkeeping after a run: its conversation and its last result."""
    store, view = plan.store, plan.view
    if view is not store:
        store.messages.extend(view.messages[base:])
        store.cost = add(store.cost, view.cost)  # the view started from nothing spent
    state.conversation = store
    if run.final is not None:
        state.last_result = run.final


# -- conversations ---------------------------------------------------------------------------------


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
        # a result is a branch point: it never changes
        fork = conv.fork(continue_.messages, cost=continue_.conversation_cost)
        return fork.to_async() if isinstance(fork, Conversation) else cast(AsyncConversation, fork)
    if isinstance(continue_, Conversation):
        return continue_.to_async()
    if isinstance(continue_, AsyncConversation):
        return continue_
    raise NotebookError(
        f"cannot continue from a {type(continue_).__name__}: pass a result of a chain, a "
        "conversation, or True for the notebook's conversation"
    )


# -- approvals -------------------------------------------------------------------------------------


def _no_approver(quiet: bool) -> ApprovalCallback:
    where = "--quiet hides the timeline" if quiet else "there is no timeline here"

    async def deny(record: ToolCallRecord) -> Approval:
        return Approval(
            False,
            f"{record.name} needs approval, but {where} to ask in; run it in a notebook without "
            "--quiet, or pass approval_callback=",
        )

    return deny


# -- Ctrl-C and the ticker -------------------------------------------------------------------------


async def _tick() -> None:
    while True:
        await asyncio.sleep(TICK_SECONDS)


@contextlib.contextmanager
def _ctrl_c_cancels(ip: Any) -> Iterator[None]:
    """Ctrl-C in terminal IPython cancels the task awaiting the run, for the `with` block."""
    task = asyncio.current_task()

    def cancel() -> None:
        if task is not None:
            task.cancel()

    handler = CtrlC(ip, cancel)
    try:
        yield
    finally:
        handler.restore()


async def _with_sources(tools: list[Tool], sources: list[ToolSource], quiet: bool) -> list[Tool]:
    """`tools` and the tools of the sources (MCP servers, started here if they are not yet):
    listed before the run, so `approve` can name them."""
    if not sources:
        return tools
    from ..mcp_results import MCPError

    starting = [s for s in sources if getattr(s, "state", "ready") != "ready"]
    if starting and not quiet:
        names = ", ".join(repr(getattr(s, "name", s)) for s in starting)
        print(f"llm_magic: starting MCP server {names}…", flush=True)
    try:
        return await with_sources(tools, sources)
    except (MCPError, ToolDefinitionError) as exc:
        raise one_line(exc) from None


def _conversations(
    store: AsyncConversation | None,
    chosen: AsyncModel,
    system: str | None,
    limit: int,
    quiet: bool,
) -> tuple[AsyncConversation, AsyncConversation]:
    """The notebook conversation to keep (`store`) and the one to run on (`view`): the same,
    or a window of the store's last messages when it is long or the model changed."""
    if store is None:
        fresh = chosen.conversation(system=system)
        return fresh, fresh
    earlier = window(store.messages, limit)
    same_model = chosen is store.model or (
        chosen.provider is store.model.provider and chosen.model_id == store.model.model_id
    )
    if system is not None:
        store.system = system
    if len(earlier) == len(store.messages) and same_model:
        return store, store
    dropped = len(store.messages) - len(earlier)
    if dropped and not quiet:
        print(
            f"llm_magic: continuing a conversation of {len(store.messages)} messages; "
            f"sending the last {len(earlier)} (history window {limit}: --history N or "
            "%config LLMMagic.history_window)"
        )
    return store, AsyncConversation(chosen, system=store.system, messages=earlier)


def _interrupted_line(exc: asyncio.CancelledError, run: ChainRun) -> None:
    """An interrupt shows one line, not the chain's internals; it still propagates."""
    line = (
        "CancelledError: the chain was interrupted; the run is marked cancelled and its "
        "conversation stays usable (llm_magic.notebook.state.state.last_result)"
    )
    try:
        exc._render_traceback_ = lambda: [line]  # type: ignore[attr-defined]
    except (AttributeError, TypeError):
        pass


def _check_approve(approve: ApproveSpec, tools: list[Tool]) -> None:
    """Every name given to approve must be one of this run's tools."""
    if approve is None or approve == "all":
        return
    known = {t.name for t in tools}
    for name in sorted(approve):
        if name not in known:
            from .cell_options import close_names

            close = close_names(name, known)
            hint = f"did you mean {' or '.join(close)}? " if close else ""
            raise NotebookError(
                f"--approve names {name!r}, which is not one of this run's tools: {hint}"
                f"the tools are {', '.join(sorted(known)) or 'none'}"
            )
