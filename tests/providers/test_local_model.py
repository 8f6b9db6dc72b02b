"""A real chain on the embedded local model (Gemma 3 270M under llama-cpp-python's server).

The model's own tool call is parsed, the tool runs with the model's arguments, the result goes
back, and the run ends with a status. The model is tiny: the assertions are about the mechanics,
not the wording of its answer.
"""

from __future__ import annotations

import pytest

import llm_magic

pytestmark = pytest.mark.local_model

SEEN: list[str] = []


def get_weather(city: str) -> dict:
    """Get the current weather for a city.

    Args:
        city: The city name.
    """
    SEEN.append(city)
    return {"city": city, "temp_c": 21, "sky": "sunny"}


async def test_real_tool_call_round_trip():
    SEEN.clear()
    model = llm_magic.get_async_model("local")
    result = await model.chain("What is the weather in Paris?", tools=[get_weather], max_steps=1)
    assert result.status in ("done", "max_steps")
    assert result.tool_calls, "the local model made no tool call"
    call = result.tool_calls[0]
    assert call.name == "get_weather" and call.status == "ok"
    assert isinstance(call.arguments, dict) and call.arguments["city"] == SEEN[0]
    assert call.result == {"city": SEEN[0], "temp_c": 21, "sky": "sunny"}
    # the result went back: the conversation holds the tool message and a final turn after it
    roles = [m.role for m in result.conversation.messages]
    assert roles[:3] == ["user", "assistant", "tool"] and roles[-1] == "assistant"
    assert len(result.turns) == 2


def test_sync_api_on_local_model():
    SEEN.clear()
    model = llm_magic.get_model("local")
    response = model.chain("What is the weather in Rome?", tools=[get_weather], max_steps=1)
    calls = response.tool_calls()
    assert calls and calls[0].status == "ok" and SEEN
    assert response.result().status in ("done", "max_steps")


@pytest.mark.parametrize("graceful", [True, False], ids=["shutdown", "kill"])
def test_kernel_shutdown_leaves_no_server_behind(graceful: bool):
    """A kernel that ran a chain on the local model, then shut down (or killed), leaves no
    llama-cpp server process behind."""
    import os
    import time

    from tests.kernel_harness import KernelSession

    session = KernelSession()
    try:
        cell = session.run_one(
            "import llm_magic.local as L\n"
            "srv = L.get_local_server(); srv.ensure_started_sync()\n"
            "print('PID', srv.pid)",
            timeout=180,
        )
        out = cell.stream()
        pid = int(out.split("PID", 1)[1].split()[0])
        os.kill(pid, 0)  # the server is running
        session.kc.stop_channels()
        session.km.shutdown_kernel(now=not graceful)
    finally:
        session._tmp.cleanup()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
            _reap(pid)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    raise AssertionError(f"the local model server (pid {pid}) outlived its kernel")


def _reap(pid: int) -> None:
    """A zombie (exited, not yet reaped by its parent) still answers kill(pid, 0)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            if fh.read().split(")")[-1].split()[0] == "Z":
                raise ProcessLookupError
    except FileNotFoundError:
        raise ProcessLookupError from None
