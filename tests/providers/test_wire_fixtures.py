"""Request/response examples from the official API references (tests/fixtures/wire/): our
servers accept the requests, our encoders reproduce them, our parsers read the responses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx2
import pytest

from llm_magic._sse import SSEDecoder
from llm_magic.messages import Message, ModelRequest, ToolCall, ToolResult, ToolSpec
from llm_magic.providers import anthropic, gemini, openai
from tests.servers import Reply, make_server

WIRE = Path(__file__).parents[1] / "fixtures" / "wire"
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
OPTIONAL_UNSENT = {"_source", "strict", "tool_choice", "parallel_tool_calls"}


def load(name: str) -> dict[str, Any]:
    return json.loads((WIRE / name).read_text())


def events(name: str) -> list[Any]:
    decoder = SSEDecoder()
    return [*decoder.feed((WIRE / name).read_text()), *decoder.flush()]


def without(obj: Any, keys: set[str]) -> Any:
    """The fixture minus fields the API documents as optional and we do not send."""
    if isinstance(obj, dict):
        return {k: without(v, keys) for k, v in obj.items() if k not in keys}
    if isinstance(obj, list):
        return [without(v, keys) for v in obj]
    return obj


def history(ids: tuple[str, str], text: str = "", data: list[dict[str, Any]] | None = None):
    """The neutral conversation behind every request fixture."""
    data = data or [{}, {}]
    calls = [
        ToolCall(ids[i], "get_weather", json.dumps({"city": c}, separators=(",", ":")), data[i])
        for i, c in enumerate(("Paris", "Rome"))
    ]
    return [Message("user", "Weather in Paris and Rome?"), Message("assistant", text, calls)]


def post_to_server(kind: str, body: dict[str, Any], path: str, headers: dict[str, str]) -> None:
    with make_server(kind, [Reply(text="ok")]) as server:
        response = httpx2.post(server.base_url + path, json=body, headers=headers)
        assert response.status_code == 200, response.text


def test_openai_request() -> None:
    fixture = load("openai_request_tool_results.json")
    ids = ("call_fdNz3vOBKYgOIpMdWotB9MjY", "call_h1DWI1POMJLb0KwIyQHWXD4p")
    results = [
        ToolResult(ids[0], "get_weather", '{"temp_c":18,"sky":"clear"}'),
        ToolResult(ids[1], "get_weather", "ERROR: upstream weather service timed out", True),
    ]
    schema = {**SCHEMA, "additionalProperties": False}
    request = ModelRequest(
        [*history(ids), Message("tool", tool_results=results)],
        [ToolSpec("get_weather", "Current weather for a city", schema)],
        stream=False,
    )
    sent = openai.OpenAIChatAdapter("gpt-4.1", api_key="k").build_body(request)
    sent.pop("stream")
    assert json.dumps(sent, sort_keys=True) == json.dumps(
        without(fixture, OPTIONAL_UNSENT), sort_keys=True
    )
    body = without(fixture, {"_source"})
    post_to_server("openai", body, "/chat/completions", {"authorization": "Bearer sk-test-123"})


def test_anthropic_request() -> None:
    fixture = load("anthropic_request_tool_results.json")
    ids = ("toolu_01NRLabsLyVHZPKxbKvkfSMn", "toolu_01T1x1fJ34qAmk2tNTrN7Up6")
    results = [
        ToolResult(ids[0], "get_weather", "18°C, clear"),
        ToolResult(ids[1], "get_weather", "weather service timed out", True),
    ]
    request = ModelRequest(
        [
            *history(ids, "I'll check both cities."),
            Message("tool", tool_results=results),
            Message("user", "Keep the answer to one line."),
        ],
        [ToolSpec("get_weather", "Current weather for a city", SCHEMA)],
        stream=False,
        options={"max_tokens": 1024},
    )
    sent = anthropic.AnthropicMessagesAdapter("claude-sonnet-4-6", api_key="k").build_body(request)
    expected = without(fixture, OPTIONAL_UNSENT)
    first = expected["messages"][0]  # a string content is the one-text-block list we send
    first["content"] = [{"type": "text", "text": first["content"]}]
    assert json.dumps(sent, sort_keys=True) == json.dumps(expected, sort_keys=True)
    headers = {"x-api-key": "sk-test-123", "anthropic-version": "2023-06-01"}
    post_to_server("anthropic", without(fixture, {"_source"}), "/v1/messages", headers)


def test_gemini_request() -> None:
    fixture = load("gemini_request_tool_results.json")
    ids = ("call_4162774", "call_4162775")
    data = [
        {gemini.ID_KEY: ids[0], gemini.ORIGIN_KEY: True},
        {gemini.ID_KEY: ids[1], gemini.ORIGIN_KEY: True},
    ]
    data[0][gemini.SIGNATURE_KEY] = "CiQBVKhc7xQ0k0X3m9d2c3JpcHQ="
    results = [
        ToolResult(ids[0], "get_weather", '{"temp_c": 18, "sky": "clear"}'),
        ToolResult(ids[1], "get_weather", "weather service timed out", True),
    ]
    request = ModelRequest(
        [*history(ids, data=data), Message("tool", tool_results=results)],
        [ToolSpec("get_weather", "Current weather for a city", SCHEMA)],
        stream=False,
    )
    sent = gemini.GeminiGenerateContentAdapter("gemini-3-flash", api_key="k").build_body(request)
    assert json.dumps(sent, sort_keys=True) == json.dumps(
        without(fixture, OPTIONAL_UNSENT), sort_keys=True
    )
    path = "/models/gemini-3-flash:generateContent"
    post_to_server("gemini", without(fixture, {"_source"}), path, {"x-goog-api-key": "sk-test-123"})


def calls_of(turn) -> list[tuple[str, str, dict[str, Any]]]:
    return [(c.id, c.name, json.loads(c.arguments)) for c in turn.tool_calls]


@pytest.mark.parametrize("stream", [False, True])
def test_openai_response(stream: bool) -> None:
    if stream:
        acc = openai.StreamAccumulator()
        for event in events("openai_stream_parallel_calls.sse"):
            acc.feed(event)
        turn, first = acc.turn(), "call_JMW1whyEaYG438VE1OIflxA2"
    else:
        turn = openai.parse_completion(load("openai_response_parallel_calls.json"))
        first = "call_fdNz3vOBKYgOIpMdWotB9MjY"
    assert calls_of(turn)[0] == (
        first,
        "GetWeatherArgs",
        {"city": "Edinburgh", "country": "GB", "units": "c"},
    )
    assert calls_of(turn)[1][1:] == ("get_stock_price", {"ticker": "AAPL", "exchange": "NASDAQ"})
    assert (turn.usage.input_tokens, turn.usage.output_tokens, turn.text) == (149, 60, "")


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_response(stream: bool) -> None:
    if stream:
        acc = anthropic.StreamAccumulator()
        text = "".join(acc.feed(e) for e in events("anthropic_stream_tool_use.sse"))
        turn = acc.turn()
        assert acc.done and text == turn.text == "I'll check the current weather in Paris for you."
        assert calls_of(turn) == [
            ("toolu_01NRLabsLyVHZPKxbKvkfSMn", "get_weather", {"location": "Paris"})
        ]
        assert (turn.usage.input_tokens, turn.usage.output_tokens) == (377, 65)
    else:
        turn = anthropic.parse_message(load("anthropic_response_parallel_calls.json"))
        assert turn.text == "I'll check both cities." and turn.finish_reason == "tool_use"
        assert [c[2]["city"] for c in calls_of(turn)] == ["Paris", "Rome"]


@pytest.mark.parametrize("stream", [False, True])
def test_gemini_response_round_trips_its_signature(stream: bool) -> None:
    if stream:
        acc = gemini.Accumulator()
        text = "".join(acc.feed(e) for e in events("gemini_stream_parallel_calls.sse"))
        turn = acc.turn()
        assert acc.done and text == turn.text == "Let me check both cities."
    else:
        turn = gemini.GeminiGenerateContentAdapter("g", api_key="k").parse(
            load("gemini_response_parallel_calls.json")
        )
    assert [c[2]["city"] for c in calls_of(turn)] == ["Paris", "Rome"]
    parts = gemini.wire_contents([Message("user", "hi"), turn.to_message()])[1]["parts"]
    assert parts[-2]["thoughtSignature"] == "CiQBVKhc7xQ0k0X3m9d2c3JpcHQ="
    assert "thoughtSignature" not in parts[-1]


def test_fixtures_hold_no_keys() -> None:
    for path in WIRE.iterdir():
        text = path.read_text()
        assert "sk-" not in text.replace("sk-test", "") and "AIza" not in text, path.name


def shape(obj: Any) -> Any:
    """Keys and value types, not values (a list is the shape of its first item)."""
    if isinstance(obj, dict):
        return {k: shape(v) for k, v in obj.items() if not k.startswith("_")}
    if isinstance(obj, list):
        return [shape(obj[0])] if obj else []
    return type(obj).__name__


def missing(reference: Any, ours: Any, where: str = "") -> list[str]:
    """Fields of the reference's shape that our rendering lacks or types differently."""
    if isinstance(reference, dict):
        if not isinstance(ours, dict):
            return [where or "."]
        return [m for k, v in reference.items() for m in missing(v, ours.get(k), f"{where}.{k}")]
    if isinstance(reference, list):
        return missing(reference[0], ours[0], where + "[0]") if reference and ours else []
    return [] if reference in ("NoneType", ours) or ours == "NoneType" else [f"{where}: {ours}"]


@pytest.mark.parametrize(
    "kind, fixture, path, headers",
    [
        (
            "openai",
            "openai_response_parallel_calls.json",
            "/chat/completions",
            {"authorization": "Bearer sk-test-123"},
        ),
        (
            "anthropic",
            "anthropic_response_parallel_calls.json",
            "/v1/messages",
            {"x-api-key": "sk-test-123", "anthropic-version": "2023-06-01"},
        ),
        (
            "gemini",
            "gemini_response_parallel_calls.json",
            "/models/gemini-3-flash:generateContent",
            {"x-goog-api-key": "sk-test-123"},
        ),
    ],
)
def test_our_servers_answer_in_the_references_shape(kind, fixture, path, headers) -> None:
    from tests.servers import Call

    calls = [Call("get_weather", {"city": "Paris"}), Call("get_weather", {"city": "Rome"})]
    reply = Reply(text="I'll check both cities." if kind == "anthropic" else "", calls=calls)
    if kind == "gemini":
        reply.thought_signature = "c2ln"
    request = {
        "openai": {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
        "anthropic": {
            "model": "claude-sonnet-4-6",
            "max_tokens": 64,
            "messages": [{"role": "user", "content": "hi"}],
        },
        "gemini": {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
    }[kind]
    with make_server(kind, [reply]) as server:
        ours = httpx2.post(server.base_url + path, json=request, headers=headers).json()
    reference = shape(load(fixture))
    reference.get("usageMetadata", {}).pop("thoughtsTokenCount", None)  # thinking models only
    assert missing(reference, shape(ours)) == []
