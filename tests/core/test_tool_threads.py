"""A sync tool's worker thread after its call is cancelled or times out, over real loopback HTTP.

A thread cannot be stopped: the run must not say a call stopped when its function goes on (a
database write), must report what the thread did when it ends, and must let a tool that can stop
early (`cancel_event()`, `cancellable=True`) do so.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

import llm_magic
from llm_magic import events as ev
from llm_magic.tool_runner import CANCELLED_OUTPUT
from tests.core.test_chain import get_model, tool_messages
from tests.servers import Call, OpenAIServer, Reply


@pytest.fixture
async def model(openai_server: OpenAIServer) -> Any:
    m = get_model(openai_server)
    yield m
    await m.aclose()


async def _cancel_when_started(run: Any, started: threading.Event) -> Any:
    """Cancel `run` once its tool's thread has started; the run's result."""
    waiting = asyncio.ensure_future(run.result())
    while not started.is_set():
        await asyncio.sleep(0.01)
    run.cancel()
    return await waiting


async def _settled(run: Any, timeout: float = 10) -> ev.ToolCallSettled:
    """The run's ToolCallSettled event, once the let-go thread has ended."""
    async with asyncio.timeout(timeout):
        while True:
            found = [e for e in run.events if isinstance(e, ev.ToolCallSettled)]
            if found:
                return found[0]
            await asyncio.sleep(0.01)


async def test_a_cancelled_sync_tool_is_said_to_run_on_and_its_late_result_arrives(
    openai_server: OpenAIServer, model: Any
) -> None:
    started, release = threading.Event(), threading.Event()
    deleted: list[str] = []

    def delete_rows(table: str) -> int:
        """Delete rows."""
        started.set()
        release.wait(10)
        deleted.append(table)
        return 3

    openai_server.push(Reply(calls=[Call("delete_rows", {"table": "accounts"})]))
    conv = model.conversation(tools=[delete_rows])
    run = conv.chain("clean up")
    result = await _cancel_when_started(run, started)
    rec = result.tool_calls[0]
    assert result.status == "cancelled" and rec.status == "cancelled"
    assert rec.thread == "running"
    assert rec.thread_note == "`delete_rows` is still running in its thread"
    assert "still running in its thread" in rec.output and rec.output.startswith(CANCELLED_OUTPUT)
    assert deleted == []  # the function is really still at work
    release.set()
    settled = await _settled(run)
    ended = next(i for i, e in enumerate(run.events) if isinstance(e, ev.RunEnded))
    assert settled.call is rec and run.events.index(settled) > ended  # after the run ended
    assert rec.thread == "returned" and rec.late_result == 3 and deleted == ["accounts"]
    assert rec.status == "cancelled"  # what the model was told stays as it was
    assert rec.thread_note == "`delete_rows` returned later in its thread"
    # the next turn sends the model the honest text, every call answered
    openai_server.push(Reply(text="ok"))
    assert (await conv.chain("and now?")).text == "ok"
    assert "still running in its thread" in tool_messages(openai_server)[rec.id]


async def test_a_let_go_thread_that_raises_reports_its_error(
    openai_server: OpenAIServer, model: Any
) -> None:
    started, release = threading.Event(), threading.Event()

    def write(path: str) -> str:
        """Write a file."""
        started.set()
        release.wait(10)
        raise PermissionError(f"cannot write {path}")

    openai_server.push(Reply(calls=[Call("write", {"path": "/etc/x"})]))
    run = model.conversation(tools=[write]).chain("go")
    result = await _cancel_when_started(run, started)
    rec = result.tool_calls[0]
    assert rec.thread == "running"
    release.set()
    await _settled(run)
    assert rec.thread == "raised" and isinstance(rec.late_error, PermissionError)
    assert rec.thread_note == (
        "`write` raised PermissionError: cannot write /etc/x later in its thread"
    )


async def test_a_cancellable_tool_sees_the_event_and_stops_within_the_grace(
    openai_server: OpenAIServer, model: Any
) -> None:
    started = threading.Event()
    seen: list[bool] = []

    @llm_magic.tool(cancellable=True)
    def copy_rows(n: int) -> int:
        """Copy rows, checking for a cancel between them."""
        stop = llm_magic.cancel_event()
        started.set()
        for i in range(n):
            if stop.wait(0.01):
                seen.append(True)
                return i
        return n

    openai_server.push(Reply(calls=[Call("copy_rows", {"n": 100_000})]))
    run = model.conversation(tools=[copy_rows]).chain("copy")
    result = await _cancel_when_started(run, started)
    rec = result.tool_calls[0]
    assert seen == [True]  # the tool saw the event: the run waited for it to stop
    assert rec.status == "cancelled" and rec.thread == "stopped"
    assert isinstance(rec.late_result, int) and rec.late_result < 100_000
    assert rec.thread_note == "`copy_rows` stopped when asked"
    assert rec.output == CANCELLED_OUTPUT  # nothing runs on: the model is told plainly
    assert not [e for e in run.events if isinstance(e, ev.ToolCallSettled)]


async def test_a_timed_out_sync_tool_is_said_to_run_on(
    openai_server: OpenAIServer, model: Any
) -> None:
    release = threading.Event()

    def slow(x: int) -> int:
        """Slow."""
        release.wait(10)
        return x

    openai_server.push(Reply(calls=[Call("slow", {"x": 7})]), Reply(text="done"))
    run = model.conversation(tools=[slow]).chain("go", tool_timeout=0.2)
    result = await run
    rec = result.tool_calls[0]
    assert rec.status == "error" and rec.thread == "running"
    assert rec.output == (
        "error: slow timed out after 0.2 s; "
        "it is still running in its thread, so what it does may still happen"
    )
    release.set()
    await _settled(run)
    assert rec.thread == "returned" and rec.late_result == 7


def test_cancel_event_outside_a_tool_is_never_set() -> None:
    event = llm_magic.cancel_event()
    assert isinstance(event, threading.Event) and not event.is_set()


async def test_an_async_tool_cancelled_has_no_thread(
    openai_server: OpenAIServer, model: Any
) -> None:
    started = threading.Event()

    async def wait(x: int) -> int:
        """Wait."""
        started.set()
        await asyncio.sleep(30)
        return x

    openai_server.push(Reply(calls=[Call("wait", {"x": 1})]))
    run = model.conversation(tools=[wait]).chain("go")
    rec = (await _cancel_when_started(run, started)).tool_calls[0]
    assert rec.status == "cancelled" and rec.thread is None and rec.thread_note is None
    assert rec.output == CANCELLED_OUTPUT


async def test_a_call_cancelled_while_queued_for_a_thread_never_runs(
    openai_server: OpenAIServer, model: Any
) -> None:
    """With every worker thread busy, a sync call waits in the pool's queue; cancelling the run
    then takes it out of the queue: the function never runs, and the run says no thread ran."""
    from llm_magic import _runtime

    release = threading.Event()
    busy = [_runtime.tool_pool.submit(release.wait, 10) for _ in range(40)]
    ran: list[int] = []

    def record(x: int) -> int:
        ran.append(x)
        return x

    openai_server.push(Reply(calls=[Call("record", {"x": 1})]))
    run = model.chain("go", tools=[record])
    waiting = asyncio.ensure_future(run.result())
    try:
        async with asyncio.timeout(10):
            while not any(isinstance(e, ev.ToolCallStarted) for e in run.events):
                await asyncio.sleep(0.01)
        run.cancel()
        result = await waiting
    finally:
        release.set()
    for job in busy:
        await asyncio.wrap_future(job)
    await asyncio.sleep(0.1)
    assert result.status == "cancelled" and ran == []
    assert result.tool_calls[0].thread is None
