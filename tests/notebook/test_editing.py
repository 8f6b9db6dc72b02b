"""Cost and branches in the timeline, and Edit & re-run from a live view.

In-process tests drive real runs against the loopback OpenAI server and read what the widget
would send (entries, header, note) and the static HTML/text: one renderer for both. The click
goes through the widget's own comm handler, as ipykernel delivers it. The real-kernel tests are
in tests/kernel/test_editing_kernel.py, the browser test in tests/browser/test_browser_edit.py.
"""

from __future__ import annotations

import asyncio
import html as html_lib
import json
from decimal import Decimal
from typing import Any

import pytest

from llm_magic import events as ev
from llm_magic.cost import format_cost
from llm_magic.messages import Usage
from llm_magic.notebook import look, render
from llm_magic.notebook.editing import RUNNING_NOTE, editor_timeline, replay
from llm_magic.notebook.reducer import RunState, apply
from llm_magic.notebook.timeline import Timeline
from llm_magic.records import ToolCallRecord
from llm_magic.results import ChainResult
from tests.notebook.test_timeline import comms, entries, front_end, until  # noqa: F401  (comms: fixture)
from tests.servers import Call, OpenAIServer, Reply

pytestmark = pytest.mark.usefixtures("comms")
ran: list[str] = []


def get_weather(city: str) -> dict:
    """Current weather for a city."""
    ran.append(city)
    return {"city": city, "temp": {"Paris": 14, "Rome": 19}.get(city, 10)}


@pytest.fixture(autouse=True)
def _clear() -> None:
    ran.clear()


def script(answer: str = "Paris is 14.") -> list[Reply]:
    return [
        Reply(calls=[Call("get_weather", {"city": "Paris"})], usage=(1000, 50)),
        Reply(text=answer, usage=(1100, 20)),
    ]


def gpt(server: OpenAIServer) -> Any:
    import llm_magic

    return llm_magic.get_async_model(
        "openai-chat:gpt-4.1-mini", base_url=server.base_url, api_key=server.api_key
    )


def call_entries(tl: Timeline) -> list[dict]:
    return [e for e in entries(tl) if e["kind"] == "call"]


# -- cost and the branch line in the reducer and the renderer ---------------------------------------


def test_reducer_folds_costs_per_turn_and_unknown_stays_unknown():
    state = RunState(model="m")
    apply(state, ev.RunStarted("m", "go", []))
    apply(state, ev.TurnStarted(1))
    apply(state, ev.TurnStarted(2))  # a price may come after the next turn started
    assert apply(state, ev.CostReported(1, Decimal("0.0021"), Decimal("0.0021"))) == ("head", "t0")
    turn1, turn2 = state.turns
    assert (turn1.priced, turn1.cost, turn2.priced) == (True, Decimal("0.0021"), False)
    assert "$0.0021" in render.turn_line_html(turn1) and "$" not in render.turn_line_html(turn2)
    assert "cost $0.0021" in render.header_html(state)
    apply(state, ev.CostReported(2, None, None))  # a model the price table does not know
    assert "unknown" in render.turn_line_html(turn2)
    assert "cost unknown" in render.header_html(state) and "cost unknown" in render.static_text(
        state
    )
    unpriced = RunState(model="local")
    apply(unpriced, ev.RunStarted("local", "go", []))
    assert "cost" not in render.header_html(unpriced)  # nothing priced yet: nothing claimed


def test_budget_reached_pill():
    state = RunState(model="m")
    result = ChainResult("", "max_cost", [], Usage(), 0, "m", 0.1)
    apply(state, ev.RunFinished(result))
    header = render.header_html(state)
    assert 'data-status="max_cost"' in header and ">budget reached<" in header
    assert "budget reached" in render.static_text(state)


async def test_run_cost_in_live_and_static_views():
    with OpenAIServer(script()) as server:
        run = gpt(server).chain("weather?", tools=[get_weather])
        tl = Timeline(run, model="openai-chat:gpt-4.1-mini")
        widget = tl.widget
        result = await run
        tl.close()
    assert result.cost is not None and result.cost > 0
    total = f"cost {format_cost(result.cost)}"
    assert total in widget.header and total in render.static_html(tl.state)
    turns = [e for e in entries(tl) if e["kind"] == "turn"]
    for entry, turn in zip(turns, result.turns, strict=True):
        assert format_cost(turn.cost) in entry["line"]


# -- branches in the header, whoever made them ------------------------------------------------------


async def test_rerun_made_from_python_shows_where_it_branched():
    with OpenAIServer([*script(), Reply(text="Rome is 19.")]) as server:
        first = await gpt(server).chain("weather?", tools=[get_weather])
        run = first.rerun(first.tool_calls[0].id, arguments={"city": "Rome"})
        tl = Timeline(run, model="m")
        widget = tl.widget
        await run
        tl.close()
    line = 're-run of get_weather (call 1) with city="Rome"'
    assert look.esc(line) in widget.header
    assert "<del" in widget.header and look.esc('"Paris"') in widget.header  # the edit, as a diff
    assert 'city: "Paris" -> "Rome"' in render.static_text(tl.state)
    assert look.esc(line) in render.static_html(tl.state)
    assert line in render.static_text(tl.state)
    # the re-run call (made before the branch's first turn) comes first, live and static
    shown = entries(tl)
    assert [e["id"] for e in shown][:2] == ["c0", "t0"]
    html = render.static_html(tl.state)
    assert html.index("get_weather") < html.index("Rome is 19.")


# -- the editor view and the re-run click ------------------------------------------------------------


async def test_editor_view_rebuilds_the_run_through_the_reducer():
    with OpenAIServer(script()) as server:
        run = gpt(server).chain("weather?", tools=[get_weather])
        live = Timeline(run, model="openai-chat:gpt-4.1-mini")
        assert live.widget is not None
        result = await run
        live.close()
    tl = editor_timeline(result)
    assert tl.widget is not None
    tl.offer_edits()
    # the same entries and header as the live run showed (durations aside)
    assert [e["id"] for e in entries(tl)] == [e["id"] for e in entries(live)]
    assert render.static_text(tl.state).splitlines()[2:] != []
    for words in ("2 turns", "1 tool call", "2,100 in / 70 out tokens", ">done<", "cost $"):
        assert words in tl.widget.header, words
    (call,) = call_entries(tl)
    assert json.loads(call["edit"]) == {"city": "Paris"}
    assert (call["edit_error"], call["edit_try"]) == ("", 0)
    assert [type(e).__name__ for e in replay(result)][-1] == "RunFinished"


@pytest.mark.parametrize(
    ("typed", "error"),
    [
        ('{"city": ', "not valid JSON"),
        ('["Rome"]', "must be a JSON object"),
        ("{}", "invalid arguments for get_weather"),
        ('{"city": ["Rome", "Oslo"]}', "invalid arguments for get_weather"),
        ('{"town": "Rome"}', "invalid arguments for get_weather"),
    ],
)
async def test_a_bad_edit_shows_its_error_and_runs_nothing(typed, error):
    with OpenAIServer(script()) as server:
        result = await gpt(server).chain("weather?", tools=[get_weather])
        tl = editor_timeline(result)
        assert tl.widget is not None
        tl.offer_edits()
        message = {"type": "rerun", "id": "c0", "generation": 0, "arguments": typed}
        front_end(tl, message)
        (call,) = call_entries(tl)
        assert error in call["edit_error"] and call["edit_try"] == 1
        front_end(tl, message)
        assert call_entries(tl)[0]["edit_try"] == 2  # the front end shows each refusal
        assert len(server.requests) == 2 and ran == ["Paris"]  # nothing ran
    assert tl.result is result and tl.generation == 0


async def test_rerun_click_shows_the_new_run_in_the_same_view(monkeypatch):
    from llm_magic.notebook.state import state

    monkeypatch.setattr(state, "last_result", None)
    with OpenAIServer([*script(), Reply(text="Rome is 19.", usage=(1200, 10))]) as server:
        result = await gpt(server).chain("weather?", tools=[get_weather])
        before = (result.text, [c.arguments for c in result.tool_calls])
        tl = editor_timeline(result, live=True)
        widget = tl.widget
        tl.offer_edits()
        edited = '{\n  "city": "Rome"\n}'
        front_end(tl, {"type": "rerun", "id": "c0", "generation": 0, "arguments": edited})
        assert widget.generation == 1 and widget.patch["full"]
        # a second click while the re-run runs: refused, with a note, nothing more runs
        front_end(tl, {"type": "rerun", "id": "c0", "generation": 1, "arguments": edited})
        assert widget.note and "still running" in widget.note
        await until(lambda: tl.result is not None)
        assert len(server.requests) == 3
    new = tl.result
    assert new is not result and new is state.last_result
    assert new.text == "Rome is 19." and ran == ["Paris", "Rome"]
    assert new.branched_from is not None and new.branched_from.result is result
    assert (result.text, [c.arguments for c in result.tool_calls]) == before  # unchanged
    assert "re-run of get_weather (call 1) with city=" in widget.header
    assert RUNNING_NOTE not in widget.note
    # live: the new run's calls offer Edit & re-run in turn; a stale click (old generation) runs
    # nothing
    (call,) = call_entries(tl)
    assert json.loads(call["edit"]) == {"city": "Rome"}
    front_end(tl, {"type": "rerun", "id": "c0", "generation": 0, "arguments": '{"city": "Oslo"}'})
    await asyncio.sleep(0.05)
    assert tl.generation == 1 and ran == ["Paris", "Rome"]


async def test_a_rerun_stacks_below_the_run_it_came_from_live_and_saved():
    """The view keeps the original (named with who holds it) above each re-run, in the live
    widget's history and in the static HTML and text a saved notebook keeps."""
    from llm_magic.notebook.editing import Editor

    replies = [*script(), Reply(text="Rome is 19."), Reply(text="Oslo is 10.")]
    with OpenAIServer(replies) as server:
        result = await gpt(server).chain("weather?", tools=[get_weather])
        tl = editor_timeline(result, live=True)
        tl.holder = "the variable r"
        widget = tl.widget
        tl.offer_edits()
        assert widget.history == ""  # one run: nothing stacked yet
        front_end(
            tl, {"type": "rerun", "id": "c0", "generation": 0, "arguments": '{"city": "Rome"}'}
        )
        await until(lambda: tl.result is not None)
        first_branch = tl.result
        assert "original run · the variable r holds this run" in html_lib.unescape(widget.history)
        assert "Paris is 14." in widget.history and "Rome is 19." not in widget.history
        tl.offer_edits()
        front_end(
            tl, {"type": "rerun", "id": "c0", "generation": 1, "arguments": '{"city": "Oslo"}'}
        )
        await until(lambda: tl.result is not None)
        assert Editor(tl).results == [result, first_branch, tl.result]
    bundle = tl._static_bundle()
    html, text = html_lib.unescape(bundle["text/html"]), bundle["text/plain"]
    titles = [
        "original run · the variable r holds this run",
        'branch 1 · re-run of get_weather (call 1) with city="Rome"',
        'branch 2 · re-run of get_weather (call 1) with city="Oslo" · the newest',
    ]
    for shown in (html, text):  # oldest first, each with its answer below its title
        at = [shown.index(t) for t in titles]
        assert at == sorted(at), shown
        answers = [shown.index(a) for a in ("Paris is 14.", "Rome is 19.", "Oslo is 10.")]
        assert at[0] < answers[0] < at[1] < answers[1] < at[2] < answers[2]
    assert html.count('class="llm-magic-timeline llm-static ') == 3


async def test_a_fork_shows_its_new_prompt():
    with OpenAIServer([*script(), Reply(text="Tomorrow: rain.")]) as server:
        first = await gpt(server).chain("weather?", tools=[get_weather])
        run = first.fork(at=1, prompt="And tomorrow in Paris?")
        tl = Timeline(run, model="m")
        widget = tl.widget
        await run
        tl.close()
    assert "fork after turn 1" in widget.header
    assert "new prompt: And tomorrow in Paris?" in widget.header
    assert "new prompt: And tomorrow in Paris?" in render.static_text(tl.state)
    # the editor view of the fork's result says the same, from the result alone
    again = editor_timeline(tl.result)
    assert "new prompt: And tomorrow in Paris?" in render.static_text(again.state)


async def test_use_this_result_goes_on_without_running_the_tool():
    with OpenAIServer([*script(), Reply(text="Paris is 30.")]) as server:
        result = await gpt(server).chain("weather?", tools=[get_weather])
        tl = editor_timeline(result)
        assert tl.widget is not None
        tl.offer_edits()
        (call,) = call_entries(tl)
        assert json.loads(call["given"]) == {"city": "Paris", "temp": 14}
        front_end(tl, {"type": "given", "id": "c0", "generation": 0, "value": "{bad"})
        assert "not valid JSON" in call_entries(tl)[0]["edit_error"]
        value = '{"city": "Paris", "temp": 30}'
        front_end(tl, {"type": "given", "id": "c0", "generation": 0, "value": value})
        await until(lambda: tl.result is not None)
        sent = json.dumps(server.requests[2].body)
    assert ran == ["Paris"]  # the call was not run again: its result was given
    assert '\\"temp\\": 30' in sent and tl.result.text == "Paris is 30."
    assert "with a given result" in tl.widget.header


async def test_static_after_the_run_offers_no_edit():
    with OpenAIServer(script()) as server:
        run = gpt(server).chain("weather?", tools=[get_weather])
        tl = Timeline(run, model="m")
        assert tl.widget is not None
        await run
        tl.close()  # no display handle here: the widget stays, but the run was not made editable
    assert all("edit" not in e for e in call_entries(tl))
    front_end(tl, {"type": "rerun", "id": "c0", "generation": 0, "arguments": '{"city": "X"}'})
    assert ran == ["Paris"]


def test_the_live_flag_keeps_the_widget():
    from llm_magic.notebook.cell_options import parse_line

    assert parse_line("--live").cell.static_after_run is False
    assert parse_line("").cell.static_after_run is True
    assert parse_line("", {"static_after_run": False}).cell.static_after_run is False


def test_branch_line_names_forks_and_given_results():
    from llm_magic.branches import BranchPoint
    from llm_magic.messages import Message, ToolCall
    from llm_magic.notebook.reducer import describe_branch

    msgs = [Message("assistant", tool_calls=[ToolCall("k1", "lookup", '{"key": "a"}')])]
    rec = ToolCallRecord("k1", "lookup", '{"key": "a"}', 1)
    result = ChainResult("", "done", [rec], Usage(), 1, "m", 0.1, messages=msgs)
    assert describe_branch(BranchPoint(result, 1, "fork")) == "fork after turn 1"
    assert describe_branch(BranchPoint(result, 0, "fork")) == "fork before turn 1"
    given = BranchPoint(result, 1, "given", "k1")
    assert describe_branch(given) == "lookup (call 1) with a given result"
    same = BranchPoint(result, 1, "rerun", "k1", {"key": "a"})
    assert describe_branch(same) == "re-run of lookup (call 1) with the same arguments"
    edited = BranchPoint(result, 1, "rerun", "k1", {"key": "b", "limit": 2})
    assert describe_branch(edited) == 're-run of lookup (call 1) with key="b", limit=2'
    assert describe_branch(None) is None


async def test_a_sync_result_reruns_from_the_widget_on_llm_magics_loop():
    import llm_magic

    with OpenAIServer([*script(), Reply(text="Rome is 19.")]) as server:
        with llm_magic.get_model(
            "openai-chat:gpt-4.1-mini", base_url=server.base_url, api_key=server.api_key
        ) as model:
            result = model.chain("weather?", tools=[get_weather]).result()
            tl = editor_timeline(result)
            assert tl.widget is not None
            tl.offer_edits()
            message = {"type": "rerun", "id": "c0", "generation": 0}
            front_end(tl, {**message, "arguments": '{"city": "Rome"}'})
            await until(lambda: tl.result is not None)
    assert tl.result.text == "Rome is 19." and ran == ["Paris", "Rome"]
    assert "re-run of get_weather" in tl.widget.header
