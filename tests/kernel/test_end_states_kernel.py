"""End states in a real ipykernel: an error from `await llm_magic.chain(...)` is the user's frame
and one line (as the `%%llm_chain` path's), and a run stopped by its budget says why it has no
answer in the cell's value."""

from __future__ import annotations

import html
import re

import pytest

from tests.kernel_harness import openai_kernel_fixtures
from tests.servers import Call, Reply

pytestmark = pytest.mark.kernel

SETUP = '''
%load_ext llm_magic
import llm_magic


def get_weather(city: str) -> dict:
    """Current weather for a city."""
    return {"city": city, "temp_c": 18}
'''

server, kernel = openai_kernel_fixtures(SETUP, "openai-chat:gpt-4.1-mini")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def test_a_provider_down_from_the_python_api_is_one_readable_error(kernel):
    # one cell at a time: a cell that fails aborts the cells queued behind it
    setup = "import os, socket\nwith socket.socket() as s:\n    s.bind(('127.0.0.1', 0))\n"
    setup += "    port = s.getsockname()[1]\nserved = os.environ['OPENAI_BASE_URL']"
    code = "r = await llm_magic.chain('hi', base_url=f'http://127.0.0.1:{port}/v1')"
    cells = [kernel.run_one(setup), kernel.run_one(code)]
    down = "os.environ['OPENAI_BASE_URL'] = f'http://127.0.0.1:{port}/v1'"
    assert kernel.run_one(down).status == "ok"
    cells += [kernel.run_one("%%llm_chain\nhi")]
    assert kernel.run_one("os.environ['OPENAI_BASE_URL'] = served").status == "ok"
    assert cells[0].status == "ok", cells[0].errors
    (error,) = cells[1].errors
    lines = [ANSI.sub("", line) for line in error["traceback"]]
    text = "\n".join(lines)
    assert error["ename"] == "ProviderError" and "cannot reach" in error["evalue"]
    assert lines[0] == "Traceback (most recent call last):"
    assert "line 1, in <module>" in lines[1]  # the user's cell, first, and its line
    assert "await llm_magic.chain('hi'" in lines[2]
    assert lines[-1] == f"ProviderError: {error['evalue']}"
    assert "llm_magic/" not in text and "site-packages" not in text, text
    assert len(lines) <= 4, text
    # the magic's path: its one line, as before
    (magic,) = cells[2].errors
    assert [ANSI.sub("", s) for s in magic["traceback"]] == [f"ProviderError: {error['evalue']}"]


def test_a_budget_stop_says_why_there_is_no_answer(kernel, server):
    reply = Reply(text="Let me look.", calls=[Call("get_weather", {"city": "Paris"})])
    reply.usage = (2000, 50)
    server.push(reply)
    cell = kernel.run_one("%%llm_chain -t get_weather --max-cost 0.0009\nWeather?")
    assert cell.status == "ok", cell.errors
    results = [m.content["data"] for m in cell.messages if m.type == "execute_result"]
    (data,) = results
    shown = html.unescape(data["text/html"])
    assert "no answer: stopped by max_cost before turn 2: $" in shown
    assert "the answer is in the timeline above" not in shown
    assert server.take_failures() == []
