"""`%llm_log` and the run log in a headless IPython shell, against the loopback server: the
listing and its filters, a run's saved timeline, `%config LLMMagic.log`, where a run started,
and `%%llm_chain --continue ID` going on from a logged run."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from IPython.core.interactiveshell import InteractiveShell  # noqa: E402
from IPython.utils.capture import capture_output  # noqa: E402

from llm_magic import log  # noqa: E402
from llm_magic.log import settings, writer  # noqa: E402
from llm_magic.notebook import state as nb_state  # noqa: E402
from tests.servers import Call, Reply  # noqa: E402
from tests.servers.fixtures import openai_server  # noqa: E402, F401

TOOLS = '''
def get_weather(city: str) -> dict:
    """Current weather for a city."""
    return {"city": city, "temp_c": {"Paris": 18, "Rome": 24}[city]}
'''


@pytest.fixture
def ip(openai_server, monkeypatch, tmp_path):  # noqa: F811
    monkeypatch.setenv("OPENAI_API_KEY", openai_server.api_key)
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    monkeypatch.setenv("LLM_MAGIC_LOG_PATH", str(tmp_path / "runs.db"))
    monkeypatch.delenv("LLM_MAGIC_LOG", raising=False)
    for var in ("LLM_MAGIC_MODEL", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    log.flush()
    writer.close()
    shell = InteractiveShell.instance()
    before = set(shell.user_ns)
    shell.config.pop("LLMMagic", None)
    shell.extension_manager.load_extension("llm_magic")
    ok(shell, '%config LLMMagic.default_model = "openai-chat:gpt-4.1-mini"')
    ok(shell, TOOLS)
    nb_state.reset_conversation()
    shell.server = openai_server
    yield shell
    log.flush()
    writer.close()
    shell.extension_manager.unload_extension("llm_magic")
    shell.config.pop("LLMMagic", None)
    for name in set(shell.user_ns) - before:
        del shell.user_ns[name]
    nb_state.reset_conversation()


def ok(ip: InteractiveShell, cell: str) -> Any:
    with capture_output() as cap:
        result = ip.run_cell(cell)
    assert result.error_in_exec is None and result.error_before_exec is None, (
        cap.stdout,
        result.error_in_exec,
    )
    return cap


def weather_cell(ip: InteractiveShell) -> None:
    ip.server.push(
        Reply(calls=[Call("get_weather", {"city": "Paris"})], usage=(100, 20)),
        Reply(text="Paris is at 18 degrees.", usage=(150, 10)),
    )
    ok(ip, "%%llm_chain -q -t get_weather -o r\nHow warm is Paris today?")


def test_the_listing_and_its_filters(ip: InteractiveShell) -> None:
    weather_cell(ip)
    ip.server.push(Reply(text="A haiku."))
    ok(ip, "%%llm_chain -q\nWrite a haiku about dew")
    lines = ok(ip, "%llm_log").stdout.splitlines()
    assert lines[0].split() == ["id", "time", "model", "prompt", "tool", "calls", "cost"]
    assert "Write a haiku about dew" in lines[1] and "gpt-4.1-mini" in lines[1]
    assert "How warm is Paris today?" in lines[2] and "get_weather" in lines[2]
    assert "$" in lines[2]
    found = ok(ip, "%llm_log -q haiku").stdout
    assert "haiku" in found and "Paris" not in found
    assert "Paris" in ok(ip, "%llm_log --tool get_weather").stdout
    assert len(ok(ip, "%llm_log -n 1").stdout.splitlines()) == 3  # heading, one run, the path
    assert "no runs matching that" in ok(ip, "%llm_log --model claude").stdout


def test_a_run_shows_its_saved_timeline(ip: InteractiveShell) -> None:
    weather_cell(ip)
    run_id = log.runs()[0].id
    cap = ok(ip, f"%llm_log {run_id}")
    (shown,) = cap.outputs
    html, text = shown.data["text/html"], shown.data["text/plain"]
    assert "llm-static" in html and "get_weather" in html and "Paris is at 18 degrees." in html
    assert text.startswith(f"run {run_id} · openai-chat:gpt-4.1-mini")
    assert "get_weather" in text and "done" in text
    assert "$" in text  # the turns' saved cost


def test_bad_lines_and_unknown_runs_are_one_line_errors(ip: InteractiveShell) -> None:
    with capture_output():
        result = ip.run_cell("%llm_log 4242")
    assert "no run 4242 in the run log" in str(result.error_in_exec)
    with capture_output():
        result = ip.run_cell("%llm_log --bogus")
    assert "unrecognized arguments: --bogus" in str(result.error_in_exec)


def test_config_turns_the_log_off_and_moves_it(ip: InteractiveShell, tmp_path: Path) -> None:
    ok(ip, "%config LLMMagic.log = False")
    weather_cell(ip)
    log.flush()
    assert not settings.enabled() and not (tmp_path / "runs.db").exists()
    ok(ip, f'%config LLMMagic.log = True\n%config LLMMagic.log_path = "{tmp_path / "b.db"}"')
    weather_cell(ip)
    assert log.path() == tmp_path / "b.db" and len(log.runs()) == 1
    ip.extension_manager.unload_extension("llm_magic")
    assert log.path() == tmp_path / "runs.db"  # unloading gives the choice back to the env
    ip.extension_manager.load_extension("llm_magic")


def test_the_log_records_the_notebook_and_cell(ip: InteractiveShell) -> None:
    ip.user_ns["__session__"] = "analysis/weather.ipynb"
    ip.server.push(Reply(text="Mild."))
    number = ip.execution_count  # the number the next stored cell runs as
    with capture_output():
        ip.run_cell("%%llm_chain -q\nHow warm is Paris today?", store_history=True).raise_error()
    saved = log.saved(log.runs()[0].id)
    assert saved.notebook == "analysis/weather.ipynb"
    assert saved.cell == f"In [{number}]" and ip.execution_count == number + 1


def test_continue_goes_on_from_a_logged_run(ip: InteractiveShell) -> None:
    weather_cell(ip)
    run_id = log.runs()[0].id
    nb_state.reset_conversation()  # as after a restart: only the log remembers
    ip.server.push(Reply(text="Rome is warmer."))
    ok(ip, f"%%llm_chain -q -t get_weather --continue {run_id} -o more\nAnd Rome?")
    sent = ip.server.requests[-1].body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "assistant", "user"]
    assert sent[0]["content"] == "How warm is Paris today?"
    assert ip.user_ns["more"].text == "Rome is warmer."
    with capture_output():
        result = ip.run_cell("%%llm_chain -q --continue 4242\nHello")
    assert "--continue 4242: no run 4242" in str(result.error_in_exec)
