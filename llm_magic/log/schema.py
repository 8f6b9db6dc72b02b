"""The log's tables, versioned: `PRAGMA user_version` says which migrations a database has had.

A newer llm_magic opens an older database by running the migrations it lacks, in order, in one
transaction (`BEGIN IMMEDIATE`, so two kernels opening an old database at once migrate it once).
A database from a newer llm_magic than this one is refused rather than written wrongly.
Kernels share the file through WAL journaling: readers never wait for the writer, and a writer
waits up to `BUSY_SECONDS` for another before it gives up.

Version 1: `runs` (one row per run: the model, the prompt, the conversation as JSON, usage,
cost, status, branch) and `tool_calls` (one row per call). Version 2: `runs_fts`, the FTS5
index of each run's prompt, answer and calls, that `%llm_log -q` searches, filled for the runs
an older database already held.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

BUSY_SECONDS = 2.0

MIGRATIONS: list[str] = [
    # 1: runs and their tool calls
    """
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        started_at REAL NOT NULL,          -- Unix time
        elapsed REAL NOT NULL,             -- seconds
        model TEXT NOT NULL,               -- the provider's name for it
        model_id TEXT,                     -- the id it was made from (`openai-chat:gpt-4.1`)
        provider TEXT NOT NULL,
        base_url TEXT,
        prompt TEXT NOT NULL,
        system TEXT,
        status TEXT NOT NULL,
        stop_reason TEXT,
        error TEXT,
        answer TEXT NOT NULL,
        messages TEXT NOT NULL,            -- JSON: the conversation as the run left it
        step_ends TEXT NOT NULL,           -- JSON: len(messages) before the run, after each step
        turns TEXT NOT NULL,               -- JSON: each model turn's text, usage, cost, times
        tools TEXT NOT NULL,               -- JSON: the names of the tools offered
        input_tokens INTEGER NOT NULL,
        output_tokens INTEGER NOT NULL,
        usage TEXT NOT NULL,               -- JSON: every field of Usage
        cost TEXT,                         -- US dollars as a decimal string; NULL: unknown
        conversation_cost TEXT,
        notebook TEXT,
        cell TEXT,
        branched_from INTEGER REFERENCES runs(id) ON DELETE SET NULL,
        branch TEXT                        -- JSON: step, kind, call id, edited arguments
    );
    CREATE INDEX runs_started ON runs(started_at);
    CREATE TABLE tool_calls (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        call_id TEXT NOT NULL,
        name TEXT NOT NULL,
        arguments TEXT NOT NULL,           -- the JSON text the model sent
        output TEXT NOT NULL,              -- the text the model saw
        status TEXT NOT NULL,
        step INTEGER NOT NULL,
        turn INTEGER,                      -- index of the turn that made it; NULL: a branch's
        started REAL,                      -- seconds after the run started
        ended REAL,
        server TEXT,                       -- the MCP server; NULL: a notebook function
        error TEXT,
        truncated INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (run_id, seq)
    );
    CREATE INDEX tool_calls_name ON tool_calls(name);
    """,
    # 2: full-text search over prompts, answers and calls
    """
    CREATE VIRTUAL TABLE runs_fts USING fts5(prompt, answer, calls);
    INSERT INTO runs_fts(rowid, prompt, answer, calls)
        SELECT id, prompt, answer,
               coalesce((SELECT group_concat(name || ' ' || arguments || ' ' || output, ' ')
                         FROM tool_calls WHERE run_id = runs.id), '')
        FROM runs;
    """,
]
VERSION = len(MIGRATIONS)


class NewerDatabase(sqlite3.DatabaseError):
    """The database was written by a newer llm_magic (its version is above ours)."""


def connect(path: Path) -> sqlite3.Connection:
    """An open, migrated connection to the log at `path` (made, with its folder, if missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=BUSY_SECONDS, isolation_level=None, check_same_thread=False)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # WAL's own choice: durable at checkpoints
        db.execute("PRAGMA foreign_keys=ON")
        migrate(db)
    except BaseException:
        db.close()
        raise
    return db


def migrate(db: sqlite3.Connection) -> int:
    """Bring `db` to `VERSION`; the version it had."""
    if _version(db) == VERSION:
        return VERSION
    db.execute("BEGIN IMMEDIATE")
    try:
        found = _version(db)  # another process may have migrated while we waited
        if found > VERSION:
            raise NewerDatabase(
                f"the run log was written by a newer llm_magic (schema {found}, this one "
                f"knows {VERSION}): upgrade llm_magic, or point LLM_MAGIC_LOG_PATH elsewhere"
            )
        for number in range(found, VERSION):
            for statement in _statements(MIGRATIONS[number]):
                db.execute(statement)
        db.execute(f"PRAGMA user_version={VERSION}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return found


def _version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def _statements(script: str) -> list[str]:
    """A migration's statements (`executescript` would commit our transaction first)."""
    out, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            out.append(current.strip())
            current = ""
    return [s for s in out if s]
