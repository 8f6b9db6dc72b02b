"""`$defs` and `$ref` in tool schemas: inline what can be inlined, keep what is recursive.

Pydantic models describe nested models as `$defs` plus `$ref`s. A tool's parameter schema nests
such a model under one property, while `#/$defs/...` always points at the document root: so the
definitions are hoisted to the root, non-recursive ones are inlined (Gemini's `parameters` form
has no `$ref`), and recursive ones stay as references (inlining them never ends).
"""

from __future__ import annotations

from typing import Any


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """Replace each `$ref` to `$defs` with its definition, except recursive ones.

    A definition that refers to itself (directly or through others) cannot be inlined: it
    stays in `$defs` and is referred to by `$ref` (OpenAI, Anthropic and Gemini's
    `parametersJsonSchema` accept that). Every other definition is inlined once per use, so a
    model with two self-references builds in linear time instead of doubling per level.
    """
    defs: dict[str, Any] = schema.get("$defs") or {}
    recursive = _recursive_defs(defs)

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(v) for v in node]
        if not isinstance(node, dict):
            return node
        name = _def_name(node.get("$ref"))
        if name is not None and name in defs and name not in recursive:
            rest = {k: v for k, v in node.items() if k != "$ref"}
            return walk({**defs[name], **rest})
        return {k: walk(v) for k, v in node.items() if k != "$defs"}

    result = walk(schema)
    kept = {name: walk(defs[name]) for name in defs if name in recursive}
    if kept:
        result["$defs"] = kept
    return inline_root_ref(result)


def inline_root_ref(schema: dict[str, Any]) -> dict[str, Any]:
    """A root that is a `$ref` (pydantic's schema of a recursive model) becomes its definition,
    `$defs` kept for the references inside it.

    OpenAI, Anthropic and Gemini all want an object at the root of a tool's or an answer's
    schema, and a bare `{"$ref", "$defs"}` has no `type`; openai-python `src/openai/lib/
    _pydantic.py` (`_ensure_strict_json_schema`) unravels a `$ref` that has siblings the same
    way, the root's own keys taking priority. A definition nothing refers to any more is dropped.
    """
    defs: dict[str, Any] = schema.get("$defs") or {}
    out, seen = schema, set()
    while (name := _def_name(out.get("$ref"))) in defs and name not in seen:
        seen.add(name)
        out = {**defs[name], **{k: v for k, v in out.items() if k != "$ref"}}
    if not seen:
        return schema
    used = _reachable(refs(out), defs)
    kept = {name: body for name, body in defs.items() if name in used}
    if kept:
        out["$defs"] = kept
    else:
        out.pop("$defs", None)
    return out


def _reachable(names: set[str], defs: dict[str, Any]) -> set[str]:
    """The definitions these names refer to, and every one they refer to in turn."""
    found: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name not in found and name in defs:
            found.add(name)
            todo.extend(refs(defs[name]))
    return found


def _def_name(ref: Any) -> str | None:
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return ref[len("#/$defs/") :]
    return None


def refs(node: Any) -> set[str]:
    """Names of the definitions a schema refers to."""
    if isinstance(node, list):
        return set().union(*(refs(v) for v in node)) if node else set()
    if not isinstance(node, dict):
        return set()
    own = _def_name(node.get("$ref"))
    found = {own} if own else set()
    return found.union(*(refs(v) for k, v in node.items() if k != "$defs"))


def _recursive_defs(defs: dict[str, Any]) -> set[str]:
    """Definitions that can reach themselves through `$ref`s."""
    return {name for name, body in defs.items() if name in _reachable(refs(body), defs)}


def hoist_defs(schema: dict[str, Any]) -> dict[str, Any]:
    """Move every nested `$defs` to the root, where `#/$defs/...` references point."""
    found: dict[str, Any] = {}

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(v) for v in node]
        if not isinstance(node, dict):
            return node
        for name, body in (node.get("$defs") or {}).items():
            found.setdefault(name, body)
        return {k: walk(v) for k, v in node.items() if k != "$defs"}

    result: dict[str, Any] = walk(schema)
    found = {name: walk(body) for name, body in found.items()}
    if found:
        result["$defs"] = found
    return result
