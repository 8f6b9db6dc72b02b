"""Every way of running a chain in a notebook shows a timeline while it runs (a real kernel, the
loopback OpenAI server): `await llm_magic.chain(...)`, `await result.continue_(...)`,
`await result.fork(...)`, `await result.rerun(...)` and `%%llm_chain`. Each shows the live
widget when its run starts and leaves the static timeline when it ends."""

from __future__ import annotations

import pytest

from tests.kernel_harness import Cell, openai_kernel_fixtures
from tests.servers import Call, Reply

pytestmark = pytest.mark.kernel

SETUP = '''
%load_ext llm_magic
import llm_magic


def get_weather(city: str) -> dict:
    """Current weather for a city."""
    return {"city": city, "temp_c": {"Oslo": 2, "Rome": 19}.get(city, 10)}
'''

server, kernel = openai_kernel_fixtures(SETUP, "openai-chat:test-model")

WIDGET = "application/vnd.jupyter.widget-view+json"

# entry point -> (its cell, the replies its run takes)
ENTRY_POINTS = {
    "chain": (
        "r0 = await llm_magic.chain('Oslo?', tools=[get_weather])",
        [Reply(calls=[Call("get_weather", {"city": "Oslo"})]), Reply(text="Cold in Oslo.")],
    ),
    "continue_": ("r1 = await r0.continue_('And tomorrow?')", [Reply(text="Still cold.")]),
    "fork": ("r2 = await r0.fork(at=1, prompt='In French?')", [Reply(text="Froid.")]),
    "rerun": (
        "r3 = await r0.rerun(r0.tool_calls[0].id, arguments={'city': 'Rome'})",
        [Reply(text="Warm in Rome.")],
    ),
    "cell magic": ("%%llm_chain -t get_weather\nOslo again?", [Reply(text="Cold.")]),
}


def _shown(cell: Cell) -> tuple[bool, bool]:
    """(the live widget was displayed, the output ended as the static timeline)."""
    shown = [m for m in cell.messages if m.type in ("display_data", "update_display_data")]
    live = any(m.type == "display_data" and WIDGET in m.content["data"] for m in shown)
    last = shown[-1].content["data"] if shown else {}
    return live, WIDGET not in last and "llm-magic-timeline" in last.get("text/html", "")


def test_every_entry_point_shows_a_timeline_while_it_runs(kernel, server):
    names = list(ENTRY_POINTS)
    for name in names:
        server.push(*ENTRY_POINTS[name][1])
    cells = kernel.run([ENTRY_POINTS[name][0] for name in names], timeout=120)
    assert server.take_failures() == [] and server.pending == 0
    for name, cell in zip(names, cells, strict=True):
        assert cell.status == "ok", (name, cell.errors)
        assert _shown(cell) == (True, True), name
