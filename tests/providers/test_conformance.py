"""One conformance suite, every provider: the same scenarios over real loopback HTTP.

Parametrised by the `provider_server` fixture over OpenAI (Chat Completions and Responses),
Anthropic, Gemini and an OpenAI-compatible server in its stricter mode. The servers check every request they receive
(tool results matching calls, no dangling calls, schema shapes) and fail the test otherwise.
"""

from __future__ import annotations

import json

import pytest

import llm_magic
from llm_magic import Approval, AuthenticationError, StreamError
from tests.servers import Call, Reply

MODEL_FOR = {
    "openai": "openai-chat:gpt-test",
    "openai-strict": "openai-compatible:local-test",
    "anthropic": "claude-test",
    "gemini": "gemini-test",
    "openai-responses": "openai:gpt-test",
}


def model_for(server, api_key: str | None = None) -> llm_magic.AsyncModel:
    return llm_magic.get_async_model(
        MODEL_FOR[server.kind], base_url=server.base_url, api_key=api_key or server.api_key
    )


def get_weather(city: str, unit: str = "c") -> dict:
    """Current weather for a city.

    Args:
        city: City name.
        unit: "c" or "f".
    """
    return {"city": city, "temp": 21 if unit == "c" else 70}


def explode(reason: str) -> str:
    """Always fails."""
    raise ValueError(f"boom: {reason}")


def tool_results_sent(server) -> list[tuple[str, bool]]:
    """(content, is_error) of every tool result in the last request, in the provider's form."""
    body = server.requests[-1].body
    out: list[tuple[str, bool]] = []
    if server.provider == "openai":
        for m in body["messages"]:
            if m["role"] == "tool":
                out.append((m["content"], m["content"].startswith(("error", "denied"))))
    elif server.provider == "openai-responses":
        for item in body["input"]:
            if item.get("type") == "function_call_output":
                out.append((item["output"], item["output"].startswith(("error", "denied"))))
    elif server.provider == "anthropic":
        for m in body["messages"]:
            if m["role"] == "user" and isinstance(m["content"], list):
                for block in m["content"]:
                    if block.get("type") == "tool_result":
                        content = block["content"]
                        text = content if isinstance(content, str) else content[0]["text"]
                        out.append((text, bool(block.get("is_error"))))
    else:
        for content in body["contents"]:
            for part in content.get("parts", []):
                if "functionResponse" in part:
                    resp = part["functionResponse"]["response"]
                    out.append((json.dumps(resp), "error" in resp))
    return out


async def test_one_tool_call(provider_server):
    provider_server.push(
        Reply(calls=[Call("get_weather", {"city": "Paris"})]), Reply(text="It is 21 in Paris.")
    )
    result = await model_for(provider_server).chain("Weather in Paris?", tools=[get_weather])
    assert result.status == "done"
    assert result.text == "It is 21 in Paris."
    [call] = result.tool_calls
    assert (call.name, call.status, call.result) == (
        "get_weather",
        "ok",
        {"city": "Paris", "temp": 21},
    )
    [(content, is_error)] = tool_results_sent(provider_server)
    assert "Paris" in content and not is_error


async def test_three_parallel_calls(provider_server):
    cities = ["Paris", "Rome", "Oslo"]
    provider_server.push(
        Reply(calls=[Call("get_weather", {"city": c}) for c in cities]), Reply(text="done")
    )
    result = await model_for(provider_server).chain("three cities", tools=[get_weather])
    assert [c.arguments["city"] for c in result.tool_calls] == cities
    assert all(c.status == "ok" for c in result.tool_calls)
    assert len({c.step for c in result.tool_calls}) == 1
    sent = tool_results_sent(provider_server)
    assert [city in content for (content, _), city in zip(sent, cities, strict=True)] == [True] * 3


async def test_tool_error_reaches_model_in_provider_form(provider_server):
    provider_server.push(Reply(calls=[Call("explode", {"reason": "x"})]), Reply(text="sorry"))
    result = await model_for(provider_server).chain("go", tools=[explode])
    assert result.status == "done"
    [call] = result.tool_calls
    assert call.status == "error" and isinstance(call.error, ValueError)
    [(content, is_error)] = tool_results_sent(provider_server)
    assert is_error and "boom: x" in content


async def test_denied_call(provider_server):
    async def deny(record):
        return Approval(False, "not today")

    provider_server.push(Reply(calls=[Call("get_weather", {"city": "Paris"})]), Reply(text="ok"))
    result = await model_for(provider_server).chain(
        "go", tools=[get_weather], approve="all", approval_callback=deny
    )
    [call] = result.tool_calls
    assert call.status == "denied" and call.result is None
    [(content, is_error)] = tool_results_sent(provider_server)
    assert is_error and "not today" in content


async def test_streaming_equals_non_streaming(provider_server):
    script = [
        Reply(text="Let me look.", calls=[Call("get_weather", {"city": "Rome"})]),
        Reply(text="Rome is warm today, 21 degrees."),
    ]
    results = []
    for stream in (True, False):
        provider_server.push(*script)
        model = model_for(provider_server)
        results.append(await model.chain("Rome?", tools=[get_weather], stream=stream))
        assert provider_server.requests[-1].stream is stream
    a, b = results
    assert (a.text, a.status) == (b.text, b.status)
    if not provider_server.strict:  # strict servers get no stream_options, so no streamed usage
        assert a.usage == b.usage
    assert [(c.name, c.arguments, c.output) for c in a.tool_calls] == [
        (c.name, c.arguments, c.output) for c in b.tool_calls
    ]


async def test_cut_stream_is_a_clear_error_and_keeps_partial_text(provider_server):
    provider_server.push(Reply(text="The weather in Paris is sunny and warm", cut_after=6))
    with pytest.raises(StreamError) as info:
        await model_for(provider_server).chain("Paris?", tools=[get_weather])
    err = info.value
    assert err.partial_text and "The weather in Paris is sunny and warm".startswith(
        err.partial_text
    )
    assert err.result.status == "failed" and err.result.text == err.partial_text
    assert "cut" in str(err) or "ended" in str(err)


async def test_429_then_success(provider_server):
    provider_server.push(Reply(status=429, retry_after=0.05), Reply(text="fine"))
    result = await model_for(provider_server).chain("hi")
    assert result.text == "fine"
    assert len(provider_server.requests) == 2


async def test_401_names_provider_error_not_key(provider_server):
    bad_key = "sk-WRONG-secret-key-98765"
    with pytest.raises(AuthenticationError) as info:
        await model_for(provider_server, api_key=bad_key).chain("hi")
    message = str(info.value)
    assert bad_key not in message and bad_key not in repr(info.value)
    assert "rejected" in message
    assert info.value.provider_message and info.value.status in (400, 401)
    provider_server.take_failures()


async def test_cancel_mid_stream_leaves_a_valid_conversation(provider_server):
    provider_server.push(
        Reply(calls=[Call("get_weather", {"city": "Oslo"})]),
        Reply(text="one two three four five six seven eight", chunk_delay=0.2),
    )
    model = model_for(provider_server)
    conversation = model.conversation(tools=[get_weather])
    run = conversation.chain("Oslo?")
    async for event in run:
        if event.type == "text_delta":
            run.cancel()
    result = await run
    assert result.status == "cancelled"
    provider_server.push(Reply(text="continued"))
    again = await conversation.chain("go on")
    assert again.text == "continued"
