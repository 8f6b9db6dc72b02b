"""Typed answers over the loopback servers: the run calls tools, then its answer is validated
into a dataclass, TypedDict or pydantic model, through OpenAI's native structured output
(`response_format`) or the final tool (Anthropic, Gemini, OpenAI-compatible servers); one retry,
then a clear failure."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, TypedDict

import pydantic
import pytest

import llm_magic
from llm_magic.answers import FINAL_TOOL
from llm_magic.errors import OutputValidationError, RefusalError, ToolDefinitionError
from llm_magic.notebook.cell_options import help_text
from tests.notebook.test_magics import error_line, ip, ok  # noqa: F401  (the IPython shell fixture)
from tests.provider_models import model_for, sync_model_for, tool_results, user_texts
from tests.servers import Call, Reply
from tests.servers.fixtures import _serve


@dataclasses.dataclass
class Trip:
    city: str
    warmest: float
    notes: list[str] = dataclasses.field(default_factory=list)


class TripDict(TypedDict):
    city: str
    warmest: float


class TripModel(pydantic.BaseModel):
    city: str
    warmest: float = pydantic.Field(ge=-90, le=60)


def temperature(city: str) -> float:
    """Current temperature of a city, in degrees C."""
    return {"Paris": 18.5, "Rome": 24.0}[city]


ANSWER = {"city": "Rome", "warmest": 24.0, "notes": ["sunny"]}


@dataclasses.dataclass
class Leg:
    trip: Trip
    stops: list[Trip]
    label: str | None = None


class Partial(TypedDict, total=False):
    city: str
    pair: tuple[int, str]


class Counts(pydantic.BaseModel):
    by_city: dict[str, int]
    note: str | None = None


@pytest.fixture(params=["openai", "anthropic", "gemini"])
def server(request: Any) -> Any:
    yield from _serve(request.param)


def answer(server: Any, value: Any) -> Reply:
    """The model's typed answer in the provider's way: JSON text for OpenAI's native output,
    a final tool call elsewhere."""
    if server.provider == "openai" and not server.strict:
        return Reply(json_content=value)
    return Reply(calls=[Call(FINAL_TOOL, value)])


def response_format(server: Any, i: int = 0) -> Any:
    return server.requests[i].body.get("response_format")


def forced_choice(server: Any, i: int) -> Any:
    """What request i asked of the model's tool use, in the provider's words."""
    body = server.requests[i].body
    if server.provider == "openai":
        return body.get("tool_choice")
    if server.provider == "anthropic":
        return body.get("tool_choice", {}).get("type")
    return body.get("toolConfig", {}).get("functionCallingConfig", {}).get("mode")


def declared_tools(server: Any, i: int = 0) -> dict[str, Any]:
    body = server.requests[i].body
    if server.provider == "openai":
        return {t["function"]["name"]: t["function"]["parameters"] for t in body["tools"]}
    if server.provider == "anthropic":
        return {t["name"]: t["input_schema"] for t in body["tools"]}
    decls = [d for t in body["tools"] for d in t.get("functionDeclarations", [])]
    return {d["name"]: d.get("parametersJsonSchema", d.get("parameters")) for d in decls}


async def test_an_output_type_comes_back_validated_after_two_tool_calls(server: Any) -> None:
    server.push(
        Reply(calls=[Call("temperature", {"city": "Paris"})]),
        Reply(calls=[Call("temperature", {"city": "Rome"})]),
        answer(server, ANSWER),
    )
    async with model_for(server) as model:
        result = await model.chain("Warmest?", tools=[temperature], output_type=Trip)
    assert result.ok and result.output == Trip("Rome", 24.0, ["sunny"])
    assert repr(result) == repr(result.output)  # the cell shows the answer
    assert [c.result for c in result.tool_calls[:2]] == [18.5, 24.0]
    assert len(server.requests) == 3  # the answer ends the run: no turn after it
    if server.provider == "openai":  # native: the schema in response_format, tools as they are
        for i in range(3):
            fmt = response_format(server, i)
            assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
            assert fmt["json_schema"]["name"] == "Trip"
            assert set(declared_tools(server, i)) == {"temperature"}
            assert forced_choice(server, i) is None  # the model chooses when to answer
        schema = fmt["json_schema"]["schema"]
        assert schema["required"] == ["city", "warmest", "notes"]  # strict: all of them
        assert schema["additionalProperties"] is False
        return
    assert all(response_format(server, i) is None for i in range(3))
    schema = declared_tools(server)[FINAL_TOOL]
    assert set(schema["properties"]) == {"city", "warmest", "notes"}
    assert forced_choice(server, 0) in ("required", "any", "ANY")  # a tool call every turn


@pytest.mark.parametrize("kind", [TripDict, TripModel], ids=["TypedDict", "pydantic"])
async def test_typed_dicts_and_pydantic_models(openai_server: Any, kind: type) -> None:
    openai_server.push(Reply(json_content={"city": "Rome", "warmest": "24"}))
    async with model_for(openai_server) as model:
        result = await model.chain("Warmest?", tools=[temperature], output_type=kind)
    expected = {"city": "Rome", "warmest": 24.0}
    assert result.output == (expected if kind is TripDict else TripModel(**expected))


async def test_a_bad_answer_goes_back_once_then_succeeds(server: Any) -> None:
    server.push(answer(server, {"city": "Rome", "warmest": "hot"}), answer(server, ANSWER))
    async with model_for(server) as model:
        result = await model.chain("Warmest?", output_type=Trip)
    assert result.ok and result.output == Trip("Rome", 24.0, ["sunny"])
    if server.provider == "openai":  # the text answer: a user message quoting the problem
        sent = user_texts(server, 1)[-1]
        assert "not a valid Trip" in sent and "'warmest': expected a number, got 'hot'" in sent
        assert response_format(server, 1)["json_schema"]["strict"] is True
    else:
        [sent] = tool_results(server, 1)
        assert "warmest" in sent and "error" in sent  # the model saw what was wrong


async def test_two_bad_answers_fail_clearly(server: Any) -> None:
    bad = answer(server, {"city": "Rome", "warmest": "hot"})
    server.push(bad, bad)
    async with model_for(server) as model:
        with pytest.raises(OutputValidationError, match="not a valid Trip after 2 tries") as info:
            await model.chain("Warmest?", output_type=Trip)
    assert "warmest" in str(info.value)
    assert info.value.result.status == "failed"  # type: ignore[attr-defined]
    assert len(server.requests) == 2


async def test_a_text_answer_in_the_type_is_taken_and_prose_gets_a_reminder(
    anthropic_server: Any,
) -> None:
    anthropic_server.push(Reply(text="```json\n" + json.dumps(ANSWER) + "\n```"))
    async with model_for(anthropic_server) as model:
        result = await model.chain("Warmest?", output_type=Trip, tool_choice="auto")
        assert result.output == Trip("Rome", 24.0, ["sunny"])
        anthropic_server.push(Reply(text="Rome, I think."), answer(anthropic_server, ANSWER))
        result = await model.chain("Warmest?", output_type=Trip, tool_choice="auto")
    assert result.output == Trip("Rome", 24.0, ["sunny"])
    assert FINAL_TOOL in user_texts(anthropic_server)[-1]  # the reminder


async def test_openai_prose_instead_of_json_goes_back_once_quoting_the_problem(
    openai_server: Any,
) -> None:
    openai_server.push(Reply(text="Rome, I think."), answer(openai_server, ANSWER))
    async with model_for(openai_server) as model:
        result = await model.chain("Warmest?", tools=[temperature], output_type=Trip)
    assert result.output == Trip("Rome", 24.0, ["sunny"])
    sent = user_texts(openai_server)[-1]
    assert sent.startswith("Your answer is not a valid Trip: not JSON: ")


async def test_the_step_limit_asks_for_the_typed_answer(anthropic_server: Any) -> None:
    anthropic_server.push(
        Reply(calls=[Call("temperature", {"city": "Paris"})]),
        answer(anthropic_server, ANSWER),
    )
    async with model_for(anthropic_server) as model:
        result = await model.chain("x", tools=[temperature], output_type=Trip, max_steps=1)
    assert result.output == Trip("Rome", 24.0, ["sunny"]) and result.status == "done"
    choice = anthropic_server.requests[1].body["tool_choice"]
    assert choice == {"type": "tool", "name": FINAL_TOOL}


async def test_openai_step_limit_turns_tools_off_and_keeps_the_schema(openai_server: Any) -> None:
    openai_server.push(
        Reply(calls=[Call("temperature", {"city": "Paris"})]), answer(openai_server, ANSWER)
    )
    async with model_for(openai_server) as model:
        result = await model.chain("x", tools=[temperature], output_type=Trip, max_steps=1)
    assert result.output == Trip("Rome", 24.0, ["sunny"]) and result.status == "done"
    assert openai_server.requests[1].body["tool_choice"] == "none"
    assert response_format(openai_server, 1)["json_schema"]["name"] == "Trip"


@pytest.mark.parametrize(
    ("kind", "value", "strict"),
    [
        (Leg, {"trip": ANSWER, "stops": [ANSWER], "label": None}, True),
        (Partial, {"city": "Rome", "pair": [1, "a"]}, False),  # a tuple: prefixItems
        (TripModel, {"city": "Rome", "warmest": 24}, True),
        (Counts, {"by_city": {"Rome": 2}, "note": None}, False),  # a mapping
    ],
    ids=["nested-dataclass", "TypedDict-total-False", "pydantic", "pydantic-mapping"],
)
async def test_openai_strict_where_the_type_allows_it(
    openai_server: Any, kind: type, value: Any, strict: bool
) -> None:
    """The server rejects a `strict: true` schema with an open object or an optional property,
    so every strict schema sent here is one the API takes; the rest go `strict: false`."""
    openai_server.push(answer(openai_server, value))
    async with model_for(openai_server) as model:
        result = await model.chain("x", output_type=kind)
    assert result.ok and result.output is not None
    assert response_format(openai_server)["json_schema"]["strict"] is strict


async def test_openai_refusal_of_the_typed_answer_is_a_refusal_error(openai_server: Any) -> None:
    openai_server.push(Reply(refusal="I can't help with that."))
    async with model_for(openai_server) as model:
        with pytest.raises(RefusalError, match="can't help"):
            await model.chain("Warmest?", output_type=Trip)


async def test_an_openai_compatible_server_keeps_the_final_tool(openai_strict_server: Any) -> None:
    s = openai_strict_server
    s.push(Reply(calls=[Call("temperature", {"city": "Rome"})]), answer(s, ANSWER))
    async with llm_magic.get_async_model(
        "openai-compatible:local-test", base_url=s.base_url, api_key=s.api_key
    ) as model:
        result = await model.chain("Warmest?", tools=[temperature], output_type=Trip)
    assert result.output == Trip("Rome", 24.0, ["sunny"])
    assert response_format(s, 0) is None and FINAL_TOOL in declared_tools(s, 0)


def test_the_sync_api_returns_the_typed_answer(openai_server: Any) -> None:
    openai_server.push(answer(openai_server, ANSWER))
    with sync_model_for(openai_server) as model:
        assert model.chain("x", output_type=Trip).result().output == Trip("Rome", 24.0, ["sunny"])


@pytest.mark.parametrize("bad", [int, list[int], "Trip", Trip("a", 1)])
def test_output_type_must_be_an_object_type(bad: Any) -> None:
    with pytest.raises(TypeError, match="output_type must be a dataclass, TypedDict or pydantic"):
        llm_magic.ChainOptions(output_type=bad)


async def test_a_tool_named_final_answer_clashes_with_the_final_tool(
    anthropic_server: Any, openai_server: Any
) -> None:
    def final_answer(x: int) -> int:
        """Mine."""
        return x

    async with model_for(anthropic_server) as model:
        with pytest.raises(ToolDefinitionError, match="final_answer"):
            model.chain("x", tools=[final_answer], output_type=Trip)
    openai_server.push(Reply(calls=[Call(FINAL_TOOL, {"x": 2})]), answer(openai_server, ANSWER))
    async with model_for(openai_server) as model:  # native output: just one more tool
        result = await model.chain("x", tools=[final_answer], output_type=Trip)
    assert result.tool_calls[0].result == 2 and result.output == Trip("Rome", 24.0, ["sunny"])


def test_output_type_on_the_magic_line_is_a_notebook_name(ip: Any) -> None:  # noqa: F811
    ip.run_cell(
        "from dataclasses import dataclass\n@dataclass\nclass Answer:\n    city: str\n"
    ).raise_error()
    ip.server.push(Reply(json_content={"city": "Oslo"}))
    result, _ = ok(ip, "%%llm_chain -q --output-type Answer\nWhere?")
    assert result.output == ip.user_ns["Answer"]("Oslo")
    assert "--output-type NAME" in help_text()
    line = error_line(ip, "%%llm_chain -q --output-type Answr\nWhere?")
    assert "--output-type Answr: there is no 'Answr' in the notebook; did you mean Answer?" in line


async def test_claude_with_extended_thinking_is_not_forced_to_call_a_tool(
    anthropic_server: Any,
) -> None:
    anthropic_server.push(
        Reply(calls=[Call("temperature", {"city": "Rome"})], thinking="Check Rome."),
        Reply(text="Rome."),  # prose: allowed, so it gets the reminder
        Reply(calls=[Call(FINAL_TOOL, ANSWER)], thinking="Answer now."),
    )
    thinking = {"thinking": {"type": "enabled", "budget_tokens": 1024}, "max_tokens": 4096}
    async with model_for(anthropic_server) as model:
        result = await model.chain(
            "Warmest?", tools=[temperature], output_type=Trip, model_options=thinking
        )
    assert result.output == Trip("Rome", 24.0, ["sunny"])
    # the server rejects a forced tool with thinking on (its fixture fails on any rejection)
    assert [forced_choice(anthropic_server, i) for i in range(3)] == ["auto"] * 3


def test_only_openais_own_api_answers_natively() -> None:
    """The embedded model and compatible servers (Ollama, llama.cpp, vLLM) keep the final tool:
    a `response_format` beside `tools` is not something they all take."""
    from llm_magic.providers.embedded import LOCAL_COMPAT
    from llm_magic.providers.openai import COMPATIBLE, OPENAI

    assert OPENAI.native_output and not COMPATIBLE.native_output
    assert not LOCAL_COMPAT.native_output
    ollama = llm_magic.get_async_model("ollama:qwen3", base_url="http://127.0.0.1:9/v1")
    assert not ollama.provider.native_output
