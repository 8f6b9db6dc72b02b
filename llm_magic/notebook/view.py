"""The notebook's view of a run: its timeline, and Ctrl-C in terminal IPython.

`make_timeline` builds the timeline a `%%llm_chain` run shows; `show_run` is the view that
`%load_ext` registers in `llm_magic.views`, so every other run started in the notebook (`await
llm_magic.chain(...)`, `result.continue_/fork/rerun`) shows one too. A broken timeline never
breaks a run: it is logged or warned about once.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import signal
import threading
import warnings
from collections.abc import Callable
from typing import Any

from .. import events as ev
from ..chain import ChainRun
from .config import get_config
from .state import shell

log = logging.getLogger("llm_magic")

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


def make_timeline(run: ChainRun, model_id: str, live: bool | None = None) -> Any:
    """model_id: the header's (`AsyncModel.label`: the resolved id, and an alias typed).
    live: keep the widget after the run (Edit & re-run); None: `LLMMagic.static_after_run`."""
    cls = timeline_class()
    if cls is None:
        return None
    try:
        after = get_config().defaults()["static_after_run"] if live is None else not live
        return cls(run, model=model_id, static_after_run=after, on_edit=_rerun_clicked)
    except Exception as exc:
        _warn_timeline("it could not be created", exc)
        return None


def _rerun_clicked(timeline: Any, message: dict[str, Any]) -> None:
    """`editing.rerun_clicked`, imported with the first click, not with every timeline."""
    from .editing import rerun_clicked

    rerun_clicked(timeline, message)


def safely(action: Callable[[], Any], what: str) -> None:
    try:
        action()
    except Exception as exc:
        log.warning("llm_magic: the timeline failed to %s: %r", what, exc)


class CtrlC:
    """In terminal IPython, Ctrl-C during a run calls `cancel` (see the module doc); the
    previous SIGINT handler comes back with `restore()`.

    Kernels deliver interrupts themselves, and only the main thread may set signal handlers.
    """

    def __init__(self, ip: Any, cancel: Callable[[], None]) -> None:
        in_terminal = ip is not None and getattr(ip, "kernel", None) is None
        self._previous: Any = None
        self._active = in_terminal and threading.current_thread() is threading.main_thread()
        if not self._active:
            return
        loop = asyncio.get_running_loop()
        self._previous = signal.getsignal(signal.SIGINT)
        signal.signal(signal.SIGINT, lambda _signum, _frame: loop.call_soon_threadsafe(cancel))

    def restore(self) -> None:
        if self._active:
            self._active = False
            signal.signal(signal.SIGINT, self._previous)


def show_run(run: ChainRun) -> None:
    """The view of a run started with `llm_magic.chain()` and other code in a notebook: its timeline.

    Registered in `llm_magic.views` by `%load_ext` (and removed by `%unload_ext`), so it is
    called when a run starts. The timeline subscribes to the run, as its approver too; it is
    closed when the run ends. Only the main thread shows one: a sync-API run starts on
    llm_magic's private loop thread, where neither displaying nor a SIGINT handler is safe.
    """
    ip = shell()
    if ip is None or threading.current_thread() is not threading.main_thread():
        return
    timeline = make_timeline(run, run.provider.model_id)
    if timeline is None:
        return
    ctrl_c = CtrlC(ip, lambda: run.cancel("interrupted"))

    def on_event(event: ev.Event) -> None:
        if isinstance(event, ev.RunEnded):
            ctrl_c.restore()
            safely(timeline.close, "close")

    run.subscribe(on_event)
    safely(timeline.show, "show")
