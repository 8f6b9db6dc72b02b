"""Real MCP servers, not only our own, on the mcp 2.x client: the 2026-07-28 kind (answers
`server/discover`) and the legacy kind (the `initialize` handshake), over stdio and streamable
HTTP. Third-party servers run from their own environments (tests/mcp_servers/envs.py; .ci/run
sets them up): `mcp-server-time` from PyPI (mcp 2), `@modelcontextprotocol/server-everything` and
`server-filesystem` from npm (the TypeScript SDK), and our demo server on mcp 1.x (legacy)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

import llm_magic
from llm_magic.mcp_registry import servers
from llm_magic.mcp_results import MCPError
from llm_magic.mcp_servers import MCPServer
from tests.core.test_mcp import DEMO, free_port, processes_with, wait_until
from tests.mcp_servers import envs

ROOT = Path(__file__).resolve().parents[2]


def need(path: Path | None, what: str) -> Path:
    """The path, or a skip that names what is missing and the command that sets it up."""
    if path is None and os.environ.get("LLM_MAGIC_REQUIRE_MCP_ENVS"):
        pytest.fail(f"{what} is missing: `{envs.SETUP}` did not set it up")
    if path is None:
        pytest.skip(f"{what} is not set up here: run `{envs.SETUP}` (.ci/run does)")
    return path


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Process:
    """A server process on a free loopback port, killed afterwards."""

    def __init__(self, argv: list[str], port: int, env: dict[str, str] | None = None) -> None:
        self.port = port
        self.proc = subprocess.Popen(
            argv,
            env={**os.environ, **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert wait_until(lambda: listening(port), 60), f"{argv[0]} did not listen on {port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def closing() -> Iterator[list[MCPServer]]:
    """Servers to close and forget after the test; no test server process left behind."""
    made: list[MCPServer] = []
    yield made
    for server in made:
        server.close()
        servers.pop(server.name, None)


def demo_argv(python: Path | str, mode: str, token: str, port: int | None = None) -> list[str]:
    return [str(python), str(DEMO), mode, *([str(port)] if port else []), token]


@pytest.mark.parametrize("transport", ["stdio", "http"])
@pytest.mark.parametrize("kind", ["current", "legacy"])
async def test_the_demo_server_on_either_sdk_speaks_its_own_protocol_version(
    kind: str, transport: str, closing: list[MCPServer], tmp_path: Path
) -> None:
    python: Any = sys.executable if kind == "current" else need(envs.venv_python("mcp1"), "mcp 1.x")
    token = f"llm-magic-mcp-test-{os.getpid()}-{kind}-{transport}"
    http = None
    if transport == "stdio":
        server = llm_magic.mcp(demo_argv(python, "stdio", token), name=f"demo_{kind}")
    else:
        port = free_port()
        http = Process(demo_argv(python, "http", token, port), port)
        server = llm_magic.mcp(f"http://127.0.0.1:{port}/mcp", name=f"demo_{kind}")
    closing.append(server)
    try:
        names = {t.name for t in await server.list_tools()}
        assert {f"demo_{kind}_add", f"demo_{kind}_protocol"} <= names
        assert (await server.call("protocol", {})).text == kind
        assert (await server.call("add", {"a": 20, "b": 22})).text == "42"
        # the client's auto mode: discover on mcp 2 servers, the initialize fallback on mcp 1
        assert (server.protocol in MODERN_PROTOCOL_VERSIONS) == (kind == "current")
    finally:
        server.close()
        if http is not None:
            http.stop()
    assert wait_until(lambda: not processes_with(token), 10)


async def test_mcp_server_time_from_pypi_in_its_own_venv(closing: list[MCPServer]) -> None:
    command = need(envs.venv_script("time", "mcp-server-time"), "mcp-server-time")
    server = llm_magic.mcp(f"{command} --local-timezone UTC")
    closing.append(server)
    assert server.name == "time"  # named after the package, not its last argument
    tools = {t.name for t in await server.list_tools()}
    assert {"time_get_current_time", "time_convert_time"} <= tools
    result = await server.call(
        "convert_time",
        {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"},
    )
    assert "Asia/Tokyo" in result.text and "21:00" in result.text
    assert server.protocol in MODERN_PROTOCOL_VERSIONS  # mcp-server-time runs on mcp 2


async def test_npm_filesystem_server_over_stdio(closing: list[MCPServer], tmp_path: Path) -> None:
    command = need(envs.npm_bin("mcp-server-filesystem"), "@modelcontextprotocol/server-filesystem")
    (tmp_path / "note.txt").write_text("written by the test")
    server = llm_magic.mcp([str(command), str(tmp_path)])
    closing.append(server)
    assert server.name == "filesystem"
    assert "filesystem_read_text_file" in {t.name for t in await server.list_tools()}
    result = await server.call("read_text_file", {"path": str(tmp_path / "note.txt")})
    assert result.text == "written by the test"
    assert server.protocol not in MODERN_PROTOCOL_VERSIONS  # the TypeScript SDK: legacy


@pytest.mark.parametrize("transport", ["stdio", "http"])
async def test_npm_everything_server(transport: str, closing: list[MCPServer]) -> None:
    command = need(envs.npm_bin("mcp-server-everything"), "@modelcontextprotocol/server-everything")
    http = None
    if transport == "stdio":
        server = llm_magic.mcp([str(command), "stdio"])
        assert server.name == "everything"
    else:
        port = free_port()
        http = Process([str(command), "streamableHttp"], port, {"PORT": str(port)})
        server = llm_magic.mcp(f"http://127.0.0.1:{port}/mcp", name="everything")
    closing.append(server)
    try:
        assert "everything_echo" in {t.name for t in await server.list_tools()}
        assert (
            "hello from the test"
            in (await server.call("echo", {"message": "hello from the test"})).text
        )
    finally:
        server.close()
        if http is not None:
            http.stop()


async def test_an_sse_endpoint_or_a_wrong_path_says_what_to_try(closing: list[MCPServer]) -> None:
    command = need(envs.npm_bin("mcp-server-everything"), "@modelcontextprotocol/server-everything")
    port = free_port()
    http = Process([str(command), "sse"], port, {"PORT": str(port)})
    try:
        for path, hint in (("/sse", "SSE"), ("/nothing-here", "check the URL")):
            url = f"http://127.0.0.1:{port}{path}"
            server = llm_magic.mcp(url, name=f"old{len(closing)}", startup_timeout=20)
            closing.append(server)
            with pytest.raises(MCPError) as info:
                await server.list_tools()
            assert hint in str(info.value), str(info.value)
    finally:
        http.stop()


def test_an_mcp_outside_the_supported_range_is_one_clear_line(tmp_path: Path) -> None:
    # A real distribution record of mcp 1.30 found first on the path, as after
    # `pip install` of a server that pins mcp<2 into the notebook's environment.
    info = tmp_path / "mcp-1.30.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mcp\nVersion: 1.30.0\n")
    code = (
        "import llm_magic\n"
        "try:\n"
        "    llm_magic.mcp('python server.py')\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    (line,) = out.stdout.strip().splitlines()
    assert line.startswith("MCPError ") and "mcp 1.30.0 is installed" in line
    assert "mcp>=2.3,<3" in line and "pip install 'mcp>=2.3,<3'" in line
    assert "ImportError" not in out.stdout + out.stderr
