"""Issue 11's request shapes on every provider they concern, over real loopback HTTP.

The servers reject what the real APIs reject (array schemas without `items`, OBJECTs without
properties, empty enum values, unresolved `$ref`s, invalid tool names, `max_tokens` on reasoning
models, missing Gemini 3 signatures); a server failure fails the test when the server closes.
"""

from __future__ import annotations

import json
from typing import Literal

import pydantic
import pytest

import llm_magic
from llm_magic import ProviderError, RefusalError, Tool
from llm_magic._tool_names import wire_name
from llm_magic.messages import FINAL_TURN_INSTRUCTION
from tests.providers.test_conformance import MODEL_FOR, model_for
from tests.servers import Call, GeminiServer, OpenAIServer, Reply


def place(at: tuple[float, float]) -> str:
    """Name the place at a coordinate."""
    return f"place at {at[0]:.1f},{at[1]:.1f}"


def tally(counts: dict[str, int]) -> int:
    """Add up counts."""
    return sum(counts.values())


def pick(mode: Literal["", "fast"]) -> str:
    """Pick a mode ("" for the default)."""
    return mode or "default"


class Tree(pydantic.BaseModel):
    label: str
    children: list[Tree] = []


class Pair(pydantic.BaseModel):
    value: int
    left: Pair | None = None
    right: Pair | None = None


def size(tree: Tree) -> int:
    """Count the nodes of a tree."""
    return 1 + sum(size(c) for c in tree.children)


def depth(pair: Pair) -> int:
    """Depth of a binary tree."""
    return 1 + max(depth(pair.left) if pair.left else 0, depth(pair.right) if pair.right else 0)


def température(ville: str) -> str:
    """La température d'une ville."""
    return f"21 à {ville}"


def a_tool_name_that_is_much_longer_than_the_sixty_four_characters_allowed(x: int) -> int:
    """Doubles x."""
    return 2 * x


CASES = [
    (place, {"at": [48.8, 2.3]}, "place at 48.8,2.3"),
    (tally, {"counts": {"a": 2, "b": 3}}, 5),
    (pick, {"mode": ""}, "default"),
    (size, {"tree": {"label": "r", "children": [{"label": "c", "children": []}]}}, 2),
    (depth, {"pair": {"value": 1, "left": {"value": 2}}}, 2),
    (température, {"ville": "Paris"}, "21 à Paris"),
    (a_tool_name_that_is_much_longer_than_the_sixty_four_characters_allowed, {"x": 4}, 8),
]


@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize("fn, args, expected", CASES, ids=[c[0].__name__[:20] for c in CASES])
async def test_every_provider_accepts_the_tool(provider_server, fn, args, expected, stream):
    name = wire_name(fn.__name__)
    provider_server.push(Reply(calls=[Call(name, args)]), Reply(text="ok"))
    result = await model_for(provider_server).chain("go", tools=[fn], stream=stream)
    assert result.status == "done", result.error
    [call] = result.tool_calls
    assert (call.name, call.status, call.result) == (fn.__name__, "ok", expected)
    sent = json.dumps(provider_server.requests[0].body, ensure_ascii=False)
    assert f'"{fn.__name__}"' not in sent or name == fn.__name__  # invalid names never sent


def test_recursive_models_keep_refs_instead_of_inlining() -> None:
    for fn in (size, depth):
        schema = Tool.from_function(fn).schema
        text = json.dumps(schema)
        assert '"$ref": "#/$defs/' in text and set(schema["$defs"]) <= {"Tree", "Pair"}
        assert len(text) < 2000  # linear, not 20 inlined levels per self-reference


def test_names_map_to_valid_wire_names() -> None:
    names = [température.__name__, "x" * 70, "日本"]
    wires = [wire_name(n) for n in names]
    assert all(len(w) <= 64 and w.isascii() and w.replace("_", "").isalnum() for w in wires)
    assert len(set(wires)) == 3 and wire_name("get_weather") == "get_weather"


async def test_reasoning_models_get_max_completion_tokens() -> None:
    with OpenAIServer([Reply(text="ok")]) as server:
        model = llm_magic.get_async_model(
            "openai-chat:o3", base_url=server.base_url, api_key=server.api_key
        )
        result = await model.chain("hi", model_options={"max_tokens": 50})
        assert result.text == "ok"
        body = server.requests[0].body
        assert body["max_completion_tokens"] == 50 and "max_tokens" not in body


async def test_server_rejects_max_tokens_on_reasoning_models() -> None:
    with OpenAIServer([Reply(text="ok")]) as server:
        model = llm_magic.get_async_model(
            "openai-compatible:o3", base_url=server.base_url, api_key=server.api_key
        )
        with pytest.raises(ProviderError, match="max_completion_tokens"):
            await model.chain("hi", model_options={"max_tokens": 50})
        assert server.take_failures()


@pytest.mark.parametrize("stream", [True, False])
async def test_refusal_is_an_error_not_an_empty_answer(provider_server, stream):
    if provider_server.provider == "gemini":
        pytest.skip("Gemini reports refusals as finishReason SAFETY (tested in its own file)")
    provider_server.push(Reply(refusal="I can't help with that."))
    with pytest.raises(RefusalError) as info:
        await model_for(provider_server).chain("something bad", stream=stream)
    assert info.value.result.status == "failed"
    if provider_server.provider.startswith("openai"):
        assert "I can't help with that." in str(info.value)


@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize("on", ["call", "empty_text", "thought"])
async def test_gemini3_signatures_on_any_part_are_sent_back(on, stream):
    script = [
        Reply(calls=[Call("place", {"at": [1, 2]})], thought_signature="c2lnLTE=", signature_on=on),
        Reply(text="done"),
    ]
    with GeminiServer(script) as server:
        result = await model_for(server).chain("where?", tools=[place], stream=stream)
        assert result.text == "done"
        model_turn = server.requests[1].body["contents"][1]
        assert any(p.get("thoughtSignature") == "c2lnLTE=" for p in model_turn["parts"])


MALFORMED = {
    "openai": [
        (["data: {not json\n\n"], "not JSON"),
        (['data: {"choices": [null]}\n\n', "data: [DONE]\n\n"], r"choices\[0\]"),
        (["data: [1, 2]\n\n", "data: [DONE]\n\n"], "should be an object"),
        (['data: {"choices": []}\n\n'] * 3 + ["data: [DONE]\n\n"], "no choices"),
    ],
    "openai-responses": [
        (["event: response.created\ndata: {not json\n\n"], "not JSON"),
        (["event: response.created\ndata: [1, 2]\n\n"], "should be an object"),
        (
            [
                'event: response.output_text.delta\ndata: {"type": "response.output_text.delta",'
                ' "output_index": 0, "delta": "hi"}\n\n'
            ],
            "unknown output item 0",
        ),
        (
            ['event: response.completed\ndata: {"type": "response.completed", "response": {}}\n\n'],
            "no content",
        ),
    ],
    "anthropic": [
        (["event: message_start\ndata: {not json\n\n"], "not JSON"),
        (["event: message_start\ndata: [1, 2]\n\n"], "should be an object"),
        (
            [
                'event: message_start\ndata: {"type": "message_start", "message": {}}\n\n',
                'event: content_block_start\ndata: {"type": "content_block_start", "index": 0,'
                ' "content_block": null}\n\n',
            ],
            "content_block",
        ),
        (
            [
                'event: message_start\ndata: {"type": "message_start", "message": {}}\n\n',
                'event: message_stop\ndata: {"type": "message_stop"}\n\n',
            ],
            "no content",
        ),
    ],
    "gemini": [
        (["data: {not json\n\n"], "not JSON"),
        (["data: [1, 2]\n\n"], "should be an object"),
        (['data: {"candidates": [null]}\n\n'], r"candidates\[0\]"),
    ],
}
MALFORMED_BODIES = ['{"choices": [null]}', "[1, 2]", '{"candidates": [null], "content": 3}']


@pytest.mark.parametrize("case", range(4))
async def test_malformed_stream_is_a_clear_provider_error(provider_server, case):
    cases = MALFORMED[provider_server.provider]
    if case >= len(cases):
        pytest.skip("no such case for this provider")
    events, words = cases[case]
    provider_server.push(Reply(raw_events=events))
    with pytest.raises(ProviderError, match=words) as info:
        await model_for(provider_server).chain("hi")
    assert type(info.value.__cause__) is not json.JSONDecodeError


@pytest.mark.parametrize("body", MALFORMED_BODIES)
async def test_malformed_json_response_is_a_clear_provider_error(provider_server, body):
    provider_server.push(Reply(raw_body=body))
    with pytest.raises(ProviderError, match=r"malformed|no choices|should be") as info:
        await model_for(provider_server).chain("hi", stream=False)
    assert info.value.__cause__ is None


def _strings(exc: BaseException) -> str:
    """Every string reachable from an exception: args, attributes, the chained exceptions."""
    seen, out, todo = set(), [], [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        out += [repr(e), str(e), *map(repr, vars(e).values())]
        todo += [e.__cause__, e.__context__]
    return "\n".join(out)


@pytest.mark.parametrize("stream", [True, False])
async def test_key_never_survives_in_attributes_or_chained_exceptions(provider_server, stream):
    key = provider_server.api_key
    raw = f"oops {key} is not JSON"
    provider_server.push(
        Reply(
            raw_body=raw,
            raw_events=[f"data: {raw}\n\n"],
            headers={"x-request-id": f"req_{key}", "request-id": f"req_{key}"},
        )
    )
    with pytest.raises(ProviderError) as info:
        await model_for(provider_server).chain("hi", stream=stream)
    assert key not in _strings(info.value)  # chained exceptions included (scrubbed, kept)


async def test_final_turn_is_said_in_each_providers_wire_form(provider_server):
    s = provider_server
    s.push(Reply(calls=[Call("place", {"at": [1, 2]})]), Reply(text="That is all I found."))
    conversation = model_for(s).conversation(tools=[place])
    result = await conversation.chain("where?", max_steps=1)
    assert result.text == "That is all I found."
    body = s.requests[-1].body
    if s.provider == "openai":
        assert body["tool_choice"] == "none"
        assert body["messages"][-1] == {"role": "user", "content": FINAL_TURN_INSTRUCTION}
    elif s.provider == "openai-responses":
        assert body["tool_choice"] == "none"
        assert body["input"][-2]["type"] == "function_call_output"
        assert body["input"][-1] == {
            "type": "message",
            "role": "user",
            "content": FINAL_TURN_INSTRUCTION,
        }
    elif s.provider == "anthropic":
        assert body["tool_choice"] == {"type": "none"}
        last = body["messages"][-1]["content"]
        assert last[0]["type"] == "tool_result"
        assert last[-1] == {"type": "text", "text": FINAL_TURN_INSTRUCTION}
    else:
        assert body["toolConfig"] == {"functionCallingConfig": {"mode": "NONE"}}
        last = body["contents"][-1]["parts"]
        assert "functionResponse" in last[0] and last[-1] == {"text": FINAL_TURN_INSTRUCTION}
    texts = [m.text for m in conversation.messages]
    assert FINAL_TURN_INSTRUCTION not in texts  # a wire form, not part of the conversation


def test_local_final_turn_goes_to_the_answer_alias_without_the_instruction() -> None:
    from llm_magic.messages import Message, ModelRequest, ToolSpec
    from llm_magic.providers.embedded import LocalProvider

    spec = ToolSpec("place", "d", {"type": "object", "properties": {}})
    request = ModelRequest([Message("user", "hi")], [spec], tool_choice="auto", final=True)
    local = LocalProvider.final_form(LocalProvider.__new__(LocalProvider), request)
    assert (local.tool_choice, local.final, local.messages) == ("none", False, request.messages)


CAPS = {
    "openai": 120,
    "openai-responses": 120,
    "anthropic": None,
    "gemini": 60,
}  # None: anthropic honours any wait


@pytest.mark.parametrize("asked", [90, 200])
async def test_retry_after_caps_follow_each_sdk(provider_server, asked):
    cap = CAPS[provider_server.provider]
    if cap is None or asked <= cap:
        pytest.skip("the SDK would wait this long; so would we (not waited for in a test)")
    provider_server.push(Reply(status=429, retry_after=asked))
    with pytest.raises(llm_magic.RateLimitError, match=f"{asked} s, more than the {cap} s cap"):
        await model_for(provider_server).chain("hi")
    assert len(provider_server.requests) == 1


async def test_retry_after_cap_is_the_users_to_change(provider_server):
    provider_server.push(Reply(status=429, retry_after=5))
    model = llm_magic.get_async_model(
        MODEL_FOR[provider_server.kind],
        base_url=provider_server.base_url,
        api_key=provider_server.api_key,
        retry=llm_magic.RetryPolicy(max_wait=2),
    )
    with pytest.raises(llm_magic.RateLimitError, match="5 s, more than the 2 s cap"):
        await model.chain("hi")


def test_token_limit_field_per_server() -> None:
    """OpenAI gets max_completion_tokens; OpenAI-compatible servers (and the embedded
    llama-cpp-python one) read max_tokens."""
    from llm_magic.messages import Message, ModelRequest
    from llm_magic.providers.embedded import LOCAL_COMPAT
    from llm_magic.providers.openai import COMPATIBLE, OpenAIChatAdapter

    request = ModelRequest([Message("user", "hi")], options={"max_tokens": 7})
    bodies = {
        "openai": OpenAIChatAdapter("gpt-5-mini", api_key="k").build_body(request),
        "compatible": OpenAIChatAdapter("m", compat=COMPATIBLE).build_body(request),
        "local": OpenAIChatAdapter("gemma-tools", compat=LOCAL_COMPAT).build_body(request),
    }
    assert bodies["openai"]["max_completion_tokens"] == 7 and "max_tokens" not in bodies["openai"]
    assert bodies["compatible"]["max_tokens"] == 7 and bodies["local"]["max_tokens"] == 7


async def test_transport_errors_keep_no_chained_request_with_the_key() -> None:
    """httpx2's own exceptions hold the request, headers and key included: never chained."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed when the block ends: nothing listens there
    key = "sk-transport-secret-1234"
    model = llm_magic.get_async_model(
        "openai-chat:gpt-test",
        base_url=f"http://127.0.0.1:{port}/v1",
        api_key=key,
        retry=llm_magic.RetryPolicy(max_retries=0),
    )
    with pytest.raises(ProviderError, match="cannot reach") as info:
        await model.chain("hi")
    assert info.value.__context__ is None and info.value.__cause__ is None
    assert key not in _strings(info.value)
