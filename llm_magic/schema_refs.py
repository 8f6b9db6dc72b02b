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
    return result  # type: ignore[no-any-return]


def _def_name(ref: Any) -> str | None:
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return ref[len("#/$defs/") :]
    return None


def _refs(node: Any) -> set[str]:
    """Names of the definitions a schema refers to."""
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node)) if node else set()
    if not isinstance(node, dict):
        return set()
    own = _def_name(node.get("$ref"))
    found = {own} if own else set()
    return found.union(*(_refs(v) for k, v in node.items() if k != "$defs"))


def _recursive_defs(defs: dict[str, Any]) -> set[str]:
    """Definitions that can reach themselves through `$ref`s."""
    graph = {name: _refs(body) for name, body in defs.items()}
    recursive = set()
    for start in graph:
        seen: set[str] = set()
        todo = list(graph[start])
        while todo:
            name = todo.pop()
            if name == start:
                recursive.add(start)
                break
            if name not in seen:
                seen.add(name)
                todo.extend(graph.get(name, ()))
    return recursive


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
