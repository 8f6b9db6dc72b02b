"""The sync API: same vocabulary without await, in a plain script and inside a running loop."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

import llm_magic
from llm_magic import ChainResponse, ProviderError, RetryPolicy, async_tool_is
from llm_magic import events as ev
from tests.servers import Call, OpenAIServer, Reply

ROOT = Path(__file__).resolve().parents[2]


@dataclasses.dataclass
class Forecast:
    city: str
    celsius: float


async def forecast(city: str) -> Forecast:
    """Async-only tool: the weather for a city."""
    await asyncio.sleep(0.01)
    return Forecast(city, 18.5)


def sync_model(server: OpenAIServer) -> llm_magic.Model:
    return llm_magic.get_model(
        "openai-chat:test",
        base_url=server.base_url,
        api_key=server.api_key,
        retry=RetryPolicy(max_retries=1, base_delay=0.01),
    )


def async_model(server: OpenAIServer) -> llm_magic.AsyncModel:
    return llm_magic.get_async_model(
        "openai-chat:test",
        base_url=server.base_url,
        api_key=server.api_key,
        retry=RetryPolicy(max_retries=1, base_delay=0.01),
    )


def script_forecast(server: OpenAIServer) -> None:
    server.push(Reply(calls=[Call("forecast", {"city": "Paris"})]), Reply(text="Paris: 18.5 C"))


def check_forecast_response(response: ChainResponse) -> None:
    assert response.text() == "Paris: 18.5 C"
    (call,) = response.tool_calls()
    assert call.result == Forecast("Paris", 18.5)  # the real object, not text
    assert call.output == '{"city": "Paris", "celsius": 18.5}'
    assert call.implementation == "async" and call.status == "ok"
    assert response.usage().input_tokens == 20
    result = response.result()
    assert result.status == "done" and str(response) == "Paris: 18.5 C"


def test_sync_api_in_plain_code_with_an_async_only_tool(openai_server: OpenAIServer) -> None:
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()  # really no loop here
    script_forecast(openai_server)
    check_forecast_response(sync_model(openai_server).chain("weather?", tools=[forecast]))


async def test_sync_api_inside_a_running_loop_with_an_async_only_tool(
    openai_server: OpenAIServer,
) -> None:
    loop = asyncio.get_running_loop()
    assert loop.is_running()
    script_forecast(openai_server)
    response = sync_model(openai_server).chain("weather?", tools=[forecast])
    check_forecast_response(response)  # no "asyncio.run() cannot be called from a running loop"
    assert asyncio.get_running_loop() is loop
    assert not hasattr(asyncio, "_nest_patched")  # nothing patched globally


def test_sync_api_in_a_plain_script(openai_server: OpenAIServer) -> None:
    script_forecast(openai_server)
    code = textwrap.dedent(
        f"""
        import asyncio, llm_magic

        async def forecast(city: str) -> dict:
            await asyncio.sleep(0)
            return {{"city": city, "celsius": 18.5}}

        model = llm_magic.get_model(
            "openai-chat:test", base_url={openai_server.base_url!r}, api_key={openai_server.api_key!r}
        )
        response = model.chain("weather?", tools=[forecast])
        print(response.text())
        print(response.tool_calls()[0].result)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["Paris: 18.5 C", "{'city': 'Paris', 'celsius': 18.5}"]


def _paired(ran: list[tuple[str, int]]) -> Any:
    async def double_async(n: int) -> int:
        ran.append(("async", threading.get_ident()))
        return n * 2

    @async_tool_is(double_async)
    def double(n: int) -> int:
        """Double n."""
        ran.append(("sync", threading.get_ident()))
        return n * 2

    return double


async def test_async_tool_is_each_path_runs_its_own_implementation(
    openai_server: OpenAIServer,
) -> None:
    ran: list[tuple[str, int]] = []
    double = _paired(ran)
    openai_server.push(Reply(calls=[Call("double", {"n": 4})]), Reply(text="8"))
    result = await async_model(openai_server).chain("double 4", tools=[double])
    assert [k for k, _ in ran] == ["async"] and result.tool_calls[0].implementation == "async"
    assert result.tool_calls[0].result == 8

    ran.clear()
    openai_server.push(Reply(calls=[Call("double", {"n": 5})]), Reply(text="10"))
    response = sync_model(openai_server).chain("double 5", tools=[double])
    assert response.tool_calls()[0].result == 10
    assert [k for k, _ in ran] == ["sync"] and response.tool_calls()[0].implementation == "sync"
    assert ran[0][1] != threading.get_ident()  # in a worker thread, not the caller's


def test_async_tool_is_from_plain_sync_code(openai_server: OpenAIServer) -> None:
    ran: list[tuple[str, int]] = []
    openai_server.push(Reply(calls=[Call("double", {"n": 1})]), Reply(text="2"))
    assert sync_model(openai_server).chain("d", tools=[_paired(ran)]).text() == "2"
    assert [k for k, _ in ran] == ["sync"]


async def test_continue_a_conversation_async(openai_server: OpenAIServer) -> None:
    openai_server.push(
        Reply(calls=[Call("forecast", {"city": "Paris"})]),
        Reply(text="Paris: 18.5 C"),
        Reply(calls=[Call("forecast", {"city": "Rome"})]),
        Reply(text="Rome too."),
    )
    first = await async_model(openai_server).chain("Paris?", tools=[forecast])
    second = await first.continue_("And Rome?")
    assert second.text == "Rome too." and second.tool_calls[0].result == Forecast("Rome", 18.5)
    sent = openai_server.requests[-1].body["messages"]
    roles = ["user", "assistant", "tool", "assistant", "user", "assistant", "tool"]
    assert [m["role"] for m in sent] == roles
    assert sent[0]["content"] == "Paris?" and sent[4]["content"] == "And Rome?"
    # a result is a branch point: continuing it forks, the first result never changes
    assert second.conversation is not first.conversation and len(second.messages) == 8
    assert len(first.messages) == 4 and len(first.conversation.messages) == 4


def test_continue_a_conversation_sync(openai_server: OpenAIServer) -> None:
    openai_server.push(
        Reply(calls=[Call("forecast", {"city": "Paris"})]),
        Reply(text="Paris: 18.5 C"),
        Reply(text="It was Paris."),
        Reply(text="Still Paris."),
    )
    first = sync_model(openai_server).chain("Paris?", tools=[forecast]).result()
    follow = first.continue_("Which city?")
    assert isinstance(follow, ChainResponse) and follow.text() == "It was Paris."
    sent = openai_server.requests[-1].body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "assistant", "user"]
    conv = sync_model(openai_server).conversation(messages=follow.result().messages)
    assert conv.chain("Sure?").text() == "Still Paris."
    assert len(openai_server.requests[-1].body["messages"]) == 7


def test_sync_conversation_object(openai_server: OpenAIServer) -> None:
    openai_server.push(Reply(text="one"), Reply(text="two"))
    conv = sync_model(openai_server).conversation(system="Be brief.")
    assert conv.chain("1").text() == "one" and conv.chain("2").text() == "two"
    sent = openai_server.requests[-1].body["messages"]
    assert sent[0] == {"role": "system", "content": "Be brief."}
    assert [m["content"] for m in sent[1:]] == ["1", "one", "2"]
    conv.reset()
    assert conv.messages == []


def _iterate(server: OpenAIServer) -> None:
    script_forecast(server)
    response = sync_model(server).chain("weather?", tools=[forecast])
    seen: list[ev.Event] = []
    response.subscribe(seen.append)
    events = list(response)
    assert [type(e) for e in events] == [type(e) for e in seen]
    assert isinstance(events[0], ev.RunStarted) and isinstance(events[-1], ev.RunFinished)
    assert any(isinstance(e, ev.ToolCallFinished) for e in events)
    assert "".join(e.text for e in events if isinstance(e, ev.TextDelta)) == "Paris: 18.5 C"
    assert response.text() == "Paris: 18.5 C"


def test_iterating_events_in_plain_code(openai_server: OpenAIServer) -> None:
    _iterate(openai_server)


async def test_iterating_events_inside_a_running_loop(openai_server: OpenAIServer) -> None:
    _iterate(openai_server)


async def test_sync_errors_raise_inside_a_running_loop(openai_server: OpenAIServer) -> None:
    openai_server.push(Reply(status=500), Reply(status=500))
    with pytest.raises(ProviderError, match="HTTP 500"):
        sync_model(openai_server).chain("hi").text()


def test_sync_prompt(openai_server: OpenAIServer) -> None:
    openai_server.push(Reply(text="plain answer"))
    result = sync_model(openai_server).prompt("hi", system="sys")
    assert result.text == "plain answer" and result.tool_calls == []
    assert "tools" not in openai_server.requests[0].body


def test_start_then_cancel_at_once(openai_server: OpenAIServer) -> None:
    openai_server.push(Reply(text="slow", delay=0.5), Reply(text="asked"))
    conv = sync_model(openai_server).conversation()
    response = conv.chain("hi")
    response.start()
    response.cancel()  # from this thread, before or just after the run's first step
    assert response.result().status == "cancelled"
    assert conv.chain("again").text() in ("slow", "asked")  # the conversation is free again


def test_start_runs_in_the_background(openai_server: OpenAIServer) -> None:
    openai_server.push(Reply(text="background"))
    response = sync_model(openai_server).chain("hi")
    seen: list[str] = []
    response.subscribe(lambda e: seen.append(e.type))
    response.start()
    assert response.text() == "background" and seen[-1] == "run_finished"
