"""`%%llm_chain` in a real ipykernel, driven through jupyter_client (tests/kernel_harness.py).

What nbclient cannot check: cells queued behind a running chain (Run All), kernel interrupts,
where `print()` from a tool thread lands, and what an error looks like on the wire.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.kernel_harness import (  # noqa: E402
    Cell,
    KernelSession,
    Msg,
    clicker,
    openai_kernel_fixtures,
)
from tests.servers import Call, Reply  # noqa: E402

pytestmark = pytest.mark.kernel

SETUP = '''
import time
_t = time.perf_counter()
%load_ext llm_magic
LOAD_EXT_SECONDS = time.perf_counter() - _t

import asyncio
import llm_magic
from llm_magic.notebook.state import state


def get_weather(city: str) -> dict:
    """Current weather for a city."""
    print(f"sync tool says hi from {city}")
    return {"city": city, "temp_c": 20}


async def slow_async() -> str:
    """Takes a while."""
    print("slow started")
    await asyncio.sleep(10)
    return "done"


def slow_sync() -> str:
    """Blocks a worker thread for a while."""
    print("slow started")
    time.sleep(4)
    return "done"
'''


server, kernel = openai_kernel_fixtures(SETUP, "openai-chat:test-model")


@pytest.fixture(autouse=True)
def clean_server(server):
    server.requests.clear()
    yield
    assert server.take_failures() == []
    assert server.pending == 0


def started(msg: Msg, cells: list[Cell]) -> bool:
    return msg.type == "stream" and "slow started" in msg.content.get("text", "")


def test_load_ext_is_fast(kernel):
    cell = kernel.run_one("print(LOAD_EXT_SECONDS)")
    seconds = float(cell.stream())
    print(f"%load_ext llm_magic in a kernel: {seconds * 1000:.0f} ms")
    assert seconds < 1.0  # measured ~0.05 s; generous for a slow CI machine


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("%%llm_chain", "incomplete"),
        ("%%llm_chain -q --approve all", "incomplete"),
        ("%%llm_chain\nwhat is the weather?", "incomplete"),
        ("%%llm_chain\nwhat is the weather?\n\n", "complete"),
        ("%%bash", "incomplete"),
        ("x = 1", "complete"),
    ],
)
def test_is_complete_request_waits_for_the_cell_body(kernel, code, status):
    """jupyter console asks the kernel whether Enter runs the cell: a lone `%%llm_chain` line
    must wait for its body, as every cell magic does."""
    msg_id = kernel.kc.is_complete(code)
    reply = kernel.kc.get_shell_msg(timeout=30)
    assert reply["parent_header"]["msg_id"] == msg_id
    assert reply["content"]["status"] == status, (code, reply["content"])


def test_chain_cell_then_two_queued_cells_all_complete(kernel, server):
    server.push(Reply(calls=[Call("get_weather", {"city": "Paris"})]), Reply(text="Warm."))
    cells = kernel.run(
        [
            "%%llm_chain -t get_weather\nWeather in Paris?",  # with its live timeline
            "x = 41\nprint('c1 ran')",
            "print('c2 ran', x + 1)",
        ]
    )
    chain, c1, c2 = cells
    assert [c.status for c in cells] == ["ok", "ok", "ok"]
    assert chain.result_text == "Warm."
    assert c1.stream() == "c1 ran\n" and c2.stream() == "c2 ran 42\n"
    assert chain.idle_at is not None and c1.idle_at is not None and c2.idle_at is not None
    assert chain.idle_at <= c1.idle_at <= c2.idle_at
    assert len(server.requests) == 2


def test_print_from_a_sync_tool_lands_in_the_chain_cell(kernel, server):
    server.push(Reply(calls=[Call("get_weather", {"city": "Rome"})]), Reply(text="Hot."))
    chain, after = kernel.run(["%%llm_chain -t get_weather\nRome?", "print('next cell')"])
    msg = next(
        m
        for c in (chain, after)
        for m in c.messages
        if m.type == "stream" and "sync tool says hi" in m.content["text"]
    )
    assert msg.parent_id == chain.msg_id
    assert "sync tool says hi from Rome" in chain.stream()
    assert after.stream() == "next cell\n"


@pytest.mark.parametrize("tool", ["slow_async", "slow_sync"])
def test_interrupt_cancels_the_run_promptly_and_the_next_cell_runs(kernel, server, tool):
    server.push(Reply(calls=[Call(tool, {})]))  # the run never gets to a second request
    (chain,) = kernel.run([f"%%llm_chain -q -t {tool}\nGo slow."], interrupt_when=started)
    assert kernel.interrupted_at is not None and chain.idle_at is not None
    latency = chain.idle_at - kernel.interrupted_at
    print(f"interrupt during {tool}: cell ended {latency:.2f} s after the interrupt")
    assert latency < 3.0
    assert chain.status == "error"
    (error,) = chain.errors
    assert error["ename"] == "CancelledError"
    assert len(error["traceback"]) == 1 and "run is marked cancelled" in error["traceback"][0]

    after = kernel.run_one(
        "r = state.last_result\nprint(r.status, r.tool_calls[0].status, r.messages[-1].role)"
    )
    assert after.status == "ok"
    assert after.stream() == "cancelled cancelled tool\n"


def test_interrupt_with_autoawait_off_uses_the_fallback(kernel, server):
    server.push(Reply(calls=[Call("slow_async", {})]))
    kernel.run_one("%autoawait off")
    try:
        (chain,) = kernel.run(["%%llm_chain -q -t slow_async\nGo slow."], interrupt_when=started)
        interrupted_at = kernel.interrupted_at
    finally:
        kernel.run_one("%autoawait on")
    assert interrupted_at is not None and chain.idle_at is not None
    assert chain.idle_at - interrupted_at < 3.0
    (error,) = chain.errors
    assert error["ename"] == "KeyboardInterrupt" and len(error["traceback"]) == 1
    after = kernel.run_one("print(state.last_result.status)")
    assert after.stream() == "cancelled\n"


def _autoawait_off(kernel: KernelSession, cells: list[str], **kw: Any) -> list[Cell]:
    kernel.run_one("%autoawait off")
    try:
        return kernel.run(cells, **kw)
    finally:
        kernel.run_one("%autoawait on")


def test_approve_click_reaches_a_cell_blocked_by_autoawait_off(kernel, server):
    """%autoawait off: the cell blocks the kernel's main thread, which reads the click itself;
    the cells queued behind it (sent before the click) run afterwards, in order."""
    server.push(Reply(calls=[Call("get_weather", {"city": "Paris"})]), Reply(text="Warm."))
    on_message, clicked = clicker(kernel, "approve")
    chain, queued_1, queued_2 = _autoawait_off(
        kernel,
        [
            "%%llm_chain -t get_weather --approve get_weather\nWeather in Paris?",
            "print('queued 1 sees', state.last_run.status)",
            "print('queued 2')",
        ],
        on_message=on_message,
    )
    assert "clicked" in clicked, "no Approve button was opened"
    assert chain.status == "ok", chain.errors
    assert "sync tool says hi from Paris" in chain.stream()
    assert chain.result_text is not None and "Warm." in chain.result_text
    assert queued_1.status == "ok" and queued_1.stream() == "queued 1 sees done\n"
    assert queued_2.status == "ok" and queued_2.stream() == "queued 2\n"
    assert chain.idle_at < queued_1.idle_at < queued_2.idle_at  # type: ignore[operator]
    assert len(server.requests) == 2


def test_cancel_click_reaches_a_cell_blocked_by_autoawait_off(kernel, server):
    server.push(Reply(calls=[Call("slow_async", {})]))
    on_message, clicked = clicker(
        kernel, "cancel", lambda m: m.type == "stream" and "slow started" in m.content["text"]
    )
    chain, after = _autoawait_off(
        kernel,
        ["%%llm_chain -t slow_async\nGo slow.", "print('after', state.last_run.status)"],
        on_message=on_message,
    )
    assert "clicked" in clicked, "no Cancel button was opened or the tool never started"
    assert chain.idle_at is not None and chain.idle_at - clicked["clicked"] < 5.0
    assert after.stream() == "after cancelled\n"
    records = kernel.run_one("print([r.status for r in state.last_run.records])")
    assert records.stream() == "['cancelled']\n"


def test_on_loop_tools_run_on_the_kernel_thread_in_both_paths(kernel, server):
    """`@tool(on_loop=True)` (matplotlib, widgets) runs on the kernel's main thread, whether the
    cell is transformed (the kernel's loop) or runs through the fallback magic (%autoawait off)."""
    kernel.run_one(
        "import threading\n"
        "@llm_magic.tool(on_loop=True)\n"
        "def where() -> str:\n"
        "    'The thread this runs on.'\n"
        "    return threading.current_thread().name\n"
    )
    for autoawait in ("on", "off"):
        server.push(Reply(calls=[Call("where", {})]), "ok")
        kernel.run_one(f"%autoawait {autoawait}")
        try:
            kernel.run_one("%%llm_chain -q -t where -o r\nWhere?")
        finally:
            kernel.run_one("%autoawait on")
        check = kernel.run_one("print(r.tool_calls[0].status, r.tool_calls[0].result)")
        assert check.stream() == "ok MainThread\n", (autoawait, check.stream())


def test_errors_are_one_line_on_the_wire(kernel, server):
    bad_option = kernel.run_one("%%llm_chain --modle x\nhi")
    (error,) = bad_option.errors
    assert error["ename"] == "OptionError"
    assert error["traceback"] == [
        "OptionError: %%llm_chain: unknown option --modle; did you mean --model? "
        "(%%llm_chain --help lists the options)"
    ]
    unknown_tool = kernel.run_one("%%llm_chain -t get_wether\nhi")
    assert unknown_tool.errors[0]["traceback"][0].endswith(
        "did you mean get_weather? (define it in a cell first, or pass the function itself)"
    )
    server.push(Reply(status=401))
    provider = kernel.run_one("%%llm_chain -q\nhi")
    (error,) = provider.errors
    assert error["ename"] == "AuthenticationError" and len(error["traceback"]) == 1
    assert error["traceback"][0].startswith("AuthenticationError: openai HTTP 401")


def test_await_chain_and_continue_in_later_cells(kernel, server):
    server.push(
        Reply(calls=[Call("get_weather", {"city": "Oslo"})]),
        Reply(text="Cold."),
        Reply(text="Still cold."),
    )
    first, second, state = kernel.run(
        [
            "r = await llm_magic.chain('Oslo?', tools=[get_weather])\nr",
            "await llm_magic.chain('Sure?', continue_=r)",
            "from llm_magic.notebook.state import state\n"
            "c = state.conversation\n"
            "print(any(m.text == 'Oslo?' for m in (c.messages if c else [])),"
            " state.last_result is r)",
        ]
    )
    assert (first.result_text, second.result_text) == ("Cold.", "Still cold.")
    # the core chain() is stateless; with the extension loaded it shows its timeline
    assert state.stream().split() == ["False", "False"]
    assert any(m.type == "display_data" for m in first.messages)
    assert [m["content"] for m in server.requests[2].body["messages"]][-2:] == [
        "Cold.",
        "Sure?",
    ]


def test_timeline_is_displayed_in_a_kernel(kernel, server):
    server.push(Reply(calls=[Call("get_weather", {"city": "Paris"})]), Reply(text="Warm."))
    (chain,) = kernel.run(["%%llm_chain -t get_weather\nParis?"])
    assert chain.status == "ok" and chain.result_text == "Warm."
    shown = [m for m in chain.messages if m.type == "display_data"]
    assert shown, "no timeline was displayed"
    assert all(m.parent_id == chain.msg_id for m in shown)
