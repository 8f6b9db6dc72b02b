"""The timeline never decides for the user, in a real browser (JupyterLab, headless Debian
Chromium through Playwright, the loopback OpenAI server).

* An approval card that appears while the user types in another cell takes no keys: the typed
  text (Enter included) stays in that cell, the card is announced (aria-live) and nothing is
  decided until a button is pressed.
* In a view still live after its run (`%llm_edit --live`), a re-run's Cancel is enabled while
  the re-run runs, and clicking it stops the re-run.
* A sync tool cancelled while it runs in its thread: its row says the function goes on, then
  shows its late result.

Each runs light at 700 px and dark at 1,600 px; screenshots go to artifacts/<test name>/.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.browser.test_browser import _artifacts, _open_and_run, jupyter, notebook_of, page  # noqa: F401
from tests.browser.test_browser_edit import (  # noqa: F401  (its app and theme fixtures)
    AFTER,
    app_kind,
    open_editor,
    retype,
    theme,
)
from tests.servers import Call, OpenAIServer, Reply

pytestmark = pytest.mark.browser

SETUP = '''\
%load_ext llm_magic
import asyncio, os
os.environ["OPENAI_API_KEY"] = {api_key!r}
os.environ["OPENAI_BASE_URL"] = {base_url!r}

def delete_rows(table: str) -> str:
    """Delete the stale rows of a table."""
    return "deleted 3 rows of " + table

async def get_weather(city: str) -> dict:
    """Current weather for a city."""
    if city == "Rome":
        await asyncio.sleep(60)  # the re-run that the user cancels
    return {{"city": city, "temp": 14}}
'''
APPROVE_CHAIN = (
    "%%llm_chain -m openai-chat:gpt-4.1-mini -t delete_rows --approve delete_rows\nClean accounts"
)
WEATHER_CHAIN = "%%llm_chain -m openai-chat:gpt-4.1-mini -t get_weather -o r\nWeather in Paris?"
# the source of the notebook's cell `i`, as JupyterLab's model holds it
# light at 700 px and dark at 1,600 px: both themes and both widths, each test twice
THEMES_AND_WIDTHS = pytest.mark.parametrize(("theme", "width"), [("light", 700), ("dark", 1600)])
CELL_SOURCE = """(i) => window.jupyterapp.shell.currentWidget.content.widgets[i].model.sharedModel
  .getSource()"""


@THEMES_AND_WIDTHS
def test_a_card_that_appears_while_typing_in_another_cell_takes_no_keys(
    jupyter: tuple[str, Path],  # noqa: F811  (the fixtures of tests/browser/test_browser.py)
    page: Any,  # noqa: F811
    width: int,
    request: pytest.FixtureRequest,
) -> None:
    url, root = jupyter
    shots = _artifacts(request)
    page.set_viewport_size({"width": width, "height": 1200})
    script = [  # the card appears a few seconds after the run starts, mid-typing
        Reply(calls=[Call("delete_rows", {"table": "accounts"})], delay=3.0),
        Reply(text="Cleaned."),
    ]
    with OpenAIServer(script) as server:
        setup = SETUP.format(api_key=server.api_key, base_url=server.base_url)
        (root / "focus.ipynb").write_text(json.dumps(notebook_of(setup, APPROVE_CHAIN, "")))
        _open_and_run(page, url, "lab", "focus.ipynb")
        page.locator(".llm-magic-timeline.llm-live").wait_for()
        # the user goes on working in the third cell while the run waits for the model
        editor = page.locator(".jp-Cell").nth(2).locator(".cm-content")
        editor.click()
        first = "total = sum(range(10))"
        page.keyboard.type(first, delay=40)
        card = page.locator(".llm-approval")
        assert card.count() == 0, "the card came before the typing started"
        card.wait_for()
        page.keyboard.type("  # typed while the card appeared", delay=40)
        page.keyboard.press("Enter")  # once denied the call, with the typed text as reason
        page.keyboard.type("print(total)", delay=40)
        page.screenshot(path=str(shots / "typing.png"))
        typed = page.evaluate(CELL_SOURCE, 2)
        assert typed == f"{first}  # typed while the card appeared\nprint(total)", typed
        reason = card.locator("input.llm-reason")
        assert reason.input_value() == ""
        assert not reason.evaluate("el => el === document.activeElement")
        assert card.locator("button.llm-approve").is_enabled()  # nothing was decided
        assert len(server.requests) == 1
        announce = page.locator(".llm-live .llm-announce")
        assert announce.get_attribute("aria-live") == "polite"
        assert "delete_rows" in announce.inner_text() and "approval" in announce.inner_text()
        # Enter in the reason box decides nothing either; Approve does
        reason.click()
        reason.press_sequentially("ok", delay=20)
        reason.press("Enter")
        assert card.locator("button.llm-approve").is_enabled() and len(server.requests) == 1
        card.screenshot(path=str(shots / "card.png"))
        card.locator("button.llm-approve").click()
        static = page.locator(".llm-magic-timeline.llm-static", has_text="Cleaned.")
        static.wait_for()
        assert "deleted 3 rows of accounts" in static.text_content()
        static.screenshot(path=str(shots / "static.png"))
        assert page.evaluate(CELL_SOURCE, 2) == typed
        assert server.failures == [] and server.pending == 0


@THEMES_AND_WIDTHS
def test_a_re_runs_cancel_in_a_live_view_stops_it(
    jupyter: tuple[str, Path],  # noqa: F811
    page: Any,  # noqa: F811
    width: int,
    request: pytest.FixtureRequest,
) -> None:
    url, root = jupyter
    shots = _artifacts(request)
    page.set_viewport_size({"width": width, "height": 1200})
    script = [
        Reply(calls=[Call("get_weather", {"city": "Paris"})]),
        Reply(text="Paris is 14 degrees."),
    ]
    with OpenAIServer(script) as server:
        setup = SETUP.format(api_key=server.api_key, base_url=server.base_url)
        nb = notebook_of(setup, WEATHER_CHAIN, "%llm_edit --live r", AFTER)
        (root / "cancel.ipynb").write_text(json.dumps(nb))
        _open_and_run(page, url, "lab", "cancel.ipynb")
        page.locator(".jp-OutputArea-output", has_text="cells done").wait_for()
        view = page.locator(".llm-magic-timeline.llm-live")
        cancel = view.locator("button.llm-cancel")
        assert cancel.is_hidden()  # the run ended: nothing to cancel
        call, area = open_editor(view, "llm-edit")
        retype(area, '{"city": "Rome"}')  # the re-run's call sleeps for a minute
        call.locator("button.llm-rerun").click()
        view.locator(".llm-branch").wait_for()
        view.locator('.llm-call[data-status="running"]').wait_for()
        assert cancel.is_visible() and cancel.is_enabled()
        view.screenshot(path=str(shots / "rerunning.png"))
        clicked = time.monotonic()
        cancel.click()
        view.locator(".llm-head-info", has_text="cancelled").wait_for(timeout=15_000)
        assert time.monotonic() - clicked < 10
        assert cancel.is_hidden()
        assert view.locator('.llm-call[data-status="cancelled"]').count() == 1
        view.screenshot(path=str(shots / "cancelled.png"))
        assert server.failures == []


SLOW_SETUP = '''\
%load_ext llm_magic
import os, time
os.environ["OPENAI_API_KEY"] = {api_key!r}
os.environ["OPENAI_BASE_URL"] = {base_url!r}

def delete_rows(table: str) -> str:
    """Delete the stale rows of a table."""
    time.sleep(6)  # still at work in its thread when the user cancels
    return "deleted 3 rows of " + table
'''
SLOW_CHAIN = "%%llm_chain -m openai-chat:gpt-4.1-mini -t delete_rows\nClean accounts"


@THEMES_AND_WIDTHS
def test_a_cancelled_sync_tool_says_it_runs_on_then_shows_its_late_result(
    jupyter: tuple[str, Path],  # noqa: F811
    page: Any,  # noqa: F811
    width: int,
    request: pytest.FixtureRequest,
) -> None:
    """Cancel while a sync tool runs in its thread: the row says the function goes on (not just
    "cancelled"), and when the thread ends the saved timeline shows its late result in the same
    row."""
    url, root = jupyter
    shots = _artifacts(request)
    page.set_viewport_size({"width": width, "height": 1200})
    with OpenAIServer([Reply(calls=[Call("delete_rows", {"table": "accounts"})])]) as server:
        setup = SLOW_SETUP.format(api_key=server.api_key, base_url=server.base_url)
        (root / "thread.ipynb").write_text(json.dumps(notebook_of(setup, SLOW_CHAIN, AFTER)))
        _open_and_run(page, url, "lab", "thread.ipynb")
        live = page.locator(".llm-magic-timeline.llm-live")
        live.locator('.llm-call[data-status="running"]').wait_for()
        live.locator("button.llm-cancel").click()
        output = page.locator(".jp-Cell").nth(1).locator(".jp-OutputArea")
        running = output.locator(
            ".llm-magic-timeline.llm-static",
            has_text="`delete_rows` is still running in its thread",
        )
        running.wait_for(timeout=15_000)
        assert running.locator(".llm-call").count() == 1
        running.screenshot(path=str(shots / "running.png"))
        late = output.locator(
            ".llm-magic-timeline.llm-static", has_text="deleted 3 rows of accounts"
        )
        late.wait_for(timeout=30_000)
        assert "returned later in its thread" in late.inner_text()
        assert late.locator(".llm-call").count() == 1  # the same row, not a new one
        late.screenshot(path=str(shots / "late.png"))
        assert server.failures == [] and server.pending == 0
