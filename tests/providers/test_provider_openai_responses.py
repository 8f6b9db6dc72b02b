"""The OpenAI Responses adapter over real loopback HTTP: reasoning carried across tool rounds with
`store: false`, parallel calls, typed answers through `text.format`, refusals, incomplete and
failed responses, usage and its cost, conversations that move between Chat Completions and
Responses; and the Responses server's own rules, each shown refusing the bad request."""

from __future__ import annotations

import json
from typing import Any

import pydantic
import pytest

import llm_magic
from llm_magic import ConfigError, ProviderError, RefusalError, StreamError
from llm_magic.cost import price, price_source
from llm_magic.messages import Message, ModelRequest, Usage
from llm_magic.providers.openai_responses import REASONING_KEY
from tests.provider_models import FAST_RETRY
from tests.providers.test_servers_selfcheck import post
from tests.servers import Call, OpenAIResponsesServer, OpenAIServer, Reply

REASONING_MODEL = "openai:gpt-5-test"  # the catalog's gpt-5 family: a reasoning model


def model(server: Any, model_id: str = "openai:gpt-test", **kw: Any) -> llm_magic.AsyncModel:
    return llm_magic.get_async_model(
        model_id, base_url=server.base_url, api_key=server.api_key, retry=FAST_RETRY, **kw
    )


def lookup(key: str) -> str:
    """Look a key up."""
    return key.upper()


def items_of(body: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [i for i in body["input"] if i.get("type") == kind]


# ---- the adapter --------------------------------------------------------------------------
@pytest.mark.parametrize("stream", [True, False])
async def test_reasoning_items_go_back_encrypted_before_their_calls(
    openai_responses_server: OpenAIResponsesServer, stream: bool
) -> None:
    s = openai_responses_server
    s.push(
        Reply(calls=[Call("lookup", {"key": "a"})]),
        Reply(calls=[Call("lookup", {"key": "b"})]),
        Reply(text="A and B."),
    )
    result = await model(s, REASONING_MODEL).chain("a then b", tools=[lookup], stream=stream)
    assert result.text == "A and B." and [c.result for c in result.tool_calls] == ["A", "B"]
    first, _, third = (r.body for r in s.requests)
    assert first["store"] is False and first["include"] == ["reasoning.encrypted_content"]
    kinds = [i.get("type") for i in third["input"]]
    assert kinds == ["message", *["reasoning", "function_call", "function_call_output"] * 2]
    sent = items_of(third, "reasoning")
    assert all(r["encrypted_content"] in s.issued for r in sent) and len(s.issued) == 3
    turns = [m for m in result.messages if m.role == "assistant" and m.tool_calls]
    assert [m.provider_data[REASONING_KEY] for m in turns] == [[r] for r in sent]


async def test_server_refuses_reasoning_without_its_encrypted_content(
    openai_responses_server: OpenAIResponsesServer,
) -> None:
    s = openai_responses_server
    s.push(Reply(calls=[Call("lookup", {"key": "a"})]), Reply(text="A."))
    conversation = model(s, REASONING_MODEL).conversation(tools=[lookup])
    await conversation.chain("a")
    turn = next(m for m in conversation.messages if m.provider_data.get(REASONING_KEY))
    [item] = turn.provider_data[REASONING_KEY]
    del item["encrypted_content"]
    with pytest.raises(ProviderError, match="not persisted when `store` is set to false"):
        await conversation.chain("again")
    assert s.take_failures()


async def test_non_reasoning_models_ask_for_no_reasoning(
    openai_responses_server: OpenAIResponsesServer,
) -> None:
    s = openai_responses_server
    s.push(Reply(text="hi"))
    await model(s, "openai:gpt-4.1").chain("hi", system="be brief")
    body = s.requests[0].body
    assert "include" not in body and body["instructions"] == "be brief"
    assert body["input"] == [{"type": "message", "role": "user", "content": "hi"}]


@pytest.mark.parametrize("stream", [True, False])
async def test_parallel_calls_are_answered_in_one_go(
    openai_responses_server: OpenAIResponsesServer, stream: bool
) -> None:
    s = openai_responses_server
    s.push(Reply(calls=[Call("lookup", {"key": k}) for k in "xyz"]), Reply(text="done"))
    result = await model(s).chain("three", tools=[lookup], stream=stream)
    assert [c.result for c in result.tool_calls] == ["X", "Y", "Z"]
    assert len({c.step for c in result.tool_calls}) == 1
    body = s.requests[1].body
    calls, outputs = items_of(body, "function_call"), items_of(body, "function_call_output")
    assert [c["call_id"] for c in calls] == [o["call_id"] for o in outputs]
    assert [json.loads(c["arguments"]) for c in calls] == [{"key": k} for k in "xyz"]
    assert s.requests[0].body["tools"] == [
        {
            "type": "function",
            "name": "lookup",
            "description": "Look a key up.",
            "parameters": s.requests[0].body["tools"][0]["parameters"],
            "strict": False,
        }
    ]


async def test_forced_tool_choice_is_flat(openai_responses_server: OpenAIResponsesServer) -> None:
    s = openai_responses_server
    s.push(Reply(calls=[Call("lookup", {"key": "q"})]), Reply(text="Q"))
    await model(s).chain("q", tools=[lookup], tool_choice="lookup")
    assert s.requests[0].body["tool_choice"] == {"type": "function", "name": "lookup"}


class Trip(pydantic.BaseModel):
    city: str
    days: int


@pytest.mark.parametrize("stream", [True, False])
async def test_typed_answer_goes_through_text_format(
    openai_responses_server: OpenAIResponsesServer, stream: bool
) -> None:
    s = openai_responses_server
    s.push(Reply(json_content={"city": "Rome", "days": 3}))
    result = await model(s).chain("plan", output_type=Trip, stream=stream)
    assert result.output == Trip(city="Rome", days=3)
    fmt = s.requests[0].body["text"]["format"]
    assert (fmt["type"], fmt["name"], fmt["strict"]) == ("json_schema", "Trip", True)
    assert fmt["schema"]["additionalProperties"] is False


@pytest.mark.parametrize("stream", [True, False])
async def test_refusal_is_a_refusal_error(
    openai_responses_server: OpenAIResponsesServer, stream: bool
) -> None:
    openai_responses_server.push(Reply(refusal="I won't."))
    with pytest.raises(RefusalError, match=r"I won't\."):
        await model(openai_responses_server).chain("bad", stream=stream)


@pytest.mark.parametrize("stream", [True, False])
async def test_incomplete_keeps_the_text_and_says_length(
    openai_responses_server: OpenAIResponsesServer, stream: bool
) -> None:
    s = openai_responses_server
    s.push(Reply(text="Half an ans", finish_reason="max_output_tokens"))
    result = await model(s).chain("long", stream=stream)
    assert result.status == "done" and result.text == "Half an ans"
    provider = model(s).provider
    s.push(Reply(text="Half", finish_reason="max_output_tokens"))
    turn = await provider.turn(ModelRequest([Message("user", "x")], stream=stream))
    assert (turn.text, turn.finish_reason) == ("Half", "length")


async def test_max_tokens_option_is_max_output_tokens(
    openai_responses_server: OpenAIResponsesServer,
) -> None:
    s = openai_responses_server
    s.push(Reply(text="ok"))
    await model(s, REASONING_MODEL).chain("hi", model_options={"max_tokens": 9})
    body = s.requests[0].body
    assert body["max_output_tokens"] == 9 and "max_tokens" not in body


@pytest.mark.parametrize("stream", [True, False])
async def test_incomplete_without_content_is_a_clear_error(
    openai_responses_server: OpenAIResponsesServer, stream: bool
) -> None:
    openai_responses_server.push(Reply(finish_reason="content_filter"))
    with pytest.raises(ProviderError, match=r"no content \(content_filter\)"):
        await model(openai_responses_server).chain("x", stream=stream)


@pytest.mark.parametrize("stream", [True, False])
async def test_failed_response_is_a_provider_error_with_its_message(
    openai_responses_server: OpenAIResponsesServer, stream: bool
) -> None:
    openai_responses_server.push(
        Reply(finish_reason="failed", error_message="The model crashed.", error_code="oops")
    )
    with pytest.raises(ProviderError, match=r"The model crashed\. \[oops\]"):
        await model(openai_responses_server).chain("x", stream=stream)


async def test_error_event_mid_stream_keeps_partial_text(
    openai_responses_server: OpenAIResponsesServer,
) -> None:
    s = openai_responses_server
    s.push(Reply(text="one two three", stream_error="Server overloaded", cut_after=5))
    with pytest.raises(ProviderError, match=r"error in stream: Server overloaded \[server_error\]"):
        await model(s).chain("x")


async def test_cut_stream_is_a_stream_error(openai_responses_server: OpenAIResponsesServer) -> None:
    openai_responses_server.push(Reply(text="one two three four", cut_after=6))
    with pytest.raises(StreamError) as info:
        await model(openai_responses_server).chain("x")
    assert info.value.partial_text and "one two three four".startswith(info.value.partial_text)


@pytest.mark.parametrize("stream", [True, False])
async def test_usage_counts_cached_and_reasoning_tokens_and_prices_them(
    openai_responses_server: OpenAIResponsesServer, stream: bool
) -> None:
    s = openai_responses_server
    s.push(Reply(text="ok", usage=(1000, 400), cached=600, reasoning=300))
    m = model(s, "openai:gpt-4.1-mini")
    result = await m.chain("hi", stream=stream)
    assert result.usage == Usage(1000, 400, cache_read_tokens=600, reasoning_tokens=300)
    source = price_source(m.provider)
    assert source == {"provider_id": "openai"}
    expected = price("gpt-4.1-mini", result.usage, source)
    assert expected is not None and result.cost == expected
    uncached = price("gpt-4.1-mini", Usage(1000, 400), source)
    assert uncached is not None and result.cost < uncached  # the cached part is cheaper


# ---- moving between the two OpenAI APIs -------------------------------------------------
async def test_a_chat_conversation_goes_on_at_responses_and_back() -> None:
    with OpenAIServer() as chat, OpenAIResponsesServer() as responses:
        chat.push(Reply(calls=[Call("lookup", {"key": "a"})]), Reply(text="A."))
        responses.push(Reply(calls=[Call("lookup", {"key": "b"})]), Reply(text="B."))
        chat.push(Reply(text="Both."))
        on_chat = model(chat, "openai-chat:gpt-test")
        on_responses = model(responses, REASONING_MODEL)
        first = await on_chat.chain("a", tools=[lookup])
        second = await first.fork(at=1, prompt="now b", model=on_responses)
        assert second.text == "B." and second.tool_calls[-1].result == "B"
        body = responses.requests[0].body
        assert [i["call_id"] for i in items_of(body, "function_call_output")] == [
            first.tool_calls[0].id
        ]
        third = await second.fork(at=1, prompt="both?", model=on_chat)
        assert third.text == "Both."
        history = chat.requests[-1].body["messages"]
        assert [m["role"] for m in history].count("tool") == 2  # a's and b's results


async def test_continue_keeps_the_api(openai_responses_server: OpenAIResponsesServer) -> None:
    s = openai_responses_server
    s.push(Reply(calls=[Call("lookup", {"key": "a"})]), Reply(text="A."), Reply(text="more"))
    first = await model(s, REASONING_MODEL).chain("a", tools=[lookup])
    again = await first.continue_("go on")
    assert again.text == "more"
    kinds = [i.get("type") for i in s.requests[-1].body["input"]]
    assert kinds == [
        "message",
        "reasoning",
        "function_call",
        "function_call_output",
        "reasoning",
        "message",
        "message",
    ]


# ---- the registry ------------------------------------------------------------------------
def test_openai_ids_pick_responses_and_openai_chat_picks_chat() -> None:
    from llm_magic.providers.openai import OpenAIChatAdapter
    from llm_magic.providers.openai_responses import OpenAIResponsesAdapter

    for model_id in ("openai:gpt-4.1", "gpt-4.1", "o3", "gpt-5-pro"):
        provider = llm_magic.registry.make_provider(model_id, api_key="k")
        assert type(provider) is OpenAIResponsesAdapter, model_id
    for model_id in ("openai-chat:gpt-4.1", "ollama:llama3.2"):
        assert type(llm_magic.registry.make_provider(model_id, api_key="k")) is OpenAIChatAdapter


@pytest.mark.parametrize("model_id", ["gpt-5-pro", "o3-pro", "codex-mini-latest"])
def test_responses_only_models_are_refused_on_openai_chat(model_id: str) -> None:
    with pytest.raises(ConfigError) as info:
        llm_magic.get_async_model(f"openai-chat:{model_id}", api_key="sk-secret-abc")
    message = str(info.value)
    assert f"use 'openai:{model_id}'" in message and "\n" not in message
    assert "sk-secret-abc" not in message


# ---- the server's rules (each refused with the API's 400, and our request accepted) ----------
def refused(server: OpenAIResponsesServer, **body: Any) -> str:
    status, out = post(server, **body)
    assert status == 400 and out["error"]["type"] == "invalid_request_error", out
    assert server.take_failures()
    return str(out["error"]["message"])


FC = {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{}"}
OUT = {"type": "function_call_output", "call_id": "call_1", "output": "18C"}
USER = {"role": "user", "content": "hi"}


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ({"messages": [USER]}, "Unsupported parameter: 'messages'"),
        ({"max_tokens": 5}, "moved to 'max_output_tokens'"),
        ({"max_completion_tokens": 5}, "moved to 'max_output_tokens'"),
        ({"frequency_penalty": 1}, "Unknown parameter: 'frequency_penalty'."),
        (
            {"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]},
            "Missing required parameter: 'tools[0].name'.",
        ),
        ({"input": [USER, OUT]}, "No tool call found for function call output with call_id"),
        ({"input": [USER, FC, USER]}, "No tool output found for function call call_1."),
        (
            {"input": [USER, {"type": "reasoning", "id": "rs_1", "summary": []}], "store": False},
            "Items are not persisted when `store` is set to false.",
        ),
        (
            {
                "input": [
                    USER,
                    {
                        "type": "reasoning",
                        "id": "rs_1",
                        "summary": [],
                        "encrypted_content": "forged",
                    },
                ]
            },
            "could not be verified",
        ),
        ({"model": "o3", "temperature": 0.2}, "'temperature' is not supported with this model"),
        ({"model": "gpt-5-test", "top_p": 0.5}, "'top_p' is not supported with this model"),
        (
            {"text": {"format": {"type": "json_schema", "name": "T", "schema": {"type": "array"}}}},
            "schema must be a JSON Schema of 'type: \"object\"'",
        ),
        (
            {
                "text": {
                    "format": {
                        "type": "json_schema",
                        "name": "T",
                        "strict": True,
                        "schema": {"type": "object", "properties": {"a": {"type": "string"}}},
                    }
                }
            },
            "'additionalProperties' is required to be supplied and to be false.",
        ),
        (
            {"tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
            "Invalid value for 'tool_choice'",
        ),
    ],
    ids=[
        "messages",
        "max_tokens",
        "max_completion_tokens",
        "unknown-field",
        "nested-tool",
        "orphan-output",
        "dangling-call",
        "reasoning-no-content",
        "reasoning-forged",
        "temperature-reasoning",
        "top_p-reasoning",
        "format-root-array",
        "format-strict-open",
        "chat-tool-choice",
    ],
)
def test_responses_server_refuses(
    openai_responses_server: OpenAIResponsesServer, body: dict[str, Any], said: str
) -> None:
    assert said in refused(openai_responses_server, **body)


def test_responses_server_accepts_the_documented_shapes(
    openai_responses_server: OpenAIResponsesServer,
) -> None:
    s = openai_responses_server
    for body in (
        {"input": [USER, FC, OUT, USER]},
        {"model": "gpt-4.1", "temperature": 0.2, "max_output_tokens": 5},
        {"model": "o3", "temperature": 1},
        {"tool_choice": {"type": "function", "name": "get_weather"}},
    ):
        s.push(Reply(text="ok"))
        status, out = post(s, **body)
        assert status == 200 and out["status"] == "completed", out


def test_encrypted_reasoning_comes_only_when_asked(
    openai_responses_server: OpenAIResponsesServer,
) -> None:
    s = openai_responses_server
    s.push(Reply(text="a"), Reply(text="b"))
    plain = post(s, model="o3")[1]["output"][0]
    asked = post(s, model="o3", include=["reasoning.encrypted_content"])[1]["output"][0]
    assert plain["type"] == asked["type"] == "reasoning"
    assert "encrypted_content" not in plain and asked["encrypted_content"] in s.issued


def test_usage_details_are_parts_of_the_totals(
    openai_responses_server: OpenAIResponsesServer,
) -> None:
    s = openai_responses_server
    s.push(Reply(text="ok", usage=(50, 20), cached=30, reasoning=10))
    usage = post(s)[1]["usage"]
    assert usage == {
        "input_tokens": 50,
        "input_tokens_details": {"cached_tokens": 30},
        "output_tokens": 20,
        "output_tokens_details": {"reasoning_tokens": 10},
        "total_tokens": 70,
    }


async def test_a_stream_of_only_the_final_event_still_gives_its_output(
    openai_responses_server: OpenAIResponsesServer,
) -> None:
    """Some proxies forward only `response.completed`: its whole Response is the turn."""
    message = {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": "whole", "annotations": []}],
    }
    response = {"status": "completed", "output": [message], "usage": {"input_tokens": 3}}
    event = {"type": "response.completed", "response": response, "sequence_number": 0}
    openai_responses_server.push(
        Reply(raw_events=[f"event: response.completed\ndata: {json.dumps(event)}\n\n"])
    )
    result = await model(openai_responses_server).chain("x")
    assert (result.text, result.usage.input_tokens) == ("whole", 3)


async def test_thinking_is_reasoning_effort_on_reasoning_models(
    openai_responses_server: OpenAIResponsesServer,
) -> None:
    s = openai_responses_server
    s.push(Reply(text="ok"))
    await model(s, REASONING_MODEL).chain("hi", thinking="high")
    assert s.requests[0].body["reasoning"] == {"effort": "high"}


async def test_thinking_is_left_out_for_a_model_that_does_not_reason(
    openai_responses_server: OpenAIResponsesServer,
) -> None:
    s = openai_responses_server
    s.push(Reply(text="ok"))
    with pytest.warns(UserWarning, match="takes no reasoning effort"):
        await model(s).chain("hi", thinking="low")
    assert "reasoning" not in s.requests[0].body


async def test_sampling_fields_a_reasoning_model_refuses_are_dropped(
    openai_responses_server: OpenAIResponsesServer,
) -> None:
    s = openai_responses_server
    s.push(Reply(text="ok"))
    with pytest.warns(UserWarning, match="temperature"):
        await model(s, REASONING_MODEL).chain("hi", model_options={"temperature": 0.2})
    assert "temperature" not in s.requests[0].body


@pytest.mark.parametrize(
    ("model_id", "effort", "refusal"),
    [
        ("gpt-test", "low", "'reasoning.effort' is not supported with this model"),
        ("gpt-5-test", "extreme", "Invalid value: 'extreme'"),
    ],
)
def test_responses_server_refuses_an_effort_the_model_does_not_take(
    openai_responses_server: OpenAIResponsesServer, model_id: str, effort: str, refusal: str
) -> None:
    s = openai_responses_server
    status, body = post(s, model=model_id, reasoning={"effort": effort})
    assert status == 400 and refusal in body["error"]["message"]
    assert s.take_failures()
