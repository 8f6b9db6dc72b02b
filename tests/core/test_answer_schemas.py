"""Typed answers and tool schemas every provider takes: a recursive type's root `$ref` inlined,
a non-object answer under one `value` property, strict mode's size limits and string formats.

Each rule is first shown refused by the loopback server (as the real API refuses it), then our
request is shown to pass on OpenAI Chat Completions, Anthropic and Gemini."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any, Literal

import pydantic
import pytest

import llm_magic
from llm_magic import Tool
from llm_magic.answers import FINAL_TOOL
from llm_magic.providers._portable import openai_strict_schema
from tests.provider_models import FAST_RETRY, tool_results, user_texts
from tests.providers.test_servers_reject import json_schema, rejected, with_schema
from tests.providers.test_servers_selfcheck import post
from tests.servers import Call, Reply
from tests.servers.fixtures import _serve


class Tree(pydantic.BaseModel):
    value: int
    children: list[Tree] = []


@dataclasses.dataclass
class Branch:
    value: int
    children: list[Branch] = dataclasses.field(default_factory=list)


Numbers = pydantic.RootModel[list[int]]
Scalar = pydantic.RootModel[int | str]
TREE = {"value": 1, "children": [{"value": 2, "children": []}]}


@dataclasses.dataclass
class Saved:
    path: Path
    size: int


class SavedModel(pydantic.BaseModel):
    path: Path
    size: int


# Current models of each vendor, on the loopback servers (`openai-chat:` is Chat Completions).
MODELS = {
    "openai": "openai-chat:gpt-4.1-mini",
    "anthropic": "anthropic:claude-sonnet-4-6",
    "gemini": "gemini:gemini-3.5-flash",
}


@pytest.fixture(params=["openai", "anthropic", "gemini"])
def server(request: Any) -> Any:
    yield from _serve(request.param)


def model_for(server: Any) -> llm_magic.AsyncModel:
    return llm_magic.get_async_model(
        MODELS[server.provider], base_url=server.base_url, api_key=server.api_key, retry=FAST_RETRY
    )


def answer(server: Any, value: Any) -> Reply:
    """The typed answer as each provider gives it: JSON text on OpenAI, the final tool elsewhere."""
    if server.provider == "openai":
        return Reply(json_content=value)
    return Reply(calls=[Call(FINAL_TOOL, value)])


def answer_schema(server: Any, i: int = 0) -> tuple[dict[str, Any], bool | None]:
    """The schema a typed answer was asked for with, and OpenAI's `strict` (None elsewhere)."""
    body = server.requests[i].body
    if server.provider == "openai":
        spec = body["response_format"]["json_schema"]
        return spec["schema"], spec["strict"]
    if server.provider == "anthropic":
        return next(t["input_schema"] for t in body["tools"] if t["name"] == FINAL_TOOL), None
    decls = [d for t in body["tools"] for d in t.get("functionDeclarations", [])]
    decl = next(d for d in decls if d["name"] == FINAL_TOOL)
    return decl.get("parametersJsonSchema", decl.get("parameters")), None


def nested(levels: int) -> tuple[type[pydantic.BaseModel], dict[str, Any]]:
    """A pydantic model whose objects nest `levels` deep (itself the first), and a valid value."""
    model: type[pydantic.BaseModel] = pydantic.create_model("L0", leaf=(int, ...))
    value: dict[str, Any] = {"leaf": 1}
    for i in range(1, levels):
        model = pydantic.create_model(f"L{i}", child=(model, ...))
        value = {"child": value}
    return model, value


DEEP, DEEP_VALUE = nested(11)
DEEPEST_STRICT, DEEPEST_STRICT_VALUE = nested(10)
WIDE = pydantic.create_model("Wide", **{f"p{i}": (int, 0) for i in range(5001)})  # type: ignore[call-overload]
CHOICES = Literal[tuple(f"c{i}" for i in range(1001))]  # type: ignore[valid-type]
CHOICE = pydantic.create_model("Choice", c=(CHOICES, ...))


# ---- the servers refuse what the APIs refuse ------------------------------------------------

ROOT_REF = {"$ref": "#/$defs/Tree", "$defs": {"Tree": {"type": "object", "properties": {}}}}
ARRAY_ROOT = {"type": "array", "items": {"type": "integer"}}


@pytest.mark.parametrize("root", [ROOT_REF, ARRAY_ROOT], ids=["root-ref", "array"])
def test_every_server_refuses_a_tool_schema_that_is_not_an_object(
    provider_server: Any, root: dict[str, Any]
) -> None:
    s = provider_server
    message = rejected(s, **with_schema(s, root))
    assert "object" in message.lower()
    if s.provider == "gemini":  # parametersJsonSchema too
        kw = with_schema(s, root)
        decl = kw["tools"][0]["functionDeclarations"][0]
        decl["parametersJsonSchema"] = decl.pop("parameters")
        assert "parameters_json_schema: must describe an object" in rejected(s, **kw)


def test_openai_strict_refuses_a_non_object_root(openai_server: Any) -> None:
    for root in (ROOT_REF, ARRAY_ROOT):
        said = rejected(openai_server, response_format=json_schema(root, strict=True))
        assert "schema must be a JSON Schema of 'type: \"object\"'" in said


def _closed(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def _deep(levels: int) -> dict[str, Any]:
    schema = _closed({"leaf": {"type": "integer"}})
    for _ in range(1, levels):
        schema = _closed({"child": schema})
    return schema


def _enum(values: list[str]) -> dict[str, Any]:
    return _closed({"e": {"type": "string", "enum": values}})


PAST_LIMITS = {
    "depth-11": (_deep(11), "11 depth"),
    "5001-properties": (_closed({f"p{i}": {"type": "integer"} for i in range(5001)}), "5001 prop"),
    "1001-enum-values": (_enum([str(i) for i in range(1001)]), "1001 enum values"),
    "long-names": (_closed({"n" * 120_001: {"type": "integer"}}), "120001 characters"),
    "large-enum": (_enum([f"{i:03d}" + "x" * 57 for i in range(251)]), "over 15000 characters"),
}


@pytest.mark.parametrize("schema, said", PAST_LIMITS.values(), ids=list(PAST_LIMITS))
def test_openai_strict_refuses_schemas_past_its_size_limits(
    openai_server: Any, schema: dict[str, Any], said: str
) -> None:
    assert said in rejected(openai_server, response_format=json_schema(schema, strict=True))
    openai_server.push(Reply(text="{}"))  # the same schema, not strict: taken
    status, body = post(openai_server, response_format=json_schema(schema, strict=False))
    assert status == 200, body


def test_openai_strict_takes_schemas_at_its_size_limits(openai_server: Any) -> None:
    for schema in (
        _deep(10),
        _closed({f"p{i}": {"type": "integer"} for i in range(5000)}),
        _enum([str(i) for i in range(1000)]),
    ):
        openai_server.push(Reply(text="{}"))
        status, body = post(openai_server, response_format=json_schema(schema, strict=True))
        assert status == 200, body


def test_openai_strict_refuses_an_undocumented_string_format(openai_server: Any) -> None:
    path = _closed({"p": {"type": "string", "format": "path"}})
    said = rejected(openai_server, response_format=json_schema(path, strict=True))
    assert "In context=('properties', 'p'), 'path' is not a valid format." in said
    for fmt in ("date-time", "email", "uuid"):
        openai_server.push(Reply(text="{}"))
        ok = _closed({"p": {"type": "string", "format": fmt}})
        assert post(openai_server, response_format=json_schema(ok, strict=True))[0] == 200


# ---- our requests pass, and the answer is the user's type -----------------------------------


@pytest.mark.parametrize("kind", [Tree, Branch], ids=["pydantic", "dataclass"])
async def test_a_recursive_answer_type_is_sent_with_an_object_root(server: Any, kind: Any) -> None:
    server.push(answer(server, TREE))
    async with model_for(server) as model:
        result = await model.chain("A tree?", output_type=kind)
    expected = Tree.model_validate(TREE) if kind is Tree else Branch(1, [Branch(2)])
    assert result.output == expected
    schema, strict = answer_schema(server)
    name = kind.__name__
    assert schema["type"] in ("object", "OBJECT") and "$ref" not in schema
    assert schema["$defs"][name]["properties"]["children"]["items"] == {"$ref": f"#/$defs/{name}"}
    assert strict in (True, None)


def test_a_recursive_dataclass_tool_parameter_refers_to_one_definition() -> None:
    def prune(tree: Branch, keep: Branch | None = None) -> int:
        """Prune."""
        return tree.value

    tool = Tool.from_function(prune)
    schema = tool.schema
    assert set(schema["$defs"]) == {"Branch"} and "$defs" not in schema["properties"]["tree"]
    kwargs = tool.parameters.validate({"tree": TREE})
    assert kwargs == {"tree": Branch(1, [Branch(2)])}


async def test_a_tool_schema_whose_root_is_a_ref_is_sent_with_an_object_root(server: Any) -> None:
    """A given schema (an MCP server's tool) may be pydantic's `{"$ref", "$defs"}`."""
    seen: list[Any] = []

    def plant(**tree: Any) -> None:
        seen.append(tree)

    tool = Tool.from_schema("plant", "Plant a tree.", Tree.model_json_schema(), plant)
    server.push(Reply(calls=[Call("plant", TREE)]), Reply(text="Planted."))
    async with model_for(server) as model:
        result = await model.chain("Plant one.", tools=[tool])
    assert result.text == "Planted." and seen == [TREE]
    assert set(tool.schema["properties"]) == {"value", "children"}  # not the empty placeholder


@pytest.mark.parametrize(
    ("kind", "value"),
    [(Numbers, [3, 1, 2]), (Scalar, 7), (Scalar, "seven")],
    ids=["RootModel-list", "RootModel-union-int", "RootModel-union-str"],
)
async def test_a_non_object_answer_goes_under_value_and_comes_back_as_the_type(
    server: Any, kind: Any, value: Any
) -> None:
    server.push(answer(server, {"value": value}))
    async with model_for(server) as model:
        result = await model.chain("Numbers?", output_type=kind)
    assert type(result.output) is kind and result.output.root == value
    schema, strict = answer_schema(server)
    assert schema["required"] == ["value"] and list(schema["properties"]) == ["value"]
    assert strict in (True, None)


async def test_a_wrong_wrapped_answer_goes_back_naming_where(server: Any) -> None:
    server.push(answer(server, {"value": [1, "x"]}), answer(server, {"value": [1, 2]}))
    async with model_for(server) as model:
        result = await model.chain("Numbers?", output_type=Numbers)
    assert result.output == Numbers([1, 2])
    sent = tool_results(server, 1) + user_texts(server, 1)  # the final tool's error, or a user
    assert any("value.1" in t and "valid integer" in t for t in sent)  # quoting the problem


@pytest.mark.parametrize("kind", [Saved, SavedModel], ids=["dataclass", "pydantic"])
async def test_a_path_field_is_sent_without_an_undocumented_format(server: Any, kind: Any) -> None:
    server.push(answer(server, {"path": "/tmp/out.csv", "size": 3}))
    async with model_for(server) as model:
        result = await model.chain("Saved where?", output_type=kind)
    assert result.output.path == Path("/tmp/out.csv") and isinstance(result.output, kind)
    schema, strict = answer_schema(server)
    if server.provider == "openai":
        assert strict is True and "format" not in schema["properties"]["path"]
        assert "format: path" in schema["properties"]["path"]["description"]


def test_a_tool_parameter_path_loses_its_format_only_under_strict() -> None:
    def save(path: Path, when: Any = None) -> None:
        """Save."""

    schema = Tool.from_function(save).schema
    strict, _ = openai_strict_schema(schema)
    assert schema["properties"]["path"]["format"] == "path"  # the tool's own schema unchanged
    assert strict["properties"]["path"] == {"type": "string", "description": "(format: path)"}


@pytest.mark.parametrize(
    ("kind", "value"),
    [(DEEP, DEEP_VALUE), (WIDE, {}), (CHOICE, {"c": "c7"})],
    ids=["11-levels", "5001-properties", "1001-enum-values"],
)
async def test_past_strict_limits_the_answer_goes_non_strict_with_one_warning(
    openai_server: Any, kind: Any, value: Any
) -> None:
    openai_server.push(answer(openai_server, value), answer(openai_server, value))
    async with model_for(openai_server) as model:
        with pytest.warns(UserWarning, match="past OpenAI's strict mode limits") as caught:
            first = await model.chain("x", output_type=kind)
            second = await model.chain("x", output_type=kind)
    assert len([w for w in caught if "strict mode limits" in str(w.message)]) == 1
    assert first.output == second.output == kind.model_validate(value)
    assert [answer_schema(openai_server, i)[1] for i in range(2)] == [False, False]


async def test_at_strict_limits_the_answer_stays_strict_without_a_warning(
    openai_server: Any,
) -> None:
    kind, value = DEEPEST_STRICT, DEEPEST_STRICT_VALUE
    openai_server.push(answer(openai_server, value))
    async with model_for(openai_server) as model:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            result = await model.chain("x", output_type=kind)
    assert result.output == kind.model_validate(value)
    assert answer_schema(openai_server)[1] is True
