"""The run log in a real ipykernel: a chain runs, the kernel restarts (every variable and the
notebook's conversation gone), and the run is found with `%llm_log -q`, shown, continued with
`%%llm_chain --continue ID`, and one of its calls forked with a given result."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.kernel_harness import KernelSession
from tests.servers import Call, OpenAIServer, Reply

pytestmark = pytest.mark.kernel

SETUP = '''
%load_ext llm_magic
import llm_magic


def get_weather(city: str) -> dict:
    """Current weather for a city."""
    return {"city": city, "temp_c": {"Paris": 18, "Rome": 24}[city]}
'''


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer() as srv:
        yield srv


@pytest.fixture
def kernel(server: OpenAIServer, tmp_path: Path) -> Iterator[KernelSession]:
    session = KernelSession(
        {
            "OPENAI_API_KEY": server.api_key,
            "OPENAI_BASE_URL": server.base_url,
            "LLM_MAGIC_MODEL": "openai-chat:gpt-4.1-mini",
            "LLM_MAGIC_LOG_PATH": str(tmp_path / "runs.db"),
            "JPY_SESSION_NAME": "trips/weather.ipynb",  # JupyterLab's name for the notebook
        }
    )
    try:
        yield session
    finally:
        session.shutdown()


def restart(session: KernelSession) -> None:
    """A restart as Jupyter's button does it: the kernel is asked to shut down, and may finish
    what it was doing (the log's last write) before it exits."""
    session.km.restart_kernel(now=False)
    session.kc.wait_for_ready(timeout=60)
    session.drain()


def ok(session: KernelSession, code: str) -> Any:
    cell = session.run_one(code)
    assert cell.status == "ok", cell.errors
    return cell


def test_a_run_outlives_its_kernel(kernel: KernelSession, server: OpenAIServer) -> None:
    ok(kernel, SETUP)
    server.push(
        Reply(calls=[Call("get_weather", {"city": "Paris"})], usage=(100, 20)),
        Reply(text="Paris is at 18 degrees today.", usage=(150, 10)),
    )
    ok(kernel, "%%llm_chain -q -t get_weather -o r\nHow warm is Paris?")
    restart(kernel)  # at once: the run's write is finished as the kernel exits
    call_id = server.requests[1].body["messages"][1]["tool_calls"][0]["id"]
    assert ok(kernel, "print('r' in globals())").stream() == "False\n"
    ok(kernel, SETUP)
    listing = ok(kernel, "%llm_log -q Paris").stream()
    row = next(line for line in listing.splitlines() if "How warm is Paris?" in line)
    run_id = int(row.split()[0])
    assert "get_weather" in row and "gpt-4.1-mini" in row
    shown = ok(kernel, f"%llm_log {run_id}")
    html = next(m.content["data"]["text/html"] for m in shown.messages if m.type == "display_data")
    assert "Paris is at 18 degrees today." in html and "get_weather" in html
    assert "trips/weather.ipynb" in html

    server.push(Reply(text="Rome is warmer: 24 degrees."))
    ok(kernel, f"%%llm_chain -q -t get_weather --continue {run_id} -o more\nAnd Rome?")
    sent = server.requests[-1].body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "assistant", "user"]
    assert sent[0]["content"] == "How warm is Paris?" and sent[-1]["content"] == "And Rome?"
    assert sent[1]["tool_calls"][0]["id"] == call_id

    server.push(Reply(text="Then it is hot in Paris."))
    ok(
        kernel,
        f"old = llm_magic.log.get({run_id})\n"
        f"forked = await old.fork(at={call_id!r}, result={{'city': 'Paris', 'temp_c': 31}})\n"
        "print(forked.text)",
    )
    tool_message = server.requests[-1].body["messages"][2]
    assert tool_message["role"] == "tool" and '"temp_c": 31' in tool_message["content"]
    runs = ok(kernel, "print([(e.id, e.branched_from) for e in llm_magic.log.runs()])").stream()
    assert runs.strip() == f"[({run_id + 2}, {run_id}), ({run_id + 1}, None), ({run_id}, None)]"
    assert server.take_failures() == []
