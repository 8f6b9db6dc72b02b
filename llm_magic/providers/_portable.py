"""Each provider's portability pass over a tool's JSON schema (what that API rejects, fixed).

The schema a tool declares is standard JSON Schema (2020-12, `$defs`/`$ref` kept for recursive
types); each API accepts a different part of it:
- OpenAI requires `items` on every array schema (a tuple's `prefixItems` alone is a 400):
  https://platform.openai.com/docs/guides/structured-outputs#supported-schemas ("items");
- Gemini's `parametersJsonSchema` takes `$defs`/`$ref`, but an enum value must be a non-empty
  string (google-genai `types.py` `Schema.enum`; the API answers 400 "enum[0]: cannot be empty")
  and an OBJECT needs properties unless it uses `additionalProperties`;
- OpenAI's strict Structured Outputs (a typed answer's `response_format`) want every object closed
  and every property required, only the documented string formats, and a schema within the size
  limits; what strict mode cannot express is sent with `strict: false`;
- all three want an object at the root: a root `$ref` (a recursive pydantic model) is inlined;
- Anthropic takes the schema as it is (https://docs.anthropic.com/en/docs/build-with-claude/
  tool-use: `input_schema` is JSON Schema).
Each function returns a new tree; the tool's own schema is never changed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from .._schema_refs import inline_root_ref
from ..messages import ToolSpec
from ._schema import note

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
    return _walk(inline_root_ref(schema), _array_items)  # type: ignore[no-any-return]


def tool_schema(tool: ToolSpec, kind: str, make: Callable[[Node], Node]) -> Node:
    """`make(tool.parameters)`, made once per tool and `kind` of wire form: a run declares the
    same tools on every turn, and a tool's schema does not change."""
    made = tool.wire.get(kind)
    if made is None:
        made = tool.wire[kind] = make(tool.parameters)
    return made


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


# The string formats strict mode documents (platform.openai.com/docs/guides/structured-outputs
# #supported-properties, "format"; read 2026-12-07); the API refuses others under strict, so
# another (pydantic's `path`, `uri`) is left out and named in the description instead.
STRICT_FORMATS = frozenset("date-time time date duration email hostname ipv4 ipv6 uuid".split())

# Strict mode's size limits (platform.openai.com/docs/guides/structured-outputs
# #objects-have-limitations-on-nesting-depth-and-size, #limitations-on-total-string-size,
# #limitations-on-enum-size; read 2026-12-07): past one, the API answers 400, so the schema goes
# `strict: false` instead and the answer is validated here.
STRICT_MAX_DEPTH = 10  # levels of object nesting
STRICT_MAX_PROPERTIES = 5_000  # object properties, in total
STRICT_MAX_ENUM_VALUES = 1_000  # enum values, in total
STRICT_MAX_NAME_CHARS = 120_000  # property and definition names, enum and const values
STRICT_LARGE_ENUM = 250  # a string enum longer than this ...
STRICT_MAX_LARGE_ENUM_CHARS = 15_000  # ... has at most this many characters of values


def _schemas(node: Any, depth: int = 0) -> Iterator[tuple[Node, int]]:
    """Every schema in the tree, with how many objects enclose it (itself included)."""
    if not isinstance(node, dict):
        return
    depth += node.get("type") == "object" or isinstance(node.get("properties"), dict)
    yield node, depth
    for key in _ONE:
        yield from _schemas(node.get(key), depth)
    for key in _MAP:
        if isinstance(node.get(key), dict):
            for sub in node[key].values():
                yield from _schemas(sub, depth)
    for key in _LIST:
        if isinstance(node.get(key), list):
            for sub in node[key]:
                yield from _schemas(sub, depth)


def strict_limit(schema: Node) -> str | None:
    """Which of strict mode's size limits the schema is past, in words; None when within."""
    depth = properties = enums = chars = 0
    for node, level in _schemas(schema):
        depth = max(depth, level)
        names = list(node.get("properties") or ()) + list(node.get("$defs") or ())
        values = [v for v in node.get("enum") or () if isinstance(v, str)]
        values += [node["const"]] if isinstance(node.get("const"), str) else []
        properties += len(node.get("properties") or ())
        enums += len(node.get("enum") or ())
        length = sum(len(v) for v in values)
        chars += sum(len(str(n)) for n in names) + length
        if len(values) > STRICT_LARGE_ENUM and length > STRICT_MAX_LARGE_ENUM_CHARS:
            return f"an enum of {len(values)} values with {length:,} characters (at most 15,000)"
    for found, limit, what in (
        (depth, STRICT_MAX_DEPTH, "levels of object nesting"),
        (properties, STRICT_MAX_PROPERTIES, "object properties"),
        (enums, STRICT_MAX_ENUM_VALUES, "enum values"),
        (chars, STRICT_MAX_NAME_CHARS, "characters of names and enum values"),
    ):
        if found > limit:
            return f"{found:,} {what} (at most {limit:,})"
    return None


def _strict_format(node: Node) -> Node:
    """A string format strict mode does not document goes from the schema to its description."""
    fmt = node.get("format")
    if fmt is not None and fmt not in STRICT_FORMATS:
        del node["format"]
        note(node, f"format: {fmt}")
    return node


def openai_strict_schema(schema: Node) -> tuple[Node, bool]:
    """The schema for OpenAI's `response_format`, and whether it can be sent `strict: true`.

    Strict mode needs every object to list all its properties in `required` and to carry
    `additionalProperties: false` (platform.openai.com/docs/guides/structured-outputs
    #all-fields-must-be-required, #additionalproperties-false-must-always-be-set); like
    openai-python's `lib/_pydantic.py` (`_ensure_strict_json_schema`), a field with a default
    becomes required (any value of its type is still valid for the type) and a `None` default is
    dropped. A mapping (`additionalProperties` a schema, or an object with no properties) or a
    keyword outside the strict subset, or a schema past strict mode's size limits
    (`strict_limit`), cannot be strict: the schema then goes with `strict: false` (a guide to the
    model, not a constraint), and the answer is validated here either way. A string format strict
    mode does not document moves into the description; a root `$ref` is inlined.
    """
    strict = True

    def close(node: Node) -> Node:
        nonlocal strict
        node = _strict_format(_array_items(node))
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

    out = _walk(inline_root_ref(schema), close)
    return out, strict and strict_limit(out) is None


def _no_empty_enum(node: Node) -> Node:
    """Gemini: drop "" from an enum and say in the description that it is allowed."""
    enum = node.get("enum")
    if isinstance(enum, list) and "" in enum:
        kept = [v for v in enum if v != ""]
        note(node, 'an empty string "" is also allowed')
        if kept:
            node["enum"] = kept
        else:
            del node["enum"]
    return node


def gemini_json_schema(schema: Node) -> Node:
    """The schema as Gemini accepts it in `parametersJsonSchema`."""
    return _walk(inline_root_ref(schema), _no_empty_enum)  # type: ignore[no-any-return]
