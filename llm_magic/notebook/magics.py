"""`%load_ext llm_magic`: `%%llm_chain`, `%llm_config`, `%llm_models`, `%llm_usage`, `%llm_mcp`,
`%llm_edit`, `%llm_log`.

A `%%llm_chain` cell is rewritten by a cleanup input transformer into

    await __import__('llm_magic.notebook.magics', fromlist=['_']).cell_entry(line, cell)

so it runs as a top-level await on the kernel's own loop: other cells queue behind it, widgets
update live, an interrupt cancels it, and the cell's value is the result. A cell magic can not do
this (IPython only displays a coroutine a magic returns), so the real registered `llm_chain` magic
is the fallback, used for `run_cell_magic(...)`, `%autoawait off` or a non-asyncio loop runner: it
runs the chain on llm_magic's private loop thread when a loop is already running (the kernel's
thread, blocked in the cell, reads the timeline's button clicks meanwhile: see comm_pump), with
`asyncio.run` when none is. Loading patches nothing process-wide and `unload` undoes it all.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from typing import TYPE_CHECKING, Any

from .. import catalog, kernel_tools, registry, views
from ..errors import LLMMagicError
from ..log import settings as log_settings
from ..log import writer as log_writer
from . import cell_value
from .cell_options import help_text, parse_line
from .config import MODEL_ENV, LLMMagic, LLMMagicBase, get_config, set_active
from .errors import NotebookError
from .state import shell, state
from .view import show_run

if TYPE_CHECKING:
    from ..log.origin import Where
    from ..tools import Tool

MAGIC = "%%llm_chain"
ENTRY = f"await __import__({__name__!r}, fromlist=['_']).cell_entry"
CONFIG: LLMMagicBase | None = None


# -- the input transformer ------------------------------------------------------------------------


class CellTransformer:
    """Rewrites a `%%llm_chain` cell into a top-level await (see the module docstring)."""

    # `check_complete` (terminal IPython's Enter key, a kernel's is_complete_request) skips
    # transformers marked so (IPython >= 7.17) and then treats `%%llm_chain` like every other
    # cell magic: incomplete until a blank line. Run there, this transformer would turn a lone
    # first line into a complete `await` statement and the cell would run before it has a body.
    has_side_effects = True

    def __init__(self, shell: Any) -> None:
        self.shell = shell

    def can_await(self) -> bool:
        if not getattr(self.shell, "autoawait", False):
            return False
        runner = getattr(self.shell, "loop_runner", None)
        try:
            from IPython.core.async_helpers import _asyncio_runner
        except ImportError:  # pragma: no cover - very old IPython
            return str(runner) == "asyncio"
        return runner is _asyncio_runner or str(runner) == "asyncio"

    def __call__(self, lines: list[str]) -> list[str]:
        start = 0
        while start < len(lines) and not lines[start].strip():
            start += 1
        if start == len(lines):
            return lines
        first = lines[start]
        if not first.startswith(MAGIC):
            return lines
        rest = first[len(MAGIC) :]
        if rest and not rest[0].isspace():  # %%llm_chain? or %%llm_chainX: not ours
            return lines
        if not self.can_await():
            return lines
        body = "".join(lines[start + 1 :])
        return [f"{ENTRY}({rest.strip()!r}, {body!r})\n"]


def transform_cell_source(text: str, shell: Any = None) -> str:
    """What the transformer makes of a cell (for tests and curious users)."""
    lines = text.splitlines(keepends=True)
    return "".join(CellTransformer(shell or _AlwaysAwait())(lines))


class _AlwaysAwait:
    autoawait = True
    loop_runner = "asyncio"


# -- what the cell runs ---------------------------------------------------------------------------


async def cell_entry(line: str, cell: str, expand: bool = True) -> Any:
    """Run one `%%llm_chain` cell: parse the options, run the chain, bind `--out`.

    expand: fill `$name` / `{name}` in the options line from the notebook, as IPython does for
    every magic line (the fallback magic gets a line IPython has already expanded).
    """
    from .run import Request, execute, plan

    ip = shell()
    ns: dict[str, Any] = ip.user_ns if ip is not None else {}
    parsed = parse_line(_expand(line, ns) if expand else line, get_config().defaults(), ns)
    opts = parsed.cell
    if opts.help:
        print(help_text())
        return None
    prompt = cell.strip("\n").rstrip()
    if not prompt.strip():
        raise NotebookError(
            "%%llm_chain: the cell has no prompt; write it below the %%llm_chain line"
        )
    continue_: Any = None
    if opts.continue_ is True:
        continue_ = True
    elif isinstance(opts.continue_, str):
        continue_ = _continue_target(opts.continue_, ns)
    request = Request(
        prompt,
        opts,
        parsed.chain,
        tools=[] if opts.no_tools else opts.tools,
        model=opts.model or None,  # `%config LLMMagic.default_model = ""`: no default
        continue_=continue_,
        mcp=opts.mcp,
        namespace=ns,
    )
    result = await execute(await plan(request))
    if opts.out:
        ns[opts.out] = result
    return result


def _expand(line: str, ns: dict[str, Any]) -> str:
    """IPython's magic-line expansion (`InteractiveShell.var_expand`) over the user namespace
    only; like it, anything that does not expand leaves the line as written."""
    from IPython.utils.text import DollarFormatter

    try:
        return DollarFormatter().vformat(line, args=[], kwargs=ns)
    except Exception:
        return line


def _continue_target(name: str, ns: dict[str, Any]) -> Any:
    from ..models import AsyncConversation, Conversation
    from ..results import ChainResult
    from .cell_options import close_names, lookup

    if name.isdigit():  # a run of the log, read back (after a restart too)
        from .. import log

        try:
            return log.get(int(name), namespace=ns)
        except LLMMagicError as exc:
            raise NotebookError(f"%%llm_chain: --continue {name}: {exc}") from None
    found, value = lookup(name, ns)
    if not found:
        candidates = [
            k
            for k, v in ns.items()
            if isinstance(v, ChainResult | AsyncConversation | Conversation)
        ]
        close = close_names(name, candidates)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise NotebookError(
            f"%%llm_chain: --continue {name}: no variable {name!r} in the notebook{hint} "
            "(bind a result with --out NAME, or use --continue alone for the last conversation)"
        )
    if not isinstance(value, ChainResult | AsyncConversation | Conversation):
        raise NotebookError(
            f"%%llm_chain: --continue {name}: {name!r} is a {type(value).__name__}; it must be "
            "the result of a chain (--out NAME) or a conversation"
        )
    return value


def llm_chain(line: str, cell: str) -> Any:
    """Fallback: runs when the cell was not rewritten (run_cell_magic, %autoawait off)."""
    coro = cell_entry(line, cell, expand=False)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    from .._loop import CallerThread, current_caller, private_loop, run_sync
    from .comm_pump import NO_PUMP_NOTE, CommPump

    # the kernel's thread waits here: `on_loop` tools run on it, as in a transformed cell, and
    # the clicks on the timeline's buttons are read there (see comm_pump)
    ip = shell()
    pump = CommPump.for_shell(ip, private_loop())  # the loop run_sync runs the chain on
    in_kernel = getattr(ip, "kernel", None) is not None
    if pump is None and in_kernel and threading.current_thread() is threading.main_thread():
        print(NO_PUMP_NOTE, file=sys.stderr)  # (a subshell's cell does not block the clicks)
    caller = CallerThread(idle=pump)
    token = current_caller.set(caller)
    try:
        return run_sync(coro, caller)
    except KeyboardInterrupt as exc:  # run_sync has cancelled the run; say so in one line
        line = "KeyboardInterrupt: the chain was interrupted and its run cancelled"
        exc._render_traceback_ = lambda: [line]  # type: ignore[attr-defined]
        raise
    finally:
        current_caller.reset(token)
        if pump is not None:
            pump.release()


llm_chain.__doc__ = help_text()


# -- line magics ----------------------------------------------------------------------------------


def mask(key: str | None) -> str:
    """An API key as `sk-…1234`; short keys are hidden entirely."""
    if not key:
        return "not set"
    if len(key) < 12:
        return "****"
    return f"{key[:3]}…{key[-4:]}"


def _model_source(cfg: Any) -> str:
    if cfg.defaults()["model"]:
        return "%config LLMMagic.default_model"
    if os.environ.get(MODEL_ENV):
        return f"environment variable {MODEL_ENV}"
    for env, _ in registry.KEY_VENDORS:
        if os.environ.get(env):
            return f"first provider with a key ({env})"
    return "no key set: the embedded local model"


def config_report() -> str:
    from .lookup import default_model_id

    cfg = get_config()
    lines = [
        f"model: {default_model_id()}  ({_model_source(cfg)})",
        "",
        "LLMMagic settings (change with %config LLMMagic.<name> = value):",
    ]
    values = cfg.effective()
    width = max(len(name) for name in values)
    for name in sorted(values):
        lines.append(f"  {name:<{width}}  {values[name]!r}")
    lines += ["", "API keys and endpoints (environment):"]
    seen: set[str] = set()
    for route in registry.ROUTES.values():
        for env in route.vendor.key_env:
            if env not in seen:
                seen.add(env)
                lines.append(f"  {env:<27}  {mask(os.environ.get(env))}")
    for route in registry.ROUTES.values():
        url_env = route.vendor.base_url_env
        if url_env and url_env not in seen and os.environ.get(url_env):
            seen.add(url_env)
            lines.append(f"  {url_env:<27}  {os.environ[url_env]}")
    conv = state.conversation
    window = cfg.defaults()["history"] or "all"
    if conv is None:
        lines += ["", f"notebook conversation: none yet (history window: {window} messages)"]
    else:
        lines += [
            "",
            f"notebook conversation: {len(conv.messages)} messages with {conv.model.model_id} "
            f"(history window: {window}; %%llm_chain --continue goes on, --reset starts afresh)",
        ]
    return "\n".join(lines)


def models_report() -> str:
    from .lookup import default_model_id

    default = default_model_id()
    lines = [f"known models (%%llm_chain -m MODEL; default now: {default}):"]
    for model_id in registry.known_models():
        route, name = registry.resolve(model_id)
        vendor = route.vendor
        if not vendor.key_required:
            key = "no key needed"
        elif found := [env for env in vendor.key_env if os.environ.get(env)]:
            key = f"{found[0]} set"
        else:
            key = f"needs {' or '.join(vendor.key_env)}"
        entry = catalog.lookup(vendor.name, name) if vendor.in_catalog else None
        ends = f"  (shuts down {entry.shutdown})" if entry and entry.shutdown else ""
        lines.append(f"  {model_id:<22} {route.prefix:<10} {key}{ends}")
    if registry.aliases:
        lines.append("aliases (llm_magic.register_alias):")
        for alias, target in sorted(registry.aliases.items()):
            lines.append(f"  {alias:<22} -> {target}")
    prefixes = [f"{p}:NAME" for p in registry.ROUTES if p not in ("local", "openai-compatible")]
    prefixes.append("openai-compatible:NAME@http://host:port/v1")
    lines.append(f"any other model: {', '.join(prefixes)}")
    return "\n".join(lines)


def llm_config(line: str = "") -> None:
    """Show the effective llm_magic configuration (API keys masked)."""
    print(config_report())


def llm_models(line: str = "") -> None:
    """List the models llm_magic knows, their provider, and whether its key is set."""
    print(models_report())


def llm_usage(line: str = "") -> None:
    """Tokens and US dollars by model over this session's runs (`%llm_usage reset` clears)."""
    from ..cost import ledger

    if line.strip() == "reset":
        ledger.clear()
        print("llm_magic: usage totals cleared")
    elif line.strip():
        print(f"%llm_usage: unknown argument {line.strip()!r} (%llm_usage, or %llm_usage reset)")
    else:
        print(ledger.report())


# `%llm_edit`, `%llm_log` and `%llm_mcp` import their modules when first called, not at
# `%load_ext`.


def llm_edit(line: str = "") -> None:
    """`%llm_edit [--live] [NAME]`: edit the calls of result NAME (default: the last result)
    and re-run from there, in a live timeline."""
    from .editing import llm_edit as edit

    edit(line)


def llm_mcp(line: str = "") -> None:
    """Declare, list and stop MCP servers (see `%llm_mcp help`)."""
    from .mcp_magic import llm_mcp as manage

    manage(line)


def llm_log(line: str = "") -> None:
    """List, search and show the logged runs (`%llm_log --help`)."""
    from .log_magic import llm_log as show

    show(line)


# -- %load_ext / %unload_ext ----------------------------------------------------------------------
# The log's notebook reader and the notebook tools: imported when a run first asks for them.


def _where() -> Where:
    from .log_magic import where

    return where()


def _notebook_tools(source: kernel_tools.NotebookTools) -> list[Tool]:
    from .shell_tools import tools_for

    return tools_for(source)


_MAGICS = (
    ("cell", "llm_chain", llm_chain),
    ("line", "llm_config", llm_config),
    ("line", "llm_models", llm_models),
    ("line", "llm_usage", llm_usage),
    ("line", "llm_edit", llm_edit),
    ("line", "llm_mcp", llm_mcp),
    ("line", "llm_log", llm_log),
)


def load(ip: Any) -> None:
    """Register the transformer, the magics and the `LLMMagic` configurable on this shell."""
    global CONFIG
    unload(ip)
    CONFIG = LLMMagic(parent=ip)
    set_active(CONFIG)
    ip.configurables.append(CONFIG)
    ip.input_transformers_cleanup.insert(0, CellTransformer(ip))
    views.add(show_run)
    kernel_tools.serve = _notebook_tools
    for kind, name, func in _MAGICS:
        ip.register_magic_function(func, kind, name)
    cell_value.register(ip)
    CONFIG.apply_log_settings()
    log_writer.where = _where


def unload(ip: Any) -> None:
    """Remove everything `load` registered."""
    global CONFIG
    cleanup = ip.input_transformers_cleanup
    cleanup[:] = [t for t in cleanup if not isinstance(t, CellTransformer)]
    manager = ip.magics_manager
    for kind, name, func in _MAGICS:
        if manager.magics.get(kind, {}).get(name) is func:
            del manager.magics[kind][name]
            if getattr(manager.user_magics, name, None) is func:
                delattr(manager.user_magics, name)
    ip.configurables[:] = [c for c in ip.configurables if not isinstance(c, LLMMagicBase)]
    if "llm_magic.mcp_session" in sys.modules:  # else no MCP server ever started here
        from .mcp_magic import unload as stop_servers

        stop_servers()
    cell_value.unregister(ip)
    views.remove(show_run)
    kernel_tools.serve = None
    if log_writer.where is _where:
        log_writer.where = None
        log_settings.configure()
    if CONFIG is not None:
        set_active(None)
        CONFIG = None
