"""What shows a run when it starts: view factories registered by the layer that owns them.

The core imports no view layer. A layer adds a factory here (the notebook adds its timeline at
`%load_ext llm_magic` and removes it at `%unload_ext`), and `ChainRun.start()` calls `attach`
once, on the thread that starts the run, before its first event. Attaching at the start, not when
a run is built, means a run never started (a branch never awaited) shows nothing and holds
nothing. A run that already has a view (`run.viewed`, set by a view when it subscribes: a re-run
shown in the timeline that asked for it, or a `%%llm_chain` run) is left alone.

Observers (the run log, the traces) are factories that see every run, viewed or not; they
attach first, as the same kind of subscriber, so a run has one place where its watchers join.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .chain import ChainRun

log = logging.getLogger("llm_magic")

ViewFactory = Callable[["ChainRun"], None]

factories: list[ViewFactory] = []
observers: list[ViewFactory] = []  # called for every run, whether a view shows it or not


def add(factory: ViewFactory) -> None:
    """Show every run started from now on with `factory` (once, however often it is added)."""
    if factory not in factories:
        factories.append(factory)


def remove(factory: ViewFactory) -> None:
    """Stop showing new runs with `factory`; runs it already shows keep their view."""
    factories[:] = [f for f in factories if f is not factory]


def observe(observer: ViewFactory) -> None:
    """Call `observer` with every run started from now on, viewed or not (once, however often
    it is added)."""
    if observer not in observers:
        observers.append(observer)


def attach(run: ChainRun) -> None:
    """Give a starting `run` its observers, then its views, unless one already shows it.

    A broken view must not stop the run, so a factory's error is logged, not raised.
    """
    for observer in list(observers):
        try:
            observer(run)
        except Exception as exc:
            log.warning("llm_magic: a run observer failed: %r", exc)
    for factory in list(factories):
        if run.viewed:
            return
        try:
            factory(run)
        except Exception as exc:
            log.warning("llm_magic: a run view failed: %r", exc)
