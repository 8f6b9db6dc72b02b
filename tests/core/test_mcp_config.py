"""The MCP configs people copy from their editors (Claude Desktop, Cursor, VS Code, Claude Code):
placeholders, envFile, args as a string, all-or-nothing loading, default names that do not
collide, distinct wire names, and secrets that never reach a repr, a listing or an error. The
servers are real (tests/mcp_servers/demo.py over stdio): an expanded value is checked where the
server process received it."""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

import llm_magic
from llm_magic.mcp_config import redact_url
from llm_magic.mcp_registry import default_name, from_config, servers
from llm_magic.mcp_results import MCPError
from tests.core.test_mcp import DEMO, Marker, free_port


@pytest.fixture(autouse=True)
def forget_servers() -> Iterator[None]:
    before = set(servers)
    yield
    for name in set(servers) - before:
        servers.pop(name).close()


def demo_entry(**extra: object) -> dict[str, object]:
    return {"command": sys.executable, "args": [str(DEMO), "stdio"], **extra}


async def started_with_marker(name: str, marker: Marker) -> None:
    """Start the server named `name`; its first line in the marker proves the env it got."""
    await servers[name].list_tools()
    assert marker.has("started"), f"the server did not write to {marker.path}"


@pytest.mark.parametrize(
    "placeholder", ["${env:LLM_MAGIC_T_MARKER}", "${LLM_MAGIC_T_MARKER}", "${UNSET_T_VAR:-%s}"]
)
async def test_placeholders_in_env_reach_the_server_expanded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, placeholder: str
) -> None:
    marker = Marker(tmp_path / "marker.txt")
    monkeypatch.setenv("LLM_MAGIC_T_MARKER", str(marker.path))
    monkeypatch.delenv("UNSET_T_VAR", raising=False)
    value = placeholder.replace("%s", str(marker.path))
    (server,) = from_config({"mcpServers": {"p": demo_entry(env={"MCP_TEST_MARKER": value})}})
    assert server.env == {"MCP_TEST_MARKER": str(marker.path)}
    await started_with_marker("p", marker)


async def test_env_file_and_args_as_one_string(tmp_path: Path) -> None:
    marker = Marker(tmp_path / "marker.txt")
    (tmp_path / ".env").write_text(f'# for the demo\nexport MCP_TEST_MARKER="{marker.path}"\n')
    config = tmp_path / "mcp.json"
    entry = {"command": sys.executable, "args": f"{DEMO} stdio", "envFile": ".env"}
    config.write_text(json.dumps({"servers": {"f": entry}}))
    (server,) = from_config(config)  # envFile is read relative to the config file
    assert server.command == [sys.executable, str(DEMO), "stdio"]  # not split into characters
    await started_with_marker("f", marker)


def test_headers_expand_and_never_show(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_MAGIC_T_TOKEN", "tok-123456789")
    entry = {
        "url": "https://mcp.deepwiki.com/mcp?api_key=${LLM_MAGIC_T_TOKEN}",
        "headers": {"Authorization": "Bearer ${env:LLM_MAGIC_T_TOKEN}"},
    }
    (server,) = from_config({"mcpServers": {"h": entry}})
    assert server._headers == {"Authorization": "Bearer tok-123456789"}
    shown = repr(server) + server.where
    assert "tok-123456789" not in shown and "api_key=***" in shown and "Authorization" in shown


async def test_a_secret_in_the_url_stays_out_of_errors_and_listings(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from llm_magic.notebook.mcp_magic import llm_mcp

    url = f"http://127.0.0.1:{free_port()}/mcp?api_key=sk-secret-98765"
    server = llm_magic.mcp(url, name="leaky", startup_timeout=5)
    with pytest.raises(MCPError) as info:
        await server.list_tools()
    llm_mcp("")
    everything = str(info.value) + repr(server) + capsys.readouterr().out + (server.error or "")
    assert "sk-secret-98765" not in everything and "api_key=***" in everything
    assert redact_url("https://u:pw@h/mcp?a=1&b=2") == "https://***@h/mcp?a=***&b=***"


def test_a_missing_variable_names_it_and_registers_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLM_MAGIC_T_NOPE", raising=False)
    config = {
        "mcpServers": {
            "good": demo_entry(),
            "bad": {"url": "https://h/mcp", "headers": {"X-Key": "${LLM_MAGIC_T_NOPE}"}},
        }
    }
    with pytest.raises(MCPError, match=r"'bad'.*LLM_MAGIC_T_NOPE.*headers"):
        from_config(config)
    assert "good" not in servers and "bad" not in servers  # all or nothing


def test_inputs_are_asked_once_and_kept_out_of_reprs() -> None:
    asked: list[tuple[str, str, bool]] = []

    def prompt(input_id: str, description: str, password: bool) -> str:
        asked.append((input_id, description, password))
        return "pw-typed-0451"

    config = {
        "inputs": [
            {"id": "t_key", "type": "promptString", "description": "API key", "password": True}
        ],
        "servers": {
            "a": {"url": "https://a.example.com/mcp", "headers": {"K": "${input:t_key}"}},
            "b": demo_entry(env={"KEY": "${input:t_key}"}),
        },
    }
    a, b = from_config(config, prompt=prompt)
    assert asked == [("t_key", "API key", True)]  # once for both servers
    assert a._headers == {"K": "pw-typed-0451"} and b.env == {"KEY": "pw-typed-0451"}
    assert "pw-typed-0451" not in repr(a) + repr(b) + a.where + b.where


def test_default_names_come_from_the_package_script_or_host() -> None:
    assert (
        default_name(["npx", "-y", "@modelcontextprotocol/server-filesystem", "/data"], None)
        == "filesystem"
    )
    assert default_name(["uvx", "mcp-server-time", "--local-timezone", "UTC"], None) == "time"
    assert default_name(["python", "tools/weather.py"], None) == "weather"
    assert default_name(["python", "-m", "mcp_server_git"], None) == "git"
    assert default_name(None, "https://mcp.deepwiki.com/mcp") == "deepwiki"
    assert default_name(None, "https://api.githubcopilot.com/mcp/") == "githubcopilot"
    assert default_name(None, "http://127.0.0.1:8000/mcp") == "local_8000"


def test_two_servers_of_one_default_name_both_stay() -> None:
    first = llm_magic.mcp("npx -y @modelcontextprotocol/server-filesystem /a")
    second = llm_magic.mcp("npx -y @modelcontextprotocol/server-filesystem /b")
    assert (first.name, second.name) == ("filesystem", "filesystem_2")
    assert first.state != "closed" and servers["filesystem"] is first
    assert llm_magic.mcp("npx -y @modelcontextprotocol/server-filesystem /b") is second
    with pytest.warns(UserWarning, match="replaces"):
        third = llm_magic.mcp("npx other", name="filesystem")
    assert first.state == "closed" and servers["filesystem"] is third
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert llm_magic.mcp("npx other", name="filesystem") is third  # same settings: no warning


async def test_tools_of_one_wire_name_get_distinct_names_and_both_work(tmp_path: Path) -> None:
    server = llm_magic.mcp(
        [sys.executable, str(DEMO), "stdio"], name="w", tools=["read.v2", "read_v2"]
    )
    tools = {t.name: t for t in await server.list_tools()}
    assert len(tools) == 2 and "w_read_v2" in tools  # a subset: only those two
    (other,) = set(tools) - {"w_read_v2"}
    assert other.startswith("w_read_v2_")
    outputs = {name: (await tool.call({})).text for name, tool in tools.items()}
    assert sorted(outputs.values()) == ["dotted", "plain"]


def test_llm_mcp_add_takes_tools_startup_timeout_cwd_and_optional(tmp_path: Path) -> None:
    from llm_magic.notebook import NotebookError
    from llm_magic.notebook.mcp_magic import llm_mcp, report

    llm_mcp(
        f"add t --tools add,pid --startup-timeout 5 --cwd {tmp_path} --optional -- {sys.executable} x.py"
    )
    server = servers["t"]
    assert server.only == ["add", "pid"] and server.startup_timeout == 5.0
    assert server.cwd == str(tmp_path) and server.optional
    assert "offers only: add, pid" in report()
    with pytest.raises(NotebookError, match="--startup-timeout takes seconds"):
        llm_mcp("add u --startup-timeout soon -- cmd")


def test_each_setting_of_mcp_reaches_its_server(tmp_path: Path) -> None:
    """`llm_magic.mcp` takes its settings from the one declaration `MCPServerSettings` takes
    (`MCPServerKwargs`): each reaches the server, and the defaults hold when none is given."""
    from llm_magic.mcp_settings import MCPServerKwargs

    def ask(server: str, message: str, schema: dict[str, object]) -> None:
        return None

    stdio = {
        "env": {"MODE": "test"},
        "cwd": str(tmp_path),
        "approve": ["add"],
        "timeout": 2.5,
        "startup_timeout": 4.0,
        "tools": ["pid", "add"],
        "optional": True,
        "ask": ask,
    }
    http = {"url": "http://127.0.0.1:9/mcp", "headers": {"X-Team": "secret-team-token"}}
    assert {*stdio, *http, "command"} == set(MCPServerKwargs.__annotations__)
    server = llm_magic.mcp([sys.executable, "s.py"], name="all_settings", **stdio)
    assert server.command == [sys.executable, "s.py"] and server.env == {"MODE": "test"}
    assert (server.cwd, server.approve, server.timeout) == (str(tmp_path), ["add"], 2.5)
    assert (server.startup_timeout, server.only, server.optional) == (4.0, ["add", "pid"], True)
    assert server.ask is ask and server.needs_approval("add") and not server.needs_approval("pid")
    remote = llm_magic.mcp(name="remote_settings", **http)
    assert remote.url == http["url"] and "secret-team-token" in remote.secrets()
    plain = llm_magic.mcp("python plain.py")
    assert (plain.approve, plain.timeout, plain.startup_timeout) == (False, None, 30.0)
    assert (plain.only, plain.optional, plain.ask, plain.env) == (None, False, None, {})


def test_a_misspelt_setting_is_refused_with_the_settings_listed() -> None:
    with pytest.raises(TypeError, match="unknown setting startup_timout; the settings: command"):
        llm_magic.mcp("python s.py", **{"startup_timout": 3.0})  # type: ignore[arg-type]
    assert "s" not in servers  # nothing registered under its default name
