"""MCP servers as tools: real servers (the SDK's MCPServer, tests/mcp_servers/demo.py) over stdio
and streamable HTTP on loopback, in chains against the loopback model servers."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

import llm_magic
from llm_magic._tool_names import wire_name
from llm_magic.mcp_registry import from_config, servers
from llm_magic.mcp_results import MCPError, MCPResult
from llm_magic.mcp_servers import MCPServer
from llm_magic.notebook import render
from llm_magic.notebook.timeline import Timeline
from tests.servers import Call, OpenAIServer, Reply

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "tests" / "mcp_servers" / "demo.py"


# -- helpers --------------------------------------------------------------------------------------


def processes_with(token: str) -> list[psutil.Process]:
    """Live processes whose command line holds `token` (zombies count as gone)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if token in " ".join(proc.info["cmdline"] or []):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def wait_until(predicate: Any, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Marker:
    """The file the demo server writes what it did to (MCP_TEST_MARKER)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def lines(self) -> list[str]:
        return self.path.read_text().splitlines() if self.path.exists() else []

    def has(self, text: str) -> bool:
        return any(text in line for line in self.lines())


class HTTPDemo:
    """The demo server over streamable HTTP (uvicorn inside the SDK's MCPServer) on a free loopback port."""

    def __init__(self, marker: Marker, token: str) -> None:
        self.port, self.marker, self.token = free_port(), marker, token
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "MCP_TEST_MARKER": str(self.marker.path)}
        self.proc = subprocess.Popen(
            [sys.executable, str(DEMO), "http", str(self.port), self.token],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def listening() -> bool:
            with socket.socket() as sock:
                return sock.connect_ex(("127.0.0.1", self.port)) == 0

        assert wait_until(listening, 60), "the HTTP MCP server did not start"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def marker(tmp_path: Path) -> Marker:
    return Marker(tmp_path / "marker.txt")


@pytest.fixture
def token() -> str:
    return f"llm-magic-mcp-test-{uuid.uuid4().hex[:8]}"


def stdio_server(marker: Marker, token: str, **kwargs: Any) -> MCPServer:
    return llm_magic.mcp(
        [sys.executable, str(DEMO), "stdio", token],
        name="demo",
        env={"MCP_TEST_MARKER": str(marker.path)},
        **kwargs,
    )


@pytest.fixture(params=["stdio", "http"])
def demo(request: Any, marker: Marker, token: str) -> Iterator[MCPServer]:
    """The demo server over each transport; no process left behind afterwards."""
    http = None
    if request.param == "stdio":
        server = stdio_server(marker, token)
    else:
        http = HTTPDemo(marker, token)
        http.start()
        server = llm_magic.mcp(http.url, name="demo")
    try:
        yield server
    finally:
        server.close()
        servers.pop("demo", None)
        if http is not None:
            http.stop()
    assert wait_until(lambda: not processes_with(token), 10), "an MCP server process was left"


def model(server: OpenAIServer) -> llm_magic.AsyncModel:
    return llm_magic.get_async_model(
        "openai-chat:test", base_url=server.base_url, api_key=server.api_key
    )


def tool_contents(request: Any) -> list[str]:
    return [m["content"] for m in request.body["messages"] if m["role"] == "tool"]


# -- chains ---------------------------------------------------------------------------------------


async def test_a_notebook_function_and_an_mcp_tool_run_in_the_same_turn_in_parallel(
    demo: MCPServer, openai_server: OpenAIServer
) -> None:
    async def local_wait(seconds: float) -> str:
        """Waits like a notebook function doing I/O."""
        await asyncio.sleep(seconds)
        return f"local waited {seconds}"

    openai_server.push(
        Reply(calls=[Call("local_wait", {"seconds": 1.0}), Call("demo_slow", {"seconds": 1.0})]),
        Reply(text="Both done."),
    )
    run = model(openai_server).chain("Do both.", tools=[local_wait, demo])
    timeline = Timeline(run, model="test")
    result = await run
    assert result.status == "done" and result.text == "Both done."
    local, remote = result.tool_calls
    assert (local.status, remote.status) == ("ok", "ok")
    assert (local.server, remote.server) == (None, "demo")
    # the timeline says which server ran the MCP call, and only there
    lines = [render.call_line_html(r) for r in timeline.state.calls]
    assert ["MCP · demo" in line for line in lines] == [False, True]
    assert "MCP demo" in render.static_text(timeline.state)
    # in parallel: each call started before the other ended
    assert max(local.started_at, remote.started_at) < min(local.ended_at, remote.ended_at)
    assert isinstance(remote.result, MCPResult)
    assert remote.result.raw.content[0].text == "slept 1.0 s"
    sent = tool_contents(openai_server.requests[1])
    assert sent == ["local waited 1.0", "slept 1.0 s"]
    # the server's tools were offered with their prefixed names and the server's own schema
    offered = {t["function"]["name"]: t for t in openai_server.requests[0].body["tools"]}
    assert {"local_wait", "demo_add", "demo_slow", "demo_fail"} <= set(offered)
    add_schema = offered["demo_add"]["function"]["parameters"]
    assert add_schema["properties"]["a"]["type"] == "integer"


async def test_tool_errors_and_bad_arguments_reach_the_model_as_errors(
    demo: MCPServer, openai_server: OpenAIServer, marker: Marker
) -> None:
    openai_server.push(
        Reply(
            calls=[
                Call("demo_fail", {"message": "nope"}),
                Call("demo_add", {"a": "two", "b": 3}),
            ]
        ),
        Reply(text="Sorry."),
    )
    result = await model(openai_server).chain("Try.", tools=[demo])
    failed, invalid = result.tool_calls
    assert failed.status == "error" and "failed on purpose: nope" in failed.output
    assert failed.error is not None and failed.error.result.raw.is_error  # type: ignore[attr-defined]
    assert invalid.status == "error" and "'two' is not of type 'integer'" in invalid.output
    assert not marker.has("add")  # checked here, never sent to the server
    sent = tool_contents(openai_server.requests[1])
    assert sent[0].startswith("error:") and "nope" in sent[0]
    assert "integer" in sent[1]
    assert result.status == "done"


async def test_results_keep_structured_content_and_images(
    demo: MCPServer, openai_server: OpenAIServer
) -> None:
    openai_server.push(
        Reply(calls=[Call("demo_stats", {"values": [1, 2, 3]}), Call("demo_red_pixel", {})]),
        Reply(text="ok"),
    )
    result = await model(openai_server).chain("Stats and a picture.", tools=[demo])
    stats, pixel = (c.result for c in result.tool_calls)
    assert stats.structured == {"count": 3, "sum": 6.0, "mean": 2.0}
    mime, data = pixel.images[0]
    assert mime == "image/png" and data.startswith(b"\x89PNG")
    bundle = pixel._repr_mimebundle_()
    assert bundle["image/png"] == data and "data:image/png;base64," in bundle["text/html"]
    sent = tool_contents(openai_server.requests[1])
    assert json.loads(sent[0])["mean"] == 2.0
    assert sent[1].startswith("[image image/png")


@pytest.mark.parametrize("how", ["cancel", "timeout"])
async def test_cancel_and_timeout_reach_the_server(
    demo: MCPServer, openai_server: OpenAIServer, marker: Marker, how: str
) -> None:
    openai_server.push(Reply(calls=[Call("demo_slow", {"seconds": 60})]), Reply(text="late"))
    options = {"tool_timeout": 2.0} if how == "timeout" else {}
    run = model(openai_server).chain("Wait.", tools=[demo], **options)
    task = asyncio.ensure_future(run.result())
    if how == "cancel":
        for _ in range(600):
            if marker.has("slow started"):
                break
            await asyncio.sleep(0.05)
        run.cancel()
    result = await task
    (call,) = result.tool_calls
    if how == "cancel":
        assert result.status == "cancelled" and call.status == "cancelled"
    else:
        assert call.status == "error" and "timed out" in call.output
    # the server got notifications/cancelled and stopped the handler
    for _ in range(200):
        if marker.has("slow cancelled"):
            break
        await asyncio.sleep(0.05)
    assert marker.has("slow cancelled")


async def test_a_stdio_server_crash_mid_call_is_an_error_and_the_next_call_restarts_it(
    openai_server: OpenAIServer, marker: Marker, token: str
) -> None:
    server = stdio_server(marker, token)
    try:
        openai_server.push(Reply(calls=[Call("demo_crash", {})]), Reply(text="It crashed."))
        first = await model(openai_server).chain("Crash it.", tools=[server])
        (crash,) = first.tool_calls
        assert crash.status == "error"
        assert "MCP server 'demo' stopped" in crash.output
        assert "crashing on purpose" in crash.output  # its stderr, shown
        assert server.state == "crashed"
        openai_server.push(Reply(calls=[Call("demo_add", {"a": 1, "b": 2})]), Reply(text="3"))
        second = await model(openai_server).chain("Add.", tools=[server])
        assert second.tool_calls[0].output == "3"
        assert server.state == "ready" and server.restarts == 1
        assert len([line for line in marker.lines() if line.startswith("started")]) == 2
    finally:
        server.close()
        servers.pop("demo", None)
    assert wait_until(lambda: not processes_with(token), 10)


async def test_an_http_server_that_goes_away_is_an_error_and_reconnects_when_back(
    openai_server: OpenAIServer, marker: Marker, token: str
) -> None:
    http = HTTPDemo(marker, token)
    http.start()
    server = llm_magic.mcp(http.url, name="demo")
    try:
        openai_server.push(Reply(calls=[Call("demo_crash", {})]), Reply(text="Gone."))
        first = await model(openai_server).chain("Crash it.", tools=[server])
        assert first.tool_calls[0].status == "error"
        assert "MCP server 'demo'" in first.tool_calls[0].output
        http.start()  # the same URL again
        openai_server.push(Reply(calls=[Call("demo_add", {"a": 2, "b": 2})]), Reply(text="4"))
        second = await model(openai_server).chain("Add.", tools=[server])
        assert second.tool_calls[0].output == "4"
    finally:
        server.close()
        servers.pop("demo", None)
        http.stop()


async def test_a_server_that_cannot_start_fails_the_run_with_its_error(
    openai_server: OpenAIServer,
) -> None:
    server = llm_magic.mcp(
        [sys.executable, "-c", "import sys; print('no such module', file=sys.stderr); sys.exit(2)"],
        name="broken",
    )
    try:
        with pytest.raises(MCPError) as info:
            await model(openai_server).chain("Hi.", tools=[server])
        assert "could not start" in str(info.value) and "no such module" in str(info.value)
        assert info.value.result.status == "failed"  # type: ignore[attr-defined]
        with pytest.raises(MCPError, match="could not start"):  # restarted once
            await server.list_tools()
        with pytest.raises(MCPError, match="stays stopped"):  # then left stopped
            await server.list_tools()
        assert openai_server.requests == []
    finally:
        server.close()
        servers.pop("broken", None)


async def test_approval_per_server(openai_server: OpenAIServer, marker: Marker, token: str) -> None:
    server = stdio_server(marker, token, approve=["add"])
    asked: list[str] = []

    async def deny(record: llm_magic.ToolCallRecord) -> llm_magic.Approval:
        asked.append(record.name)
        return llm_magic.Approval(False, "not now")

    try:
        needs = {t.name: t.options.requires_approval for t in await server.list_tools()}
        assert needs["demo_add"] and not needs["demo_stats"]
        openai_server.push(
            Reply(calls=[Call("demo_add", {"a": 1, "b": 1}), Call("demo_pid", {})]),
            Reply(text="ok"),
        )
        result = await model(openai_server).chain("Go.", tools=[server], approval_callback=deny)
        assert asked == ["demo_add"]
        assert [c.status for c in result.tool_calls] == ["denied", "ok"]
        assert not marker.has("add 1 1")

        # the notebook layer: servers by name, and the run's approve= naming a server tool
        from llm_magic.notebook.run import run_chain

        openai_server.push(Reply(calls=[Call("demo_stats", {"values": [1]})]), Reply(text="no"))
        ran = await run_chain(
            "Go.",
            tools=[],
            mcp="demo",
            approve=["demo_stats"],
            quiet=True,
            model=model(openai_server),
        )
        (stats,) = ran.tool_calls
        assert stats.status == "denied" and stats.server == "demo"
        with pytest.raises(Exception, match="not one of this run's tools"):
            await run_chain("Go.", tools=[], mcp="demo", approve=["demo_nope"], quiet=True)
    finally:
        server.close()
        servers.pop("demo", None)


def test_the_sync_api_shares_the_session(
    openai_server: OpenAIServer, marker: Marker, token: str
) -> None:
    server = stdio_server(marker, token)
    try:
        sync_model = llm_magic.get_model(
            "openai-chat:test", base_url=openai_server.base_url, api_key=openai_server.api_key
        )
        for _ in range(2):
            openai_server.push(Reply(calls=[Call("demo_pid", {})]), Reply(text="ok"))
        first = sync_model.chain("pid?", tools=[server]).tool_calls()[0].output

        async def again() -> str:
            result = await model(openai_server).chain("pid?", tools=[server])
            return result.tool_calls[0].output

        assert asyncio.run(again()) == first  # another loop, the same server process
        assert len(processes_with(token)) == 1
    finally:
        server.close()
        servers.pop("demo", None)
    assert wait_until(lambda: not processes_with(token), 10)


# -- no orphans -----------------------------------------------------------------------------------

_CHILD = r"""
import asyncio, signal, sys
import llm_magic
signal.signal(signal.SIGINT, lambda *_: print("child: SIGINT", flush=True))  # like ipykernel
server = llm_magic.mcp([sys.executable, sys.argv[1], "stdio", sys.argv[2]], name="demo")
result = asyncio.run(server.call("pid", {}))
print(result.text, flush=True)
if sys.argv[3] == "exit":
    sys.exit(0)
sys.stdin.read()
"""


@pytest.mark.parametrize("end", ["kill", "exit"])
def test_no_orphan_when_the_parent_goes(token: str, end: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(DEMO), token, end],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        process_group=0,
    )
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(child.stdout.readline()), daemon=True)
    reader.start()
    reader.join(90)
    try:
        assert line and line[0].strip().isdigit(), child.stderr.read() if child.poll() else ""
        server_pid = int(line[0])
        if end == "kill":
            os.killpg(child.pid, signal.SIGINT)  # a kernel interrupt misses the server
            time.sleep(0.5)
            assert psutil.pid_exists(server_pid)
            os.kill(child.pid, signal.SIGKILL)
        assert child.wait(30) in (0, -signal.SIGKILL)
        assert wait_until(lambda: not processes_with(token), 10), "the MCP server outlived it"
    finally:
        if child.poll() is None:
            child.kill()
        for proc in processes_with(token):
            proc.kill()


# -- units ----------------------------------------------------------------------------------------


def test_wire_names_are_valid_everywhere() -> None:
    assert wire_name("fs_read_file") == "fs_read_file"
    assert wire_name("my server_get.thing/v2") == "my_server_get_thing_v2"
    long_a, long_b = wire_name("s_" + "x" * 80 + "a"), wire_name("s_" + "x" * 80 + "b")
    assert len(long_a) == 64 and long_a != long_b


def test_mcp_servers_json_formats(tmp_path: Path) -> None:
    config = {
        "mcpServers": {
            "files": {"command": "npx", "args": ["-y", "server-fs", "/tmp"], "env": {"A": "1"}},
            "remote": {"url": "https://example.com/mcp", "headers": {"Authorization": "Bearer s3"}},
            "off": {"command": "x", "disabled": True},
        }
    }
    path = tmp_path / "claude_desktop_config.json"
    path.write_text(json.dumps(config))
    try:
        files, remote = from_config(path)
        assert files.command == ["npx", "-y", "server-fs", "/tmp"] and files.env == {"A": "1"}
        assert remote.url == "https://example.com/mcp" and remote.transport == "http"
        assert "s3" not in repr(remote) and "Authorization" in repr(remote)
        (vscode,) = from_config({"servers": {"v": {"type": "http", "url": "http://h/mcp"}}})
        assert vscode.name == "v"
        with pytest.raises(MCPError, match="unsupported"):
            from_config({"mcpServers": {"s": {"type": "sse", "url": "http://h/sse"}}})
        with pytest.raises(MCPError, match="cannot read"):
            from_config(tmp_path / "missing.json")
    finally:
        for name in ("files", "remote", "v", "s"):
            servers.pop(name, None)


def test_the_same_settings_give_the_same_server() -> None:
    a = llm_magic.mcp("python server.py --x", name="same")
    try:
        assert llm_magic.mcp("python server.py --x", name="same") is a
        with pytest.warns(UserWarning, match="replaces the one of that name"):
            b = llm_magic.mcp("python other.py", name="same")
        assert b is not a and a.state == "closed" and servers["same"] is b
        assert llm_magic.mcp("python tools/weather.py").name == "weather"
    finally:
        for name in ("same", "weather"):
            servers.pop(name, None)


def test_llm_mcp_magic_lines(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from llm_magic.notebook import NotebookError
    from llm_magic.notebook.mcp_magic import llm_mcp, named_servers

    try:
        llm_mcp("add docs https://example.com/mcp --header Authorization=Bearer-s3 --approve")
        llm_mcp("add fs --approve read_file,write_file --timeout 5 --env A=1 -- npx -y server /d")
        docs, fs = servers["docs"], servers["fs"]
        assert docs.url == "https://example.com/mcp" and docs.approve is True
        assert fs.command == ["npx", "-y", "server", "/d"] and fs.env == {"A": "1"}
        assert fs.approve == ["read_file", "write_file"] and fs.timeout == 5.0
        assert named_servers("docs,fs") == [docs, fs]
        llm_mcp("")
        listing = capsys.readouterr().out
        assert "docs  [not started]" in listing and "Bearer-s3" not in listing
        assert "approval: read_file, write_file" in listing
        with pytest.raises(NotebookError, match="did you mean docs"):
            named_servers(["doc"])
        with pytest.raises(NotebookError, match="give the command"):
            llm_mcp("add x --approve")
        with pytest.raises(NotebookError, match="KEY=VALUE"):
            llm_mcp("add x --env A -- cmd")
        config = tmp_path / "mcp.json"
        config.write_text(json.dumps({"mcpServers": {"cfg": {"command": "true"}}}))
        llm_mcp(f"load {config}")
        assert "cfg" in servers
        llm_mcp("remove cfg")
        assert "cfg" not in servers
    finally:
        for name in ("docs", "fs", "cfg"):
            servers.pop(name, None)
