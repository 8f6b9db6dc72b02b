"""`%llm_mcp` and `%%llm_chain --mcp` in a real ipykernel (jupyter_client), with the demo MCP
server over stdio: a notebook function and an MCP tool in one turn, an interrupt that reaches
the server as a cancellation, and `%unload_ext` leaving no server process behind."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

from tests.core.test_mcp import DEMO, Marker, processes_with, wait_until
from tests.kernel_harness import Cell, KernelSession, Msg
from tests.servers import Call, OpenAIServer, Reply

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


def test_an_input_placeholder_is_asked_once_as_a_password_and_never_saved(tmp_path: Path) -> None:
    """VS Code's `${input:id}` in a loaded config: the kernel asks through the notebook's
    password box (getpass), the server gets the value, and neither the outputs nor the saved
    notebook contain it."""
    import hashlib
    import json

    import nbformat

    secret = f"tok-{uuid.uuid4().hex}"
    config = tmp_path / "mcp.json"
    entry = {
        "command": sys.executable,
        "args": [str(DEMO), "stdio"],
        "env": {"DEMO_SECRET": "${input:demo_token}"},
    }
    inputs = [
        {"id": "demo_token", "type": "promptString", "description": "Demo token", "password": True}
    ]
    config.write_text(json.dumps({"inputs": inputs, "servers": {"tok": entry}}))
    requests: list[dict[str, object]] = []

    def answer(request: dict[str, object]) -> str:
        requests.append(request)
        return secret

    cells = [
        "%load_ext llm_magic",
        f"%llm_mcp load {config}",
        "from llm_magic.mcp_registry import servers\n"
        "print(repr(servers['tok']), servers['tok'].where)\n"
        "(await servers['tok'].call('env_digest', {'name': 'DEMO_SECRET'})).text",
        f"%llm_mcp load {config}",  # asked once per kernel: no second prompt
        "%llm_mcp",
        "%llm_mcp remove tok",
    ]
    kernel = KernelSession()
    try:
        ran = kernel.run(cells, stdin=answer, timeout=120)
    finally:
        kernel.shutdown()
    assert [c.status for c in ran] == ["ok"] * len(cells), [c.errors for c in ran]
    assert len(requests) == 1 and requests[0]["password"] is True
    assert "Demo token" in str(requests[0]["prompt"])
    assert ran[2].result_text == repr(hashlib.sha256(secret.encode()).hexdigest())  # it got it
    assert "DEMO_SECRET" in ran[2].stream()  # its name is shown, its value is not

    notebook = nbformat.v4.new_notebook()
    for cell in ran:
        code = nbformat.v4.new_code_cell(cell.code)
        code.outputs = [
            nbformat.v4.output_from_msg({"header": {"msg_type": m.type}, "content": m.content})
            for m in cell.messages
            if m.type in ("stream", "execute_result", "display_data", "error")
        ]
        notebook.cells.append(code)
    saved = tmp_path / "saved.ipynb"
    nbformat.write(notebook, saved)
    assert secret not in saved.read_text() and "DEMO_SECRET" in saved.read_text()
