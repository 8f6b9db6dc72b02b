"""Runs into the database and out: one insert per run, the listing, one run read back whole.

Every text written passes through `clean` first (the capture's secret scrubber), so nothing
that reaches the file can hold a key, whichever field it hid in.
"""

from __future__ import annotations

import datetime
import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .codec import (
    dollars,
    dumps,
    from_dollars,
    messages_from_json,
    messages_json,
    usage_from_dict,
    usage_to_dict,
)
from .record import SavedCall, SavedRun, turn_from_dict, turn_to_dict

Clean = Callable[[str], str]

_RUN_COLUMNS = (
    "started_at", "elapsed", "model", "model_id", "provider", "base_url", "prompt", "system", "status",
    "stop_reason", "error", "answer", "messages", "step_ends", "turns", "tools", "input_tokens",
    "output_tokens", "usage", "cost", "conversation_cost", "notebook", "cell", "branched_from",
    "branch",
)  # fmt: skip
_CALL_COLUMNS = (
    "call_id", "name", "arguments", "output", "status", "step", "turn", "started", "ended",
    "server", "error", "truncated",
)  # fmt: skip


def insert(db: sqlite3.Connection, run: SavedRun, clean: Clean = str) -> int:
    """Write `run` (its calls and search index too) in one transaction; its new id."""
    return insert_all(db, [(run, clean)])[0]


def insert_all(db: sqlite3.Connection, runs: list[tuple[SavedRun, Clean]]) -> list[int]:
    """Write `runs`, each with its own scrubber, in one transaction (all or none); their ids.

    The runs that ended while the writer was busy go in together: a commit per run, with its
    journal and index updates, was most of a write's cost.
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        ids = [_insert(db, run, clean) for run, clean in runs]
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return ids


def _insert(db: sqlite3.Connection, run: SavedRun, clean: Clean) -> int:
    row = [_cleaned(v, clean) for v in _run_row(run)]
    calls = [[_cleaned(v, clean) for v in _call_row(c)] for c in run.calls]
    searchable = " ".join(f"{c[1]} {c[2]} {c[3]}" for c in calls)  # name, arguments, output
    cursor = db.execute(_INSERT_RUN, row)
    run_id = int(cursor.lastrowid or 0)
    if calls:
        db.executemany(_INSERT_CALL, [(run_id, seq, *call) for seq, call in enumerate(calls)])
    db.execute(
        "INSERT INTO runs_fts(rowid, prompt, answer, calls) VALUES (?, ?, ?, ?)",
        (run_id, row[_PROMPT], row[_ANSWER], searchable),
    )
    return run_id


_INSERT_RUN = (
    f"INSERT INTO runs ({', '.join(_RUN_COLUMNS)}) VALUES ({', '.join('?' * len(_RUN_COLUMNS))})"
)
_INSERT_CALL = (
    f"INSERT INTO tool_calls (run_id, seq, {', '.join(_CALL_COLUMNS)}) "
    f"VALUES ({', '.join('?' * (len(_CALL_COLUMNS) + 2))})"
)
_PROMPT, _ANSWER = _RUN_COLUMNS.index("prompt"), _RUN_COLUMNS.index("answer")


def _cleaned(value: Any, clean: Clean) -> Any:
    return clean(value) if isinstance(value, str) else value


def _run_row(run: SavedRun) -> list[Any]:
    return [
        run.started_at, run.elapsed, run.model, run.model_id, run.provider, run.base_url, run.prompt,
        run.system, run.status, run.stop_reason, run.error, run.answer,
        messages_json(run.messages), dumps(run.step_ends),
        dumps([turn_to_dict(t) for t in run.turns]), dumps(run.tools),
        run.usage.input_tokens, run.usage.output_tokens, dumps(usage_to_dict(run.usage)),
        dollars(run.cost), dollars(run.conversation_cost), run.notebook, run.cell,
        run.branched_from, dumps(run.branch) if run.branch is not None else None,
    ]  # fmt: skip


def _call_row(call: SavedCall) -> list[Any]:
    return [
        call.call_id,
        call.name,
        call.arguments,
        call.output,
        call.status,
        call.step,
        call.turn,
        call.started,
        call.ended,
        call.server,
        call.error,
        int(call.truncated),
    ]


def load(db: sqlite3.Connection, run_id: int) -> SavedRun | None:
    """The run `run_id` read back whole; None when there is none."""
    row = db.execute(
        f"SELECT {', '.join(_RUN_COLUMNS)} FROM runs WHERE id = ?", (run_id,)
    ).fetchone()
    if row is None:
        return None
    v = dict(zip(_RUN_COLUMNS, row, strict=True))
    calls = db.execute(
        f"SELECT {', '.join(_CALL_COLUMNS)} FROM tool_calls WHERE run_id = ? ORDER BY seq",
        (run_id,),
    ).fetchall()
    return SavedRun(
        id=run_id,
        model=v["model"],
        model_id=v["model_id"],
        provider=v["provider"],
        prompt=v["prompt"],
        status=v["status"],
        messages=messages_from_json(v["messages"]),
        started_at=v["started_at"],
        elapsed=v["elapsed"],
        base_url=v["base_url"],
        system=v["system"],
        stop_reason=v["stop_reason"],
        error=v["error"],
        answer=v["answer"],
        step_ends=json.loads(v["step_ends"]),
        turns=[turn_from_dict(t) for t in json.loads(v["turns"])],
        tools=json.loads(v["tools"]),
        usage=usage_from_dict(json.loads(v["usage"])),
        cost=from_dollars(v["cost"]),
        conversation_cost=from_dollars(v["conversation_cost"]),
        notebook=v["notebook"],
        cell=v["cell"],
        branched_from=v["branched_from"],
        branch=json.loads(v["branch"]) if v["branch"] else None,
        calls=[_call(dict(zip(_CALL_COLUMNS, c, strict=True))) for c in calls],
    )


def _call(v: dict[str, Any]) -> SavedCall:
    return SavedCall(**{**v, "truncated": bool(v["truncated"])})


@dataclass(frozen=True)
class LogEntry:
    """One line of the log's listing: `llm_magic.log.runs()` returns these, newest first."""

    id: int
    time: datetime.datetime  # when the run started, local time
    model: str
    prompt: str
    status: str
    tool_calls: tuple[str, ...]  # the names of its calls, in order
    cost: Decimal | None  # US dollars; None: unknown
    input_tokens: int
    output_tokens: int
    notebook: str | None
    branched_from: int | None


def search(
    db: sqlite3.Connection,
    *,
    query: str | None = None,
    limit: int = 20,
    model: str | None = None,
    tool: str | None = None,
) -> list[LogEntry]:
    """The newest `limit` runs that match every filter given.

    query: words that must all appear in the prompt, the answer or a call (FTS5; each word is
    quoted, so punctuation is taken literally). model: the model's name contains it. tool: the
    run called a tool of that name.
    """
    where, args = [], []
    if query and query.strip():
        where.append("runs.id IN (SELECT rowid FROM runs_fts WHERE runs_fts MATCH ?)")
        args.append(" ".join('"' + w.replace('"', '""') + '"' for w in query.split()))
    if model:
        where.append("runs.model LIKE ?")
        args.append(f"%{model}%")
    if tool:
        where.append("EXISTS (SELECT 1 FROM tool_calls t WHERE t.run_id = runs.id AND t.name = ?)")
        args.append(tool)
    sql = (
        "SELECT id, started_at, model, prompt, status, cost, input_tokens, output_tokens, "
        "notebook, branched_from, (SELECT group_concat(name, char(31)) FROM "
        "(SELECT name FROM tool_calls WHERE run_id = runs.id ORDER BY seq)) FROM runs"
        + (" WHERE " + " AND ".join(where) if where else "")
        + " ORDER BY started_at DESC, id DESC LIMIT ?"
    )
    rows = db.execute(sql, [*args, max(0, int(limit))]).fetchall()
    return [
        LogEntry(
            id=r[0],
            time=datetime.datetime.fromtimestamp(r[1]),
            model=r[2],
            prompt=r[3],
            status=r[4],
            cost=from_dollars(r[5]),
            input_tokens=r[6],
            output_tokens=r[7],
            notebook=r[8],
            branched_from=r[9],
            tool_calls=tuple(r[10].split("\x1f")) if r[10] else (),
        )
        for r in rows
    ]
