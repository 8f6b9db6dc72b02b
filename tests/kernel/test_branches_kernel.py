"""Issue 14 in a real ipykernel: `--output-type NAME` and `--max-cost` on the magic line, a
re-run from the cell's result with a top-level await, and `%llm_usage`."""

from __future__ import annotations

import pytest

from tests.kernel_harness import openai_kernel_fixtures
from tests.servers import Call, Reply

pytestmark = pytest.mark.kernel

SETUP = '''
%load_ext llm_magic
from dataclasses import dataclass


@dataclass
class Answer:
    city: str
    temp_c: float


def get_weather(city: str) -> dict:
    """Current weather for a city."""
    return {"city": city, "temp_c": {"Paris": 18, "Rome": 24}[city]}
'''


server, kernel = openai_kernel_fixtures(SETUP, "openai-chat:gpt-4.1-mini")


def test_typed_answer_rerun_and_usage_in_a_kernel(kernel, server):
    server.push(
        Reply(calls=[Call("get_weather", {"city": "Paris"})], usage=(1000, 50)),
        # OpenAI: the typed answer is the final message's JSON (native structured output)
        Reply(json_content={"city": "Paris", "temp_c": 18}, usage=(1100, 20)),
        Reply(json_content={"city": "Rome", "temp_c": 24}, usage=(1100, 20)),
    )
    cells = kernel.run(
        [
            "%%llm_chain -q -t get_weather --output-type Answer -o r\nWarmest?",
            "print(repr(r.output), r.status)",
            "r2 = await r.rerun(r.tool_calls[0].id, arguments={'city': 'Rome'})\n"
            "print(repr(r2.output), repr(r.output), r2.branched_from.step)",
            "%llm_usage",
        ]
    )
    assert [c.status for c in cells] == ["ok"] * 4, [c.errors for c in cells]
    assert cells[1].stream() == "Answer(city='Paris', temp_c=18.0) done\n"
    assert cells[2].stream() == (
        "Answer(city='Rome', temp_c=24.0) Answer(city='Paris', temp_c=18.0) 1\n"
    )
    usage = cells[3].stream().splitlines()
    row = next(line.split() for line in usage if line.startswith("gpt-4.1-mini"))
    assert row[1:3] == ["3", "3200"] and row[-1].startswith("$")
    assert server.take_failures() == []


def test_max_cost_on_the_line_in_a_kernel(kernel, server):
    server.requests.clear()
    cell = kernel.run_one("%%llm_chain -q --max-cost 0.0000001 -o b\nHello\n")
    assert cell.status == "ok", cell.errors
    assert kernel.run_one("print(b.status, b.cost)").stream() == "max_cost 0\n"
    assert server.requests == []
