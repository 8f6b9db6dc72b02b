"""The background runtime: named loops that recover when their thread died, one-off jobs, and
the one exit hook."""

from __future__ import annotations

import asyncio
import threading

from llm_magic import _runtime


def _answer_on(loop: asyncio.AbstractEventLoop) -> int:
    async def answer() -> int:
        return 42

    return asyncio.run_coroutine_threadsafe(answer(), loop).result(10)


def test_a_named_loop_is_one_loop_per_name() -> None:
    first = _runtime.loop("llm_magic-test-a")
    assert _runtime.loop("llm_magic-test-a") is first
    assert _runtime.loop("llm_magic-test-b") is not first
    assert _answer_on(first) == 42


def test_a_loop_whose_thread_died_is_made_again() -> None:
    background = _runtime.background("llm_magic-test-dies")
    old = background.get()
    thread = background.thread
    assert thread is not None and thread.name == "llm_magic-test-dies"
    old.call_soon_threadsafe(old.stop)  # its thread ends; the loop is not closed
    thread.join(5)
    assert not thread.is_alive()
    new = background.get()
    assert new is not old and _answer_on(new) == 42
    old.close()


def test_a_loop_survives_a_base_exception_from_a_callback() -> None:
    loop = _runtime.loop("llm_magic-test-exit")

    def escape() -> None:
        raise SystemExit(2)

    loop.call_soon_threadsafe(escape)
    assert _answer_on(loop) == 42
    assert _runtime.loop("llm_magic-test-exit") is loop


def test_a_job_runs_once_per_name() -> None:
    runs: list[int] = []
    first = _runtime.load_once("llm_magic-test-job", lambda: runs.append(1))
    again = _runtime.load_once("llm_magic-test-job", lambda: runs.append(2))
    first.join(5)
    assert again is first and runs == [1]
    assert _runtime.job("llm_magic-test-job") is first
    assert _runtime.job("llm_magic-test-never") is None


def test_exit_hooks_run_newest_first_once_and_past_a_failure() -> None:
    calls: list[str] = []

    def broken() -> None:
        calls.append("broken")
        raise RuntimeError("cleanup failed")

    def first() -> None:
        calls.append("first")

    saved = list(_runtime._at_exit)
    _runtime._at_exit.clear()
    try:
        _runtime.at_exit(first)
        _runtime.at_exit(broken)
        _runtime.at_exit(first)  # registered once
        _runtime.shutdown()
        assert calls == ["broken", "first"]
        _runtime.shutdown()
        assert calls == ["broken", "first"]
    finally:
        _runtime._at_exit[:] = saved


def test_the_tool_pool_runs_work_on_daemon_threads() -> None:
    future = _runtime.tool_pool.submit(lambda: threading.current_thread())
    thread = future.result(10)
    assert thread.daemon and thread.name == "llm_tool"
