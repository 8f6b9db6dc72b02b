"""The loopback servers reject, with each API's error body, the request shapes the real APIs refuse."""

from __future__ import annotations

import pytest

from tests.providers.test_servers_selfcheck import SCHEMA, parse, post, results_history
from tests.servers import Call, Reply

TUPLE = {
    "type": "object",
    "properties": {"at": {"type": "array", "prefixItems": [{"type": "number"}] * 2}},
}
DANGLING = {"type": "object", "properties": {"t": {"$ref": "#/$defs/Tree"}}}
EMPTY_ENUM = {"type": "object", "properties": {"m": {"type": "string", "enum": ["", "x"]}}}
MAP = {"type": "object", "properties": {"c": {"type": "object"}}}


def with_schema(server, schema, name="f"):
    """Request kwargs declaring one tool `name` with `schema`, in the server's wire format."""
    if server.provider == "openai":
        fn = {"name": name, "description": "d", "parameters": schema}
        return {"tools": [{"type": "function", "function": fn}]}
    if server.provider == "openai-responses":
        fn = {"name": name, "description": "d", "parameters": schema, "strict": False}
        return {"tools": [{"type": "function", **fn}]}
    if server.provider == "anthropic":
        return {"tools": [{"name": name, "description": "d", "input_schema": schema}]}
    decl = {"name": name, "description": "d", "parameters": schema}
    return {"tools": [{"functionDeclarations": [decl]}]}


def error_message(server, body) -> str:
    """The message of the provider's own error body shape."""
    if server.provider == "anthropic":
        assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
        return body["error"]["message"]
    if server.provider == "gemini":
        assert body["error"]["status"] == "INVALID_ARGUMENT" and body["error"]["code"] == 400
        return body["error"]["message"]
    assert body["error"]["type"] == "invalid_request_error"
    return body["error"]["message"]


def rejected(server, **kw) -> str:
    status, body = post(server, **kw)
    assert status == 400, body
    assert server.take_failures()
    return error_message(server, body)


def test_openai_array_without_items(openai_server):
    assert "array schema missing items" in rejected(
        openai_server, **with_schema(openai_server, TUPLE)
    )


@pytest.mark.parametrize("kind", ["openai", "anthropic", "gemini"])
def test_dangling_ref(kind, request):
    server = request.getfixturevalue(f"{kind}_server")
    kw = with_schema(server, DANGLING)
    if kind == "gemini":  # `parameters` has no $ref at all; parametersJsonSchema resolves it
        decl = kw["tools"][0]["functionDeclarations"][0]
        decl["parametersJsonSchema"] = decl.pop("parameters")
    message = rejected(server, **kw)
    assert "#/$defs/Tree" in message or "JSON schema is invalid" in message


def test_gemini_empty_enum_and_bare_object(gemini_server):
    s = gemini_server
    assert "enum[0]: cannot be empty" in rejected(s, **with_schema(s, EMPTY_ENUM))
    assert "should be non-empty for OBJECT type" in rejected(s, **with_schema(s, MAP))


@pytest.mark.parametrize("name", ["température", "x" * 65])
def test_invalid_tool_names(provider_server, name):
    s = provider_server
    if s.provider == "gemini" and len(name) < 128 and name.isascii():
        pytest.skip("Gemini takes names up to 128 characters")
    rejected(s, **with_schema(s, SCHEMA, name))


def test_openai_max_tokens_on_reasoning_model(openai_server):
    s = openai_server
    assert "max_completion_tokens" in rejected(s, model="o3", max_tokens=10)
    s.push(Reply(text="ok"))
    assert post(s, model="o3", max_completion_tokens=10)[0] == 200
    s.push(Reply(text="ok"))
    assert post(s, model="gpt-4.1", max_tokens=10)[0] == 200  # deprecated, still accepted


CLOSED = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "tags": {"type": "array", "items": {}}},
    "required": ["city", "tags"],
    "additionalProperties": False,
}


def json_schema(schema=CLOSED, **spec):
    return {"type": "json_schema", "json_schema": {"name": "Trip", "schema": schema, **spec}}


@pytest.mark.parametrize(
    ("fmt", "said"),
    [
        ({"type": "json"}, "Supported values are: 'json_object', 'json_schema', and 'text'."),
        ({"type": "json_schema"}, "Missing required parameter: 'response_format.json_schema'."),
        (json_schema(name="a trip"), "'response_format.json_schema.name': string does not match"),
        (json_schema(strict=True, schemas={}), "response_format.json_schema.schemas"),
        (
            json_schema({**CLOSED, "additionalProperties": True}, strict=True),
            "'additionalProperties' is required to be supplied and to be false.",
        ),
        (
            json_schema({**CLOSED, "required": ["city"]}, strict=True),
            "including every key in properties. Missing 'tags'.",
        ),
        (
            json_schema({**CLOSED, "properties": {"at": TUPLE["properties"]["at"]}}, strict=True),
            "array schema missing items.",
        ),
    ],
    ids=["type", "no-json_schema", "name", "unknown-key", "open", "optional", "no-items"],
)
def test_openai_response_format_in_its_documented_shape_only(openai_server, fmt, said):
    assert said in rejected(openai_server, response_format=fmt)


def test_openai_response_format_accepted_shapes(openai_server):
    s = openai_server
    for fmt in (
        json_schema(strict=True),
        json_schema({**CLOSED, "required": ["city"]}, strict=False),  # not strict: any schema
        {"type": "json_object"},
        {"type": "text"},
    ):
        s.push(Reply(json_content={"city": "Rome", "tags": []}))
        status, body = post(s, response_format=fmt)
        assert status == 200, body
        assert body["choices"][0]["message"]["content"] == '{"city": "Rome", "tags": []}'


def test_gemini_signature_on_a_non_call_part_must_come_back(gemini_server):
    s = gemini_server
    call = Call("get_weather", {"city": "Paris"})
    s.push(
        Reply(calls=[call], thought_signature="c2lnLTI=", signature_on="empty_text"),
        Reply(text="ok"),
    )
    out = post(s)[1]
    parts = out["candidates"][0]["content"]["parts"]
    assert parts[-1] == {"text": "", "thoughtSignature": "c2lnLTI="}
    history = results_history("gemini", parse("gemini", False, out)[1])
    assert post(s, history)[0] == 400 and "thought_signature" in s.take_failures()[0]
    history[1]["parts"] = parts
    assert post(s, history)[0] == 200


def test_leaving_a_server_enforces_its_checks() -> None:
    from tests.servers import OpenAIServer

    with pytest.raises(AssertionError, match="1 malformed request"):
        with OpenAIServer() as s:
            assert post(s, model="")[0] == 400  # nobody looks at s.failures
    with pytest.raises(ValueError, match="the test's own error") as info:
        with OpenAIServer() as s:
            post(s, model="")
            raise ValueError("the test's own error")
    assert "Missing required parameter: 'model'" in "\n".join(info.value.__notes__)
    s = OpenAIServer().start()
    post(s, model="")
    with pytest.raises(AssertionError, match="malformed"):
        s.close()
