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
    for keys, sub in _children(schema):
        yield from walk(sub, (*path, *keys))


def _children(schema):
    """(keys, subschema) for each schema directly inside this one."""
    for key in _SUBSCHEMA:
        if isinstance(schema.get(key), dict):
            yield (key,), schema[key]
    for key in _MAPS:
        if isinstance(schema.get(key), dict):
            for name, sub in schema[key].items():
                yield (key, name), sub
    for key in _LISTS:
        if isinstance(schema.get(key), list):
            for i, sub in enumerate(schema[key]):
                yield (key, str(i)), sub


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


def not_an_object(schema) -> bool:
    """A root schema that is not `type: object` (a bare `$ref`, an array, a union): OpenAI
    function `parameters` and strict `response_format`, Anthropic `input_schema` and Gemini
    function parameters must all describe an object (Gemini: "The schema must describe an object
    where the properties are the parameters to the function", FunctionDeclaration
    .parameters_json_schema in googleapis/python-genai `google/genai/types.py` and
    https://ai.google.dev/api/caching#FunctionDeclaration, read 2026-12-07)."""
    typ = schema.get("type") if isinstance(schema, dict) else None
    return not isinstance(typ, str) or typ.lower() != "object"


# OpenAI strict mode, https://platform.openai.com/docs/guides/structured-outputs
# #supported-properties ("format": the supported string formats) and
# #objects-have-limitations-on-nesting-depth-and-size, #limitations-on-total-string-size,
# #limitations-on-enum-size (read 2026-12-07).
STRICT_FORMATS = set("date-time time date duration email hostname ipv4 ipv6 uuid".split())
STRICT_LIMITS = {"depth": 10, "properties": 5000, "enum values": 1000, "characters": 120_000}


def undocumented_formats(schema) -> list[tuple[tuple[str, ...], str]]:
    """(path, format) of every `format` strict mode does not list."""
    return [
        (path, node["format"])
        for path, node in walk(schema)
        if "format" in node and node["format"] not in STRICT_FORMATS
    ]


def strict_sizes(schema) -> dict[str, int]:
    """What strict mode's limits count: object nesting (levels of `type: object` from the root),
    properties and enum values in total, and the characters of property names, definition names
    and string enum/const values; plus `large enum characters`, the most characters of one string
    enum of more than 250 values (at most 15,000)."""
    sizes = dict.fromkeys((*STRICT_LIMITS, "large enum characters"), 0)
    sizes["depth"] = _object_depth(schema)
    for _path, node in walk(schema):
        props = node.get("properties") if isinstance(node.get("properties"), dict) else {}
        defs = node.get("$defs") if isinstance(node.get("$defs"), dict) else {}
        strings = [v for v in node.get("enum") or [] if isinstance(v, str)]
        if isinstance(node.get("const"), str):
            strings.append(node["const"])
        sizes["properties"] += len(props)
        sizes["enum values"] += len(node.get("enum") or [])
        sizes["characters"] += sum(map(len, [*props, *defs, *strings]))
        if len(strings) > 250:
            longest = max(sizes["large enum characters"], sum(map(len, strings)))
            sizes["large enum characters"] = longest
    return sizes


def _object_depth(node) -> int:
    """Levels of object schemas on the deepest path down from this node."""
    if not isinstance(node, dict):
        return 0
    own = node.get("type") == "object" or isinstance(node.get("properties"), dict)
    return own + max((_object_depth(sub) for _, sub in _children(node)), default=0)
