"""The run log: every run written to SQLite, to search, show and go on from after a restart.

    llm_magic.log.runs(query="weather", limit=10)   # LogEntry records, newest first
    result = llm_magic.log.get(12)                  # a ChainResult: continue_, fork, rerun
    llm_magic.log.export(12, "run.json")            # the run as JSON (the neutral messages)
    llm_magic.log.import_("run.json")               # ... and back, as a new run; its id

On by default, in the user's data directory; `LLM_MAGIC_LOG=0` or `%config LLMMagic.log = False`
turns it off, `LLM_MAGIC_LOG_PATH` or `%config LLMMagic.log_path` moves it (`settings`). Runs
are written on a thread of their own when they end (`writer`); keys, headers and MCP secrets
never reach the file (`capture`). The schema and its migrations are in `schema`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import LLMMagicError
from .settings import configure, path
from .writer import flush, id_of, observe

if TYPE_CHECKING:
    import sqlite3

    from ..models import AsyncModel, Model
    from ..results import ChainResult
    from .record import SavedCall, SavedRun, SavedTurn
    from .store import LogEntry

__all__ = [
    "SavedCall",
    "SavedRun",
    "SavedTurn",
    "configure",
    "export",
    "flush",
    "get",
    "id_of",
    "import_",
    "observe",
    "path",
    "runs",
    "saved",
]


def __getattr__(name: str) -> Any:
    """The saved run's records, imported when first asked for: every run is watched by the
    log from the start, but its records are needed only once one is written or read."""
    if name in ("SavedCall", "SavedRun", "SavedTurn"):
        from . import record

        return getattr(record, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@contextlib.contextmanager
def _reading() -> Iterator[sqlite3.Connection]:
    """A connection of the caller's own (the writer thread keeps its own), closed after."""
    from .schema import connect

    db = connect(path())
    try:
        yield db
    finally:
        db.close()


def runs(
    query: str | None = None,
    *,
    limit: int = 20,
    model: str | None = None,
    tool: str | None = None,
) -> list[LogEntry]:
    """The newest `limit` logged runs matching every filter given, newest first.

    query: words that all appear in the prompt, the answer or a tool call (full-text search).
    model: part of the model's name. tool: the run called a tool of this name.
    """
    from .store import search

    flush()
    with _reading() as db:
        return search(db, query=query, limit=limit, model=model, tool=tool)


def saved(run_id: int) -> SavedRun:
    """Run `run_id` as the log keeps it; an LLMMagicError when there is none."""
    from .store import load

    flush()
    with _reading() as db:
        found = load(db, int(run_id))
    if found is None:
        raise LLMMagicError(f"no run {run_id} in the run log ({path()})")
    return found


def get(
    run_id: int,
    *,
    tools: Iterable[Any] | None = None,
    namespace: Mapping[str, Any] | None = None,
    model: str | AsyncModel | Model | None = None,
) -> ChainResult[Any]:
    """Run `run_id` as a result to go on from: `result.continue_(...)`, `fork`, `rerun`,
    `llm_magic.chain(..., continue_=result)`, `%%llm_chain --continue ID`.

    tools: the tools to go on with; None: the run's tools, found by name in the notebook (or
    `namespace`). One that is missing is named when a continuation needs it. model: go on
    with this model (an id or a model, with its own key and base URL); None: the run's own id,
    made with the environment's key when first needed.
    """
    from ..models import AsyncModel, get_async_model
    from .restore import result_of
    from .writer import remember

    if isinstance(model, str):
        model = get_async_model(model)
    elif model is not None and not isinstance(model, AsyncModel):
        model = model.to_async()
    result = result_of(saved(run_id), tools, namespace, model)
    remember(result, int(run_id))
    return result


def export(run: int | ChainResult[Any], file: str | Path | None = None) -> dict[str, Any]:
    """Run `run` (a log id, or a result) as JSON data; written to `file` too when given."""
    if isinstance(run, int):
        data = saved(run).to_dict()
    else:
        from .capture import from_result

        flush()  # a run that just ended may still be on its way to the log
        logged = id_of(run)
        data = (saved(logged) if logged is not None else from_result(run)).to_dict()
    data["id"] = None
    if file is not None:
        Path(file).write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    return data


def import_(source: Mapping[str, Any] | str | Path) -> int:
    """An exported run (its data, or a file of it) into the log, as a new run; its id."""
    from ..mcp_config import scrub
    from .capture import environment_secrets
    from .record import SavedRun
    from .store import insert

    data = source if isinstance(source, Mapping) else json.loads(Path(source).read_text("utf-8"))
    run = SavedRun.from_dict(dict(data))
    run.branched_from = None  # an id of the database it came from
    secrets = environment_secrets()
    flush()
    with _reading() as db:
        return insert(db, run, lambda text: scrub(text, secrets))
