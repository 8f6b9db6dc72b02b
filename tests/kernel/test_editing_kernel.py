"""Edit & re-run in a real ipykernel: the click is a comm message on the shell channel, as the
front end sends it, after the cell that showed the view has ended (the kernel is idle)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.kernel_harness import Cell, KernelSession, Msg, openai_kernel_fixtures
from tests.servers import Call, OpenAIServer, Reply

pytestmark = pytest.mark.kernel

SETUP = '''
%load_ext llm_magic
import asyncio
from llm_magic.notebook.state import state

ran = []


def get_weather(city: str) -> dict:
    """Current weather for a city."""
    ran.append(city)
    return {"city": city, "temp": {"Paris": 14, "Rome": 19}.get(city, 10)}


async def next_result(old, seconds=30):
    for _ in range(int(seconds / 0.05)):
        if state.last_result is not old:
            return state.last_result
        await asyncio.sleep(0.05)
    raise TimeoutError("no re-run result")
'''

WAIT = "r2 = await next_result(r)\nprint(repr(r2.text), repr(r.text), ran, r2.branched_from.step)"


class View:
    """The timeline widget as the front end sees it, from IOPub."""

    def __init__(self) -> None:
        self.comm_id: str | None = None
        self.state: dict[str, Any] = {}
        self.entries: dict[str, dict[str, Any]] = {}
        self.closed = False
        self.displays: list[dict[str, Any]] = []
        self.notes: list[str] = []

    def see(self, msg: Msg, _cells: Any = None) -> None:
        content = msg.content
        if msg.type == "comm_open":
            state = content["data"].get("state", {})
            if "llm-magic-timeline-widget" in state.get("_dom_classes", []):
                self.comm_id, self.closed = content["comm_id"], False
                self.entries = {}
                self._take(state)
        elif msg.type == "comm_msg" and content["comm_id"] == self.comm_id:
            self._take(content["data"].get("state", {}))
        elif msg.type == "comm_close" and content["comm_id"] == self.comm_id:
            self.closed = True
        elif msg.type == "update_display_data":
            self.displays.append(content["data"])

    def _take(self, state: dict[str, Any]) -> None:
        self.state.update({k: v for k, v in state.items() if k != "patch"})
        if state.get("note"):
            self.notes.append(state["note"])
        patch = state.get("patch")
        if patch:
            if patch.get("full"):
                self.entries = {}
            for entry in patch.get("entries", []):
                self.entries[entry["id"]] = entry

    def click(self, kernel: KernelSession, call: str, arguments: str) -> None:
        assert self.comm_id is not None
        message = {
            "type": "rerun",
            "id": call,
            "generation": self.state.get("generation", 0),
            "arguments": arguments,
        }
        kernel.send_comm(self.comm_id, {"method": "custom", "content": message})


server, kernel = openai_kernel_fixtures(SETUP, "openai-chat:gpt-4.1-mini")


def run(kernel: KernelSession, view: View, *cells: str) -> list[Cell]:
    done = kernel.run(list(cells), on_message=view.see)
    assert [c.status for c in done] == ["ok"] * len(cells), [c.errors for c in done]
    return done


def first_run(server: OpenAIServer) -> None:
    server.push(
        Reply(calls=[Call("get_weather", {"city": "Paris"})], usage=(1000, 50)),
        Reply(text="Paris is 14.", usage=(1100, 20)),
    )


def test_edit_view_rejects_bad_edits_then_reruns_with_the_new_arguments(kernel, server):
    view = View()
    first_run(server)
    run(kernel, view, "ran.clear()\n", "%%llm_chain -t get_weather -o r\nWeather in Paris?")
    assert view.closed  # the default: static HTML once the run ended
    run(kernel, view, "%llm_edit r")
    assert not view.closed and json.loads(view.entries["c0"]["edit"]) == {"city": "Paris"}
    requests = len(server.requests)
    for typed, error in (('{"city": ', "not valid JSON"), ("{}", "invalid arguments")):
        view.click(kernel, "c0", typed)
        run(kernel, view, "await asyncio.sleep(0.2)")  # the kernel answers the click meanwhile
        assert error in view.entries["c0"]["edit_error"], view.entries["c0"]
    assert len(server.requests) == requests  # nothing ran
    server.push(Reply(text="Rome is 19.", usage=(1200, 10)))
    view.click(kernel, "c0", '{\n  "city": "Rome"\n}')
    (cell,) = run(kernel, view, WAIT)
    assert cell.stream() == "'Rome is 19.' 'Paris is 14.' ['Paris', 'Rome'] 1\n"
    assert view.state["generation"] == 1
    # an editor view ends static like any run, keeping the branched-from line
    run(kernel, view, "await asyncio.sleep(0.3)")
    assert view.closed
    html = view.displays[-1]["text/html"]
    assert "re-run of get_weather (call 1) with city=&quot;Rome&quot;" in html
    # the original stays above the re-run, named with the variable that holds it
    held = html.index("original run · the variable r holds this run")
    assert held < html.index("Paris is 14.") < html.index("branch 1 · re-run") < html.index("Rome")
    assert (
        "Rome is 19." in html
        and "application/vnd.jupyter.widget-view+json" not in (view.displays[-1])
    )
    # a branch made in Python shows its own timeline when it starts (llm_magic.views), with
    # the same line
    server.push(Reply(text="Paris, in French: 14.", usage=(1300, 10)))
    run(kernel, view, "r3 = await r.fork(at=1, prompt='In French?')")
    forked = view.displays[-1]["text/html"]
    assert "fork after turn 1" in forked and "new prompt: In French?" in forked
    assert server.take_failures() == []


def test_live_cell_offers_edits_and_refuses_a_second_rerun_while_one_runs(kernel, server):
    view = View()
    first_run(server)
    run(
        kernel,
        view,
        "ran.clear()\n",
        "%%llm_chain --live -t get_weather -o r\nWeather in Paris?",
    )
    assert not view.closed and "edit" in view.entries["c0"]  # --live: still a widget, editable
    server.push(Reply(text="Oslo is 10.", usage=(1200, 10), delay=1.0))  # still running
    view.click(kernel, "c0", '{"city": "Oslo"}')
    view.click(kernel, "c0", '{"city": "Rome"}')  # before the first re-run ended: refused
    (cell,) = run(kernel, view, WAIT)
    assert cell.stream() == "'Oslo is 10.' 'Paris is 14.' ['Paris', 'Oslo'] 1\n"
    assert any("a re-run from this view is still running" in note for note in view.notes)
    run(kernel, view, "await asyncio.sleep(0.3)")
    assert not view.closed  # live: the view stays a widget, and offers edits of the re-run
    assert json.loads(view.entries["c0"]["edit"]) == {"city": "Oslo"}
    assert view.state["editable"] is True  # the front end shows "Done"
    kernel.send_comm(view.comm_id, {"method": "custom", "content": {"type": "done"}})
    run(kernel, view, "await asyncio.sleep(0.2)")
    saved = view.displays[-1]["text/html"]
    assert view.closed and "Oslo is 10." in saved
    # the saved view keeps the cell's own run above the re-run: `r` (Paris) is still shown
    assert (
        saved.index("original run · the variable r holds this run")  # its --out name
        < saved.index("Paris is 14.")
        < saved.index("Oslo is 10.")
    )
    assert server.take_failures() == []
