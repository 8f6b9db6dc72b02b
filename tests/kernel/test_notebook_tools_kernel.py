"""The notebook tools in a real ipykernel (tests/kernel_harness.py) against the scripted OpenAI
loopback server: the model inspects a pandas DataFrame through them and answers from what the
tool results told it, and `run_python` runs only when the user clicks Approve in the timeline."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.kernel_harness import clicker, openai_kernel_fixtures  # noqa: E402
from tests.servers import Call, Reply  # noqa: E402

pytestmark = pytest.mark.kernel

SETUP = """
%load_ext llm_magic
import pandas as pd
from llm_magic.notebook.state import state

sales = pd.DataFrame({"region": ["north", "south", "east"], "units": [120, 80, 45]})
_draft = "not for the model"
"""

server, kernel = openai_kernel_fixtures(SETUP, "openai-chat:test-model")


@pytest.fixture(autouse=True)
def clean_server(server):
    server.requests.clear()
    yield
    assert server.take_failures() == []
    assert server.pending == 0


def tool_outputs(body: dict) -> list[str]:
    return [m["content"] for m in body["messages"] if m["role"] == "tool"]


def best_region(body: dict) -> str:
    """The scripted model's answer, from the rows the describe_variable result showed it:
    nothing is known here of the frame but what the request carries."""
    described = [t for t in tool_outputs(body) if t.startswith("pandas.DataFrame")]
    if not described:
        return "I saw no table."
    head = described[0].split("head(5):\n", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    rows = [line.split() for line in head]  # index, region, units
    region, units = max(((r[1], int(r[2])) for r in rows), key=lambda row: row[1])
    return f"{region} sold the most: {units} units."


def test_the_model_inspects_a_dataframe_and_answers_from_what_it_saw(kernel, server):
    server.push(
        Reply(calls=[Call("list_variables", {})]),
        Reply(calls=[Call("describe_variable", {"name": "sales"})]),
        Reply(answer=best_region),
    )
    cell = kernel.run_one("%%llm_chain --tools notebook\nWhich region sold the most?")
    assert cell.status == "ok", cell.errors
    assert cell.result_text is not None and "north sold the most: 120 units." in cell.result_text
    listing = tool_outputs(server.requests[1].body)[0]
    names = [line.split()[0] for line in listing.splitlines()[1:]]
    assert names == ["state", "sales"]  # not pd (a module), _draft, nor IPython's own
    described = tool_outputs(server.requests[2].body)[1]
    assert described.startswith("pandas.DataFrame: 3 rows × 2 columns")
    assert ["units", "int64"] in [line.split() for line in described.splitlines()]
    assert "describe():" in described
    statuses = kernel.run_one("print([r.status for r in state.last_result.tool_calls])")
    assert statuses.stream() == "['ok', 'ok']\n"


@pytest.mark.parametrize("action", ["approve", "deny"])
def test_run_python_runs_only_once_approved_in_the_timeline(kernel, server, action):
    code = "sales['share'] = sales.units / sales.units.sum()\nprint(sales.share.max().round(3))"
    server.push(Reply(calls=[Call("run_python", {"code": code})]), Reply(text="Noted."))
    on_message, seen = clicker(kernel, action, reason="not now")
    cell = kernel.run(
        ["%%llm_chain -t notebook+run\nAdd each region's share."], on_message=on_message
    )[0]
    assert cell.status == "ok", cell.errors
    assert "clicked" in seen, "no approval card was shown"
    card = seen["card"]["args"]
    assert 'class="llm-code"' in card and "--jp-mirror-editor" in card  # highlighted code
    (sent,) = tool_outputs(server.requests[1].body)
    columns = kernel.run_one("print(list(sales.columns))").stream()
    if action == "approve":
        assert sent == "stdout:\n0.49"
        assert columns == "['region', 'units', 'share']\n"
    else:
        assert sent.startswith("denied") and "not now" in sent
        assert columns == "['region', 'units']\n"
    kernel.run_one("sales = sales[['region', 'units']]")


def test_an_interrupt_stops_run_python_code_that_would_run_on(kernel, server):
    """The model's code runs in a worker thread: the kernel stays responsive, an interrupt
    cancels the run at once, and the code's thread is stopped at its next line, not left
    running (a thread cannot be killed, but it can be told)."""
    code = "import time\nticks = 0\nwhile True:\n    ticks += 1\n    time.sleep(0.05)"
    server.push(Reply(calls=[Call("run_python", {"code": code})]))
    on_message, seen = clicker(kernel, "approve")

    def interrupt_soon_after_the_click() -> None:
        while "clicked" not in seen:
            time.sleep(0.02)
        time.sleep(1.0)
        seen["interrupted"] = time.monotonic()
        kernel.km.interrupt_kernel()

    threading.Thread(target=interrupt_soon_after_the_click, daemon=True).start()
    (cell,) = kernel.run(["%%llm_chain -t notebook+run\nCount."], on_message=on_message)
    assert time.monotonic() - seen["interrupted"] < 5.0
    assert [e["ename"] for e in cell.errors] == ["CancelledError"]
    after = kernel.run_one(
        "import time\nfirst = ticks\ntime.sleep(0.5)\n"
        "print(state.last_run.records[0].thread, ticks == first, first > 0)"
    )
    assert after.stream() == "stopped True True\n"
