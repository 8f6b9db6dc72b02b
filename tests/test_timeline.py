"""The timeline, driven by real chain runs against the loopback OpenAI server.

* In-process tests build the widget tree without a kernel and assert its state after scripted
  runs: entries, statuses, grouping, approval, denial with a reason, cancel, expand/copy, rich
  results, static HTML/text, and the number of comm messages for a 500-token streamed answer
  (counted through `comm.create_comm`, the hook kernels use to supply their Comm class).
* `kernel` tests start a real ipykernel through jupyter_client, click Approve and Cancel as a
  frontend would (comm_msg on the shell channel) while the cell is still running.
* An nbclient run of a notebook keeps the final `text/html` timeline in its saved outputs, and
  `jupyter nbconvert --to html` of it shows every tool call.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import comm
import pytest
from comm.base_comm import BaseComm

import llm_magic
from llm_magic import tool
from llm_magic.notebook import render
from llm_magic.notebook.timeline import CHUNK, INTERVAL, Timeline
from tests.servers import Call, OpenAIServer, Reply

ROOT = Path(__file__).resolve().parent.parent


# -- the demo notebook (also used by tests/test_browser.py) ---------------------------------------

SETUP = '''\
import asyncio
import pandas as pd
import llm_magic
from llm_magic import Approval, tool
from llm_magic.notebook.timeline import Timeline

model = llm_magic.get_async_model("openai:gpt-4.1-mini", base_url={base_url!r}, api_key={api_key!r})

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
run = model.chain(
    "Is it warmer in Paris, Rome or Oslo? Then clean up old.csv.",
    tools=[get_weather, city_table, delete_file],{approval}
)
tl = Timeline(run, model="gpt-4.1-mini")
tl.show()
try:
    result = await run
finally:
    tl.close()
"""

AUTO_APPROVE = """\
async def auto_approve(record):
    return Approval(True)
"""

FINAL_ANSWER = (
    "Rome is the warmest at 19 °C, then Paris at 14 °C; Oslo is coldest at 3 °C. "
    "I deleted old.csv as you asked."
)


def demo_script(final_chunk_delay: float = 0.0) -> list[Reply]:
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
        Reply(text=FINAL_ANSWER, usage=(702, 44), chunk_delay=final_chunk_delay),
    ]


def demo_notebook(
    base_url: str, api_key: str, delay: float = 0.3, auto: bool = False, static: bool = False
) -> dict:
    import nbformat

    run = RUN.format(approval="\n    approval_callback=auto_approve," if auto else "")
    if static:
        run = run.replace('model="gpt-4.1-mini")', 'model="gpt-4.1-mini", static_after_run=True)')

    cells = [
        nbformat.v4.new_code_cell(
            SETUP.format(base_url=base_url, api_key=api_key, delay=delay)
            + (AUTO_APPROVE if auto else "")
        ),
        nbformat.v4.new_code_cell(run),
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


def find(widget: Any, css: str) -> list[Any]:
    """Widgets under `widget` (itself included) with the DOM class `css`, in order."""
    out = []
    stack = [widget]
    while stack:
        w = stack.pop()
        if css in getattr(w, "_dom_classes", ()):
            out.append(w)
        stack.extend(reversed(getattr(w, "children", ())))
    return out


def one(widget: Any, css: str) -> Any:
    found = find(widget, css)
    assert len(found) == 1, f"{len(found)} widgets with class {css}"
    return found[0]


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
        "openai:test", base_url=server.base_url, api_key=server.api_key
    )


def calls_html(tl: Timeline) -> list[str]:
    return [find(box, "llm-call-row")[0].children[1].value for box in find(tl.widget, "llm-call")]


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


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
        root = tl.widget
        result = await run
        tl.close()
    assert result.status == "done"
    turns = find(root, "llm-turn")
    assert len(turns) == 3
    # turn 1 holds its three parallel calls, labelled; turn 2 one call without a label
    groups = find(root, "llm-group")
    assert len(groups) == 2
    assert "3 parallel calls" in groups[0].children[0].value
    assert len(find(groups[0], "llm-call")) == 3
    assert len(find(groups[1], "llm-call")) == 1
    assert "parallel" not in groups[1].children[0].children[0].children[0].children[1].value
    lines = calls_html(tl)
    assert len(lines) == 4
    assert "add" in lines[0] and "a=1, b=2" in lines[0] and ">ok<" in lines[0]
    assert "broken" in lines[2] and ">error<" in lines[2] and "ValueError: bad x 1" in lines[2]
    assert "a=3, b=7" in lines[3]
    header = one(root, "llm-header").value
    for text in (
        "test-model",
        ">done<",
        "2 steps",
        "4 tool calls (3 ok, 1 error)",
        "30 in / 15 out",
    ):
        assert text in header, text
    texts = [w.value for w in find(root, "llm-text")]
    assert "Adding." in texts[0] and "3, 7, and 10." in texts[-1]
    assert not find(root, "llm-cancel")[0].layout.display != "none"
    # the text/plain and text/html renderings tell the same story
    bundle = tl._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "4 tool calls" in bundle["text/plain"] and "┌ 3 parallel calls" in bundle["text/plain"]
    assert "✗ broken(x=1) · error" in bundle["text/plain"]
    assert bundle["text/html"].count('class="llm-call"') == 4
    assert "<script" not in bundle["text/html"]


async def test_expand_details_rich_result_and_copy(comms):
    import pandas as pd

    def frame(n: int) -> object:
        """A table."""
        return pd.DataFrame({"x": range(n), "y": [i * i for i in range(n)]})

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
        root = tl.widget
        await run
        tl.close()
    calls = find(root, "llm-call")
    assert not find(root, "llm-detail")
    one(calls[0], "llm-toggle").click()
    tl.flush()
    detail = one(calls[0], "llm-detail-html").value
    assert "<table" in detail and "dataframe" in detail  # pandas' own HTML table
    assert "&quot;n&quot;: 3" in detail and "sent to the model" in detail
    assert one(calls[0], "llm-toggle").description == "▾"
    # expand all / collapse all
    one(root, "llm-expand-all").click()
    tl.flush()
    assert len(find(root, "llm-detail")) == 3
    text_detail = one(calls[1], "llm-detail-html").value
    assert "show all (50 lines" in text_detail
    assert "&lt;tag&gt;" in text_detail and "<tag>" not in text_detail
    assert "truncated for the model" in text_detail
    error_detail = one(calls[2], "llm-detail-html").value
    assert "FileNotFoundError" in error_detail and "traceback" in error_detail
    assert "Traceback (most recent call last)" in error_detail
    assert "&lt;missing&gt;" in error_detail
    one(root, "llm-collapse-all").click()
    tl.flush()
    assert all(len(c.children) == 1 for c in calls)
    # copy as JSON: a Textarea with parseable JSON
    one(calls[0], "llm-toggle").click()
    tl.flush()
    one(calls[0], "llm-copy-call").click()
    tl.flush()
    copied = json.loads(one(calls[0], "llm-copy-area").value)
    assert copied["tool"] == "frame" and copied["arguments"] == {"n": 3}
    assert copied["result"] == [{"x": 0, "y": 0}, {"x": 1, "y": 1}, {"x": 2, "y": 4}]
    one(calls[0], "llm-copy-args").click()
    tl.flush()
    assert json.loads(one(calls[0], "llm-copy-area").value) == {"n": 3}
    # the static HTML is self-contained and escaped
    html = tl._repr_mimebundle_()["text/html"]
    assert "<script" not in html and "&lt;missing&gt;" in html and "<table" in html


@pytest.mark.parametrize("from_thread", [False, True], ids=["loop-thread", "other-thread"])
async def test_approval_flow(comms, from_thread):
    """Approve by a click; the click may arrive on another thread (a subshell)."""
    import threading

    @tool(requires_approval=True)
    def delete_file(path: str) -> str:
        """Delete a file."""
        return f"deleted {path}"

    script = [Reply(calls=[Call("delete_file", {"path": "old.csv"})]), Reply(text="Deleted.")]
    with OpenAIServer(script) as server:
        run = model_for(server).chain("clean up", tools=[delete_file])
        tl = Timeline(run, model="m")  # the run's approver
        root = tl.widget
        task = asyncio.ensure_future(run)
        approve = await until(lambda: find(root, "llm-approve"))
        line = calls_html(tl)[0]
        assert "needs approval" in line
        # the entry opened itself so the arguments are visible before deciding
        assert "&quot;path&quot;: &quot;old.csv&quot;" in one(root, "llm-detail-html").value
        assert not task.done()
        if from_thread:
            clicker = threading.Thread(target=approve[0].click)
            clicker.start()
            clicker.join()
        else:
            approve[0].click()
        result = await asyncio.wait_for(task, 10)
        tl.close()
    assert result.status == "done" and result.tool_calls[0].status == "ok"
    assert result.tool_calls[0].result == "deleted old.csv"
    assert not find(root, "llm-approval")
    assert ">ok<" in calls_html(tl)[0]


async def test_deny_flow_with_reason(comms):
    @tool(requires_approval=True)
    def drop_table(name: str) -> str:
        """Drop a table."""
        return "dropped"

    script = [Reply(calls=[Call("drop_table", {"name": "users"})]), Reply(text="OK, I won't.")]
    with OpenAIServer(script) as server:
        run = model_for(server).chain("drop it", tools=[drop_table])
        tl = Timeline(run, model="m")  # the run's approver
        root = tl.widget
        task = asyncio.ensure_future(run)
        deny = await until(lambda: find(root, "llm-deny"))
        one(root, "llm-reason").value = "  production data  "
        deny[0].click()
        result = await asyncio.wait_for(task, 10)
        tl.close()
        sent = json.dumps(server.requests[-1].body)
    rec = result.tool_calls[0]
    assert rec.status == "denied"
    assert "production data" in rec.output and "production data" in sent
    line = calls_html(tl)[0]
    assert ">denied<" in line and "production data" in line
    assert "1 denied" in one(root, "llm-header").value


async def test_cancel_flow(comms):
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
        root = tl.widget
        task = asyncio.ensure_future(run)
        await until(lambda: sum(">running<" in h for h in calls_html(tl)) == 2)
        cancel = one(root, "llm-cancel")
        started = time.monotonic()
        cancel.click()
        result = await asyncio.wait_for(task, 10)
        tl.close()
    assert time.monotonic() - started < 2
    assert result.status == "cancelled"
    assert [r.status for r in result.tool_calls] == ["cancelled", "cancelled"]
    assert all(">cancelled<" in h for h in calls_html(tl))
    assert ">cancelled<" in one(root, "llm-header").value
    assert cancel.disabled and cancel.layout.display == "none"
    assert "cancelled from the timeline" in result.tool_calls[0].reason


async def test_cancel_while_awaiting_approval(comms):
    @tool(requires_approval=True)
    def risky(x: int) -> int:
        """Risky."""
        return x

    with OpenAIServer([Reply(calls=[Call("risky", {"x": 1})])]) as server:
        run = model_for(server).chain("go", tools=[risky])
        tl = Timeline(run, model="m")  # the run's approver
        root = tl.widget
        task = asyncio.ensure_future(run)
        await until(lambda: find(root, "llm-approve"))
        one(root, "llm-cancel").click()
        result = await asyncio.wait_for(task, 10)
        tl.close()
    assert result.status == "cancelled"
    assert result.tool_calls[0].status == "cancelled"
    assert not find(root, "llm-approval")
    assert ">cancelled<" in calls_html(tl)[0]


async def test_failed_run_shows_the_error(comms):
    with OpenAIServer([Reply(status=400, error_message="bad request: no such model")]) as server:
        run = model_for(server).chain("go")
        tl = Timeline(run, model="m")
        root = tl.widget
        with pytest.raises(llm_magic.ProviderError):
            await run
        tl.close()
    header = one(root, "llm-header").value
    assert ">failed<" in header and "no such model" in header
    assert "no such model" in tl._repr_mimebundle_()["text/plain"]


def test_old_kernel_note(monkeypatch, comms):
    import ipykernel

    from llm_magic.notebook import timeline as timeline_module

    class _Run:
        def subscribe(self, cb, approver=False):
            return cb

    monkeypatch.setattr(ipykernel, "__version__", "7.3.2")
    monkeypatch.setattr(timeline_module, "_in_kernel", lambda: True)
    monkeypatch.setattr("IPython.display.display", lambda *a, **k: None)
    tl = Timeline(_Run(), model="m")  # type: ignore[arg-type]
    tl.show()
    note = one(tl.widget, "llm-note")
    assert note.layout.display != "none"
    assert "ipykernel 7.3.2" in note.value and "7.4" in note.value
    assert "ipykernel 7.3.2" in tl._repr_mimebundle_()["text/plain"]
    monkeypatch.setattr(ipykernel, "__version__", "7.4.0")
    assert timeline_module._kernel_note() is None


async def test_streamed_answer_is_throttled(comms):
    """500 streamed tokens over ~2.5 s: comm messages follow the throttle, not the tokens."""
    tokens = 500
    text = " ".join(f"w{i}" for i in range(tokens))
    with OpenAIServer([Reply(text=text, chunk_delay=0.005)]) as server:
        run = model_for(server).chain("talk")
        tl = Timeline(run, model="m")
        root = tl.widget
        comms.clear()
        started = time.monotonic()
        seen_values: list[str] = []
        result = await run
        elapsed = time.monotonic() - started
        tl.close()
    assert result.text == text
    deltas = sum(1 for e in run.events if e.type == "text_delta")
    assert deltas == tokens
    text_widget = one(root, "llm-text")
    updates = [d for kind, cid, d in comms if kind == "comm_msg" and d.get("method") == "update"]
    text_updates = [
        d
        for kind, cid, d in comms
        if kind == "comm_msg" and cid == text_widget.comm.comm_id and "value" in d.get("state", {})
    ]
    seen_values = [d["state"]["value"] for d in text_updates]
    bound = elapsed / INTERVAL + 3
    assert len(text_updates) <= bound, (len(text_updates), elapsed)
    assert len(updates) <= 3 * bound, (len(updates), elapsed)
    assert len(updates) < tokens / 5
    assert len(text_updates) >= 3  # it did stream, live
    assert "w499" in seen_values[-1] and "w499" not in seen_values[0]
    print(
        f"\n{tokens} tokens in {elapsed:.2f} s: {len(text_updates)} text updates, "
        f"{len(updates)} comm updates in all"
    )


async def test_thousand_calls_stay_chunked(comms):
    """1,000 calls in one turn: boxes stay small, each append resends one short list."""
    n = 1000
    script = [Reply(calls=[Call("add", {"a": i, "b": 1}) for i in range(n)]), Reply(text="ok")]
    with OpenAIServer(script) as server:
        run = model_for(server).chain("many", tools=[add], max_tool_calls=n, max_concurrency=64)
        tl = Timeline(run, model="m")
        root = tl.widget
        result = await run
        tl.close()
    assert len(result.tool_calls) == n
    calls = find(root, "llm-call")
    assert len(calls) == n
    widest = max(len(getattr(w, "children", ())) for w in _walk(root))
    assert widest <= max(CHUNK, n // CHUNK + 1)
    children_msgs = [
        len(d["state"]["children"])
        for kind, _cid, d in comms
        if kind == "comm_msg" and "children" in d.get("state", {})
    ]
    assert max(children_msgs) <= CHUNK + 1
    assert f"{n:,} tool calls" in one(root, "llm-header").value
    assert tl.flushes < 60


def _walk(widget: Any) -> Iterator[Any]:
    stack = [widget]
    while stack:
        w = stack.pop()
        yield w
        stack.extend(getattr(w, "children", ()))


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
    assert lines[-1].startswith("LLM term-model · done · 1 step · 1 tool call")
    assert "ipywidgets" not in type(tl._text).__module__


def test_import_does_not_load_ipywidgets():
    code = (
        "import sys, llm_magic, llm_magic.notebook.timeline, llm_magic.notebook.render; "
        "print('ipywidgets' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_render_helpers():
    from llm_magic.events import ToolCallRecord

    rec = ToolCallRecord("c1", "search", '{"q": "<b>x</b>", "n": 5}', 1, {"q": "<b>x</b>", "n": 5})
    assert render.arg_summary(rec) == 'q="<b>x</b>", n=5'
    assert "&lt;b&gt;" in render.call_line_html(rec)
    bad = ToolCallRecord("c2", "s", "{not json", 1)
    assert render.arg_summary(bad) == "{not json"
    assert render.fmt_duration(0.0123) == "12 ms" and render.fmt_duration(75) == "1 min 15 s"
    assert "show all" in render.folded("x\n" * 100)
    assert "<img" in render.rich_html(_PNG())


def test_rich_html_is_sanitized():
    class Hostile:
        def _repr_html_(self) -> str:
            return (
                '<table class="dataframe" border="1"><tr><td onclick="x()">1</td></tr></table>'
                "<img/src=x/onerror=x()><style>td{color:red}</style>"
                '<a href="jav&#x61;script:x()">a</a>'
            )

    html = render.rich_html(Hostile())
    assert '<table class="dataframe" border="1">' in html and "<td>1</td>" in html
    assert not re.search(r"[\s/]on[a-z]+\s*=", html.replace('src="x/onerror', 'src="x'))
    assert "<style" not in html and "javascript" not in html

    class Active(Hostile):
        def _repr_html_(self) -> str:
            return '<b>hi</b><svg/onload="x()"></svg><script>x()</script>'

    html = render.rich_html(Active())  # active markup: shown as its text form, escaped
    assert "<svg" not in html and "<script" not in html and "&lt;" in html

    class NotBase64:
        def _repr_png_(self) -> str:
            return 'x" onerror="x()'

    assert "onerror" not in render.rich_html(NotBase64())


class _PNG:
    def _repr_png_(self) -> bytes:
        return b"\x89PNG\r\n\x1a\n" + b"0" * 16


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

    def wait_for_widgets(self, msg_id: str, *classes: str) -> tuple[dict[str, str], list[dict]]:
        """Collect the cell's messages until a widget of each CSS class is opened:
        ({class: comm_id}, the messages so far)."""
        found: dict[str, str] = {}

        def all_shown(msg: dict) -> bool:
            for css in classes:
                cid = _widget_with_class(msg, css)
                if cid:
                    found[css] = cid
            return len(found) == len(classes)

        return found, self.collect(msg_id, 60, stop=all_shown)

    def click(self, comm_id: str) -> None:
        msg = self.kc.session.msg(
            "comm_msg",
            {"comm_id": comm_id, "data": {"method": "custom", "content": {"event": "click"}}},
        )
        self.kc.shell_channel.send(msg)

    def set_state(self, comm_id: str, state: dict) -> None:
        """A frontend's edit of a widget (typing into a Text), as an `update` comm_msg."""
        msg = self.kc.session.msg(
            "comm_msg",
            {"comm_id": comm_id, "data": {"method": "update", "state": state, "buffer_paths": []}},
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


def _widget_with_class(msg: dict, css: str) -> str | None:
    if msg["msg_type"] != "comm_open":
        return None
    state = msg["content"]["data"].get("state", {})
    return msg["content"]["comm_id"] if css in state.get("_dom_classes", []) else None


def _outputs_text(msgs: list[dict]) -> str:
    parts = []
    for m in msgs:
        c = m["content"]
        if m["msg_type"] == "stream":
            parts.append(c["text"])
        elif m["msg_type"] == "error":
            parts.append("\n".join(c["traceback"]))
    return "".join(parts)


@pytest.mark.kernel
def test_kernel_approve_click_mid_run(kernel):
    with OpenAIServer(demo_script()) as server:
        kernel.run(SETUP.format(base_url=server.base_url, api_key=server.api_key, delay=0.2))
        msg_id = kernel.execute(RUN.format(approval=""))
        found, before = kernel.wait_for_widgets(msg_id, "llm-approve")
        assert "llm-approve" in found, "no Approve button was opened"
        assert not any(
            m["msg_type"] == "status" and m["content"]["execution_state"] == "idle" for m in before
        )
        live_updates = sum(1 for m in before if m["msg_type"] == "comm_msg")
        assert live_updates > 0  # the timeline updated while the cell ran
        kernel.click(found["llm-approve"])
        after = kernel.collect(msg_id, 60)
        assert not [m for m in after if m["msg_type"] == "error"], _outputs_text(after)
        check = kernel.run("print(result.status, [r.status for r in result.tool_calls])")
    out = _outputs_text(check)
    assert "done ['ok', 'ok', 'ok', 'ok', 'ok']" in out, out
    final = [m for m in after if m["msg_type"] == "update_display_data"]
    assert final, "close() did not refresh the display"
    html = final[-1]["content"]["data"]["text/html"]
    assert "delete_file" in html and "city_table" in html and ">done<" in html


@pytest.mark.kernel
def test_kernel_deny_with_reason_mid_run(kernel):
    """Type a reason, click Deny: the tool does not run and the model is told why."""
    with OpenAIServer(demo_script()) as server:
        kernel.run(SETUP.format(base_url=server.base_url, api_key=server.api_key, delay=0.2))
        msg_id = kernel.execute(RUN.format(approval=""))
        found, _ = kernel.wait_for_widgets(msg_id, "llm-deny", "llm-reason")
        assert len(found) == 2, found
        kernel.set_state(found["llm-reason"], {"value": "keep old.csv, it is the backup"})
        kernel.click(found["llm-deny"])
        after = kernel.collect(msg_id, 60)
        assert not [m for m in after if m["msg_type"] == "error"], _outputs_text(after)
        check = kernel.run(
            "print(result.status, [r.status for r in result.tool_calls]);"
            "print(result.tool_calls[-1].output)"
        )
        sent = server.requests[-1].body
    out = _outputs_text(check)
    assert "done ['ok', 'ok', 'ok', 'ok', 'denied']" in out, out
    assert "denied: the user did not allow this call: keep old.csv, it is the backup" in out
    assert "keep old.csv, it is the backup" in json.dumps(sent)
    html = [m for m in after if m["msg_type"] == "update_display_data"][-1]["content"]["data"][
        "text/html"
    ]
    assert ">denied<" in html and "deleted old.csv" not in _outputs_text(after)


@pytest.mark.kernel
def test_kernel_cancel_click_mid_run(kernel):
    script = [
        Reply(calls=[Call("get_weather", {"city": "Paris"}), Call("get_weather", {"city": "Rome"})])
    ]
    with OpenAIServer(script) as server:
        kernel.run(SETUP.format(base_url=server.base_url, api_key=server.api_key, delay=30))
        msg_id = kernel.execute(RUN.format(approval=""))
        found: dict[str, str] = {}
        running = {"n": 0}

        def ready(msg: dict) -> bool:
            cid = _widget_with_class(msg, "llm-cancel")
            if cid:
                found["cancel"] = cid
            if msg["msg_type"] == "comm_msg":
                value = msg["content"]["data"].get("state", {}).get("value", "")
                running["n"] += value.count(">running<")
            return "cancel" in found and running["n"] >= 2

        kernel.collect(msg_id, 60, stop=ready)
        clicked = time.monotonic()
        kernel.click(found["cancel"])
        after = kernel.collect(msg_id, 30)
        took = time.monotonic() - clicked
        check = kernel.run("print(result.status, [r.status for r in result.tool_calls])")
    assert took < 10, took
    assert "cancelled ['cancelled', 'cancelled']" in _outputs_text(check)
    html = [m for m in after if m["msg_type"] == "update_display_data"][-1]["content"]["data"][
        "text/html"
    ]
    assert ">cancelled<" in html


@pytest.mark.kernel
def test_kernel_stream_comm_messages_bounded(kernel):
    tokens = 500
    text = " ".join(f"w{i}" for i in range(tokens))
    with OpenAIServer([Reply(text=text, chunk_delay=0.004)]) as server:
        kernel.run(SETUP.format(base_url=server.base_url, api_key=server.api_key, delay=0))
        started = time.monotonic()
        msgs = kernel.run(
            "run = model.chain('talk')\ntl = Timeline(run, model='m')\ntl.show()\n"
            "result = await run\ntl.close()\nprint(len(result.text.split()))"
        )
        elapsed = time.monotonic() - started
    assert f"{tokens}" in _outputs_text(msgs)
    comm_msgs = sum(1 for m in msgs if m["msg_type"] == "comm_msg")
    print(f"\nkernel: {tokens} tokens in {elapsed:.2f} s -> {comm_msgs} comm_msg on IOPub")
    assert comm_msgs <= 3 * (elapsed / INTERVAL + 3), (comm_msgs, elapsed)
    assert comm_msgs < tokens / 5, comm_msgs


# -- nbclient + nbconvert ----------------------------------------------------------------------------


def _execute_notebook(
    tmp_path: Path, server: OpenAIServer, store_widget_state: bool, static: bool = False
) -> Any:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.from_dict(
        demo_notebook(server.base_url, server.api_key, delay=0.05, auto=True, static=static)
    )
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
@pytest.mark.parametrize(
    ("store_widget_state", "static"),
    [(True, False), (False, False), (True, True)],
    ids=["widget-state", "no-state", "widget-state-static-after-run"],
)
def test_nbclient_saves_final_html_and_nbconvert_shows_it(tmp_path, store_widget_state, static):
    import nbformat

    with OpenAIServer(demo_script()) as server:
        nb = _execute_notebook(tmp_path, server, store_widget_state, static)
    data = _timeline_output(nb)
    html, plain = data["text/html"], data["text/plain"]
    assert ("application/vnd.jupyter.widget-view+json" in data) is not static
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
    # Every call's name and argument summary, HTML-escaped, in the page: as the static timeline
    # (no widget state: nbconvert falls through to text/html), or in the embedded widget state
    # that nbconvert's html-manager renders (nbclient's default store_widget_state=True).
    shown = page.replace("<\\/", "</").replace("&quot;", '"')
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
    if store_widget_state and not static:
        assert "application/vnd.jupyter.widget-state+json" in page
    else:  # the static timeline, whatever widget state was saved
        assert "llm-magic-timeline" in page and page.count('class="llm-call"') == 5
        assert ("widget-state+json" in page) is store_widget_state


def test_answers_render_as_markdown_once_the_turn_is_done():
    text = (
        "**Rome** is warmest\n\n| city | °C |\n|---|---|\n| Rome | 19 |\n\n<b onclick=x()>raw</b>"
    )
    done = render.turn_text_html(text)
    assert "<strong>Rome</strong>" in done and "<td>Rome</td>" in done
    assert "&lt;b onclick=x()&gt;raw&lt;/b&gt;" in done  # the model's raw HTML stays text
    streaming = render.turn_text_html(text, streaming=True)
    assert "**Rome**" in streaming and "<strong>" not in streaming


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

    assert "Figure({&#x27;data&#x27;: [...]})" in render.rich_html(PlotlyLike())
    assert 'src="data:image/svg+xml;base64,' in render.rich_html(SvgOnly())
    assert "EmptyAfterCleaning()" in render.rich_html(EmptyAfterCleaning())
