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


def test_a_shared_object_is_made_once_even_when_threads_ask_at_once() -> None:
    made: list[object] = []
    gate = threading.Barrier(4)

    def make() -> object:
        made.append(object())
        return made[-1]

    got: list[object] = []

    def ask() -> None:
        gate.wait(5)
        got.append(_runtime.shared("llm_magic-test-shared", make))

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert len(made) == 1 and got == made * 4


def test_a_daemon_thread_is_named_and_never_holds_up_exit() -> None:
    ran = threading.Event()
    thread = _runtime.daemon("llm_magic-test-daemon", ran.set)
    thread.join(5)
    assert ran.is_set() and thread.daemon and thread.name == "llm_magic-test-daemon"


def test_the_live_resources_of_the_process_are_held_by_the_runtime() -> None:
    """The local model's server, the providers that keep connections, the MCP sessions and the
    TLS context are the runtime's: one table of what the process holds live, not a global per
    module."""
    from llm_magic import _tls, local, mcp_session, registry

    server = local.get_local_server()
    providers = registry.cached_providers()
    sessions = mcp_session.started_sessions()
    assert server is local.get_local_server()
    assert _runtime.shared("local-server", object) is server
    assert _runtime.shared("providers", dict) is providers
    assert _runtime.shared("mcp-sessions", list) is sessions
    assert _runtime.shared("ssl_context", object) is _tls.shared_ssl_context()
