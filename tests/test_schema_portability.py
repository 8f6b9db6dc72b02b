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
