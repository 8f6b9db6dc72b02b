"""Typed answers over the loopback servers: the run calls tools, then its answer is validated
into a dataclass, TypedDict or pydantic model through the final tool; one retry, then a clear
failure."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, TypedDict

import pydantic
import pytest

import llm_magic
from llm_magic.answers import FINAL_TOOL, OutputValidationError
from llm_magic.errors import ToolDefinitionError
from llm_magic.notebook.options import help_text
from tests.provider_models import model_for, sync_model_for, tool_results, user_texts
from tests.servers import Call, Reply
from tests.servers.fixtures import _serve
from tests.test_magics import error_line, ip, ok  # noqa: F401  (the IPython shell fixture)


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


@pytest.fixture(params=["openai", "anthropic", "gemini"])
def server(request: Any) -> Any:
    yield from _serve(request.param)


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
        Reply(calls=[Call(FINAL_TOOL, ANSWER)]),
    )
    async with model_for(server) as model:
        result = await model.chain("Warmest?", tools=[temperature], output_type=Trip)
    assert result.ok and result.output == Trip("Rome", 24.0, ["sunny"])
    assert repr(result) == repr(result.output)  # the cell shows the answer
    assert [c.result for c in result.tool_calls[:2]] == [18.5, 24.0]
    assert len(server.requests) == 3  # the answer ends the run: no turn after it
    schema = declared_tools(server)[FINAL_TOOL]
    assert set(schema["properties"]) == {"city", "warmest", "notes"}
    assert forced_choice(server, 0) in ("required", "any", "ANY")  # a tool call every turn


@pytest.mark.parametrize("kind", [TripDict, TripModel], ids=["TypedDict", "pydantic"])
async def test_typed_dicts_and_pydantic_models(openai_server: Any, kind: type) -> None:
    openai_server.push(Reply(calls=[Call(FINAL_TOOL, {"city": "Rome", "warmest": "24"})]))
    async with model_for(openai_server) as model:
        result = await model.chain("Warmest?", tools=[temperature], output_type=kind)
    expected = {"city": "Rome", "warmest": 24.0}
    assert result.output == (expected if kind is TripDict else TripModel(**expected))


async def test_a_bad_answer_goes_back_once_then_succeeds(server: Any) -> None:
    server.push(
        Reply(calls=[Call(FINAL_TOOL, {"city": "Rome", "warmest": "hot"})]),
        Reply(calls=[Call(FINAL_TOOL, ANSWER)]),
    )
    async with model_for(server) as model:
        result = await model.chain("Warmest?", output_type=Trip)
    assert result.ok and result.output == Trip("Rome", 24.0, ["sunny"])
    [sent] = tool_results(server, 1)
    assert "warmest" in sent and "error" in sent  # the model saw what was wrong


async def test_two_bad_answers_fail_clearly(server: Any) -> None:
    bad = Reply(calls=[Call(FINAL_TOOL, {"city": "Rome", "warmest": "hot"})])
    server.push(bad, bad)
    async with model_for(server) as model:
        with pytest.raises(OutputValidationError, match="not a valid Trip after 2 tries") as info:
            await model.chain("Warmest?", output_type=Trip)
    assert "warmest" in str(info.value)
    assert info.value.result.status == "failed"  # type: ignore[attr-defined]
    assert len(server.requests) == 2


async def test_a_text_answer_in_the_type_is_taken_and_prose_gets_a_reminder(
    openai_server: Any,
) -> None:
    openai_server.push(Reply(text="```json\n" + json.dumps(ANSWER) + "\n```"))
    async with model_for(openai_server) as model:
        result = await model.chain("Warmest?", output_type=Trip, tool_choice="auto")
        assert result.output == Trip("Rome", 24.0, ["sunny"])
        openai_server.push(Reply(text="Rome, I think."), Reply(calls=[Call(FINAL_TOOL, ANSWER)]))
        result = await model.chain("Warmest?", output_type=Trip, tool_choice="auto")
    assert result.output == Trip("Rome", 24.0, ["sunny"])
    assert FINAL_TOOL in user_texts(openai_server)[-1]  # the reminder


async def test_the_step_limit_asks_for_the_typed_answer(openai_server: Any) -> None:
    openai_server.push(
        Reply(calls=[Call("temperature", {"city": "Paris"})]),
        Reply(calls=[Call(FINAL_TOOL, ANSWER)]),
    )
    async with model_for(openai_server) as model:
        result = await model.chain("x", tools=[temperature], output_type=Trip, max_steps=1)
    assert result.output == Trip("Rome", 24.0, ["sunny"]) and result.status == "done"
    choice = openai_server.requests[1].body["tool_choice"]
    assert choice == {"type": "function", "function": {"name": FINAL_TOOL}}


def test_the_sync_api_returns_the_typed_answer(openai_server: Any) -> None:
    openai_server.push(Reply(calls=[Call(FINAL_TOOL, ANSWER)]))
    with sync_model_for(openai_server) as model:
        assert model.chain("x", output_type=Trip).result().output == Trip("Rome", 24.0, ["sunny"])


@pytest.mark.parametrize("bad", [int, list[int], "Trip", Trip("a", 1)])
def test_output_type_must_be_an_object_type(bad: Any) -> None:
    with pytest.raises(TypeError, match="output_type must be a dataclass, TypedDict or pydantic"):
        llm_magic.ChainOptions(output_type=bad)


async def test_a_tool_named_final_answer_clashes(openai_server: Any) -> None:
    def final_answer(x: int) -> int:
        """Mine."""
        return x

    async with model_for(openai_server) as model:
        with pytest.raises(ToolDefinitionError, match="final_answer"):
            model.chain("x", tools=[final_answer], output_type=Trip)


def test_output_type_on_the_magic_line_is_a_notebook_name(ip: Any) -> None:  # noqa: F811
    ip.run_cell(
        "from dataclasses import dataclass\n@dataclass\nclass Answer:\n    city: str\n"
    ).raise_error()
    ip.server.push(Reply(calls=[Call(FINAL_TOOL, {"city": "Oslo"})]))
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
