"""Each provider's portability pass over a tool's JSON schema (what that API rejects, fixed).

The schema a tool declares is standard JSON Schema (2020-12, `$defs`/`$ref` kept for recursive
types); each API accepts a different part of it:
- OpenAI requires `items` on every array schema (a tuple's `prefixItems` alone is a 400):
  https://platform.openai.com/docs/guides/structured-outputs#supported-schemas ("items");
- Gemini's `parametersJsonSchema` takes `$defs`/`$ref`, but an enum value must be a non-empty
  string (google-genai `types.py` `Schema.enum`; the API answers 400 "enum[0]: cannot be empty")
  and an OBJECT needs properties unless it uses `additionalProperties`;
- OpenAI's strict Structured Outputs (a typed answer's `response_format`) want every object closed
  and every property required; what strict mode cannot express is sent with `strict: false`;
- Anthropic takes the schema as it is (https://docs.anthropic.com/en/docs/build-with-claude/
  tool-use: `input_schema` is JSON Schema).
Each function returns a new tree; the tool's own schema is never changed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Node = dict[str, Any]


_ONE = ("items", "additionalProperties", "not", "contains", "if", "then", "else")
_MAP = ("properties", "$defs", "definitions", "patternProperties")
_LIST = ("anyOf", "oneOf", "allOf", "prefixItems")


def _walk(node: Any, fix: Callable[[Node], Node]) -> Any:
    """A copy of the schema tree, `fix` applied to every schema in it (children first)."""
    if not isinstance(node, dict):
        return node
    out = dict(node)
    for key in _ONE:
        if isinstance(out.get(key), dict):
            out[key] = _walk(out[key], fix)
    for key in _MAP:
        if isinstance(out.get(key), dict):
            out[key] = {name: _walk(sub, fix) for name, sub in out[key].items()}
    for key in _LIST:
        if isinstance(out.get(key), list):
            out[key] = [_walk(sub, fix) for sub in out[key]]
    return fix(out)


def _array_items(node: Node) -> Node:
    """OpenAI: a tuple keeps its `prefixItems` and gains `items` (the union of its members)."""
    prefix = node.get("prefixItems")
    if isinstance(prefix, list) and prefix and "items" not in node:
        distinct: list[Any] = []
        for p in prefix:
            if p not in distinct:
                distinct.append(p)
        node["items"] = distinct[0] if len(distinct) == 1 else {"anyOf": distinct}
    elif node.get("type") == "array" and "items" not in node:
        node["items"] = {}
    return node


def openai_schema(schema: Node) -> Node:
    """The schema as OpenAI accepts it (function `parameters`)."""
    return _walk(schema, _array_items)  # type: ignore[no-any-return]


# Keywords strict mode rejects with a 400 ("In context=(), 'oneOf' is not permitted"): outside
# the subset at https://platform.openai.com/docs/guides/structured-outputs#supported-schemas (the
# same list as pydantic-ai's `profiles/openai.py` `_STRICT_INCOMPATIBLE_KEYS`, plus the
# composition keywords the guide leaves out).
_NOT_STRICT = frozenset(
    (
        "minLength maxLength patternProperties unevaluatedProperties propertyNames minProperties "
        "maxProperties unevaluatedItems contains minContains maxContains uniqueItems oneOf not if "
        "then else prefixItems dependentRequired dependentSchemas"
    ).split()
)


def openai_strict_schema(schema: Node) -> tuple[Node, bool]:
    """The schema for OpenAI's `response_format`, and whether it can be sent `strict: true`.

    Strict mode needs every object to list all its properties in `required` and to carry
    `additionalProperties: false` (platform.openai.com/docs/guides/structured-outputs
    #all-fields-must-be-required, #additionalproperties-false-must-always-be-set); like
    openai-python's `lib/_pydantic.py` (`_ensure_strict_json_schema`), a field with a default
    becomes required (any value of its type is still valid for the type) and a `None` default is
    dropped. A mapping (`additionalProperties` a schema, or an object with no properties) or a
    keyword outside the strict subset cannot be strict: the schema then goes with `strict: false`
    (a guide to the model, not a constraint), and the answer is validated here either way.
    """
    strict = True

    def close(node: Node) -> Node:
        nonlocal strict
        node = _array_items(node)
        if not _NOT_STRICT.isdisjoint(node):
            strict = False
        if "default" in node and node["default"] is None:
            del node["default"]
        extra = node.get("additionalProperties")
        if isinstance(node.get("properties"), dict):
            node["required"] = list(node["properties"])
            if extra is None or extra is True:
                node["additionalProperties"] = False
        elif node.get("type") == "object" and extra is not False:
            strict = False  # any object: closing it would allow only {}
        if isinstance(extra, dict):
            strict = False  # a mapping such as dict[str, int]
        return node

    out = _walk(schema, close)
    return out, strict


def _no_empty_enum(node: Node) -> Node:
    """Gemini: drop "" from an enum and say in the description that it is allowed."""
    enum = node.get("enum")
    if isinstance(enum, list) and "" in enum:
        kept = [v for v in enum if v != ""]
        note = '(an empty string "" is also allowed)'
        desc = node.get("description")
        node["description"] = f"{desc} {note}" if desc else note
        if kept:
            node["enum"] = kept
        else:
            del node["enum"]
    return node


def gemini_json_schema(schema: Node) -> Node:
    """The schema as Gemini accepts it in `parametersJsonSchema`."""
    return _walk(schema, _no_empty_enum)  # type: ignore[no-any-return]
