"""Tool schemas: never shared between tools, and portable to every provider's schema dialect."""

from __future__ import annotations

from llm_magic import Tool


def test_editing_one_tools_schema_changes_no_other_tool() -> None:
    def first(xs: list[int], pair: tuple[int, int], n: int) -> int:
        return n

    def second(n: int, ys: list[int]) -> int:
        return n

    schema = Tool.from_function(first).schema
    schema["properties"]["xs"]["items"]["minimum"] = 0
    schema["properties"]["pair"]["prefixItems"][0]["maximum"] = 9
    schema["properties"]["n"]["minimum"] = 5
    again = Tool.from_function(first).schema
    other = Tool.from_function(second).schema
    assert again["properties"]["xs"]["items"] == {"type": "integer"}
    assert again["properties"]["pair"]["prefixItems"][0] == {"type": "integer"}
    assert other["properties"]["n"] == {"type": "integer"}
    assert other["properties"]["ys"]["items"] == {"type": "integer"}


def test_local_self_referencing_dataclass_says_what_to_do() -> None:
    import dataclasses

    import pytest

    from llm_magic import ToolDefinitionError

    @dataclasses.dataclass
    class Node:
        value: int
        children: list[Node]

    def walk(node: Node) -> int:
        return node.value

    with pytest.raises(ToolDefinitionError) as info:
        Tool.from_function(walk)
    text = str(info.value)
    assert "'walk'" in text and "Node" in text and "module level" in text
    assert not isinstance(info.value.__cause__, NameError)
    walk.__annotations__ = {"node": Node, "return": int}  # the class itself, as without PEP 563
    with pytest.raises(ToolDefinitionError, match=r"'Node' refer to a name .* module level"):
        Tool.from_function(walk)
