"""Tool-schema rules the real APIs enforce, shared by the servers that enforce them.

Each function returns problems as the API words them (or close to it), with the source of the
rule beside it.
"""

from __future__ import annotations

_SUBSCHEMA = ("items", "additionalProperties", "not", "contains", "if", "then", "else")
_MAPS = ("properties", "$defs", "definitions", "patternProperties")
_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")


def walk(schema, path=()):
    """Yield (path, node) for every schema node (paths as in OpenAI's `context=(...)`)."""
    if not isinstance(schema, dict):
        return
    yield path, schema
    for key in _SUBSCHEMA:
        if isinstance(schema.get(key), dict):
            yield from walk(schema[key], (*path, key))
    for key in _MAPS:
        if isinstance(schema.get(key), dict):
            for name, sub in schema[key].items():
                yield from walk(sub, (*path, key, name))
    for key in _LISTS:
        if isinstance(schema.get(key), list):
            for i, sub in enumerate(schema[key]):
                yield from walk(sub, (*path, key, str(i)))


def missing_refs(schema) -> list[str]:
    """`$ref`s that point nowhere in the document (JSON Schema 2020-12 §8.2.3.1: a reference
    must resolve; OpenAI, Anthropic and Gemini's parametersJsonSchema all reject one that does
    not)."""
    out = []
    defs = schema.get("$defs") if isinstance(schema, dict) else None
    for _path, node in walk(schema):
        ref = node.get("$ref")
        if not isinstance(ref, str):
            continue
        if ref == "#":
            continue
        name = ref.removeprefix("#/$defs/")
        if name == ref or not isinstance(defs, dict) or name not in defs:
            out.append(ref)
    return out


def arrays_without_items(schema) -> list[tuple[str, ...]]:
    """Array schemas with no `items` (OpenAI: "array schema missing items";
    https://platform.openai.com/docs/guides/function-calling: `parameters` is validated as
    JSON Schema where every array needs `items`)."""
    return [
        path for path, node in walk(schema) if node.get("type") == "array" and "items" not in node
    ]


def empty_enum_values(schema) -> list[tuple[str, ...]]:
    """Paths of enums holding "" (Gemini: "enum[0]: cannot be empty")."""
    return [
        path
        for path, node in walk(schema)
        if isinstance(node.get("enum"), list) and "" in node["enum"]
    ]
