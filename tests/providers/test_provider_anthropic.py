"""AnthropicMessagesAdapter: request bodies and response parsing as pure functions, then real HTTP
against the loopback Anthropic server (tests/servers/anthropic.py)."""

from __future__ import annotations

import json
import re
import warnings

import pytest

from llm_magic import RetryPolicy
from llm_magic.errors import AuthenticationError, ConfigError, ProviderError, StreamError
from llm_magic.messages import Message, ModelRequest, ToolCall, ToolResult, ToolSpec
from llm_magic.providers.anthropic import (
    THINKING_KEY,
    AnthropicMessagesAdapter,
    StreamAccumulator,
    parse_message,
    sanitize_id,
    wire_messages,
)
from tests.servers import AnthropicServer, Call, Reply

KEY = "sk-test-123"
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
    "additionalProperties": False,
}
TOOLS = [ToolSpec("get_weather", "Current weather for a city", SCHEMA)]
TWO_CALLS = [Call("get_weather", {"city": "Paris"}), Call("get_weather", {"city": "Rome"})]
THINKING = {"type": "thinking", "thinking": "Two cities…", "signature": "EqQBCgIYAhIM1gbc=="}


def provider(version: str = "2026-10-21", **kwargs) -> AnthropicMessagesAdapter:
    return AnthropicMessagesAdapter("claude-sonnet-4-6", api_key=KEY, api_version=version, **kwargs)


def tool_history(call_ids=("toolu_1", "toolu_2"), thinking=True) -> list[Message]:
    calls = [
        ToolCall(cid, "get_weather", json.dumps({"city": c}))
        for cid, c in zip(call_ids, ("Paris", "Rome"), strict=True)
    ]
    data = {THINKING_KEY: [THINKING]} if thinking else {}
    return [
        Message("user", "Weather in Paris and Rome?"),
        Message("assistant", "I'll check both cities.", calls, provider_data=data),
        Message(
            "tool",
            tool_results=[
                ToolResult(call_ids[0], "get_weather", "18°C, clear"),
                ToolResult(call_ids[1], "get_weather", "weather service timed out", True),
            ],
        ),
        Message("user", "Keep the answer to one line."),
    ]


# ---- request bodies ---------------------------------------------------------------------------
def test_body_tools_system_and_max_tokens():
    body = provider().build_body(
        ModelRequest([Message("user", "hi")], TOOLS, system="Be brief.", stream=False)
    )
    assert body["model"] == "claude-sonnet-4-6"
    assert body["max_tokens"] == 4096
    assert body["system"] == "Be brief."
    assert body["tools"] == [
        {"name": "get_weather", "description": "Current weather for a city", "input_schema": SCHEMA}
    ]
    assert "tool_choice" not in body and "stream" not in body
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    body = provider().build_body(
        ModelRequest([Message("user", "hi")], options={"max_tokens": 100, "stop": "END"})
    )
    assert body["max_tokens"] == 100 and body["stream"] is True
    assert body["stop_sequences"] == ["END"] and "tools" not in body


@pytest.mark.parametrize(
    "choice, wire",
    [
        ("auto", {"type": "auto"}),
        ("required", {"type": "any"}),
        ("none", {"type": "none"}),
        ("get_weather", {"type": "tool", "name": "get_weather"}),
    ],
)
def test_tool_choice(choice, wire):
    body = provider().build_body(ModelRequest([Message("user", "hi")], TOOLS, tool_choice=choice))
    assert body["tool_choice"] == wire


def test_merged_user_turn_results_first_then_text():
    msgs = wire_messages(tool_history())
    assert [m["role"] for m in msgs] == ["user", "assistant", "user"]
    assert msgs[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18°C, clear"},
        {
            "type": "tool_result",
            "tool_use_id": "toolu_2",
            "content": "weather service timed out",
            "is_error": True,
        },
        {"type": "text", "text": "Keep the answer to one line."},
    ]


def test_assistant_blocks_thinking_first_unchanged_then_text_then_tool_use():
    blocks = wire_messages(tool_history())[1]["content"]
    assert blocks[0] == THINKING and blocks[0] is THINKING
    assert blocks[1] == {"type": "text", "text": "I'll check both cities."}
    assert blocks[2] == {
        "type": "tool_use",
        "id": "toolu_1",
        "name": "get_weather",
        "input": {"city": "Paris"},
    }
    assert blocks[3]["input"] == {"city": "Rome"}


def test_empty_texts_never_sent():
    history = [
        Message("user", "go"),
        Message("assistant", "", [ToolCall("c1", "get_weather", "")]),
        Message("tool", tool_results=[ToolResult("c1", "get_weather", "")]),
    ]
    msgs = wire_messages(history)
    assert msgs[1]["content"] == [
        {"type": "tool_use", "id": "c1", "name": "get_weather", "input": {}}
    ]
    assert msgs[2]["content"][0]["content"]  # non-empty text
    assert all(b.get("text", "x") for m in msgs for b in m["content"])


def test_ids_sanitised_deterministically_on_both_sides():
    foreign = ("functions.get_weather:0", "functions.get_weather:1")
    msgs = wire_messages(tool_history(foreign, thinking=False))
    use_ids = [b["id"] for b in msgs[1]["content"] if b["type"] == "tool_use"]
    result_ids = [b["tool_use_id"] for b in msgs[2]["content"] if b["type"] == "tool_result"]
    assert use_ids == result_ids
    assert all(re.fullmatch(r"[a-zA-Z0-9_-]+", i) for i in use_ids)
    assert len(set(use_ids)) == 2
    assert sanitize_id("a.b") != sanitize_id("a:b")
    assert sanitize_id("a.b") == sanitize_id("a.b")
    assert sanitize_id("toolu_01ok-ID") == "toolu_01ok-ID"


def test_system_messages_go_to_top_level_system():
    msgs = [Message("system", "Rule two."), Message("user", "hi")]
    body = provider().build_body(ModelRequest(msgs, system="Rule one."))
    assert body["system"] == "Rule one.\n\nRule two."
    assert [m["role"] for m in body["messages"]] == ["user"]


def test_versions_headers_and_sampling_options():
    new = provider("2026-10-21")
    assert new.auth_headers(KEY) == {
        "anthropic-version": "2026-10-21",
        "authorization": f"Bearer {KEY}",
    }
    old = provider("2023-06-01")
    assert old.auth_headers(KEY) == {"anthropic-version": "2023-06-01", "x-api-key": KEY}
    request = ModelRequest([Message("user", "hi")], options={"temperature": 0.2, "top_k": 5})
    with pytest.warns(UserWarning, match="temperature, top_k"):
        body = new.build_body(request)
    assert "temperature" not in body and "top_k" not in body
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        new.build_body(request)  # warned once only
        assert old.build_body(request)["temperature"] == 0.2
    with pytest.raises(ConfigError, match="api_version"):
        provider("2024-01-01")


def test_constructor_options_are_defaults():
    p = provider(options={"max_tokens": 50, "metadata": {"user_id": "u"}})
    body = p.build_body(ModelRequest([Message("user", "hi")], options={"max_tokens": 60}))
    assert body["max_tokens"] == 60 and body["metadata"] == {"user_id": "u"}


# ---- response parsing -------------------------------------------------------------------------
MESSAGE = {
    "id": "msg_019Q1hrJbZG26Fb9BQhrkHEr",
    "type": "message",
    "role": "assistant",
    "content": [
        THINKING,
        {"type": "text", "text": "I'll check both cities."},
        {"type": "tool_use", "id": "toolu_A", "name": "get_weather", "input": {"city": "Paris"}},
        {
            "type": "tool_use",
            "id": "toolu_B",
            "name": "get_weather",
            "input": {"city": "Rome"},
            "caller": {"type": "direct"},
        },
    ],
    "stop_reason": "tool_use",
    "usage": {
        "input_tokens": 377,
        "cache_creation_input_tokens": 3,
        "cache_read_input_tokens": 20,
        "output_tokens": 96,
    },
}


def test_parse_message():
    turn = parse_message(MESSAGE)
    assert turn.text == "I'll check both cities."
    assert [(c.id, c.parsed_arguments()) for c in turn.tool_calls] == [
        ("toolu_A", {"city": "Paris"}),
        ("toolu_B", {"city": "Rome"}),
    ]
    assert turn.finish_reason == "tool_use"
    assert (turn.usage.input_tokens, turn.usage.output_tokens) == (400, 96)
    assert turn.provider_data[THINKING_KEY] == [THINKING]


def test_stream_accumulator_fixture_sequence():
    """The byte-exact SDK fixture's event sequence, plus a thinking block."""
    acc = StreamAccumulator()
    seq = [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {"usage": {"input_tokens": 377, "output_tokens": 1}},
            },
        ),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "thinking", "thinking": "", "signature": ""},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "thinking_delta", "thinking": "Two "},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "thinking_delta", "thinking": "cities…"},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "signature_delta", "signature": "EqQBCgIYAhIM1gbc=="},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 1,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        ("ping", {"type": "ping"}),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "text_delta", "text": "I"},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "text_delta", "text": "'ll check."},
            },
        ),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 2,
                "content_block": {
                    "type": "tool_use",
                    "id": "toolu_A",
                    "name": "get_weather",
                    "input": {},
                },
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 2,
                "delta": {"type": "input_json_delta", "partial_json": ""},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 2,
                "delta": {"type": "input_json_delta", "partial_json": '{"city": "P'},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 2,
                "delta": {"type": "input_json_delta", "partial_json": 'aris"}'},
            },
        ),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 3,
                "content_block": {"type": "tool_use", "id": "toolu_B", "name": "now", "input": {}},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 3,
                "delta": {"type": "input_json_delta", "partial_json": ""},
            },
        ),
        ("some_future_event", {"type": "some_future_event"}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use"},
                "usage": {"output_tokens": 65},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    deltas = [acc.add(name, data) for name, data in seq]
    assert "".join(deltas) == "I'll check."
    assert acc.done
    turn = acc.turn()
    assert turn.text == "I'll check."
    assert [(c.id, c.name, c.arguments) for c in turn.tool_calls] == [
        ("toolu_A", "get_weather", '{"city": "Paris"}'),
        ("toolu_B", "now", "{}"),  # only "" streamed: no arguments, never json.loads("")
    ]
    assert turn.provider_data[THINKING_KEY] == [THINKING]
    assert (turn.usage.input_tokens, turn.usage.output_tokens) == (377, 65)
    assert turn.finish_reason == "tool_use"


def test_stream_error_event_raises():
    acc = StreamAccumulator()
    with pytest.raises(ProviderError, match="Overloaded"):
        acc.add(
            "error",
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
        )


# ---- real HTTP against the loopback server ----------------------------------------------------
@pytest.fixture
async def make(anthropic_server):
    made: list[AnthropicMessagesAdapter] = []

    def factory(version="2026-10-21", key=KEY, **kw) -> AnthropicMessagesAdapter:
        kw.setdefault("retry", RetryPolicy(max_retries=0))
        p = AnthropicMessagesAdapter(
            "claude-sonnet-4-6",
            api_key=key,
            base_url=anthropic_server.base_url,
            api_version=version,
            **kw,
        )
        made.append(p)
        return p

    yield factory
    for p in made:
        await p.aclose()


@pytest.mark.parametrize("version", ["2023-06-01", "2026-10-21"])
async def test_streaming_equals_non_streaming(anthropic_server, make, version):
    calls = [
        Call("get_weather", {"city": "Paris"}, id="toolu_01Paris"),
        Call("get_weather", {"city": "Rome"}, id="toolu_01Rome"),
    ]
    for _ in range(2):
        anthropic_server.push(
            Reply(text="I'll check both cities.", calls=calls, thinking="Two…", usage=(377, 96))
        )
    p = make(version)
    deltas: list[str] = []
    request = ModelRequest([Message("user", "Weather?")], TOOLS, system="sys")
    streamed = await p.turn(request, deltas.append)
    request.stream = False
    plain = await p.turn(request)
    assert [r.stream for r in anthropic_server.requests] == [True, False]
    assert len(deltas) > 1 and "".join(deltas) == streamed.text
    assert streamed.text == plain.text == "I'll check both cities."
    assert [(c.id, c.name, c.arguments) for c in streamed.tool_calls] == [
        (c.id, c.name, c.arguments) for c in plain.tool_calls
    ]
    assert [c.parsed_arguments() for c in plain.tool_calls] == [{"city": "Paris"}, {"city": "Rome"}]
    assert streamed.usage == plain.usage
    assert streamed.finish_reason == plain.finish_reason == "tool_use"
    assert [b["thinking"] for b in streamed.provider_data[THINKING_KEY]] == ["Two…"]
    assert [b["thinking"] for b in plain.provider_data[THINKING_KEY]] == ["Two…"]
    headers = anthropic_server.requests[0].headers
    assert headers["anthropic-version"] == version
    if version == "2023-06-01":
        assert headers["x-api-key"] == KEY and "authorization" not in headers
    else:
        assert headers["authorization"] == f"Bearer {KEY}" and "x-api-key" not in headers


@pytest.mark.parametrize("stream", [True, False])
async def test_round_trip_with_thinking_error_result_and_user_text(anthropic_server, make, stream):
    """The server checks pairing, results-first, non-empty text and the thinking echo."""
    anthropic_server.push(Reply(text="Checking.", calls=TWO_CALLS, thinking="Plan: two calls."))
    anthropic_server.push(Reply(text="Paris 18°C; Rome unknown."))
    p = make()
    history = [Message("user", "Weather in Paris and Rome?")]
    turn = await p.turn(ModelRequest(history, TOOLS, stream=stream))
    history.append(turn.to_message())
    history.append(
        Message(
            "tool",
            tool_results=[
                ToolResult(turn.tool_calls[0].id, "get_weather", "18°C"),
                ToolResult(turn.tool_calls[1].id, "get_weather", "timed out", is_error=True),
            ],
        )
    )
    history.append(Message("user", "One line, please."))
    final = await p.turn(ModelRequest(history, TOOLS, tool_choice="none", stream=stream))
    assert final.text == "Paris 18°C; Rome unknown." and not final.tool_calls
    sent = anthropic_server.requests[1].body["messages"]
    assert sent[1]["content"][0]["type"] == "thinking"
    assert [b["type"] for b in sent[2]["content"]] == ["tool_result", "tool_result", "text"]
    assert sent[2]["content"][1]["is_error"] is True
    assert anthropic_server.failures == []


async def test_foreign_ids_accepted_after_sanitising(anthropic_server, make):
    anthropic_server.push(Reply(text="ok"))
    history = tool_history(("functions.get_weather:0", "functions.get_weather:1"), thinking=False)
    turn = await make().turn(ModelRequest(history, TOOLS, stream=False))
    assert turn.text == "ok" and anthropic_server.failures == []


async def test_sampling_options_dropped_under_2026(anthropic_server, make):
    anthropic_server.push(Reply(text="ok"), Reply(text="ok"))
    request = ModelRequest([Message("user", "hi")], options={"temperature": 0.3})
    with pytest.warns(UserWarning, match="temperature"):
        assert (await make("2026-10-21").turn(request)).text == "ok"
    assert (await make("2023-06-01").turn(request)).text == "ok"
    assert [r.body.get("temperature") for r in anthropic_server.requests] == [None, 0.3]


async def test_cut_stream_raises_stream_error_with_partial_text(anthropic_server, make):
    anthropic_server.push(Reply(text="one two three four five", cut_after=5))
    deltas: list[str] = []
    with pytest.raises(StreamError) as info:
        await make().turn(ModelRequest([Message("user", "count")]), deltas.append)
    assert info.value.partial_text == "".join(deltas)
    assert info.value.partial_text.startswith("one ")


async def test_stream_without_message_stop_is_stream_error(anthropic_server, make, monkeypatch):
    """A stream that ends cleanly (terminating chunk) but without message_stop."""
    real = AnthropicServer.render_events

    def no_stop(self, reply, calls, rec):
        events, ctype = real(self, reply, calls, rec)
        return events[:-1], ctype

    monkeypatch.setattr(AnthropicServer, "render_events", no_stop)
    anthropic_server.push(Reply(text="almost done"))
    with pytest.raises(StreamError, match="message_stop") as info:
        await make().turn(ModelRequest([Message("user", "hi")]))
    assert info.value.partial_text == "almost done"


async def test_error_event_mid_stream(anthropic_server, make):
    anthropic_server.push(Reply(text="partial answer", stream_error="Overloaded"))
    with pytest.raises(ProviderError, match="Overloaded") as info:
        await make().turn(ModelRequest([Message("user", "hi")]))
    assert not isinstance(info.value, StreamError)


@pytest.mark.parametrize("version", ["2023-06-01", "2026-10-21"])
@pytest.mark.parametrize("stream", [True, False])
async def test_rejected_key_is_said_without_the_key(anthropic_server, make, version, stream):
    bad = "sk-ant-wrong-key-0123456789"
    with pytest.raises(AuthenticationError) as info:
        await make(version, key=bad).turn(ModelRequest([Message("user", "hi")], stream=stream))
    text = str(info.value)
    assert info.value.status == 401
    assert "API key was rejected" in text and bad not in text and bad not in repr(info.value)


async def test_server_errors_quote_the_provider_message(anthropic_server, make):
    anthropic_server.push(Reply(status=400, error_message="messages.0: bad thing"))
    with pytest.raises(ProviderError, match=r"messages\.0: bad thing") as info:
        await make().turn(ModelRequest([Message("user", "hi")], stream=False))
    assert info.value.status == 400
