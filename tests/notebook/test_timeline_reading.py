"""The timeline's classes and stylesheet, the saved timeline's Copy buttons, the saved copy of a
live view, "always allow", and a view that asks for the whole state (no kernel; comms recorded
through the `comm` package's hook, real loopback HTTP for the runs)."""

from __future__ import annotations

import asyncio
import json
import re

import pytest

from llm_magic import events as ev
from llm_magic import tool
from llm_magic.notebook import always_allow, render, saved_copy, styles
from llm_magic.notebook.reducer import RunState, apply
from llm_magic.notebook.timeline import Timeline
from llm_magic.records import ToolCallRecord
from tests.notebook.test_timeline import (  # noqa: F401  (the comms fixture, found by name)
    approving,
    calls,
    comms,
    front_end,
    model_for,
    until,
)
from tests.servers import Call, OpenAIServer, Reply


def _finished_run() -> RunState:
    state = RunState(model="m")
    apply(state, ev.RunStarted("m", "go", ["add"]))
    apply(state, ev.TurnStarted(1))
    apply(state, ev.TextDelta(1, "Adding."))
    rec = ToolCallRecord("id0", "add", '{"a": 1}', 1, {"a": 1})
    apply(state, ev.ToolCallRequested(rec))
    rec.status, rec.result, rec.output = "ok", 2, "2"
    apply(state, ev.ToolCallFinished(rec))
    return state


def test_live_fragments_carry_classes_not_styles():
    """A call's line and a header are classes only: their bytes are words, not styling."""
    state = _finished_run()
    line = render.call_line_html(state.calls[0])
    header = render.header_html(state)
    assert "style=" not in line and "style=" not in header
    assert 'class="llm-pill llm-t-ok"' in line and len(line) < 500


def test_static_timeline_carries_the_stylesheet_once_and_scoped():
    html = render.static_html(_finished_run())
    assert html.count("<style>") == 1
    block = html[html.index("<style>") : html.index("</style>")]
    # scoped to the saved timeline: it can restyle nothing else on the page, not a live view
    for selector in re.findall(r"(?:^|})([^{}]+)\{", block.removeprefix("<style>")):
        assert selector.startswith(".llm-static"), selector


def test_rules_marked_important_get_no_inline_fallback():
    """The Copy buttons show only where <style> is kept: inline they stay hidden."""
    assert "display:inline-block" not in styles.fallback("llm-static-copy")
    html = render.static_html(_finished_run())
    buttons = re.findall(r'<button [^>]*class="llm-static-copy" style="([^"]*)"', html)
    assert len(buttons) == 3  # the answer's, the call's arguments and result
    assert all(style.endswith("display:none") for style in buttons)


def test_copy_handlers_are_fixed_code_that_copies_what_is_shown():
    """Every inline handler of the saved timeline is one of the Copy templates, whatever the
    model or the tool wrote (the copied text is read from the page, never put in the code)."""
    state = _finished_run()
    hostile = "\"'); alert(1); ('"
    state.turns[0].parts[:] = [hostile]
    html = render.static_html(state)
    handlers = re.findall(r'\son[a-z]+="([^"]*)"', html)
    assert len(handlers) == 3
    for handler in handlers:
        assert handler.startswith("navigator.clipboard.writeText(this.")
        assert "alert" not in handler
    assert "%llm_edit" in html


def test_a_saved_copy_hides_only_when_the_live_widget_follows():
    static = {"text/html": "<div>timeline</div>", "text/plain": "text"}
    bundle = saved_copy.copy_bundle(static)
    assert bundle["text/plain"] == "text" and "<div>timeline</div>" in bundle["text/html"]
    rules = re.findall(r"([^{}]+)\{display:none\}", bundle["text/html"].split("<style>")[1])
    assert len(rules) == 2 and all("+ .jp-OutputArea-child" in r for r in rules)


@pytest.fixture
def no_tools_allowed():
    always_allow._allowed.clear()
    yield
    always_allow._allowed.clear()


@pytest.mark.usefixtures("comms", "no_tools_allowed")
async def test_always_allow_approves_the_tools_calls_and_later_ones():
    """ "Always allow" on one card approves it and its sibling of the same tool; the next turn's
    call of that tool needs no card; the header lists it until a "revoke"."""

    @tool(requires_approval=True)
    def drop_table(name: str) -> str:
        """Drop a table."""
        return "dropped " + name

    script = [
        Reply(calls=[Call("drop_table", {"name": "a"}), Call("drop_table", {"name": "b"})]),
        Reply(calls=[Call("drop_table", {"name": "c"})]),
        Reply(text="Dropped three."),
    ]
    holder: list[Timeline] = []
    with OpenAIServer(script) as server:
        run = model_for(server).chain(
            "drop them", tools=[drop_table], approval_callback=approving(holder)
        )
        tl = Timeline(run, model="m")
        holder.append(tl)
        task = asyncio.ensure_future(run)
        pair = await until(lambda: len([e for e in calls(tl) if "approval" in e]) == 2)
        assert pair
        first = next(e for e in calls(tl) if "approval" in e)
        front_end(tl, {"type": "decide", "ids": [first["id"]], "approved": True, "always": True})
        result = await asyncio.wait_for(task, 10)
        assert [r.status for r in result.tool_calls] == ["ok", "ok", "ok"]
        assert always_allow.allowed() == ["drop_table"]
        tl.flush()
        assert tl.widget.allowed == ["drop_table"]
        front_end(tl, {"type": "revoke", "tool": "drop_table"})
        await until(lambda: tl.widget.allowed == [])
        tl.close()
        assert server.failures == []
    assert not always_allow.allows("drop_table")


@pytest.mark.usefixtures("comms")
async def test_a_view_that_missed_entries_gets_them_all():
    """A `snapshot` message (a view found a gap in the patches) answers with a full patch."""
    with OpenAIServer([Reply(text="Hello.")]) as server:
        run = model_for(server).chain("hi")
        tl = Timeline(run, model="m")
        tl.widget  # noqa: B018 - built before the run, as in a kernel
        await asyncio.wait_for(asyncio.ensure_future(run), 10)
        tl.flush()
        before = tl.widget.patch["seq"]
        front_end(tl, {"type": "snapshot"})
        patch = tl.widget.patch
        assert patch["full"] is True and patch["seq"] == before + 1
        assert [e["id"] for e in patch["entries"]] == ["t0"]
        assert "Hello." in json.dumps(patch["entries"])
        tl.close()


def test_the_front_end_travels_once_per_kernel(comms):  # noqa: F811
    """Each run's widget carries a small loader and refers to one shared model holding the
    module and CSS; a second run opens no second copy."""
    from llm_magic.notebook import widget

    widget._assets.clear()
    first = Timeline(None, model="m").widget
    second = Timeline(None, model="m").widget
    opens = [data for kind, _id, data in comms if kind == "comm_open"]
    shared = [d for d in opens if "esm" in d.get("state", {})]
    assert len(shared) == 1 and len(shared[0]["state"]["esm"]) > 10_000
    assert first.assets is second.assets is widget.shared_assets()
    assert first.get_state()["assets"] == "IPY_MODEL_" + first.assets.model_id
    assert len(first._esm) < 2_000  # the loader, not the timeline
