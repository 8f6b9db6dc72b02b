"""One tool-name rule for every provider and every source of tools (functions, schemas, MCP)."""

from __future__ import annotations

import pytest

from llm_magic import Tool
from llm_magic._tool_names import WIRE_NAME, wire_name, wire_names
from llm_magic.errors import ToolDefinitionError

PARAMS = {"type": "object", "properties": {}}


@pytest.mark.parametrize("name", ["2fast", "-x", "", "a" * 65, "files/read"])
def test_a_given_tool_name_every_provider_refuses_is_refused(name: str) -> None:
    with pytest.raises(ToolDefinitionError, match="must match"):
        Tool.from_schema(name, "d", PARAMS, lambda: None)


@pytest.mark.parametrize("name", ["2fast", "température", "files/read.v2", "x" * 70])
def test_a_stand_in_always_fits_the_rule(name: str) -> None:
    assert WIRE_NAME.match(wire_name(name))


def test_two_names_of_one_stand_in_get_distinct_wire_names() -> None:
    names = wire_names(["files/read.v2", "files_read_v2"])
    assert len(set(names.values())) == 2 and all(WIRE_NAME.match(n) for n in names.values())
    assert names["files_read_v2"] == "files_read_v2"  # the name already valid keeps it
