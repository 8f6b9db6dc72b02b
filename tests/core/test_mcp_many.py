"""Many servers, many tools: concurrent starts, a startup timeout that is the timeout, a start
cancelled part-way, an optional server that fails, a noisy server kept quiet, and tools that
change while the server runs (`notifications/tools/list_changed`), on real demo servers."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import llm_magic
from llm_magic.mcp_registry import servers
from llm_magic.mcp_results import MCPError, MCPToolError
from llm_magic.sources import with_sources
from tests.core.test_mcp import DEMO, processes_with, wait_until
from tests.mcp_servers import envs
from tests.servers import Call, OpenAIServer, Reply


@pytest.fixture(autouse=True)
def forget_servers() -> Iterator[None]:
    before = set(servers)
    yield
    for name in set(servers) - before:
        servers.pop(name).close()


def slow_demo(name: str, token: str, delay: float, **options: Any) -> llm_magic.MCPServer:
    return llm_magic.mcp(
        [sys.executable, str(DEMO), options.pop("mode", "stdio"), token],
        name=name,
        env={"DEMO_START_DELAY": str(delay), **options.pop("env", {})},
        **options,
    )


async def test_servers_start_concurrently() -> None:
    token = f"llm-magic-mcp-test-many-{os.getpid()}"
    alone = slow_demo("alone", token, 3.0)
    began = time.monotonic()
    await alone.list_tools()
    one = time.monotonic() - began
    many = [slow_demo(f"s{i}", token, 3.0) for i in range(4)]
    began = time.monotonic()
    tools = await with_sources([], many)
    four = time.monotonic() - began
    assert {t.server for t in tools} == {"s0", "s1", "s2", "s3"}
    assert four < one + 2.5, (one, four)  # one after another would take four times as long


async def test_the_startup_timeout_is_the_whole_wait() -> None:
    token = f"llm-magic-mcp-test-stuck-{os.getpid()}"
    server = slow_demo("stuck", token, 60.0, startup_timeout=2)
    began = time.monotonic()
    with pytest.raises(MCPError, match="did not answer within 2 s"):
        await server.list_tools()
    assert time.monotonic() - began < 6
    assert wait_until(lambda: not processes_with(token), 10)


async def test_a_start_cancelled_part_way_leaves_nothing_starting() -> None:
    token = f"llm-magic-mcp-test-cancel-{os.getpid()}"
    server = slow_demo("halfway", token, 60.0)
    task = asyncio.ensure_future(server.list_tools())
    assert await asyncio.to_thread(wait_until, lambda: bool(processes_with(token)), 20)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(wait_until, lambda: server.state == "not started", 10)
    assert wait_until(lambda: not processes_with(token), 10)


async def test_an_optional_server_that_fails_lets_the_run_go_on() -> None:
    good = llm_magic.mcp([sys.executable, str(DEMO), "stdio"], name="good")
    broken = llm_magic.mcp(
        [sys.executable, "-c", "raise SystemExit(2)"], name="gone", optional=True
    )
    with pytest.warns(UserWarning, match=r"'gone'.*goes on without its tools"):
        tools = await with_sources([], [good, broken])
    assert tools and {t.server for t in tools} == {"good"}
    strict = llm_magic.mcp([sys.executable, "-c", "raise SystemExit(3)"], name="strict")
    with pytest.raises(MCPError, match="'strict'"):  # the error names the broken one
        await with_sources([], [good, strict])


async def test_a_noisy_server_is_one_quiet_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from llm_magic.notebook.mcp_magic import report

    server = llm_magic.mcp([sys.executable, str(DEMO), "noisy"], name="noisy")
    with caplog.at_level(logging.DEBUG):
        assert (await server.call("add", {"a": 1, "b": 2})).text == "3"
    assert server.noise == 3
    assert not [r for r in caplog.records if r.name.startswith("mcp.client.stdio")]
    assert "3 line(s) on its stdout were not MCP messages" in report()


@pytest.mark.parametrize("kind", ["current", "legacy"])
async def test_announced_tool_changes_refresh_the_tools(kind: str, tmp_path: Path) -> None:
    python: Any = sys.executable if kind == "current" else envs.venv_python("mcp1")
    if python is None:
        pytest.skip(f"mcp 1.x is not set up here: run `{envs.SETUP}`")
    server = llm_magic.mcp([str(python), str(DEMO), "stdio"], name=f"grow_{kind}")
    assert f"grow_{kind}_extra" not in {t.name for t in await server.list_tools()}
    assert (await server.call("grow", {})).text == "grown"

    def has_extra() -> bool:
        return f"grow_{kind}_extra" in {t.name for t in server.tools()}

    assert await asyncio.to_thread(wait_until, has_extra, 10)
    assert (await server.call("extra", {})).text == "extra here"
    began = time.monotonic()
    server.close()  # following the changes does not hold the close up
    assert time.monotonic() - began < 5


async def test_server_colon_tool_offers_a_subset(openai_server: OpenAIServer) -> None:
    server = llm_magic.mcp([sys.executable, str(DEMO), "stdio"], name="sub")
    model = llm_magic.get_async_model(
        "openai-chat:test", base_url=openai_server.base_url, api_key=openai_server.api_key
    )
    openai_server.push(Reply(calls=[Call("sub_add", {"a": 2, "b": 3})]), Reply(text="5"))
    result = await model.chain("Add.", tools=["sub:add", "sub:pid"])
    offered = {t["function"]["name"] for t in openai_server.requests[0].body["tools"]}
    assert offered == {"sub_add", "sub_pid"} and result.tool_calls[0].output == "5"
    openai_server.push(Reply(text="all"))
    await model.chain("All.", tools=["sub:*"])
    offered = {t["function"]["name"] for t in openai_server.requests[2].body["tools"]}
    assert {"sub_add", "sub_stats", "sub_slow"} <= offered
    with pytest.raises(MCPError, match=r"'sub' has no tool 'ad'; its tools: .*add"):
        await model.chain("Typo.", tools=["sub:ad"])
    with pytest.raises(MCPError, match="no MCP server named 'nosuch'"):
        await model.chain("Unknown.", tools=["nosuch:add"])
    assert server.state == "ready"


async def test_more_tools_than_openai_takes_warns() -> None:
    def make(i: int) -> llm_magic.Tool:
        return llm_magic.Tool.from_schema(f"t{i}", "A tool.", {"type": "object"}, lambda: i)

    with pytest.warns(UserWarning, match="129 tools in one run: above 128"):
        await with_sources([make(i) for i in range(129)], [])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        await with_sources([make(i) for i in range(128)], [])


async def test_what_a_server_asks_is_declined_and_told_or_answered() -> None:
    server = llm_magic.mcp([sys.executable, str(DEMO), "stdio"], name="asks")
    with pytest.raises(MCPToolError) as info:  # nobody to answer: declined, and the model is told
        await server.call("confirm", {"action": "delete"})
    assert "Really delete?" in str(info.value) and "declined" in str(info.value)
    assert server.asked == ["Really delete?"]
    answers: list[tuple[str, str]] = []

    def ask(name: str, message: str, schema: dict[str, Any]) -> dict[str, Any]:
        answers.append((name, message))
        assert "confirm" in schema["properties"]
        return {"confirm": True}

    server.ask = ask  # the 2026-07-28 InputRequiredResult round trip, answered
    assert (await server.call("confirm", {"action": "delete"})).text == "delete: yes"
    assert answers == [("asks", "Really delete?")]
