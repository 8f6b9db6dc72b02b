"""Branches add to a view's history, in a real browser (JupyterLab, headless Debian Chromium
through Playwright, the loopback OpenAI server), light and dark, 700 and 1,600 px wide.

`%llm_edit --live r` opens an editor view of the chain cell's result; a re-run from its call
stacks below the original instead of replacing it: the original keeps its answer, under a title
that says `r` holds it, and the re-run is named for what it did, with its edited arguments as a
diff. After Done the static timeline keeps both runs, and so does the saved notebook's HTML,
opened on its own (no kernel, no widget). Screenshots go to artifacts/<test name>/.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.browser.test_browser import (  # noqa: F401  (fixtures: a server, a page, both themes)
    _artifacts,
    _open_and_run,
    jupyter,
    notebook_of,
    page,
    theme,
)
from tests.browser.test_browser_edit import (  # noqa: F401  (its app fixture: JupyterLab)
    AFTER,
    SETUP,
    app_kind,
    open_editor,
    retype,
)
from tests.servers import Call, OpenAIServer, Reply

pytestmark = pytest.mark.browser

CHAIN = "%%llm_chain -m openai-chat:gpt-4.1-mini -t get_weather -o r\nWeather in Paris?"
SAVE = "() => { window.jupyterapp.commands.execute('docmanager:save'); return true; }"


def _top(locator: Any) -> float:
    return float(locator.bounding_box()["y"])


def _inside(outer: Any, inner: Any) -> bool:
    a, b = outer.bounding_box(), inner.bounding_box()
    return bool(b["x"] >= a["x"] - 1 and b["x"] + b["width"] <= a["x"] + a["width"] + 1)


def _saved_stack(path: Path, timeout: float = 30.0) -> str:
    """The stacked timeline's HTML in the saved notebook, once the save has written it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            nb = json.loads(path.read_text())
        except ValueError:  # the file is being written
            nb = {"cells": []}
        for cell in nb["cells"]:
            for output in cell.get("outputs", []):
                html = "".join(output.get("data", {}).get("text/html", []))
                if "llm-stack" in html:
                    return html
        time.sleep(0.3)  # polling a file another process writes, not ordering
    raise AssertionError("the saved notebook holds no stacked timeline")


@pytest.mark.parametrize("width", [700, 1600])
def test_a_rerun_stacks_below_its_original_live_and_saved(
    jupyter: tuple[str, Path],  # noqa: F811  (the fixtures of tests/browser/test_browser.py)
    page: Any,  # noqa: F811
    width: int,
    request: pytest.FixtureRequest,
) -> None:
    url, root = jupyter
    shots = _artifacts(request)
    page.set_viewport_size({"width": width, "height": 1200})
    script = [
        Reply(calls=[Call("get_weather", {"city": "Paris"})], usage=(1000, 50)),
        Reply(text="Paris is 14 degrees.", usage=(1100, 20)),
    ]
    with OpenAIServer(script) as server:
        setup = SETUP.format(api_key=server.api_key, base_url=server.base_url)
        nb = notebook_of(setup, CHAIN, "%llm_edit --live r", AFTER)
        (root / "branches.ipynb").write_text(json.dumps(nb))
        _open_and_run(page, url, "lab", "branches.ipynb")
        page.locator(".jp-OutputArea-output", has_text="cells done").wait_for()
        view = page.locator(".llm-magic-timeline.llm-live")
        assert view.locator(".llm-history").is_hidden()  # one run: nothing stacked
        call, area = open_editor(view, "llm-edit")
        server.push(Reply(text="Rome is 19 degrees.", usage=(1200, 10)))
        retype(area, '{"city": "Rome"}')
        call.locator("button.llm-rerun").click()
        view.locator(".llm-body .llm-answer", has_text="Rome is 19 degrees.").wait_for()

        # live: the original above, whole, under who holds it; the re-run below, named
        history = view.locator(".llm-history")
        original = history.locator(".llm-magic-timeline.llm-static")
        assert original.count() == 1 and "Paris is 14 degrees." in original.inner_text()
        titles = history.locator(".llm-stack-title").all_inner_texts()
        assert titles[0] == "original run · the variable r holds this run", titles
        assert titles[1].startswith('branch 1 · re-run of get_weather (call 1) with city="Rome"')
        head = view.locator(".llm-head-info")
        assert 're-run of get_weather (call 1) with city="Rome"' in head.inner_text()
        diff = head.locator(".llm-branch-diff")
        assert diff.locator("del").inner_text() == '"Paris"'
        assert diff.locator("ins").inner_text() == '"Rome"'
        assert _top(original) < _top(view.locator(".llm-body .llm-answer"))
        assert _inside(view, original) and _inside(view, diff)  # nothing spills at this width
        # the re-run's call comes before the turn that used its result, as in the static view
        body = view.locator(".llm-body")
        assert _top(body.locator(".llm-call").first) < _top(body.locator(".llm-turn").first)
        view.screenshot(path=str(shots / "live.png"))

        # Done: the static timeline keeps both runs, oldest first
        view.locator("button.llm-done").click()
        stack = page.locator(".llm-stack")
        stack.wait_for()
        assert page.locator(".llm-magic-timeline.llm-live").count() == 0
        runs = stack.locator(".llm-magic-timeline.llm-static")
        assert runs.count() == 2
        assert "Paris is 14 degrees." in runs.nth(0).inner_text()
        assert "Rome is 19 degrees." in runs.nth(1).inner_text()
        newest = stack.locator(".llm-stack-title").nth(1).inner_text()
        assert "the newest: the notebook's last result" in newest
        stack.screenshot(path=str(shots / "static.png"))

        # saved: the notebook's HTML holds both runs, and reads the same on its own
        page.evaluate(SAVE)
        saved = _saved_stack(root / "branches.ipynb")
        assert saved.count('class="llm-magic-timeline llm-static ') == 2
        alone = root / "saved.html"
        alone.write_text(f"<!doctype html><meta charset=utf-8><body>{saved}</body>")
        page.goto(alone.as_uri())
        shown = page.locator(".llm-stack")
        text = shown.inner_text()
        assert text.index("original run") < text.index("Paris is 14 degrees.")
        assert text.index("Paris is 14 degrees.") < text.index("Rome is 19 degrees.")
        shown.screenshot(path=str(shots / "saved.png"))
        assert server.failures == [] and server.pending == 0
