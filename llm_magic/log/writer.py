"""The log's subscription to every run, and its writer thread.

`observe(run)` is registered in `llm_magic.views` as an observer, so it sees every run when it
starts. On the run's loop it does two cheap things: note the clock (and the notebook cell, when
the notebook layer says where the run started), and, when the run ends, queue the run and its
result for the writer thread (`_runtime.worker`). Everything else (reading the run, JSON, SQL)
happens on that thread, so a slow disk or a locked database never holds up a run; the runs
queued while it wrote go in together, in one transaction. A database
that cannot be written (locked past the busy timeout, full, read-only, a disk error) gives one
warning per process and the run goes on; the next run tries again.
"""

from __future__ import annotations

import threading
import time
import warnings
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import _runtime, cost
from .. import events as ev
from . import settings

if TYPE_CHECKING:
    import sqlite3

    from ..chain import ChainRun
    from ..results import ChainResult
    from .origin import Clock, Where
    from .record import SavedRun

WORKER = "llm_magic-log"
EXIT_WAIT = 5.0  # seconds the exit hook waits for runs still being written
# Seconds the writer waits for more runs before it writes those that ended: runs in quick
# succession (a loop of chains, many at once) share one transaction, which costs the writer
# a third of a transaction per run; the log is at most this late.
GATHER = 0.05

# Where a starting run comes from; the notebook layer sets it (`%load_ext llm_magic`).
where: Callable[[], Where] | None = None
# The log id of each result written (or read back), so a branch names the run it came from.
_ids: weakref.WeakKeyDictionary[ChainResult[Any], int] = weakref.WeakKeyDictionary()
_warned = False
_connections: dict[Path, sqlite3.Connection] = {}  # the writer thread's, by database file
_lock = threading.Lock()
# What `observe` saw end, not written yet, oldest first: (run, result, its events at its end,
# clock, place, the log file chosen when it ended). One writer job takes them all.
Ended = tuple["ChainRun", "ChainResult[Any]", int, "Clock", "Where", "str | None"]
_queued: list[Ended] = []
_queue_lock = threading.Lock()
_hurry = threading.Event()  # set while `flush` waits: write what ended without gathering more


def observe(run: ChainRun) -> None:
    """Log `run` when it ends (the views observer; see the module docstring)."""
    if not settings.enabled():
        return
    from .origin import Clock  # with the first run, not with `import llm_magic`

    clock = Clock(time.time(), time.monotonic())
    place = _where()

    def on_event(event: ev.Event) -> None:
        if isinstance(event, ev.RunEnded):
            _queue((run, event.result, len(run.events), clock, place, settings.chosen()))

    run.subscribe(on_event)


def _queue(ended: Ended) -> None:
    with _queue_lock:
        _queued.append(ended)
        first = len(_queued) == 1
    if first:  # else the job already asked for takes this run too
        _runtime.worker(WORKER).submit(_write_queued)


def _write_queued() -> None:
    _hurry.wait(GATHER)  # runs that end meanwhile join this transaction (`flush` cuts it short)
    with _queue_lock:
        batch = _queued[:]
        _queued.clear()
    while batch:  # one transaction per log file, in order
        file = batch[0][5]
        ours = [e for e in batch if e[5] == file]
        batch = [e for e in batch if e[5] != file]
        _write(ours)


def _where() -> Where:
    from .origin import Where

    if where is None:
        return Where()
    try:
        return where()
    except Exception:  # the notebook could not say: the run is logged without its cell
        return Where()


def _write(batch: list[Ended]) -> None:
    """On the writer thread: the runs into the database in one transaction, or one warning."""
    import sqlite3

    from ..mcp_config import scrubber
    from .capture import environment_secrets, secrets_of
    from .store import insert_all

    environment = environment_secrets()  # read once for the batch
    rows = [
        (_saved(run, result, count, clock, place), scrubber(secrets_of(run, environment)))
        for run, result, count, clock, place, _ in batch
    ]
    try:
        ids = insert_all(database(batch[0][5]), rows)
    except (sqlite3.Error, OSError) as exc:  # locked, full, read-only, a disk error
        _warn_once(exc)
        return
    for (_, result, *_rest), run_id in zip(batch, ids, strict=True):
        remember(result, run_id)


def _saved(
    run: ChainRun, result: ChainResult[Any], count: int, clock: Clock, place: Where
) -> SavedRun:
    from .capture import saved_run

    point = result.branched_from
    parent = _ids.get(point.result) if point is not None else None
    result.cost  # noqa: B018  (a price settling after the run: waits, its events follow the end)
    late: list[ev.Event] = [e for e in run.events[count:] if isinstance(e, ev.CostReported)]
    return saved_run(run, result, run.events[:count] + late, clock, place, parent)


def remember(result: ChainResult[Any], run_id: int) -> None:
    """`result` is run `run_id` of the log (written, or read back by `get`)."""
    _ids[result] = run_id


def id_of(result: ChainResult[Any]) -> int | None:
    """The log id of `result`, once it is written (`flush()` waits for that); None if not."""
    return _ids.get(result)


def database(where: str | None = None) -> sqlite3.Connection:
    """The writer thread's connection to the log file (`settings.path(where)`; opened once per
    file)."""
    from .schema import connect

    path = settings.path(where)
    with _lock:
        db = _connections.get(path)
        if db is None:
            db = _connections[path] = connect(path)
        return db


def _warn_once(exc: BaseException) -> None:
    global _warned
    if _warned:
        return
    _warned = True
    warnings.warn(
        f"llm_magic could not write the run log at {settings.path()} ({type(exc).__name__}: "
        f"{exc}); runs go on unlogged where this happens. Turn the log off with "
        f"{settings.ENABLED_ENV}=0 or %config LLMMagic.log = False, or move it with "
        f"{settings.PATH_ENV}",
        RuntimeWarning,
        stacklevel=1,
    )


def flush(timeout: float | None = 10.0) -> bool:
    """Wait until the runs that ended so far are written; False if `timeout` passed first."""
    cost.wait_late()  # a run priced after its end is written with its price (it may be ours to settle)
    _hurry.set()
    try:
        return _runtime.worker(WORKER).drain(timeout)
    finally:
        _hurry.clear()


def close() -> None:
    """Close the writer's connections (after `flush`); the next write opens them again."""
    with _lock:
        for db in _connections.values():
            db.close()
        _connections.clear()


def _at_exit() -> None:
    flush(EXIT_WAIT)


_runtime.at_exit(_at_exit)
