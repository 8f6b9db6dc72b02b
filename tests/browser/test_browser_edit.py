"""Edit & re-run in a real browser (JupyterLab, headless Debian Chromium through Playwright).

A notebook runs a chain against the loopback OpenAI server, then `%llm_edit r` opens an editor
view of its result. The test opens the call's details, clicks "Edit & re-run", types the
arguments key by key into the textarea: first invalid JSON (its error shows inline and nothing
runs), then `{"city": "Rome"}`; "Re-run from here" sends them with the click, the view shows the
re-run live and, once it ends, the static timeline with the line that names the re-run and
the re-run's tool result. Screenshots go to artifacts/<test name>/.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.browser.test_browser import _artifacts, _open_and_run, jupyter, notebook_of, page  # noqa: F401
from tests.servers import Call, OpenAIServer, Reply

pytestmark = pytest.mark.browser

SETUP = '''\
%load_ext llm_magic
import os
os.environ["OPENAI_API_KEY"] = {api_key!r}
os.environ["OPENAI_BASE_URL"] = {base_url!r}

def get_weather(city: str) -> dict:
    """Current weather for a city."""
    return {{"city": city, "temp": {{"Paris": 14, "Rome": 19}}.get(city, 10)}}
'''
CHAIN = "%%llm_chain -m openai-chat:gpt-4.1-mini -t get_weather -o r\nWeather in Paris?"
AFTER = "import asyncio\nawait asyncio.sleep(0)\nprint('cells done')"


@pytest.fixture
def app_kind() -> str:
    return "lab"


@pytest.fixture
def theme() -> str:
    return "light"


def notebook(server: OpenAIServer) -> dict:
    setup = SETUP.format(api_key=server.api_key, base_url=server.base_url)
    return notebook_of(setup, CHAIN, "%llm_edit r", AFTER)


def open_editor(editor: Any, button: str) -> tuple[Any, Any]:
    """Open the first call of a live view, press its `button` (`llm-edit` or
    `llm-edit-result`); the call and the textarea that opens."""
    call = editor.locator(".llm-call").first
    call.locator(".llm-call-row > .llm-toggle").click()
    call.locator(f"button.{button}").click()
    area = call.locator("textarea.llm-edit-args")
    area.wait_for()
    return call, area


def retype(area: Any, text: str) -> None:
    """Empty the textarea, then type `text` key by key, as a person would."""
    area.click()
    area.press("Control+a")
    area.press("Delete")
    area.press_sequentially(text, delay=20)


def test_edit_arguments_and_rerun_from_the_widget(
    jupyter: tuple[str, Path],  # noqa: F811  (the fixtures of tests/browser/test_browser.py)
    page: Any,  # noqa: F811
    request: pytest.FixtureRequest,
) -> None:
    url, root = jupyter
    shots = _artifacts(request)
    script = [
        Reply(calls=[Call("get_weather", {"city": "Paris"})], usage=(1000, 50)),
        Reply(text="Paris is 14 degrees.", usage=(1100, 20)),
    ]
    with OpenAIServer(script) as server:
        (root / "edit.ipynb").write_text(json.dumps(notebook(server)))
        _open_and_run(page, url, "lab", "edit.ipynb")
        page.locator(".jp-OutputArea-output", has_text="cells done").wait_for()
        editor = page.locator(".llm-magic-timeline.llm-live")
        editor.wait_for()
        assert page.locator(".llm-magic-timeline.llm-static").count() == 1  # the chain cell's
        assert "cost $" in editor.locator(".llm-head-info").inner_text()

        call, area = open_editor(editor, "llm-edit")
        assert json.loads(area.input_value()) == {"city": "Paris"}

        # invalid JSON: the error shows in this call's editor, and nothing runs
        requests = len(server.requests)
        retype(area, '{"city": ')
        call.locator("button.llm-rerun").click()
        error = call.locator(".llm-edit-error")
        error.wait_for()
        assert "not valid JSON" in error.inner_text()
        assert call.locator("button.llm-rerun").is_enabled()
        editor.screenshot(path=str(shots / "invalid.png"))
        # arguments the tool's schema refuses: the same, with the schema's words
        retype(area, '{"town": "Rome"}')
        call.locator("button.llm-rerun").click()
        page.wait_for_function(
            "el => el.textContent.includes('invalid arguments for get_weather')",
            arg=error.element_handle(),
        )
        assert len(server.requests) == requests

        server.push(Reply(text="Rome is 19 degrees.", usage=(1200, 10), delay=1.0))
        retype(area, '{"city": "Rome"}')
        editor.screenshot(path=str(shots / "edited.png"))
        call.locator("button.llm-rerun").click()
        # the same view shows the re-run live, then gives way to the static timeline
        editor.locator(".llm-branch").wait_for()
        assert "re-run of get_weather" in editor.locator(".llm-branch").inner_text()
        editor.screenshot(path=str(shots / "rerunning.png"))
        static = page.locator(".llm-magic-timeline.llm-static", has_text="re-run of get_weather")
        static.wait_for()
        assert page.locator(".llm-magic-timeline.llm-live").count() == 0
        text = static.inner_text()
        assert 're-run of get_weather (call 1) with city="Rome"' in text
        assert "Rome is 19 degrees." in text and '"temp": 19' in static.text_content()
        static.screenshot(path=str(shots / "static.png"))
        assert server.failures == [] and server.pending == 0
    assert page.get_by_text("Error displaying widget").count() == 0


def test_edit_a_result_in_a_live_editor_and_go_on(
    jupyter: tuple[str, Path],  # noqa: F811  (the fixtures of tests/browser/test_browser.py)
    page: Any,  # noqa: F811
    request: pytest.FixtureRequest,
) -> None:
    """`%llm_edit --live`: "Edit result" takes a typed value as the call's result; the view
    stays live after that run and offers its calls for editing in turn, until Done."""
    url, root = jupyter
    shots = _artifacts(request)
    script = [
        Reply(calls=[Call("get_weather", {"city": "Paris"})], usage=(1000, 50)),
        Reply(text="Paris is 14 degrees.", usage=(1100, 20)),
    ]
    with OpenAIServer(script) as server:
        nb = notebook(server)
        nb["cells"][2]["source"] = "%llm_edit --live r"
        (root / "given.ipynb").write_text(json.dumps(nb))
        _open_and_run(page, url, "lab", "given.ipynb")
        page.locator(".jp-OutputArea-output", has_text="cells done").wait_for()
        editor = page.locator(".llm-magic-timeline.llm-live")
        _call, area = open_editor(editor, "llm-edit-result")
        assert json.loads(area.input_value()) == {"city": "Paris", "temp": 14}
        server.push(Reply(text="Paris is 30 degrees.", usage=(1200, 10)))
        retype(area, '{"city": "Paris", "temp": 30}')
        area.press("Control+Enter")  # the keyboard sends it too
        editor.locator(".llm-branch", has_text="with a given result").wait_for()
        editor.locator(".llm-answer", has_text="Paris is 30 degrees.").wait_for()
        # --live: still a widget once that run ended, its call offered for editing again
        editor.locator(".llm-call button.llm-edit").first.wait_for(state="attached")
        assert page.locator(".llm-magic-timeline.llm-live").count() == 1
        sent = json.dumps(server.requests[-1].body)
        assert '\\"temp\\": 30' in sent
        editor.screenshot(path=str(shots / "given.png"))
        # Done: the view becomes the static timeline (what a saved notebook should hold)
        editor.locator("button.llm-done").click()
        static = page.locator(".llm-magic-timeline.llm-static", has_text="Paris is 30 degrees.")
        static.wait_for()
        assert page.locator(".llm-magic-timeline.llm-live").count() == 0
        assert server.failures == [] and server.pending == 0
