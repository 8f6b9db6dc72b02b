"""`%llm_mcp` and `%%llm_chain --mcp` in a real ipykernel (jupyter_client), with the demo MCP
server over stdio: a notebook function and an MCP tool in one turn, an interrupt that reaches
the server as a cancellation, and `%unload_ext` leaving no server process behind."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

from tests.kernel_harness import Cell, KernelSession, Msg
from tests.servers import Call, OpenAIServer, Reply
from tests.test_mcp import DEMO, Marker, processes_with, wait_until

pytestmark = pytest.mark.kernel

SETUP = """
%load_ext llm_magic
import asyncio

async def note(text: str) -> str:
    '''Write a note.'''
    await asyncio.sleep(0.3)
    return "noted: " + text

async def watch(path: str) -> str:
    '''Say when the MCP server has started its slow call (the harness interrupts on output).'''
    while "slow started" not in open(path).read():
        await asyncio.sleep(0.05)
    print("slow started", flush=True)
    await asyncio.sleep(60)
    return "watched"
"""


def test_llm_mcp_add_then_chain_cells_use_the_server(tmp_path: Path) -> None:
    marker = Marker(tmp_path / "marker.txt")
    token = f"llm-magic-mcp-test-{uuid.uuid4().hex[:8]}"
    with OpenAIServer() as server:
        kernel = KernelSession(
            {
                "OPENAI_API_KEY": server.api_key,
                "OPENAI_BASE_URL": server.base_url,
                "LLM_MAGIC_MODEL": "openai-chat:test-model",
            }
        )
        try:
            assert kernel.run_one(SETUP).status == "ok"
            add = kernel.run_one(
                f"%llm_mcp add demo --env MCP_TEST_MARKER={marker.path} -- "
                f"{sys.executable} {DEMO} stdio {token}"
            )
            assert add.status == "ok" and "starts on first use" in add.stream()
            assert not processes_with(token)  # started on first use, not before

            server.push(
                Reply(calls=[Call("note", {"text": "hi"}), Call("demo_add", {"a": 2, "b": 40})]),
                Reply(text="42, noted."),
            )
            chain = kernel.run_one("%%llm_chain -q --mcp demo -t note\nAdd and note.", 120)
            assert chain.status == "ok", chain.errors
            assert chain.result_text == "42, noted."
            tool_results = [m["content"] for m in server.requests[1].body["messages"][2:]]
            assert tool_results == ["noted: hi", "42"]
            listing = kernel.run_one("%llm_mcp").stream()
            assert "demo  [ready]" in listing and "demo_add" in listing

            # the next cell reuses the session: no second process
            server.push(Reply(calls=[Call("demo_pid", {})]), Reply(text="ok"))
            assert kernel.run_one("%%llm_chain -q --mcp demo --no-tools\npid?").status == "ok"
            assert len([x for x in marker.lines() if x.startswith("started")]) == 1

            # an interrupt cancels the chain and the server sees the cancellation
            server.push(
                Reply(
                    calls=[
                        Call("demo_slow", {"seconds": 60}),
                        Call("watch", {"path": str(marker.path)}),
                    ]
                )
            )

            def slow_started(msg: Msg, cells: list[Cell]) -> bool:
                return msg.type == "stream" and "slow started" in msg.content.get("text", "")

            (interrupted,) = kernel.run(
                ["%%llm_chain -q --mcp demo -t watch\nWait."],
                interrupt_when=slow_started,
                timeout=120,
            )
            assert kernel.interrupted_at is not None and interrupted.status == "error"
            assert wait_until(lambda: marker.has("slow cancelled"), 15)
            server.take_failures()
            server.push(Reply(calls=[Call("demo_add", {"a": 1, "b": 1})]), Reply(text="2"))
            after = kernel.run_one("%%llm_chain -q --mcp demo --no-tools\nAgain.", 120)
            assert after.status == "ok" and after.result_text == "2"

            assert processes_with(token)
            assert kernel.run_one("%unload_ext llm_magic").status == "ok"
            assert wait_until(lambda: not processes_with(token), 15)
        finally:
            kernel.shutdown()
            for proc in processes_with(token):
                proc.kill()
