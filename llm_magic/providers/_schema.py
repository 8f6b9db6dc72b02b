"""JSON Schema → the OpenAPI-3.0 `Schema` subset Gemini takes in `FunctionDeclaration.parameters`.

Gemini accepts `type` (one of STRING NUMBER INTEGER BOOLEAN ARRAY OBJECT NULL), `format`,
`description`, `nullable`, `enum` (strings only), `items`, `minItems`, `maxItems`, `properties`,
`required`, `minProperties`, `maxProperties`, `minLength`, `maxLength`, `pattern`, `example`,
`anyOf`, `propertyOrdering`, `minimum`, `maximum` (plus `title` and `default`, which are dropped
here). Every node needs a `type` unless it uses `anyOf`.

What is translated:
- `$ref`/`$defs` are inlined; `additionalProperties`, `title`, `default` and other annotations are
  dropped;
- `anyOf`/`oneOf` with a `null` branch (or `type: [X, "null"]`) become X with `nullable: true`;
  `oneOf` becomes `anyOf`; a one-element `allOf` is merged;
- `const` becomes a one-value `enum`; integer enums become string enums (the tool's own argument
  conversion turns "2" back into 2);
- `prefixItems` (a tuple) becomes `items` (the one item schema, or an `anyOf` of them) with the
  positions spelled out in the description; `minItems`/`maxItems` keep the length;
- constraints Gemini lacks (`exclusiveMinimum`, `multipleOf`, `uniqueItems`, unsupported
  `format`s) are written into the description so the model still sees them.

Everything else (`not`, `if`/`then`/`else`, a multi-branch `allOf`, a node with no type, a
recursive `$ref`, an object without properties, an empty enum value, ...) raises
ToolDefinitionError naming the tool, the keyword and where it is (`schema_format="auto"` then
sends that tool's `parametersJsonSchema` instead).
"""

from __future__ import annotations

import json
from typing import Any

from .._schema_refs import inline_refs
from ..errors import ToolDefinitionError

TYPES = {"string", "number", "integer", "boolean", "array", "object", "null"}
FORMATS = {
    "STRING": {"enum", "date-time"},
    "NUMBER": {"float", "double"},
    "INTEGER": {"int32", "int64"},
}
# Kept as they are (after recursion where they hold schemas).
_PASS = {
    "description",
    "nullable",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "example",
    "minimum",
    "maximum",
    "propertyOrdering",
}
# Dropped: annotations, and constraints on extra keys of an object (Gemini has none).
_DROP = {
    "additionalProperties",
    "title",
    "default",
    "$schema",
    "$id",
    "$comment",
    "$anchor",
    "examples",
    "readOnly",
    "writeOnly",
    "deprecated",
    "contentMediaType",
    "contentEncoding",
    "patternProperties",
    "propertyNames",
    "unevaluatedProperties",
    "$defs",
    "definitions",
}
# Written into the description.
_NOTES = {
    "exclusiveMinimum": "greater than {}",
    "exclusiveMaximum": "less than {}",
    "multipleOf": "a multiple of {}",
    "uniqueItems": "items must be unique",
}


def translate_schema(schema: dict[str, Any], tool_name: str = "?") -> dict[str, Any]:
    """The Gemini `parameters` form of a JSON schema; ToolDefinitionError when it has none."""
    if not isinstance(schema, dict):
        _fail(tool_name, "parameters", "the schema is not an object")
    return _Translator(tool_name).node(inline_refs(schema), "parameters")


def _fail(tool: str, where: str, what: str) -> None:
    raise ToolDefinitionError(
        f"tool {tool!r}: Gemini cannot take this parameter schema: {what} (at {where}); "
        "change the type hint, or use GeminiGenerateContentAdapter(schema_format='json_schema')"
    )


def note(out: dict[str, Any], text: str) -> None:
    """Say in the schema's description what a keyword the API lacks said (in parentheses)."""
    desc = out.get("description")
    out["description"] = f"{desc} ({text})" if desc else f"({text})"


class _Translator:
    def __init__(self, tool: str) -> None:
        self.tool = tool

    def fail(self, where: str, what: str) -> None:
        _fail(self.tool, where, what)

    def node(self, schema: Any, where: str) -> dict[str, Any]:
        if not isinstance(schema, dict):
            self.fail(where, f"a schema must be an object, not {json.dumps(schema)}")
        s = dict(schema)
        if "$ref" in s:
            self.fail(where, f"keyword '$ref' ({s['$ref']}) could not be inlined (recursive type?)")
        if "allOf" in s:
            branches = s.pop("allOf")
            if not isinstance(branches, list) or len(branches) != 1:
                self.fail(where, "keyword 'allOf' with more than one schema")
            s = {**branches[0], **s}
        out: dict[str, Any] = {}
        nullable = False
        types = s.pop("type", None)
        if isinstance(types, list):
            nullable = "null" in types
            types = [t for t in types if t != "null"]
            if len(types) > 1:
                self.fail(where, f"keyword 'type' with several types {types}")
            types = types[0] if types else "null"
        if types is not None and (not isinstance(types, str) or types.lower() not in TYPES):
            self.fail(where, f"unknown type {types!r}")
        typ = types.upper() if isinstance(types, str) else None

        for key in ("anyOf", "oneOf"):
            if key in s:
                if "anyOf" in out:
                    self.fail(where, "both 'anyOf' and 'oneOf'")
                branches = s.pop(key)
                if not isinstance(branches, list) or not branches:
                    self.fail(where, f"keyword {key!r} needs a list of schemas")
                kept = []
                for i, b in enumerate(branches):
                    if isinstance(b, dict) and b.get("type") == "null" and len(b) == 1:
                        nullable = True
                    else:
                        kept.append(self.node(b, f"{where}.{key}[{i}]"))
                if len(kept) == 1 and typ is None:
                    if "description" in s:
                        kept[0].pop("description", None)
                    out.update(kept[0])
                    typ = out.pop("type", None)
                elif kept:
                    out["anyOf"] = kept
                else:
                    typ = typ or "NULL"

        if "const" in s:
            if "enum" in s:
                self.fail(where, "both 'const' and 'enum'")
            s["enum"] = [s.pop("const")]
        if "enum" in s:
            typ = self.enum(s.pop("enum"), typ, out, where)

        if "properties" in s or "required" in s:
            typ = typ or "OBJECT"
            if typ != "OBJECT":
                self.fail(where, f"'properties' on a {typ} schema")
            props = s.pop("properties", None) or {}
            if not isinstance(props, dict):
                self.fail(where, "keyword 'properties' must be an object")
            out["properties"] = {
                name: self.node(sub, f"{where}.properties.{name}") for name, sub in props.items()
            }
            required = [r for r in s.pop("required", None) or () if r in props]
            if required:
                out["required"] = required

        if "prefixItems" in s:
            self.tuple(s, out, where)
            typ = typ or "ARRAY"
        if "items" in s:
            typ = typ or "ARRAY"
            items = s.pop("items")
            if items is False:  # 2020-12: no items beyond prefixItems
                pass
            elif "items" in out:
                self.fail(where, "'items' together with 'prefixItems'")
            else:
                out["items"] = self.node(items, f"{where}.items")
        if typ == "ARRAY" and "items" not in out:
            self.fail(where, "an array without an item schema ('items')")

        fmt = s.pop("format", None)
        if fmt is not None:
            if typ is not None and fmt in FORMATS.get(typ, ()):
                out["format"] = fmt
            else:
                note(out, f"format: {fmt}")

        for key, value in s.items():
            if key in _PASS:
                if key == "description":
                    desc = out.get("description")  # notes written above come after it
                    out["description"] = f"{value} {desc}" if desc else value
                else:
                    out[key] = value
            elif key in _DROP:
                continue
            elif key in _NOTES:
                if key == "exclusiveMinimum" and typ == "INTEGER" and _is_int(value):
                    out["minimum"] = value + 1
                elif key == "exclusiveMaximum" and typ == "INTEGER" and _is_int(value):
                    out["maximum"] = value - 1
                elif value is not False:
                    note(out, _NOTES[key].format(value))
            else:
                self.fail(where, f"unsupported keyword {key!r}")

        if typ == "OBJECT" and not out.get("properties"):
            # the API rejects an OBJECT without properties (a dict[str, X] parameter)
            self.fail(where, "an object without 'properties' (a mapping such as dict[str, int])")
        if typ is None and "anyOf" not in out:
            self.fail(where, "a value of any type (no 'type'; e.g. an unannotated parameter)")
        if typ is not None:
            out["type"] = typ
        if nullable:
            out["nullable"] = True
        return out

    def enum(self, values: Any, typ: str | None, out: dict[str, Any], where: str) -> str | None:
        if not isinstance(values, list) or not values:
            self.fail(where, "keyword 'enum' needs a non-empty list")
        if None in values:
            out["nullable"] = True
            values = [v for v in values if v is not None]
        if "" in values:  # the API rejects an empty enum value
            self.fail(where, "an empty string among the 'enum' values")
        if all(isinstance(v, str) for v in values) and typ in (None, "STRING"):
            out["enum"] = values
            return "STRING"
        if all(_is_int(v) for v in values) and typ in (None, "INTEGER", "STRING"):
            out["enum"] = [str(v) for v in values]
            note(out, "an integer")
            return "STRING"
        if typ is None:
            self.fail(where, f"keyword 'enum' with values of mixed types {values}")
        note(out, "one of " + ", ".join(json.dumps(v) for v in values))
        return typ

    def tuple(self, s: dict[str, Any], out: dict[str, Any], where: str) -> None:
        prefix = s.pop("prefixItems")
        if not isinstance(prefix, list) or not prefix:
            self.fail(where, "keyword 'prefixItems' needs a non-empty list")
        items = [self.node(p, f"{where}.prefixItems[{i}]") for i, p in enumerate(prefix)]
        distinct: list[dict[str, Any]] = []
        for item in items:
            if item not in distinct:
                distinct.append(item)
        out["items"] = distinct[0] if len(distinct) == 1 else {"anyOf": distinct}
        if len(distinct) > 1:
            kinds = ", ".join(_describe(i) for i in items)
            note(out, f"exactly {len(items)} items, in this order: {kinds}")
        s.setdefault("minItems", len(items))
        if s.get("items") is False or "items" not in s:
            s.setdefault("maxItems", len(items))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _describe(schema: dict[str, Any]) -> str:
    if "enum" in schema:
        return "one of " + "/".join(schema["enum"])
    if "anyOf" in schema:
        return " or ".join(_describe(b) for b in schema["anyOf"])
    return str(schema.get("type", "any")).lower()
