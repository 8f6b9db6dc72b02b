"""The run log: real runs over the loopback OpenAI server written to a real SQLite file, read
back, searched, continued, forked; keys kept out of the file; a locked or unwritable database
costs one warning and never the run; old databases migrate; two processes share one file."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import uuid
import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import llm_magic
from llm_magic import log
from llm_magic.errors import LLMMagicError
from llm_magic.log import schema, store, writer
from llm_magic.log.record import SavedCall, SavedRun, SavedTurn
from llm_magic.media import Media
from llm_magic.messages import Message, ToolCall, ToolResult, Usage
from tests.servers import Call, OpenAIServer, Reply, make_server

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "tests" / "mcp_servers" / "demo.py"


def get_weather(city: str) -> dict[str, Any]:
    """Current weather for a city."""
    return {"city": city, "temp_c": {"Paris": 18, "Rome": 24}.get(city, 0)}


@pytest.fixture
def db_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A log of this test's own; the writer's connections and its one warning start afresh."""
    path = tmp_path / "log" / "runs.db"
    monkeypatch.setenv("LLM_MAGIC_LOG_PATH", str(path))
    monkeypatch.delenv("LLM_MAGIC_LOG", raising=False)
    log.flush()
    writer.close()
    monkeypatch.setattr(writer, "_warned", False)
    yield path
    log.flush()
    writer.close()


def model(server: OpenAIServer, **kwargs: Any) -> llm_magic.AsyncModel:
    return llm_magic.get_async_model(
        "openai-chat:gpt-4.1-mini", base_url=server.base_url, api_key=server.api_key, **kwargs
    )


async def weather_run(server: OpenAIServer) -> llm_magic.ChainResult[Any]:
    server.push(
        Reply(calls=[Call("get_weather", {"city": "Paris"})], usage=(100, 20)),
        Reply(text="Paris is at 18 degrees, mild.", usage=(150, 10)),
    )
    return await model(server).chain(
        "How warm is Paris?", tools=[get_weather], system="Answer in one line."
    )


def file_bytes(path: Path) -> bytes:
    """The database and its WAL file, as they lie on disk."""
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


async def test_a_run_is_written_whole_and_read_back(openai_server: Any, db_path: Path) -> None:
    result = await weather_run(openai_server)
    log.flush()
    (entry,) = log.runs()
    assert (entry.model, entry.prompt, entry.status) == (
        "openai-chat:gpt-4.1-mini",
        "How warm is Paris?",
        "done",
    )
    assert entry.tool_calls == ("get_weather",) and entry.cost == result.cost
    assert (entry.input_tokens, entry.output_tokens) == (250, 30)

    saved = log.saved(entry.id)
    assert saved.model_id == "openai-chat:gpt-4.1-mini" and saved.system == "Answer in one line."
    assert saved.provider == result.provider == "openai-chat"  # the route, as the id's prefix
    assert saved.messages == result.messages  # the neutral messages, every field
    assert saved.usage == result.usage and saved.step_ends == result.step_ends
    (call,) = saved.calls
    record = result.tool_calls[0]
    assert (call.call_id, call.name, call.status) == (record.id, "get_weather", "ok")
    assert json.loads(call.arguments) == {"city": "Paris"}
    assert call.output == record.output == '{"city": "Paris", "temp_c": 18}'
    assert call.turn == 0 and 0 <= call.started <= call.ended <= saved.elapsed
    first, second = saved.turns
    assert first.started is not None and first.ended is not None
    assert first.ended <= call.started <= second.started  # the call ran between the turns
    assert [t.usage for t in saved.turns] == [t.usage for t in result.turns]
    assert saved.answer == "Paris is at 18 degrees, mild."
    assert log.id_of(result) == entry.id


async def test_writes_happen_on_the_writer_thread(
    openai_server: Any, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[str] = []
    insert_all = store.insert_all

    def noting(*args: Any, **kwargs: Any) -> list[int]:
        threads.append(threading.current_thread().name)
        return insert_all(*args, **kwargs)

    monkeypatch.setattr(store, "insert_all", noting)
    await weather_run(openai_server)
    log.flush()
    assert threads == [writer.WORKER]


async def test_runs_that_end_while_the_writer_gathers_share_one_transaction(
    openai_server: Any, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches: list[int] = []
    insert_all = store.insert_all

    def noting(db: Any, runs: list[Any]) -> list[int]:
        batches.append(len(runs))
        return insert_all(db, runs)

    monkeypatch.setattr(store, "insert_all", noting)
    monkeypatch.setattr(writer, "GATHER", 30.0)  # only `flush` ends the gathering
    for _ in range(3):
        await weather_run(openai_server)
    assert batches == []  # nothing written yet: the writer gathers
    log.flush()
    assert batches == [3]
    ids = [entry.id for entry in log.runs()]
    assert sorted(ids) == list(range(min(ids), min(ids) + 3))


async def test_a_run_goes_to_the_log_chosen_when_it_ended(
    openai_server: Any, db_path: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(writer, "GATHER", 30.0)
    await weather_run(openai_server)
    monkeypatch.setenv("LLM_MAGIC_LOG_PATH", str(tmp_path / "other.db"))  # chosen after it
    log.flush()
    assert log.runs() == []
    monkeypatch.setenv("LLM_MAGIC_LOG_PATH", str(db_path))
    (entry,) = log.runs()
    assert entry.prompt == "How warm is Paris?"


async def test_a_logged_run_goes_on_after_being_read_back(
    openai_server: Any, db_path: Path
) -> None:
    await weather_run(openai_server)
    log.flush()
    (entry,) = log.runs()
    back = log.get(entry.id, namespace={"get_weather": get_weather}, model=model(openai_server))
    assert back.text == "Paris is at 18 degrees, mild." and back.status == "done"
    assert back.provider == "openai-chat"

    openai_server.push(Reply(text="Rome is warmer."))
    more = await back.continue_("And Rome?")
    sent = openai_server.requests[-1].body["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool", "assistant", "user"]
    assert sent[3]["content"] == '{"city": "Paris", "temp_c": 18}'
    assert more.text == "Rome is warmer."

    call_id = back.tool_calls[0].id
    openai_server.push(Reply(text="Rome: 24."))
    rerun = await back.rerun(call_id, arguments={"city": "Rome"})
    assert rerun.tool_calls[0].output == '{"city": "Rome", "temp_c": 24}'
    log.flush()
    newest = log.runs(limit=1)[0]
    assert newest.branched_from == entry.id
    assert log.saved(newest.id).branch == {
        "step": 1,
        "kind": "rerun",
        "call_id": call_id,
        "arguments": {"city": "Rome"},
    }


async def test_chain_continues_a_logged_run_with_the_model_it_was_made_from(
    openai_server: Any, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await weather_run(openai_server)
    log.flush()
    monkeypatch.setenv("OPENAI_API_KEY", openai_server.api_key)  # as in the kernel that made it
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    back = log.get(log.runs()[0].id, namespace={"get_weather": get_weather})
    openai_server.push(Reply(text="Rome: 24."))
    more = await llm_magic.chain("And Rome?", continue_=back, tools=[get_weather])
    assert (more.text, more.model) == ("Rome: 24.", "openai-chat:gpt-4.1-mini")
    sent = openai_server.requests[-1].body
    assert sent["model"] == "gpt-4.1-mini"
    assert [m["role"] for m in sent["messages"]] == [
        "user",
        "assistant",
        "tool",
        "assistant",
        "user",
    ]


async def test_a_missing_tool_is_named_before_anything_runs(
    openai_server: Any, db_path: Path
) -> None:
    await weather_run(openai_server)
    log.flush()
    back = log.get(log.runs()[0].id, namespace={}, model=model(openai_server))
    before = len(openai_server.requests)
    with pytest.raises(LLMMagicError, match="used get_weather, which the notebook does not"):
        back.rerun(back.tool_calls[0].id)
    with pytest.raises(LLMMagicError, match="get_weather"):
        back.continue_("And Rome?")
    assert len(openai_server.requests) == before
    openai_server.push(Reply(text="No tools needed."))
    assert (await back.continue_("Thanks", tools=[])).text == "No tools needed."


async def test_search_and_filters(openai_server: Any, db_path: Path) -> None:
    await weather_run(openai_server)
    openai_server.push(Reply(text="A haiku about dew."))
    await model(openai_server).chain("Write a haiku, please: it's morning")
    log.flush()
    assert [e.prompt for e in log.runs("haiku")] == ["Write a haiku, please: it's morning"]
    # FTS5 syntax in the words is taken as text, not as a query that fails
    assert [e.prompt for e in log.runs("it's morning, (please")] == [
        "Write a haiku, please: it's morning"
    ]
    assert log.runs('haiku" OR "mild') == []
    assert [e.prompt for e in log.runs("mild")] == ["How warm is Paris?"]  # the answer
    assert [e.prompt for e in log.runs("temp_c")] == ["How warm is Paris?"]  # a call's output
    assert [e.prompt for e in log.runs(tool="get_weather")] == ["How warm is Paris?"]
    assert len(log.runs(limit=1)) == 1 and len(log.runs()) == 2
    assert log.runs(model="claude") == [] and len(log.runs(model="4.1-mini")) == 2


@pytest.mark.filterwarnings("ignore:MCP server 'gone'")
async def test_keys_headers_and_mcp_secrets_never_reach_the_file(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = f"sk-proj-{uuid.uuid4().hex}"
    mcp_secret = f"mcp-env-{uuid.uuid4().hex}"
    header_secret = f"hdr-{uuid.uuid4().hex}"
    url_secret = f"url-{uuid.uuid4().hex}"
    other = f"gh-{uuid.uuid4().hex}"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    monkeypatch.setenv("SOME_SERVICE_TOKEN", other)

    def leak() -> str:
        """Returns what it should not."""
        return f"key={key} mcp={mcp_secret} hdr={header_secret} url={url_secret} tok={other}"

    demo = llm_magic.mcp(
        [sys.executable, str(DEMO), "stdio", f"log-test-{uuid.uuid4().hex[:6]}"],
        name="demo",
        env={"DEMO_SETTING": mcp_secret},
    )
    gone = llm_magic.mcp(
        f"http://127.0.0.1:9/mcp?api_key={url_secret}",
        name="gone",
        headers={"Authorization": f"Bearer {header_secret}"},
        optional=True,
    )
    with make_server("openai", api_key=key) as server:
        server.push(
            Reply(calls=[Call("leak", {}), Call("demo_add", {"a": 1, "b": 2})]),
            Reply(text=f"Found {key} and {mcp_secret} and {header_secret}"),
        )
        m = llm_magic.get_async_model("openai-chat:gpt-4.1-mini", base_url=server.base_url)
        try:
            result = await m.chain(f"Use {key}", tools=[leak, demo, gone])
        finally:
            demo.close()
            gone.close()
    assert [c.status for c in result.tool_calls] == ["ok", "ok"]
    assert key in result.tool_calls[0].output  # the run itself keeps what the tool returned
    log.flush()
    writer.close()
    data = file_bytes(db_path)
    assert b"***" in data and b"add" in data
    for secret in (key, mcp_secret, header_secret, url_secret, other):
        assert secret.encode() not in data, secret
    exported = json.dumps(log.export(log.runs()[0].id))
    assert key not in exported and "demo:demo_add" in exported


async def test_a_locked_database_warns_once_and_the_runs_go_on(
    openai_server: Any, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(schema, "BUSY_SECONDS", 0.2)
    schema.connect(db_path).close()
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for _ in range(2):
                openai_server.push(Reply(text="fine"))
                result = await model(openai_server).chain("hello")
                assert result.status == "done" and result.text == "fine"
            log.flush()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    said = [str(w.message) for w in caught if "run log" in str(w.message)]
    assert len(said) == 1 and "locked" in said[0] and "LLM_MAGIC_LOG=0" in said[0]
    openai_server.push(Reply(text="later"))
    await model(openai_server).chain("after the lock")
    assert [e.prompt for e in log.runs()] == ["after the lock"]  # the next run is written


def _unwritable_dir(tmp_path: Path) -> Path:
    """A folder this process cannot create files in (root ignores modes: /sys refuses it)."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        (folder / "probe").touch()
    except PermissionError:
        return folder / "log"
    return Path("/sys") / f"llm-magic-{uuid.uuid4().hex}"


async def test_an_unwritable_path_warns_once_and_the_run_goes_on(
    openai_server: Any, db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLM_MAGIC_LOG_PATH", str(_unwritable_dir(tmp_path) / "runs.db"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            openai_server.push(Reply(text="fine"))
            assert (await model(openai_server).chain("hello")).text == "fine"
        log.flush()
    said = [str(w.message) for w in caught if "run log" in str(w.message)]
    assert len(said) == 1, said


async def test_the_log_is_off_by_environment_or_configure(
    openai_server: Any, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLM_MAGIC_LOG", "0")
    openai_server.push(Reply(text="one"))
    await model(openai_server).chain("unlogged")
    log.flush()
    assert not db_path.exists()
    log.configure(enabled=True, path=str(db_path.with_name("chosen.db")))
    try:
        openai_server.push(Reply(text="two"))
        await model(openai_server).chain("logged")
        log.flush()
        assert [e.prompt for e in log.runs()] == ["logged"]
        assert db_path.with_name("chosen.db").exists() and not db_path.exists()
    finally:
        log.configure()


def _version_one(path: Path) -> None:
    """A database as the first schema left it, with one run in it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None)
    for statement in schema._statements(schema.MIGRATIONS[0]):
        db.execute(statement)
    db.execute("PRAGMA user_version=1")
    db.execute(
        "INSERT INTO runs (started_at, elapsed, model, provider, prompt, status, answer, "
        "messages, step_ends, turns, tools, input_tokens, output_tokens, usage) VALUES "
        "(1700000000, 1.5, 'gpt-4.1-mini', 'openai', 'an old question', 'done', 'an old answer', "
        "'[{\"role\": \"user\", \"text\": \"an old question\"}]', '[0, 1]', '[]', '[]', 1, 2, '{}')"
    )
    db.close()


def test_an_older_database_is_migrated_and_kept(db_path: Path) -> None:
    _version_one(db_path)
    (entry,) = log.runs("old question")  # the search index was built for the old run
    assert (entry.prompt, entry.input_tokens) == ("an old question", 1)
    db = sqlite3.connect(db_path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == schema.VERSION
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()
    assert log.saved(entry.id).messages == [Message("user", "an old question")]


def test_a_newer_database_is_refused_with_what_to_do(db_path: Path) -> None:
    schema.connect(db_path).close()
    db = sqlite3.connect(db_path)
    db.execute(f"PRAGMA user_version={schema.VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(schema.NewerDatabase, match="upgrade llm_magic"):
        log.runs()


_WRITER = """
import sys
from pathlib import Path
from llm_magic.log import schema, store
from llm_magic.log.record import SavedRun
from llm_magic.messages import Message

db = schema.connect(Path(sys.argv[1]))
for i in range(int(sys.argv[3])):
    prompt = f"{sys.argv[2]} {i}"
    store.insert(db, SavedRun("m", "openai", prompt, "done", [Message("user", prompt)]))
"""


def test_two_processes_write_one_database(db_path: Path) -> None:
    schema.connect(db_path).close()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(_WRITER), str(db_path), name, "40"], env=env
        )
        for name in ("alpha", "beta")
    ]
    assert [p.wait(120) for p in procs] == [0, 0]
    assert len(log.runs(limit=1000)) == 80
    assert len(log.runs("alpha", limit=1000)) == len(log.runs("beta", limit=1000)) == 40


async def test_export_and_import_round_trip(
    openai_server: Any, db_path: Path, tmp_path: Path
) -> None:
    result = await weather_run(openai_server)
    file = tmp_path / "run.json"
    data = log.export(result, file)  # a result: the logged run, once it is written
    assert data["format"] == "llm_magic.run" and data["turns"][0]["started"] is not None
    assert json.loads(file.read_text())["messages"][2]["tool_results"][0]["name"] == "get_weather"
    new_id = log.import_(file)
    assert new_id != log.id_of(result)
    back = log.saved(new_id)
    assert back.messages == result.messages and back.calls == log.saved(log.id_of(result)).calls
    again = log.get(new_id, namespace={"get_weather": get_weather}, model=model(openai_server))
    openai_server.push(Reply(text="Still 18."))
    assert (await again.continue_("Sure?")).text == "Still 18."
    with pytest.raises(ValueError, match="not an exported llm_magic run"):
        log.import_({"format": "something else"})


def test_get_of_an_unknown_run_says_so(db_path: Path) -> None:
    with pytest.raises(LLMMagicError, match="no run 999 in the run log"):
        log.get(999)


# -- the property: any run goes through the database unchanged -------------------------------------

_text = st.text(max_size=40)
_dollars = st.none() | st.decimals(min_value=0, max_value=100, places=6, allow_nan=False)
_usage = st.builds(Usage, *(st.integers(0, 10**7) for _ in range(5)))
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=8,
)
_call = st.builds(ToolCall, _text, _text, _text, st.dictionaries(_text, _json, max_size=2))
_media = st.builds(
    Media, st.binary(max_size=64), st.sampled_from(["image/png", "application/pdf"]), _text, _text
)
_result = st.builds(ToolResult, _text, _text, _text, st.booleans(), st.tuples() | st.tuples(_media))
_message = st.builds(
    Message,
    role=st.sampled_from(["system", "user", "assistant", "tool"]),
    text=_text,
    tool_calls=st.lists(_call, max_size=2),
    tool_results=st.lists(_result, max_size=2),
    media=st.tuples() | st.tuples(_media),
    provider_data=st.dictionaries(_text, _json, max_size=2),
)
_times = st.none() | st.floats(0, 1e6, allow_nan=False)
_saved_call = st.builds(
    SavedCall,
    call_id=_text,
    name=_text,
    arguments=_text,
    output=_text,
    status=st.sampled_from(["ok", "error", "denied", "cancelled"]),
    step=st.integers(0, 50),
    turn=st.none() | st.integers(0, 50),
    started=_times,
    ended=_times,
    server=st.none() | _text,
    error=st.none() | _text,
    truncated=st.booleans(),
)
_turn = st.builds(
    SavedTurn, _text, _usage, _dollars, st.none() | _text, _times, _times, st.booleans()
)
_run = st.builds(
    SavedRun,
    model=_text,
    provider=_text,
    prompt=_text,
    status=st.sampled_from(["done", "failed", "cancelled", "max_steps"]),
    messages=st.lists(_message, max_size=4),
    model_id=st.none() | _text,
    started_at=st.floats(0, 4e9, allow_nan=False),
    elapsed=st.floats(0, 1e5, allow_nan=False),
    system=st.none() | _text,
    error=st.none() | _text,
    answer=_text,
    step_ends=st.lists(st.integers(0, 100), max_size=4),
    turns=st.lists(_turn, max_size=3),
    tools=st.lists(_text, max_size=3),
    usage=_usage,
    cost=_dollars,
    conversation_cost=_dollars,
    notebook=st.none() | _text,
    cell=st.none() | _text,
    branch=st.none() | st.dictionaries(_text, _json, max_size=3),
    calls=st.lists(_saved_call, max_size=4),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(run=_run)
def test_any_run_round_trips_through_the_database_and_the_export(run: SavedRun) -> None:
    db = sqlite3.connect(":memory:", isolation_level=None)
    schema.migrate(db)
    run_id = store.insert(db, run)
    back = store.load(db, run_id)
    assert back is not None and back.id == run_id
    back.id = None
    # Media compare by identity (the wire caches key on it), so runs compare as their dicts,
    # which hold every field, the bytes of each image included.
    assert back.to_dict() == run.to_dict()
    exported = SavedRun.from_dict(json.loads(json.dumps(run.to_dict())))
    assert exported.to_dict() == run.to_dict()


def test_the_saved_run_records_load_when_first_asked_for():
    """Every run is watched by the log from its start, but the saved run's records (and the
    capture that fills them) are imported only when a run is written or read."""
    code = textwrap.dedent(
        """
        import sys
        import llm_magic
        from llm_magic.log import record
        print("BEFORE", "llm_magic.log.capture" in sys.modules)
        print("SAME", llm_magic.log.SavedRun is record.SavedRun,
              llm_magic.log.SavedCall is record.SavedCall, llm_magic.log.SavedTurn is record.SavedTurn)
        try:
            llm_magic.log.NoSuchThing
        except AttributeError as exc:
            print("MISSING", exc)
        """
    )
    plain = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, llm_magic; print(sorted(m for m in sys.modules "
            "if m.startswith(('llm_magic.log.record', 'llm_magic.log.capture'))))",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert plain.strip() == "[]", plain
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert "BEFORE False" in out and "SAME True True True" in out, out
    assert "MISSING module 'llm_magic.log' has no attribute 'NoSuchThing'" in out, out
