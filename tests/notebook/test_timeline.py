"""The timeline, driven by real chain runs against the loopback OpenAI server.

* In-process tests build the widget without a kernel and read what it would send: the entries
  (the full snapshot a late view gets), the patches on its one comm, the static HTML/text. Front-end
  messages (Approve/Deny with a reason, Cancel, open details) go through the widget's own comm
  handler, as ipykernel delivers them. Comm messages are counted through `comm.create_comm`, the
  hook kernels use to supply their Comm class.
* `kernel` tests start a real ipykernel through jupyter_client and click as a frontend would
  (a custom comm_msg on the shell channel) while the cell is still running; one runs 20 chains of
  100 calls and checks kernel memory and the live widget count stay flat.
* An nbclient run of a notebook keeps the final static timeline in its saved outputs (no widget
  view left), and `jupyter nbconvert --to html` of it shows every tool call.
"""

from __future__ import annotations

import asyncio
import html
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import comm
import pytest
from comm.base_comm import BaseComm

import llm_magic
from llm_magic import events as ev
from llm_magic import tool
from llm_magic.notebook import look, render, styles, values
from llm_magic.notebook.reducer import RunState, apply
from llm_magic.notebook.timeline import INTERVAL, Timeline
from llm_magic.notebook.widget import shared_assets
from tests.servers import Call, OpenAIServer, Reply

ROOT = Path(__file__).resolve().parents[2]


# -- the demo notebook (also used by tests/browser/test_browser.py) ---------------------------------------

SETUP = '''\
%load_ext llm_magic
import asyncio
import html
import pandas as pd
import llm_magic
from llm_magic import Approval, tool

model = llm_magic.get_async_model("openai-chat:gpt-4.1-mini", base_url={base_url!r}, api_key={api_key!r})

async def get_weather(city: str, unit: str = "c") -> dict:
    """Current weather for a city."""
    await asyncio.sleep({delay})
    temps = {{"Paris": 14, "Rome": 19, "Oslo": 3}}
    return {{"city": city, "temp": temps.get(city, 10), "unit": unit, "sky": "clear"}}

def city_table(cities: list[str]) -> pd.DataFrame:
    """Country and population (millions) of some cities."""
    data = {{"Paris": ("France", 2.10), "Rome": ("Italy", 2.75), "Oslo": ("Norway", 0.71)}}
    rows = [(c, *data.get(c, ("?", 0.0))) for c in cities]
    return pd.DataFrame(rows, columns=["city", "country", "population_m"])

@tool(requires_approval=True)
def delete_file(path: str) -> str:
    """Delete a file from the workspace."""
    return f"deleted {{path}}"
'''

RUN = """\
result = await llm_magic.chain(
    "Is it warmer in Paris, Rome or Oslo? Then clean up old.csv.",
    tools=[get_weather, city_table, delete_file],
    model=model,{extra}
)
"""

AUTO_APPROVE = """\
async def auto_approve(record):
    return Approval(True)
"""

FINAL_ANSWER = (
    "Rome is the warmest at 19 °C, then Paris at 14 °C; Oslo is coldest at 3 °C. "
    "I deleted old.csv as you asked."
)


def demo_script(final_chunk_delay: float = 0.0, answer: str = FINAL_ANSWER) -> list[Reply]:
    """Three parallel weather calls and a table, then a call that needs approval, then text."""
    return [
        Reply(
            text="Let me check the weather in the three cities.",
            calls=[
                Call("get_weather", {"city": "Paris"}),
                Call("get_weather", {"city": "Rome"}),
                Call("get_weather", {"city": "Oslo"}),
                Call("city_table", {"cities": ["Paris", "Rome", "Oslo"]}),
            ],
            usage=(412, 96),
        ),
        Reply(calls=[Call("delete_file", {"path": "old.csv"})], usage=(655, 21)),
        Reply(text=answer, usage=(702, 44), chunk_delay=final_chunk_delay),
    ]


def run_cell(auto: bool = False) -> str:
    return RUN.format(extra="\n    approval_callback=auto_approve," if auto else "")


def demo_notebook(
    base_url: str, api_key: str, delay: float = 0.3, auto: bool = False, extra: str = ""
) -> dict:
    import nbformat

    cells = [
        nbformat.v4.new_code_cell(
            SETUP.format(base_url=base_url, api_key=api_key, delay=delay)
            + (AUTO_APPROVE if auto else "")
            + extra
        ),
        nbformat.v4.new_code_cell(run_cell(auto)),
        nbformat.v4.new_code_cell(
            'print("after the chain:", result.status, len(result.tool_calls))'
        ),
    ]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nb


# -- helpers -------------------------------------------------------------------------------------


class RecordingComm(BaseComm):
    """A Comm that records what a kernel would publish (comm_open, comm_msg, comm_close)."""

    log: list[tuple[str, str, dict]] = []

    def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys):
        RecordingComm.log.append((msg_type, self.comm_id, data or {}))


@pytest.fixture
def comms() -> Iterator[list[tuple[str, str, dict]]]:
    """Every comm message widgets publish during the test (through the `comm` package's hook)."""
    original = comm.create_comm
    RecordingComm.log = []
    comm.create_comm = RecordingComm
    try:
        yield RecordingComm.log
    finally:
        comm.create_comm = original


async def until(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def model_for(server: OpenAIServer) -> Any:
    return llm_magic.get_async_model(
        "openai-chat:test", base_url=server.base_url, api_key=server.api_key
    )


def entries(tl: Timeline) -> list[dict]:
    """Every entry as a view opening now would get it (the full snapshot)."""
    tl.flush()
    return tl.widget.get_state()["patch"]["entries"]


def calls(tl: Timeline) -> list[dict]:
    return [e for e in entries(tl) if e["kind"] == "call"]


def calls_html(tl: Timeline) -> list[str]:
    return [e["line"] for e in calls(tl)]


def front_end(tl: Timeline, message: dict) -> None:
    """A message from the front end, through the widget's comm handler (as ipykernel calls it)."""
    tl.widget._handle_msg(
        {"content": {"data": {"method": "custom", "content": message}}, "buffers": []}
    )


def approving(holder: list[Timeline]) -> Any:
    """An approval callback given to the run at construction, answered by the timeline."""

    async def approve(record: Any) -> Any:
        return await holder[0].approve(record)

    return approve


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


# -- the reducer (a pure function over events) -----------------------------------------------------


def test_reducer_names_what_each_event_changed():
    from llm_magic.messages import Usage
    from llm_magic.records import ToolCallRecord
    from llm_magic.results import ChainResult

    state = RunState(model="m")
    assert apply(state, ev.RunStarted("m", "go", ["add"])) == ("head",)
    assert apply(state, ev.TurnStarted(1)) == ("head", "t0")
    assert apply(state, ev.TextDelta(1, "Add")) == ("t0",)
    assert apply(state, ev.TextDelta(1, "ing.")) == ("t0",)
    assert state.turns[0].text == "Adding."
    recs = [ToolCallRecord(f"id{i}", "add", "{}", 1) for i in range(2)]
    assert apply(state, ev.ToolCallRequested(recs[0])) == ("head", "t0", "c0")
    assert apply(state, ev.ToolCallRequested(recs[1])) == ("head", "t0", "c1")
    recs[1].status = "error"
    apply(state, ev.ToolCallFailed(recs[1]))
    assert state.counts == {"queued": 1, "error": 1}
    assert state.turns[0].counts == {"queued": 1, "error": 1}
    assert state.turns[0].failed == [recs[1]]
    apply(state, ev.UsageReported(1, Usage(10, 2), Usage(10, 2)))
    assert state.usage.input_tokens == 10
    # the run is cancelled mid-text in a second turn: the turn is marked partial
    apply(state, ev.TurnStarted(2))
    apply(state, ev.TextDelta(2, "half a sen"))
    recs[0].status = "cancelled"
    result = ChainResult("", "cancelled", recs, Usage(10, 2), 1, "m", 1.0)
    changed = apply(state, ev.RunCancelled(result))
    assert "head" in changed and "t1" in changed and "c0" in changed
    assert state.turns[1].partial and state.turns[1].status == "cancelled"
    assert state.counts == {"cancelled": 1, "error": 1}
    assert "partial" in render.static_text(state)


# -- in-process widget tests ---------------------------------------------------------------------


async def test_entries_statuses_and_grouping(comms):
    def broken(x: int) -> int:
        """Always fails."""
        raise ValueError(f"bad x {x}")

    script = [
        Reply(
            text="Adding.",
            calls=[
                Call("add", {"a": 1, "b": 2}),
                Call("add", {"a": 3, "b": 4}),
                Call("broken", {"x": 1}),
            ],
        ),
        Reply(calls=[Call("add", {"a": 3, "b": 7})]),
        Reply(text="3, 7, and 10."),
    ]
    with OpenAIServer(script) as server:
        run = model_for(server).chain("add", tools=[add, broken])
        tl = Timeline(run, model="test-model")
        widget = tl.widget
        result = await run
        tl.close()
        assert server.failures == []
    assert result.status == "done"
    shown = entries(tl)
    turns = [e for e in shown if e["kind"] == "turn"]
    assert len(turns) == 3
    assert "3 parallel calls" in turns[0]["group"] and turns[1]["group"] == ""
    assert [e["parent"] for e in shown if e["kind"] == "call"] == ["t0", "t0", "t0", "t1"]
    lines = calls_html(tl)
    assert len(lines) == 4
    assert "add" in lines[0] and "a=1, b=2" in lines[0] and ">ok<" in lines[0]
    assert "broken" in lines[2] and ">error<" in lines[2] and "ValueError: bad x 1" in lines[2]
    assert "a=3, b=7" in lines[3]
    header = widget.header
    for text in (
        "test-model",
        ">done<",
        "3 turns",
        "4 tool calls (3 ok, 1 error)",
        "30 in / 15 out",
    ):
        assert text in header, text
    assert "Adding." in turns[0]["text"] and "3, 7, and 10." in turns[-1]["text"]
    assert widget.running is False and widget.has_calls is True
    # one anywidget model and its layout: the whole run costs two comms (the kernel's one
    # shared front-end model, opened by whichever view came first, is not the run's)
    assets = shared_assets().model_id
    opens = [c for kind, c, _d in comms if kind == "comm_open" and c != assets]
    assert len(opens) == 2
    # the text/plain and text/html renderings tell the same story
    bundle = tl._repr_mimebundle_()
    assert "4 tool calls" in bundle["text/plain"] and "┌ 3 parallel calls" in bundle["text/plain"]
    assert "✗ broken(x=1) · error" in bundle["text/plain"]
    assert bundle["text/html"].count('class="llm-call"') == 4
    assert "<script" not in bundle["text/html"]


async def test_text_only_run_has_no_tool_words(comms):
    with OpenAIServer([Reply(text="Just text.")]) as server:
        run = model_for(server).chain("hi")
        tl = Timeline(run, model="m")
        widget = tl.widget
        await run
        tl.close()
    assert "tool call" not in widget.header and "1 turn" in widget.header
    assert widget.has_calls is False  # the front end hides "Expand all"
    assert "tool call" not in render.static_text(tl.state)


async def test_details_open_on_request_with_rich_result_and_copy_texts(comms):
    import pandas as pd

    def frame(n: int) -> object:
        """A table."""
        return pd.DataFrame({"x": range(n), "y": [i * i for i in range(n)], "z": 0, "w": 1})

    @tool(max_result_chars=40)
    def long_text(lines: int) -> str:
        """Many lines."""
        return "\n".join(f"line {i} <tag>" for i in range(lines))

    def failing(path: str) -> str:
        """Fails."""
        raise FileNotFoundError(path)

    script = [
        Reply(
            calls=[
                Call("frame", {"n": 3}),
                Call("long_text", {"lines": 50}),
                Call("failing", {"path": "<missing>"}),
            ]
        ),
        Reply(text="done"),
    ]
    with OpenAIServer(script) as server:
        run = model_for(server).chain("x", tools=[frame, long_text, failing])
        tl = Timeline(run, model="m")
        await run
    shown = calls(tl)
    assert all("detail" not in e for e in shown)  # details are rendered only when opened
    assert "DataFrame 3×4" in shown[0]["line"]
    front_end(tl, {"type": "open", "id": shown[0]["id"], "open": True})
    detail = calls(tl)[0]["detail"]
    assert "<table" in detail and "dataframe" in detail  # pandas' own HTML table
    assert "&quot;n&quot;: 3" in detail and "sent to the model" in detail
    copied = json.loads(calls(tl)[0]["copy"]["call"])
    assert copied["tool"] == "frame" and copied["arguments"] == {"n": 3}
    assert copied["result"][2] == {"x": 2, "y": 4, "z": 0, "w": 1}
    assert json.loads(calls(tl)[0]["copy"]["arguments"]) == {"n": 3}
    front_end(tl, {"type": "open_all", "open": True})
    opened = calls(tl)
    assert all("detail" in e for e in opened)
    text_detail = opened[1]["detail"]
    assert "show all (50 lines" in text_detail
    assert "&lt;tag&gt;" in text_detail and "<tag>" not in text_detail
    assert "truncated for the model" in text_detail
    error_detail = opened[2]["detail"]
    assert "FileNotFoundError" in error_detail and "&lt;missing&gt;" in error_detail
    # the traceback opens on the test's own frame; llm_magic's and asyncio's frames are folded
    assert 'class="llm-frames"' in error_detail and "library frame" in error_detail
    user_part = error_detail.split('class="llm-traceback"')[1].split("<details")[0]
    assert "test_timeline.py" in user_part or "in failing" in error_detail.split("<details")[-1]
    front_end(tl, {"type": "open_all", "open": False})
    assert all("detail" not in e for e in calls(tl))
    tl.close()
    html = tl._repr_mimebundle_()["text/html"]
    assert "<script" not in html and "&lt;missing&gt;" in html and "<table" in html


@pytest.mark.parametrize("from_thread", [False, True], ids=["loop-thread", "other-thread"])
async def test_approval_flow(comms, from_thread):
    """Approve with one message; it may arrive on another thread (a subshell)."""

    @tool(requires_approval=True)
    def delete_file(path: str) -> str:
        """Delete a file."""
        return f"deleted {path}"

    script = [Reply(calls=[Call("delete_file", {"path": "old.csv"})]), Reply(text="Deleted.")]
    with OpenAIServer(script) as server:
        tl = Timeline(None, model="m")  # the run gets tl.approve when it is built
        run = model_for(server).chain("clean up", tools=[delete_file], approval_callback=tl.approve)
        tl.attach(run)
        task = asyncio.ensure_future(run)
        waiting = await until(lambda: [e for e in calls(tl) if "approval" in e])
        assert "needs approval" in waiting[0]["line"]
        assert "waiting for you: 1" in tl.widget.header and "1 needs approval" in tl.widget.header
        # the card shows the arguments as text, not escaped JSON
        assert (
            "<th" in waiting[0]["approval"]["args"]
            and ">old.csv<" in waiting[0]["approval"]["args"]
        )
        assert not task.done()
        message = {"type": "decide", "ids": [waiting[0]["id"]], "approved": True, "reason": ""}
        if from_thread:
            clicker = threading.Thread(target=front_end, args=(tl, message))
            clicker.start()
            clicker.join()
        else:
            front_end(tl, message)
        result = await asyncio.wait_for(task, 10)
        tl.close()
    assert result.status == "done" and result.tool_calls[0].status == "ok"
    assert result.tool_calls[0].result == "deleted old.csv"
    assert all("approval" not in e for e in calls(tl))
    assert ">ok<" in calls_html(tl)[0] and "waiting" not in tl.widget.header


async def test_deny_with_reason_is_one_message_and_approve_all(comms):
    @tool(requires_approval=True)
    def drop_table(name: str) -> str:
        """Drop a table."""
        return "dropped"

    script = [
        Reply(calls=[Call("drop_table", {"name": "users"})]),
        Reply(calls=[Call("drop_table", {"name": "a"}), Call("drop_table", {"name": "b"})]),
        Reply(text="OK, I won't drop users."),
    ]
    holder: list[Timeline] = []
    with OpenAIServer(script) as server:
        run = model_for(server).chain(
            "drop it", tools=[drop_table], approval_callback=approving(holder)
        )
        tl = Timeline(run, model="m")
        holder.append(tl)
        task = asyncio.ensure_future(run)
        first = await until(lambda: [e for e in calls(tl) if "approval" in e])
        front_end(
            tl,
            {
                "type": "decide",
                "ids": [first[0]["id"]],
                "approved": False,
                "reason": "  prod data ",
            },
        )
        pair = await until(
            lambda: (
                [e for e in calls(tl) if "approval" in e][1:]
                and [e for e in calls(tl) if "approval" in e]
            )
        )
        assert "waiting for you: 2" in tl.widget.header and "2 need approval" in tl.widget.header
        front_end(tl, {"type": "decide", "ids": [e["id"] for e in pair], "approved": True})
        result = await asyncio.wait_for(task, 10)
        tl.close()
        sent = json.dumps(server.requests[1].body)
        assert server.failures == []
    statuses = [r.status for r in result.tool_calls]
    assert statuses == ["denied", "ok", "ok"]
    rec = result.tool_calls[0]
    assert "prod data" in rec.output and "prod data" in sent
    line = calls_html(tl)[0]
    assert ">denied<" in line and "prod data" in line
    assert "1 denied" in tl.widget.header


async def test_cancel_flow_marks_partial_text(comms):
    async def slow(seconds: float) -> str:
        """Sleeps."""
        await asyncio.sleep(seconds)
        return "woke up"

    script = [
        Reply(text="Waiting.", calls=[Call("slow", {"seconds": 30}), Call("slow", {"seconds": 30})])
    ]
    with OpenAIServer(script) as server:
        run = model_for(server).chain("wait", tools=[slow])
        tl = Timeline(run, model="m")
        task = asyncio.ensure_future(run)
        await until(lambda: sum(">running<" in h for h in calls_html(tl)) == 2)
        assert 'class="llm-elapsed"' in calls_html(tl)[0]  # a live running time
        assert tl.widget.running is True
        started = time.monotonic()
        front_end(tl, {"type": "cancel"})
        result = await asyncio.wait_for(task, 10)
        tl.close()
    assert time.monotonic() - started < 2
    assert result.status == "cancelled"
    assert [r.status for r in result.tool_calls] == ["cancelled", "cancelled"]
    assert all(">cancelled<" in h for h in calls_html(tl))
    assert ">cancelled<" in tl.widget.header and tl.widget.running is False
    assert "cancelled from the timeline" in result.tool_calls[0].reason


async def test_cancelled_stream_is_marked_partial(comms):
    text = " ".join(f"w{i}" for i in range(400))
    with OpenAIServer([Reply(text=text, chunk_delay=0.01)]) as server:
        run = model_for(server).chain("talk")
        tl = Timeline(run, model="m")
        task = asyncio.ensure_future(run)
        await until(lambda: "w20" in (entries(tl)[0]["text"] if entries(tl) else ""))
        run.cancel("interrupted")  # what a kernel interrupt does (session.run_chain)
        result = await asyncio.wait_for(task, 10)
        tl.close()
    assert result.status == "cancelled"
    turn = entries(tl)[0]
    assert "partial" in turn["text"] and "llm-cursor" not in turn["text"]
    assert "partial" in tl._repr_mimebundle_()["text/html"]


async def test_cancel_while_awaiting_approval(comms):
    @tool(requires_approval=True)
    def risky(x: int) -> int:
        """Risky."""
        return x

    holder: list[Timeline] = []
    with OpenAIServer([Reply(calls=[Call("risky", {"x": 1})])]) as server:
        run = model_for(server).chain("go", tools=[risky], approval_callback=approving(holder))
        tl = Timeline(run, model="m")
        holder.append(tl)
        task = asyncio.ensure_future(run)
        await until(lambda: [e for e in calls(tl) if "approval" in e])
        front_end(tl, {"type": "cancel"})
        result = await asyncio.wait_for(task, 10)
        tl.close()
    assert result.status == "cancelled"
    assert result.tool_calls[0].status == "cancelled"
    assert all("approval" not in e for e in calls(tl))
    assert ">cancelled<" in calls_html(tl)[0]


async def test_failed_run_shows_the_error(comms):
    with OpenAIServer([Reply(status=400, error_message="bad request: no such model")]) as server:
        run = model_for(server).chain("go")
        tl = Timeline(run, model="m")
        widget = tl.widget
        with pytest.raises(llm_magic.ProviderError):
            await run
        tl.close()
    assert ">failed<" in widget.header and "no such model" in widget.header
    assert "no such model" in tl._repr_mimebundle_()["text/plain"]


def test_old_kernel_note(monkeypatch, comms):
    import ipykernel

    from llm_magic.notebook import timeline as timeline_module

    class _Run:
        caller = None

        def subscribe(self, cb, approver=False):
            return cb

    monkeypatch.setattr(ipykernel, "__version__", "7.3.2")
    monkeypatch.setattr(timeline_module, "_in_kernel", lambda: True)
    monkeypatch.setattr("IPython.display.display", lambda *a, **k: None)
    tl = Timeline(_Run(), model="m")  # type: ignore[arg-type]
    tl.show()
    tl.flush()
    assert "ipykernel 7.3.2" in tl.widget.note and "7.4" in tl.widget.note
    assert "ipykernel 7.3.2" in tl._repr_mimebundle_()["text/plain"]
    monkeypatch.setattr(ipykernel, "__version__", "7.4.0")
    assert timeline_module._kernel_note() is None


async def test_streamed_answer_is_throttled_and_rendered_as_markdown(comms):
    """500 streamed tokens over ~2.5 s: comm messages follow the throttle, not the tokens;
    the streaming text is Markdown already."""
    tokens = 500
    text = "**Bold** " + " ".join(f"w{i}" for i in range(tokens))
    with OpenAIServer([Reply(text=text, chunk_delay=0.005)]) as server:
        run = model_for(server).chain("talk")
        tl = Timeline(run, model="m")
        widget = tl.widget
        comms.clear()
        started = time.monotonic()
        result = await run
        elapsed = time.monotonic() - started
        tl.close()
    assert result.text == text
    deltas = sum(1 for e in run.events if e.type == "text_delta")
    assert deltas >= tokens
    updates = [d for kind, cid, d in comms if kind == "comm_msg" and cid == widget.comm.comm_id]
    patches = [d["state"]["patch"] for d in updates if "patch" in d.get("state", {})]
    texts = [e["text"] for p in patches for e in p["entries"] if e["kind"] == "turn" and e["text"]]
    bound = elapsed / INTERVAL + 3
    assert len(updates) <= bound, (len(updates), elapsed)
    assert len(texts) >= 3  # it did stream, live
    assert "<strong>Bold</strong>" in texts[0] and "llm-cursor" in texts[0]
    assert "w499" in texts[-1] and "w499" not in texts[0] and "llm-cursor" not in texts[-1]
    print(f"\n{tokens} tokens in {elapsed:.2f} s: {len(updates)} comm messages")


async def test_thousand_calls_one_comm_and_patches_of_what_changed(comms):
    """1,000 calls in one turn: still one widget; each patch carries only changed entries."""
    n = 1000
    script = [Reply(calls=[Call("add", {"a": i, "b": 1}) for i in range(n)]), Reply(text="ok")]
    with OpenAIServer(script) as server:
        run = model_for(server).chain("many", tools=[add], max_tool_calls=n, max_concurrency=64)
        tl = Timeline(run, model="m")
        widget = tl.widget
        result = await run
        tl.close()
    assert len(result.tool_calls) == n
    assert sum(1 for kind, _c, _d in comms if kind == "comm_open") == 2
    patches = [
        d["state"]["patch"]
        for kind, _cid, d in comms
        if kind == "comm_msg" and "patch" in d.get("state", {})
    ]
    assert tl.flushes < 80 and len(patches) <= tl.flushes
    assert sum(len(p["entries"]) for p in patches) < 4 * n  # each call sent a few times at most
    assert len(calls(tl)) == n
    assert f"{n:,} tool calls" in widget.header
    turn = entries(tl)[0]
    assert turn["fold"] is True and "1000 parallel calls · 1000 ok" in turn["group"]


class _Run:
    """What a Timeline uses of a run (no I/O): its subscription and options."""

    options = llm_magic.ChainOptions()
    viewed = False

    def __init__(self) -> None:
        self.callbacks: list[Callable[[ev.Event], None]] = []

    def subscribe(self, callback: Callable[[ev.Event], None], *, approver: bool = False) -> Any:
        self.callbacks.append(callback)
        return callback

    def emit(self, event: ev.Event) -> None:
        for callback in self.callbacks:
            callback(event)


def test_a_flush_sets_only_the_header_traits_that_changed(comms, monkeypatch):
    """Setting a trait costs its validation (the always-allowed list's, element by element) even
    when the value is the same: a flush sets only the header traits whose value changed, and the
    view still shows every change (here a tool allowed for the session)."""
    from llm_magic.notebook import always_allow
    from llm_magic.notebook.widget import TimelineWidget

    run = _Run()
    tl = Timeline(run, model="m")  # type: ignore[arg-type]
    widget = tl.widget
    run.emit(ev.RunStarted("m", "go", ["lookup"]))
    run.emit(ev.TurnStarted(1))
    tl.flush()
    names: list[str] = []
    original = TimelineWidget.__setattr__

    def counting(self: Any, name: str, value: Any) -> None:
        if self is widget:
            names.append(name)
        original(self, name, value)

    monkeypatch.setattr(TimelineWidget, "__setattr__", counting)
    usage = llm_magic.Usage(120, 7)
    run.emit(ev.UsageReported(1, usage, usage))
    tl.flush()
    head = {"header", "running", "has_calls", "allowed", "note"}
    assert head & set(names) == {"header"}, names
    assert "120 in / 7 out tokens" in widget.header
    names.clear()
    always_allow.allow("lookup")
    try:
        tl.mark()
        tl.flush()
        assert head & set(names) == {"allowed"} and widget.allowed == ["lookup"], names
    finally:
        always_allow.revoke("lookup")
    tl.mark()
    tl.flush()
    assert widget.allowed == []


def test_running_loop_is_the_loop_of_this_thread_or_none():
    """A view with no loop yet asks on every event: the answer costs no exception."""
    from llm_magic._approver import running_loop

    assert running_loop() is None

    async def inside() -> bool:
        return running_loop() is asyncio.get_running_loop()

    assert asyncio.run(inside())


async def test_big_group_lists_its_failures(comms):
    def fetch(i: int) -> str:
        """Fetch."""
        if i % 10 == 3:
            raise ValueError(f"page {i} missing")
        return "ok"

    script = [Reply(calls=[Call("fetch", {"i": i}) for i in range(30)]), Reply(text="done")]
    with OpenAIServer(script) as server:
        run = model_for(server).chain("go", tools=[fetch], max_concurrency=30)
        tl = Timeline(run, model="m")
        await run
        tl.close()
    group = entries(tl)[0]["group"]
    assert "30 parallel calls · 27 ok, 3 error" in group
    assert group.count("<li") == 3 and "page 13 missing" in group
    static = tl._repr_mimebundle_()["text/html"]
    assert "<details>" in static.split("30 parallel calls")[0][-400:]  # folded, not open


async def test_pyplot_figure_from_a_tool_is_closed(comms):
    plt = pytest.importorskip("matplotlib.pyplot")
    pytest.importorskip("matplotlib").use("Agg")

    def plot(n: int) -> Any:
        """A figure."""
        fig, ax = plt.subplots()
        ax.plot(range(n))
        return fig

    with OpenAIServer([Reply(calls=[Call("plot", {"n": 3})]), Reply(text="drawn")]) as server:
        before = len(plt.get_fignums())
        run = model_for(server).chain("plot", tools=[plot])
        tl = Timeline(run, model="m")
        await run
        tl.close()
    assert len(plt.get_fignums()) == before  # not shown again below the cell
    assert "Figure (image)" in calls_html(tl)[0]
    assert 'src="data:image/png;base64,' in tl._repr_mimebundle_()["text/html"]


async def test_terminal_text_mode(capsys):
    script = [
        Reply(text="Sum:", calls=[Call("add", {"a": 2, "b": 2})]),
        Reply(text="It is 4.\nQuite sure."),
    ]
    with OpenAIServer(script) as server:
        run = model_for(server).chain("add", tools=[add])
        tl = Timeline(run, model="term-model")
        tl.show()  # no kernel here: compact text lines
        await run
        tl.close()
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "LLM term-model"
    assert "    ✓ add(a=2, b=2) · ok" in out
    assert "  It is 4.\n  Quite sure.\n" in out  # every answer line indented under the header
    assert lines[-1].startswith("LLM term-model · done · 2 turns · 1 tool call")
    assert "ipywidgets" not in type(tl._text).__module__


def test_import_does_not_load_ipywidgets():
    code = (
        "import sys, llm_magic, llm_magic.notebook.timeline, llm_magic.notebook.render; "
        "print('ipywidgets' in sys.modules, 'anywidget' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"


def test_widget_front_end_ships_with_the_package():
    from llm_magic.notebook.widget import STATIC

    js = (STATIC / "timeline.js").read_text()
    assert "export default" in js and (STATIC / "timeline.css").exists()
    assert "eval(" not in js and "new Function" not in js


def test_render_helpers():
    from llm_magic.records import ToolCallRecord

    rec = ToolCallRecord("c1", "search", '{"q": "<b>x</b>", "n": 5}', 1, {"q": "<b>x</b>", "n": 5})
    assert values.arg_summary(rec) == 'q="<b>x</b>", n=5'
    assert "&lt;b&gt;" in render.call_line_html(rec)
    bad = ToolCallRecord("c2", "s", "{not json", 1)
    assert values.arg_summary(bad) == "{not json"
    assert look.fmt_duration(0.0123) == "12 ms" and look.fmt_duration(75) == "1 min 15 s"
    assert "show all" in values.folded("x\n" * 100)
    assert "<img" in values.rich_html(_PNG())


def test_mcp_calls_carry_their_server_badge():
    from llm_magic.records import ToolCallRecord

    remote = ToolCallRecord("c1", "units_c_to_f", '{"c": 3}', 1, {"c": 3}, server="units")
    local = ToolCallRecord("c2", "get_weather", "{}", 1, {})
    hostile = ToolCallRecord("c3", "x_y", "{}", 1, {}, server="<b>x</b>" + "y" * 40)
    line = render.call_line_html(remote)
    assert 'class="llm-server"' in line and "MCP · units" in line
    assert line.index("llm-server") < line.index("units_c_to_f")  # before the tool's name
    assert "llm-server" not in render.call_line_html(local)
    badge = render.server_badge_html(hostile)
    assert "&lt;b&gt;" in badge and "<b>x" not in badge and "…" in badge  # escaped, shortened
    assert "MCP server units" in render.call_detail_html(remote)
    assert "· MCP units" in render.call_text(remote) and "MCP" not in render.call_text(local)


def test_static_timeline_keeps_borders_and_tints_where_var_is_stripped():
    """JupyterLab's sanitizer drops <style> and every declaration it cannot parse (var(),
    color-mix()): each theme-aware border and tint of the saved timeline's stylesheet has a plain
    colour inline on the element, and the stylesheet's theme-aware declarations win over it
    where <style> is kept (!important)."""
    from llm_magic.records import ToolCallRecord

    state = RunState(model="m")
    apply(state, ev.RunStarted("m", "go", ["add"]))
    apply(state, ev.TurnStarted(1))
    for i in range(2):
        apply(state, ev.ToolCallRequested(ToolCallRecord(f"id{i}", "add", "{}", 1, {})))
    html = render.static_html(state)
    block = re.search(r"<style>(.*?)</style>", html, re.S)
    assert block is not None and html.count("<style>") == 1
    for rule in re.findall(r"\{([^}]*)\}", block[1]):
        for decl in rule.split(";"):
            if ("var(" in decl or "mix(" in decl) and not decl.startswith("--"):
                assert decl.endswith("!important"), decl
    stripped = 0
    for classes, style in re.findall(r'class="([^"]*)" style="([^"]*)"', html):
        kept = style.split(";")
        assert not [d for d in kept if "var(" in d or "mix(" in d], style
        table = styles._by_class()
        for decl in (d for name in classes.split() for d in table.get(name, ())):
            name, _, value = decl.partition(":")
            tint = name == "background" and "transparent" in value
            if ("var(" in value or "mix(" in value) and (name.startswith("border") or tint):
                stripped += 1
                assert any(k.partition(":")[0] == name for k in kept), (decl, style)
            # text colours and opaque backgrounds get none: they would not read in both themes
            if name == "color" or (name == "background" and not tint):
                assert not any(k.startswith(name + ":") for k in kept), (decl, style)
    assert stripped > 5
    assert "background:rgba(" in html and "border:1px solid #" in html


def test_rich_html_is_sanitized():
    class Hostile:
        def _repr_html_(self) -> str:
            return (
                '<table class="dataframe" border="1"><tr><td onclick="x()">1</td></tr></table>'
                "<img/src=x/onerror=x()><style>td{color:red}</style>"
                '<a href="jav&#x61;script:x()">a</a>'
            )

    html = values.rich_html(Hostile())
    assert '<table class="dataframe" border="1">' in html and "<td>1</td>" in html
    assert not re.search(r"[\s/]on[a-z]+\s*=", html.replace('src="x/onerror', 'src="x'))
    assert "<style" not in html and "javascript" not in html

    class Active(Hostile):
        def _repr_html_(self) -> str:
            return '<b>hi</b><svg/onload="x()"></svg><script>x()</script>'

    html = values.rich_html(Active())  # active markup: shown as its text form, escaped
    assert "<svg" not in html and "<script" not in html and "&lt;" in html

    class NotBase64:
        def _repr_png_(self) -> str:
            return 'x" onerror="x()'

    assert "onerror" not in values.rich_html(NotBase64())


class _PNG:
    def _repr_png_(self) -> bytes:
        return b"\x89PNG\r\n\x1a\n" + b"0" * 16


def test_traceback_opens_on_the_users_frame():
    from llm_magic.notebook.values import traceback_html

    tb = (
        "Traceback (most recent call last):\n"
        '  File "/venv/lib/python3.11/site-packages/llm_magic/chain.py", line 500, in _run_tool\n'
        "    result = await tool.call(args)\n"
        '  File "/usr/lib/python3.11/asyncio/threads.py", line 25, in to_thread\n'
        "    return await loop.run_in_executor(None, func_call)\n"
        '  File "/home/me/work/analysis.py", line 7, in broken\n'
        '    raise ValueError(f"bad <x> {x}")\n'
        "ValueError: bad <x> 1\n"
    )
    html = traceback_html(tb)
    folded_part, rest = html.split("</details>")
    assert "2 library frames" in folded_part and "chain.py" in folded_part
    assert "analysis.py" in rest and "bad &lt;x&gt; 1" in rest and "<x>" not in html


def test_header_words_and_theme_pills():
    from llm_magic.records import ToolCallRecord

    state = RunState(model="m")
    apply(state, ev.RunStarted("m", "go", []))
    apply(state, ev.TurnStarted(1))
    recs = [ToolCallRecord(f"c{i}", "rm", "{}", 1) for i in range(3)]
    for rec in recs:
        rec.status = "awaiting_approval"
        apply(state, ev.ToolCallAwaitingApproval(rec))
    html = render.header_html(state, time.monotonic())
    assert "waiting for you: 3" in html and "3 need approval" in html and "1 turn" in html
    assert 'class="llm-elapsed"' in html  # the front end keeps the time running
    line = render.call_line_html(recs[0])
    pill_rule = re.search(r"\.llm-pill \{([^}]*)\}", styles.CSS)
    assert pill_rule is not None and "color: var(--jp-ui-font-color1" in pill_rule[1]
    assert 'class="llm-pill ' in line  # pills print the theme's text colour (their rule)
    assert 'aria-hidden="true"' in line  # the glyph is decoration


# -- a real kernel (jupyter_client) ------------------------------------------------------------------


class Kernel:
    """A real ipykernel (this interpreter, this checkout on PYTHONPATH) with an IOPub recorder."""

    def __init__(self, tmp: Path) -> None:
        from jupyter_client.manager import KernelManager

        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        self.km = KernelManager(kernel_name="python3")
        self.km.kernel_spec.argv[0] = sys.executable
        self.km.start_kernel(env=env, cwd=str(tmp))
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)

    def execute(self, code: str) -> str:
        return self.kc.execute(code)

    def messages(self, timeout: float = 0.2) -> Iterator[dict]:
        while True:
            try:
                yield self.kc.get_iopub_msg(timeout=timeout)
            except queue.Empty:
                return

    def run(self, code: str, timeout: float = 60) -> list[dict]:
        """Execute and collect this cell's IOPub messages until it is idle."""
        msg_id = self.execute(code)
        return self.collect(msg_id, timeout)

    def collect(
        self, msg_id: str, timeout: float = 60, stop: Callable[[dict], bool] | None = None
    ) -> list[dict]:
        out: list[dict] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                msg = self.kc.get_iopub_msg(timeout=0.5)
            except queue.Empty:
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            out.append(msg)
            if stop is not None and stop(msg):
                return out
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return out
        raise AssertionError(f"cell did not finish in {timeout} s: {[m['msg_type'] for m in out]}")

    def send(self, comm_id: str, content: dict) -> None:
        """A front-end message to a widget (a click in the timeline), as a custom comm_msg."""
        msg = self.kc.session.msg(
            "comm_msg", {"comm_id": comm_id, "data": {"method": "custom", "content": content}}
        )
        self.kc.shell_channel.send(msg)

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


@pytest.fixture
def kernel(tmp_path):
    k = Kernel(tmp_path)
    try:
        yield k
    finally:
        k.close()


class Live:
    """The timeline widget as a front end sees it: its comm id and its entries, from IOPub."""

    def __init__(self) -> None:
        self.comm_id: str | None = None
        self.entries: dict[str, dict] = {}
        self.header = ""
        self.closed = False

    def see(self, msg: dict) -> None:
        content = msg["content"]
        if msg["msg_type"] == "comm_open":
            state = content["data"].get("state", {})
            if "llm-magic-timeline-widget" in state.get("_dom_classes", []):
                self.comm_id = content["comm_id"]
                self._state(state)
        elif msg["msg_type"] == "comm_msg" and content["comm_id"] == self.comm_id:
            self._state(content["data"].get("state", {}))
        elif msg["msg_type"] == "comm_close" and content["comm_id"] == self.comm_id:
            self.closed = True

    def _state(self, state: dict) -> None:
        self.header = state.get("header", self.header)
        for entry in state.get("patch", {}).get("entries", []):
            self.entries[entry["id"]] = entry

    def waiting(self) -> list[dict]:
        return [e for e in self.entries.values() if "approval" in e]

    def watch(self, until: Callable[[Live], bool]) -> Callable[[dict], bool]:
        def stop(msg: dict) -> bool:
            self.see(msg)
            return until(self)

        return stop


def _outputs_text(msgs: list[dict]) -> str:
    parts = []
    for m in msgs:
        c = m["content"]
        if m["msg_type"] == "stream":
            parts.append(c["text"])
        elif m["msg_type"] == "error":
            parts.append("\n".join(c["traceback"]))
    return "".join(parts)


def _final_display(msgs: list[dict]) -> dict:
    return [m for m in msgs if m["msg_type"] == "update_display_data"][-1]["content"]["data"]


def _setup(kernel: Kernel, server: OpenAIServer, delay: float) -> None:
    cell = kernel.run(SETUP.format(base_url=server.base_url, api_key=server.api_key, delay=delay))
    assert not [m for m in cell if m["msg_type"] == "error"], _outputs_text(cell)


@pytest.mark.kernel
def test_kernel_approve_click_mid_run_then_static(kernel):
    with OpenAIServer(demo_script()) as server:
        _setup(kernel, server, 0.2)
        msg_id = kernel.execute(run_cell())
        live = Live()
        before = kernel.collect(msg_id, 60, stop=live.watch(lambda lv: bool(lv.waiting())))
        assert live.waiting(), "no approval card was sent"
        assert not any(
            m["msg_type"] == "status" and m["content"]["execution_state"] == "idle" for m in before
        )
        assert "waiting for you: 1" in live.header
        opens = [m for m in before if m["msg_type"] == "comm_open"]
        # the kernel's shared front end (module and CSS) opens once, with its first timeline
        shared = [m for m in opens if "esm" in m["content"]["data"]["state"]]
        assert len(shared) <= 1
        assert len(opens) - len(shared) == 2  # the timeline and its layout, for the whole run
        kernel.send(
            live.comm_id, {"type": "decide", "ids": [live.waiting()[0]["id"]], "approved": True}
        )
        after = kernel.collect(msg_id, 60, stop=None)
        for m in after:
            live.see(m)
        assert not [m for m in after if m["msg_type"] == "error"], _outputs_text(after)
        check = kernel.run("print(result.status, [r.status for r in result.tool_calls])")
    assert "done ['ok', 'ok', 'ok', 'ok', 'ok']" in _outputs_text(check)
    final = _final_display(after)
    # the run ended: the widget gave way to the static timeline, and was closed
    assert "application/vnd.jupyter.widget-view+json" not in final
    assert live.closed
    html = final["text/html"]
    assert "delete_file" in html and "city_table" in html and ">done<" in html


@pytest.mark.kernel
def test_kernel_deny_with_reason_mid_run(kernel):
    """The reason travels with the click, in one message: the tool does not run, the model is
    told why."""
    with OpenAIServer(demo_script()) as server:
        _setup(kernel, server, 0.2)
        msg_id = kernel.execute(run_cell())
        live = Live()
        kernel.collect(msg_id, 60, stop=live.watch(lambda lv: bool(lv.waiting())))
        call = live.waiting()[0]["id"]
        reason = "keep old.csv, it is the backup"
        kernel.send(
            live.comm_id, {"type": "decide", "ids": [call], "approved": False, "reason": reason}
        )
        after = kernel.collect(msg_id, 60)
        assert not [m for m in after if m["msg_type"] == "error"], _outputs_text(after)
        check = kernel.run(
            "print(result.status, [r.status for r in result.tool_calls]);"
            "print(result.tool_calls[-1].output)"
        )
        sent = server.requests[-1].body
    out = _outputs_text(check)
    assert "done ['ok', 'ok', 'ok', 'ok', 'denied']" in out, out
    assert f"denied: the user did not allow this call: {reason}" in out
    assert reason in json.dumps(sent)
    html = _final_display(after)["text/html"]
    assert ">denied<" in html and "deleted old.csv" not in _outputs_text(after)


@pytest.mark.kernel
def test_kernel_cancel_click_mid_run(kernel):
    script = [
        Reply(calls=[Call("get_weather", {"city": "Paris"}), Call("get_weather", {"city": "Rome"})])
    ]
    with OpenAIServer(script) as server:
        _setup(kernel, server, 30)
        msg_id = kernel.execute(run_cell())
        live = Live()

        def both_running(lv: Live) -> bool:
            return sum(e.get("status") == "running" for e in lv.entries.values()) == 2

        kernel.collect(msg_id, 60, stop=live.watch(both_running))
        clicked = time.monotonic()
        kernel.send(live.comm_id, {"type": "cancel"})
        after = kernel.collect(msg_id, 30)
        took = time.monotonic() - clicked
        check = kernel.run("print(result.status, [r.status for r in result.tool_calls])")
    assert took < 10, took
    assert "cancelled ['cancelled', 'cancelled']" in _outputs_text(check)
    assert ">cancelled<" in _final_display(after)["text/html"]


@pytest.mark.kernel
def test_kernel_stream_comm_messages_bounded(kernel):
    tokens = 500
    text = " ".join(f"w{i}" for i in range(tokens))
    with OpenAIServer([Reply(text=text, chunk_delay=0.004)]) as server:
        _setup(kernel, server, 0)
        started = time.monotonic()
        msgs = kernel.run(
            "result = await llm_magic.chain('talk', model=model)\nprint(len(result.text.split()))"
        )
        elapsed = time.monotonic() - started
    assert f"{tokens}" in _outputs_text(msgs)
    comm_msgs = sum(1 for m in msgs if m["msg_type"] == "comm_msg")
    print(f"\nkernel: {tokens} tokens in {elapsed:.2f} s -> {comm_msgs} comm_msg on IOPub")
    assert comm_msgs <= elapsed / INTERVAL + 5, (comm_msgs, elapsed)
    assert comm_msgs < tokens / 5, comm_msgs


@pytest.mark.kernel
def test_kernel_cell_value_is_safe_and_the_answer_shows_once(kernel):
    hostile = "Done <img src=x onerror=alert(1)> <script>alert(2)</script> **bold**"
    with OpenAIServer([Reply(text=hostile), Reply(text=hostile)]) as server:
        _setup(kernel, server, 0)
        shown = kernel.run("await llm_magic.chain('hi', model=model)")
        quiet = kernel.run("await llm_magic.notebook.chain('hi', model=model, quiet=True)")
    value = next(m for m in shown if m["msg_type"] == "execute_result")["content"]["data"]
    assert "text/markdown" not in value
    assert value["text/plain"].startswith("Done")  # consoles and nbclient still get the answer
    assert "answer is in the timeline above" in value["text/html"]  # not a second copy
    timeline = _final_display(shown)["text/html"]
    assert "<strong>bold</strong>" in timeline and "&lt;img src=x onerror" in timeline
    assert "<img src=x" not in timeline and "<script>" not in timeline
    alone = next(m for m in quiet if m["msg_type"] == "execute_result")["content"]["data"]
    assert "<strong>bold</strong>" in alone["text/html"] and "text/markdown" not in alone
    assert "<img src=x" not in alone["text/html"] and "<script>" not in alone["text/html"]


MEMORY_SETUP = """
import gc
def lookup(key: int) -> dict:
    "Look a key up."
    return {"key": key, "value": "x" * 40}

def _rss_mb():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) / 1024 for l in f if l.startswith("VmRSS:"))

def _widgets():
    from ipywidgets.widgets import widget as w
    return len(getattr(w, "_instances", None) or w.Widget.widgets)

def _timelines():
    from llm_magic.notebook.timeline import Timeline
    return sum(isinstance(o, Timeline) for o in gc.get_objects())
"""


@pytest.mark.kernel
@pytest.mark.timeout(900)
def test_kernel_twenty_runs_of_100_calls_keep_memory_and_widgets_flat(kernel):
    """Issue 15: 20 chains of 100 calls, each with its live timeline: every run's widget is
    closed when its view becomes static, and the kernel's memory does not grow run by run."""
    runs, per_turn, n = 20, 10, 100
    script = [
        Reply(
            text="Looking up.", calls=[Call("lookup", {"key": k}) for k in range(s, s + per_turn)]
        )
        for s in range(0, n, per_turn)
    ] + [Reply(text="Done.")]
    rss: list[float] = []
    widgets: list[int] = []
    alive: list[int] = []
    with OpenAIServer(script * runs) as server:
        _setup(kernel, server, 0)
        kernel.run(MEMORY_SETUP)
        for _ in range(runs):
            cell = kernel.run(
                "r = await llm_magic.chain('go', tools=[lookup], model=model, max_tool_calls=200, "
                "max_steps=20)\ndel r\ngc.collect()\nprint('MEM', _rss_mb(), _widgets(), _timelines())",
                timeout=300,
            )
            line = next(x for x in _outputs_text(cell).splitlines() if x.startswith("MEM"))
            _, mb, count, timelines = line.split()
            rss.append(float(mb))
            widgets.append(int(count))
            alive.append(int(timelines))
        assert server.failures == []
    print(f"\nkernel RSS MB over {runs} runs: {rss}\nlive widgets: {widgets}")
    assert max(widgets) == min(widgets), widgets  # nothing of a finished run stays alive
    assert max(widgets) <= 4, widgets
    # no earlier run's timeline (with its records) is kept; the last run's stays reachable from
    # session.state.last_run, whose subscriber it is
    assert max(alive) <= 1, alive
    settled = rss[3:]
    assert settled[-1] - settled[0] < 15, rss  # generous: the measured figures are in bench/


# -- nbclient + nbconvert ----------------------------------------------------------------------------


def _execute_notebook(tmp_path: Path, server: OpenAIServer, store_widget_state: bool) -> Any:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.from_dict(demo_notebook(server.base_url, server.api_key, delay=0.05, auto=True))
    env_path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    os.environ["PYTHONPATH"] = env_path
    client = NotebookClient(
        nb,
        timeout=120,
        kernel_name="python3",
        store_widget_state=store_widget_state,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    return nb


def _timeline_output(nb: Any) -> dict:
    outputs = [o for o in nb.cells[1].outputs if o.get("output_type") == "display_data"]
    assert len(outputs) == 1, nb.cells[1].outputs
    return outputs[0]["data"]


@pytest.mark.kernel
@pytest.mark.parametrize("store_widget_state", [True, False], ids=["widget-state", "no-state"])
def test_nbclient_saves_the_static_timeline_and_nbconvert_shows_it(tmp_path, store_widget_state):
    """With nothing set, a run's output ends as the static timeline (no widget view that a
    kernel-less viewer could not show), whether or not widget state is saved."""
    import nbformat

    with OpenAIServer(demo_script()) as server:
        nb = _execute_notebook(tmp_path, server, store_widget_state)
        assert server.failures == []
    data = _timeline_output(nb)
    html, plain = data["text/html"], data["text/plain"]
    assert "application/vnd.jupyter.widget-view+json" not in data
    assert ">done<" in html and "<script" not in html
    for name in ("get_weather", "city_table", "delete_file"):
        assert name in html and name in plain
    assert html.count('class="llm-call"') == 5
    assert "<table" in html  # the DataFrame result, as pandas' table
    assert "after the chain: done 5" in "".join(o.get("text", "") for o in nb.cells[2].outputs)
    path = tmp_path / "executed.ipynb"
    nbformat.write(nb, path)
    subprocess.run(
        [sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", str(path)],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    page = (tmp_path / "executed.html").read_text()
    shown = page.replace("&quot;", '"')
    for text in (
        "get_weather</b>",
        'city="Paris"',
        'city="Rome"',
        'city="Oslo"',
        "city_table</b>",
        "delete_file</b>",
        'path="old.csv"',
    ):
        assert text in shown, text
    assert "llm-magic-timeline" in page and page.count('class="llm-call"') == 5


def test_answers_render_as_markdown_also_while_streaming():
    text = (
        "**Rome** is warmest\n\n| city | °C |\n|---|---|\n| Rome | 19 |\n\n<b onclick=x()>raw</b>"
    )
    done = render.turn_text_html(text)
    assert "<strong>Rome</strong>" in done and "<td>Rome</td>" in done
    assert "&lt;b onclick=x()&gt;raw&lt;/b&gt;" in done  # the model's raw HTML stays text
    streaming = render.turn_text_html(text, streaming=True)
    assert "<strong>Rome</strong>" in streaming and "llm-cursor" in streaming


def test_script_or_frame_html_falls_back_to_the_image_or_text():
    """Plotly/Bokeh-like (div + script), Folium-like (iframe), inline SVG: sanitizing would leave
    an empty box, so the object's image or text form is shown instead."""

    class PlotlyLike:
        def _repr_html_(self) -> str:
            return '<div id="p"></div><script>Plotly.newPlot("p", [])</script>'

        def __repr__(self) -> str:
            return "Figure({'data': [...]})"

    class SvgOnly:
        def _repr_html_(self) -> str:
            return '<svg width="10" height="10"><circle r="4"/></svg>'

        def _repr_svg_(self) -> str:
            return '<svg width="10" height="10"><circle r="4"/></svg>'

    class EmptyAfterCleaning:
        def _repr_html_(self) -> str:
            return "<style>.x{}</style><div></div>"

        def __repr__(self) -> str:
            return "EmptyAfterCleaning()"

    assert "Figure({&#x27;data&#x27;: [...]})" in values.rich_html(PlotlyLike())
    assert 'src="data:image/svg+xml;base64,' in values.rich_html(SvgOnly())
    assert "EmptyAfterCleaning()" in values.rich_html(EmptyAfterCleaning())


# -- a sync tool's thread outlives its cancelled call ----------------------------------------------


async def test_cancelled_sync_tool_says_it_runs_on_then_shows_its_late_result(comms):
    """Cancel from the timeline while a sync tool runs in its thread: the row says the function
    is still running (not just "cancelled"); when the thread ends, the static timeline the view
    gave way to is replaced by one with the late result."""
    from IPython.display import DisplayHandle

    class Handle(DisplayHandle):
        """IPython's handle, keeping each bundle it is updated with (a kernel would send each
        as update_display_data)."""

        bundles: list[dict] = []

        def update(self, obj: Any, **kwargs: Any) -> None:
            self.bundles.append(obj)

    started, release = threading.Event(), threading.Event()

    def delete_rows(table: str) -> str:
        """Delete rows."""
        started.set()
        release.wait(10)
        return f"deleted 3 rows of {table}"

    with OpenAIServer([Reply(calls=[Call("delete_rows", {"table": "accounts"})])]) as server:
        run = model_for(server).chain("clean", tools=[delete_rows])
        tl = Timeline(run, model="m")
        assert tl.widget is not None  # the live view, as show() builds it in a kernel
        tl.outputs.handle = handle = Handle()  # where show() displayed it
        task = asyncio.ensure_future(run)
        await until(started.is_set)
        front_end(tl, {"type": "cancel"})
        result = await asyncio.wait_for(task, 10)
        line = calls_html(tl)[0]
        tl.close()
    assert result.tool_calls[0].status == "cancelled"
    assert "cancelled; `delete_rows` is still running in its thread" in html.unescape(line)
    assert len(handle.bundles) == 1 and tl.widget_closed  # the static timeline replaced it
    assert "is still running in its thread" in html.unescape(handle.bundles[0]["text/html"])
    release.set()
    await until(lambda: result.tool_calls[0].thread == "returned")
    await until(lambda: len(handle.bundles) == 2)
    assert "deleted 3 rows of accounts" in handle.bundles[1]["text/html"]
    text = render.static_text(tl.state)
    assert "cancelled; `delete_rows` returned later in its thread" in text
    assert len(tl.state.calls) == 1  # the same row, not a new one


async def test_a_re_run_ignores_the_late_thread_of_the_run_it_replaced(comms):
    """A view that now shows a re-run must not take a late thread's event of the old run as a
    call of the new one."""
    started, release = threading.Event(), threading.Event()

    def slow(x: int) -> int:
        """Slow."""
        started.set()
        release.wait(10)
        return x

    script = [Reply(calls=[Call("slow", {"x": 1})]), Reply(text="second run")]
    with OpenAIServer(script) as server:
        model = model_for(server)
        first = model.chain("one", tools=[slow])
        tl = Timeline(first, model="m")
        task = asyncio.ensure_future(first)
        await until(started.is_set)
        first.cancel()
        await asyncio.wait_for(task, 10)
        second = model.chain("two")
        tl.retarget(second)
        await second
        release.set()
        await until(lambda: any(isinstance(e, ev.ToolCallSettled) for e in first.events))
        await asyncio.sleep(0.05)
    assert tl.state.calls == [] and [t.text for t in tl.state.turns] == ["second run"]


# -- a run's fixed cost ------------------------------------------------------------------------------


def test_every_timeline_widget_is_of_the_one_class(comms):
    """anywidget adds its `_esm` to each instance unless the class declares it as a trait, and
    traitlets adds a trait by making a new class for the instance (about 1 ms a run): the
    widget's class declares them, and its opening message still carries the loader."""
    from llm_magic.notebook.widget import TimelineWidget

    first = TimelineWidget(lambda: [], lambda message: None, header="<b>LLM</b>")
    second = TimelineWidget(lambda: [], lambda message: None)
    assert type(first) is TimelineWidget and type(second) is TimelineWidget
    assert len(first.keys) == len(set(first.keys))  # each trait sent once
    opened = [d["state"] for kind, _c, d in comms if kind == "comm_open" and "key" in d["state"]]
    assert [s["key"] for s in opened] == [first.key, second.key]
    assert all(s["_esm"] == first._esm and "assets" in s["_esm"] for s in opened)  # the loader
    assert opened[0]["header"] == "<b>LLM</b>"  # the header goes with the opening message
    first.close_all()
    second.close_all()


async def test_a_view_that_becomes_static_sends_its_widget_no_final_state(comms):
    """When the run ends, `close` puts the static timeline in the widget's place and closes the
    widget: the widget is not sent the final state, which it would show for an instant."""
    from IPython.display import DisplayHandle

    class Handle(DisplayHandle):
        bundles: list[dict] = []

        def update(self, obj: Any, **kwargs: Any) -> None:
            self.bundles.append(obj)

    script = [Reply(text="Adding.", calls=[Call("add", {"a": 2, "b": 2})]), Reply(text="It is 4.")]
    with OpenAIServer(script) as server:
        run = model_for(server).chain("add", tools=[add])
        tl = Timeline(run, model="m")
        widget_id = tl.widget.comm.comm_id
        tl.outputs.handle = handle = Handle()  # where show() displayed it
        run.subscribe(lambda event: tl.close() if isinstance(event, ev.RunEnded) else None)
        await run
    states = [d.get("state", {}) for kind, c, d in comms if kind == "comm_msg" and c == widget_id]
    assert not any(state.get("running") is False for state in states)
    assert tl.widget_closed and "It is 4." in handle.bundles[-1]["text/html"]
    assert [kind for kind, c, _d in comms if c == widget_id][-1] == "comm_close"
