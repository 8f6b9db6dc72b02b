"""GeminiGenerateContentAdapter and its schema translation: pure functions first, then real HTTP against the
loopback Gemini server (tests/servers/gemini.py)."""

from __future__ import annotations

import dataclasses
import json
from typing import Annotated, Any, Literal

import pytest

from llm_magic import RetryPolicy
from llm_magic.errors import AuthenticationError, ProviderError, StreamError, ToolDefinitionError
from llm_magic.messages import Message, ModelRequest, ToolCall, ToolResult, ToolSpec
from llm_magic.providers._schema import translate_schema
from llm_magic.providers.gemini import (
    ID_KEY,
    ORIGIN_KEY,
    SIGNATURE_KEY,
    SKIP_SIGNATURE,
    Accumulator,
    GeminiGenerateContentAdapter,
    tool_config,
    wire_contents,
)
from llm_magic.tools import Tool
from tests.servers import Call, GeminiServer, Reply

KEY = "sk-test-123"
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string", "title": "City"}},
    "required": ["city"],
    "additionalProperties": False,
}
TOOLS = [ToolSpec("get_weather", "Current weather for a city", SCHEMA)]
TWO_CALLS = [Call("get_weather", {"city": "Paris"}), Call("get_weather", {"city": "Rome"})]


def schema_problems(schema: dict[str, Any]) -> list[str]:
    """What the loopback server's Gemini schema check says about a translated schema."""
    problems: list[str] = []
    GeminiServer()._check_schema(schema, "parameters", problems)
    return problems


def gemini_calls(with_ids: bool) -> list[ToolCall]:
    out = []
    for n, city in enumerate(("Paris", "Rome")):
        data: dict[str, Any] = {ORIGIN_KEY: True}
        if with_ids:
            data[ID_KEY] = f"call_{n}"
        if n == 0:
            data[SIGNATURE_KEY] = "CiQBVKhc7xQ0k0X3"
        cid = f"call_{n}" if with_ids else f"call_local{n}"
        out.append(ToolCall(cid, "get_weather", json.dumps({"city": city}), data))
    return out


def history(calls: list[ToolCall]) -> list[Message]:
    return [
        Message("user", "Weather in Paris and Rome?"),
        Message("assistant", "Checking.", calls),
        Message(
            "tool",
            tool_results=[  # deliberately out of order: the wire follows the calls' order
                ToolResult(calls[1].id, "get_weather", "weather service timed out", True),
                ToolResult(calls[0].id, "get_weather", '{"temp_c": 18, "sky": "clear"}'),
            ],
        ),
        Message("user", "One line."),
    ]


# ---- schema translation -----------------------------------------------------------------------
def test_translate_drops_and_uppercases():
    out = translate_schema(SCHEMA)
    assert out == {
        "type": "OBJECT",
        "properties": {"city": {"type": "STRING"}},
        "required": ["city"],
    }


def test_translate_nullable_enum_const_format_and_refs():
    schema = {
        "type": "object",
        "$defs": {"Unit": {"enum": ["C", "F"], "type": "string", "title": "Unit"}},
        "properties": {
            "n": {
                "anyOf": [{"type": "integer"}, {"type": "null"}],
                "default": None,
                "description": "How many",
            },
            "unit": {"$ref": "#/$defs/Unit"},
            "level": {"enum": [1, 2, 3], "type": "integer"},
            "kind": {"const": "fixed"},
            "when": {"type": "string", "format": "date-time"},
            "day": {"type": "string", "format": "date"},
            "tags": {"type": ["array", "null"], "items": {"type": "string"}, "uniqueItems": True},
            "ratio": {"type": "number", "exclusiveMinimum": 0},
            "count": {"type": "integer", "exclusiveMinimum": 0},
            "either": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
        },
        "required": ["unit", "missing"],
    }
    out = translate_schema(schema)
    props = out["properties"]
    assert props["n"] == {"type": "INTEGER", "nullable": True, "description": "How many"}
    assert props["unit"] == {"type": "STRING", "enum": ["C", "F"]}
    assert props["level"]["type"] == "STRING" and props["level"]["enum"] == ["1", "2", "3"]
    assert props["kind"] == {"type": "STRING", "enum": ["fixed"]}
    assert props["when"] == {"type": "STRING", "format": "date-time"}
    assert props["day"] == {"type": "STRING", "description": "(format: date)"}
    assert props["tags"]["nullable"] is True and props["tags"]["items"] == {"type": "STRING"}
    assert "unique" in props["tags"]["description"]
    assert "greater than 0" in props["ratio"]["description"]
    assert props["count"]["minimum"] == 1
    assert props["either"] == {"anyOf": [{"type": "STRING"}, {"type": "INTEGER"}]}
    assert out["required"] == ["unit"]  # names without a property are left out
    assert schema_problems(out) == []


def test_translate_tuple_is_a_faithful_reduction():
    same = translate_schema(
        {"type": "array", "prefixItems": [{"type": "number"}] * 2, "minItems": 2, "maxItems": 2}
    )
    assert same == {"type": "ARRAY", "items": {"type": "NUMBER"}, "minItems": 2, "maxItems": 2}
    mixed = translate_schema(
        {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}]}
    )
    assert mixed["items"] == {"anyOf": [{"type": "INTEGER"}, {"type": "STRING"}]}
    assert (mixed["minItems"], mixed["maxItems"]) == (2, 2)
    assert "in this order: integer, string" in mixed["description"]
    assert schema_problems(mixed) == []


@dataclasses.dataclass
class Point:
    x: float
    y: float
    label: str | None = None


def test_real_tool_schemas_translate_to_what_gemini_accepts():
    def f(
        a: int,
        b: Annotated[str, "a name"],
        c: float | None = None,
        d: Literal["x", "y"] = "x",
        e: tuple[int, str] = (1, "a"),
        p: Point | None = None,
        q: list[Point] | None = None,
        s: bool = False,
        t: Literal[1, 2] = 1,
    ) -> None: ...

    schema = Tool.from_function(f).schema
    out = translate_schema(schema, "f")
    assert schema_problems(out) == []
    assert out["properties"]["p"]["nullable"] is True
    assert out["properties"]["p"]["properties"]["label"]["nullable"] is True


def test_mapping_parameter_is_no_bare_object():
    """Gemini rejects an OBJECT without properties: a dict[str, int] goes as JSON schema."""

    def f(r: dict[str, int] | None = None) -> None: ...

    with pytest.raises(ToolDefinitionError, match="without 'properties'"):
        translate_schema(Tool.from_function(f).schema, "f")


@pytest.mark.parametrize(
    "bad, keyword",
    [
        ({"not": {"type": "string"}}, "'not'"),
        ({"type": "string", "if": {}, "then": {}}, "'if'"),
        ({"allOf": [{"type": "string"}, {"minLength": 2}]}, "allOf"),
        ({}, "any type"),
        ({"type": "array"}, "items"),
        ({"type": ["string", "integer"]}, "'type'"),
    ],
)
def test_untranslatable_schema_names_tool_and_keyword(bad, keyword):
    schema = {"type": "object", "properties": {"x": bad}}
    with pytest.raises(ToolDefinitionError) as info:
        translate_schema(schema, "my_tool")
    text = str(info.value)
    assert "'my_tool'" in text and keyword in text and "parameters.properties.x" in text


def test_schema_format_modes():
    any_schema = {"type": "object", "properties": {"x": {}}, "required": ["x"]}
    tools = [ToolSpec("loose", "anything", any_schema), TOOLS[0]]
    request = ModelRequest([Message("user", "hi")], tools)
    auto = GeminiGenerateContentAdapter("gemini-3-flash", api_key=KEY).build_body(request)
    decls = auto["tools"][0]["functionDeclarations"]
    assert decls[0]["parametersJsonSchema"] == any_schema and "parameters" not in decls[0]
    assert decls[1]["parameters"]["type"] == "OBJECT"
    strict = GeminiGenerateContentAdapter("gemini-3-flash", api_key=KEY, schema_format="parameters")
    with pytest.raises(ToolDefinitionError, match="'loose'"):
        strict.build_body(request)
    js = GeminiGenerateContentAdapter("gemini-3-flash", api_key=KEY, schema_format="json_schema")
    assert (
        js.build_body(request)["tools"][0]["functionDeclarations"][1]["parametersJsonSchema"]
        == SCHEMA
    )


# ---- request bodies ---------------------------------------------------------------------------
def test_body_system_contents_tools_and_generation_config():
    p = GeminiGenerateContentAdapter(
        "models/gemini-3-flash", api_key=KEY, options={"temperature": 0.1}
    )
    no_args = ToolSpec("now", "The time", {"type": "object", "properties": {}, "required": []})
    body = p.build_body(
        ModelRequest(
            [Message("system", "Rule two."), Message("user", "hi")],
            [*TOOLS, no_args],
            system="Rule one.",
            tool_choice="auto",
            options={"max_tokens": 99, "top_p": 0.5, "stop": "END"},
        )
    )
    assert p.model == "gemini-3-flash"
    assert body["systemInstruction"] == {"parts": [{"text": "Rule one.\n\nRule two."}]}
    assert body["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]
    decls = body["tools"][0]["functionDeclarations"]
    assert decls[0]["parameters"]["properties"] == {"city": {"type": "STRING"}}
    assert decls[1] == {"name": "now", "description": "The time"}  # no empty OBJECT
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}
    assert body["generationConfig"] == {
        "temperature": 0.1,
        "maxOutputTokens": 99,
        "topP": 0.5,
        "stopSequences": ["END"],
    }


@pytest.mark.parametrize(
    "choice, config",
    [
        ("auto", {"mode": "AUTO"}),
        ("required", {"mode": "ANY"}),
        ("none", {"mode": "NONE"}),
        ("get_weather", {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}),
    ],
)
def test_tool_config(choice, config):
    assert tool_config(choice) == config


def test_provider_ids_echoed_with_signature_on_exact_part():
    contents = wire_contents(history(gemini_calls(with_ids=True)))
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    model = contents[1]["parts"]
    assert model[0] == {"text": "Checking."}
    assert model[1] == {
        "functionCall": {"id": "call_0", "name": "get_weather", "args": {"city": "Paris"}},
        "thoughtSignature": "CiQBVKhc7xQ0k0X3",
    }
    assert model[2] == {
        "functionCall": {"id": "call_1", "name": "get_weather", "args": {"city": "Rome"}}
    }
    assert contents[2]["parts"] == [
        {
            "functionResponse": {
                "id": "call_0",
                "name": "get_weather",
                "response": {"output": {"temp_c": 18, "sky": "clear"}},
            }
        },
        {
            "functionResponse": {
                "id": "call_1",
                "name": "get_weather",
                "response": {"error": "weather service timed out"},
            }
        },
        {"text": "One line."},
    ]


def test_synthesised_ids_never_sent():
    contents = wire_contents(history(gemini_calls(with_ids=False)))
    calls = [p["functionCall"] for p in contents[1]["parts"] if "functionCall" in p]
    responses = [p["functionResponse"] for p in contents[2]["parts"] if "functionResponse" in p]
    assert all("id" not in x for x in calls + responses)
    assert [r["name"] for r in responses] == ["get_weather", "get_weather"]
    assert responses[0]["response"] == {"output": {"temp_c": 18, "sky": "clear"}}  # call order


def test_foreign_calls_get_the_documented_skip_signature():
    calls = [
        ToolCall("call_abc", "get_weather", '{"city": "Oslo"}'),
        ToolCall("call_def", "get_weather", '{"city": "Rome"}'),
    ]
    parts = wire_contents(history(calls))[1]["parts"]
    assert parts[1]["thoughtSignature"] == SKIP_SIGNATURE
    assert "thoughtSignature" not in parts[2]
    assert "id" not in parts[1]["functionCall"]


def test_result_values_are_objects():
    calls = [ToolCall("a", "f", "{}", {ORIGIN_KEY: True})]
    for content, expected in [
        ("plain text", "plain text"),
        ("42", 42),
        ("[1, 2]", [1, 2]),
        ("NaN", "NaN"),
        ("", ""),
    ]:
        msgs = [
            Message("user", "go"),
            Message("assistant", "", calls),
            Message("tool", tool_results=[ToolResult("a", "f", content)]),
        ]
        part = wire_contents(msgs)[2]["parts"][0]["functionResponse"]
        assert part["response"] == {"output": expected}


# ---- response parsing -------------------------------------------------------------------------
RESPONSE = {
    "candidates": [
        {
            "content": {
                "role": "model",
                "parts": [
                    {"text": "Checking."},
                    {
                        "functionCall": {
                            "id": "call_4162774",
                            "name": "get_weather",
                            "args": {"city": "Paris"},
                        },
                        "thoughtSignature": "SIG==",
                    },
                    {"functionCall": {"name": "now"}},
                ],
            },
            "finishReason": "STOP",
            "index": 0,
        }
    ],
    "usageMetadata": {"promptTokenCount": 52, "candidatesTokenCount": 24, "totalTokenCount": 76},
}


def test_parse_response():
    acc = Accumulator()
    assert acc.add(RESPONSE) == "Checking."
    turn = acc.turn()
    assert turn.text == "Checking." and turn.finish_reason == "STOP"
    first, second = turn.tool_calls
    assert first.id == "call_4162774" and first.parsed_arguments() == {"city": "Paris"}
    assert first.provider_data[ID_KEY] == "call_4162774"
    assert first.provider_data[SIGNATURE_KEY] == "SIG=="
    assert second.name == "now" and second.arguments == "{}" and second.id
    assert ID_KEY not in second.provider_data  # a made-up id, never echoed
    assert (turn.usage.input_tokens, turn.usage.output_tokens) == (52, 24)
    echoed = wire_contents([Message("user", "q"), turn.to_message()])[1]["parts"]
    assert echoed[1]["thoughtSignature"] == "SIG==" and "id" not in echoed[2]["functionCall"]


def test_blocked_responses_raise():
    acc = Accumulator()
    acc.add({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {}})
    with pytest.raises(ProviderError, match=r"prompt was blocked.*SAFETY"):
        acc.turn()
    acc = Accumulator()
    acc.add({"candidates": [{"finishReason": "RECITATION", "index": 0}]})
    with pytest.raises(ProviderError, match=r"response was blocked.*RECITATION"):
        acc.turn()
    acc = Accumulator()
    acc.add({"candidates": [{"finishReason": "MALFORMED_FUNCTION_CALL", "finishMessage": "bad"}]})
    with pytest.raises(ProviderError, match="MALFORMED_FUNCTION_CALL: bad"):
        acc.turn()
    acc = Accumulator()  # some text, then SAFETY: the text is kept, the reason surfaced
    acc.add({"candidates": [{"content": {"parts": [{"text": "Part"}]}, "finishReason": "SAFETY"}]})
    assert acc.turn().finish_reason == "SAFETY"


def test_thought_parts_are_not_answer_text():
    acc = Accumulator()
    acc.add(
        {
            "candidates": [
                {
                    "content": {
                        "parts": [
                            {"text": "thinking...", "thought": True},
                            {"text": "Answer", "thoughtSignature": "T"},
                        ]
                    },
                    "finishReason": "STOP",
                }
            ]
        }
    )
    turn = acc.turn()
    assert turn.text == "Answer"
    assert wire_contents([Message("user", "q"), turn.to_message()])[1]["parts"] == [
        {"text": "Answer", "thoughtSignature": "T"}
    ]


# ---- real HTTP against the loopback server ----------------------------------------------------
@pytest.fixture
async def make():
    made: list[GeminiGenerateContentAdapter] = []

    def factory(server, key=KEY, **kw) -> GeminiGenerateContentAdapter:
        kw.setdefault("retry", RetryPolicy(max_retries=0))
        p = GeminiGenerateContentAdapter(
            "gemini-3-flash", api_key=key, base_url=server.base_url, **kw
        )
        made.append(p)
        return p

    yield factory
    for p in made:
        await p.aclose()


@pytest.fixture
def gemini2_server():
    """A Gemini 2 style server: no functionCall ids."""
    with GeminiServer(ids=False) as server:
        yield server
    assert server.failures == []


async def test_streaming_equals_non_streaming(gemini_server, make):
    calls = [Call(c.name, c.arguments, id=f"call_{n}") for n, c in enumerate(TWO_CALLS)]
    reply = dict(text="Let me check both cities.", calls=calls, thought_signature="SIG==")
    gemini_server.push(Reply(**reply, usage=(52, 24)), Reply(**reply, usage=(52, 24)))
    p = make(gemini_server)
    deltas: list[str] = []
    request = ModelRequest([Message("user", "Weather?")], TOOLS, system="sys")
    streamed = await p.turn(request, deltas.append)
    request.stream = False
    plain = await p.turn(request)
    paths = [r.path for r in gemini_server.requests]
    assert paths == [
        "/v1beta/models/gemini-3-flash:streamGenerateContent?alt=sse",
        "/v1beta/models/gemini-3-flash:generateContent",
    ]
    assert gemini_server.requests[0].headers["x-goog-api-key"] == KEY
    assert len(deltas) > 1 and "".join(deltas) == streamed.text == plain.text
    assert [(c.id, c.name, c.arguments, c.provider_data) for c in streamed.tool_calls] == [
        (c.id, c.name, c.arguments, c.provider_data) for c in plain.tool_calls
    ]
    assert [c.id for c in plain.tool_calls] == ["call_0", "call_1"]
    assert [c.parsed_arguments() for c in plain.tool_calls] == [{"city": "Paris"}, {"city": "Rome"}]
    assert streamed.usage == plain.usage and streamed.usage.input_tokens == 52
    assert streamed.finish_reason == plain.finish_reason == "STOP"


@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize("ids", [True, False])
async def test_round_trip(gemini_server, gemini2_server, make, stream, ids):
    """The server checks id echo, signatures on the exact part, counts, order, object responses."""
    server = gemini_server if ids else gemini2_server
    server.push(Reply(text="Checking.", calls=TWO_CALLS, thought_signature="SIG=="))
    server.push(Reply(text="Paris 18°C; Rome unknown."))
    p = make(server)
    msgs = [Message("user", "Weather in Paris and Rome?")]
    turn = await p.turn(ModelRequest(msgs, TOOLS, stream=stream))
    assert [ID_KEY in c.provider_data for c in turn.tool_calls] == [ids, ids]
    msgs.append(turn.to_message())
    msgs.append(
        Message(
            "tool",
            tool_results=[
                ToolResult(turn.tool_calls[0].id, "get_weather", '{"temp_c": 18}'),
                ToolResult(turn.tool_calls[1].id, "get_weather", "timed out", is_error=True),
            ],
        )
    )
    final = await p.turn(ModelRequest(msgs, TOOLS, tool_choice="none", stream=stream))
    assert final.text == "Paris 18°C; Rome unknown."
    sent = server.requests[1].body["contents"]
    assert sent[1]["parts"][1]["thoughtSignature"] == "SIG=="
    responses = [x["functionResponse"] for x in sent[2]["parts"]]
    assert [("id" in r) for r in responses] == [ids, ids]
    assert responses[1]["response"] == {"error": "timed out"}
    assert server.failures == []


async def test_cut_stream_raises_stream_error_with_partial_text(gemini_server, make):
    gemini_server.push(Reply(text="one two three four five", cut_after=2))
    deltas: list[str] = []
    with pytest.raises(StreamError) as info:
        await make(gemini_server).turn(ModelRequest([Message("user", "count")]), deltas.append)
    assert info.value.partial_text == "".join(deltas) == "one two "


async def test_eof_without_finish_reason_is_stream_error(gemini_server, make, monkeypatch):
    """The stream closes cleanly, but no chunk carried a finishReason: it was cut."""
    real = GeminiServer.render_events

    def no_finish(self, reply, calls, rec):
        events, ctype = real(self, reply, calls, rec)
        return events[:-1], ctype

    monkeypatch.setattr(GeminiServer, "render_events", no_finish)
    gemini_server.push(Reply(text="one two three"))
    with pytest.raises(StreamError, match="finishReason") as info:
        await make(gemini_server).turn(ModelRequest([Message("user", "count")]))
    assert info.value.partial_text == "one two "


async def test_error_chunk_mid_stream(gemini_server, make):
    gemini_server.push(Reply(text="partial answer", stream_error="Internal error"))
    with pytest.raises(ProviderError, match="Internal error"):
        await make(gemini_server).turn(ModelRequest([Message("user", "hi")]))


@pytest.mark.parametrize("stream", [True, False])
async def test_rejected_key_is_said_without_the_key(gemini_server, make, stream):
    bad = "AIzaSy-wrong-key-0123456789"
    with pytest.raises(AuthenticationError) as info:
        await make(gemini_server, key=bad).turn(
            ModelRequest([Message("user", "hi")], stream=stream)
        )
    text = str(info.value)
    assert info.value.status == 400  # Gemini's bad key is a 400 API_KEY_INVALID
    assert "API key was rejected" in text and bad not in text and bad not in repr(info.value)


async def test_wrapped_error_body(make):
    with GeminiServer(wrap_errors=True) as server:
        server.push(Reply(status=404, error_message="models/gemini-nope is not found"))
        with pytest.raises(ProviderError, match="is not found") as info:
            await make(server).turn(ModelRequest([Message("user", "hi")], stream=False))
    assert info.value.status == 404


async def test_schema_fallback_accepted_by_server(gemini_server, make):
    gemini_server.push(Reply(text="ok"))
    loose = ToolSpec("loose", "anything", {"type": "object", "properties": {"x": {}}})
    turn = await make(gemini_server).turn(ModelRequest([Message("user", "hi")], [loose, *TOOLS]))
    assert turn.text == "ok" and gemini_server.failures == []
