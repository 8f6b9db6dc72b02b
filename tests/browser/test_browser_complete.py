"""Every view of a timeline starts complete, in a real browser (JupyterLab, headless Debian
Chromium through Playwright, the loopback OpenAI server).

* A `--live` timeline whose display is made again when its run ends (and the same widget shown
  a second time in another cell) keeps every turn: the first turn's text, its parallel group
  with its calls, in order before the answer.
* A `--live` cell saved without pressing Done reopens, with no kernel, as its static timeline
  (JupyterLab, trusted or not, and nbconvert's HTML), never "Error displaying widget"; in
  nbconvert's HTML the saved timeline's Copy buttons copy a call's arguments and the answer.

Screenshots go to artifacts/<test name>/.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.browser.test_browser import (  # noqa: F401  (its fixtures, found by name)
    APP_READY,
    KERNEL_IDLE,
    ROOT,
    _artifacts,
    _open_and_run,
    jupyter,
    jupyter_server,
    notebook_of,
    page,
    theme,
)
from tests.browser.test_browser_views import NO_KERNEL_DIALOG, NO_KERNELS
from tests.servers import Call, OpenAIServer, Reply

pytestmark = pytest.mark.browser

SETUP = '''\
%load_ext llm_magic
import os
os.environ["OPENAI_API_KEY"] = {api_key!r}
os.environ["OPENAI_BASE_URL"] = {base_url!r}

def get_weather(city: str) -> dict:
    """Current weather for a city."""
    return {{"city": city, "temp": {{"Paris": 14, "Rome": 19, "Oslo": 4}}[city]}}
'''
LIVE_CHAIN = (
    "%%llm_chain --live -m openai-chat:gpt-4.1-mini -t get_weather\nWeather in three cities?"
)
# the run's widget shown once more, in a cell of its own (a second view of the same model)
SHOW_AGAIN = """\
from ipywidgets.widgets import widget as _w
_all = getattr(_w, "_instances", None) or _w.Widget.widgets
display([w for w in _all.values() if type(w).__name__ == "TimelineWidget"][-1])
print("shown again")
"""
FIRST_TEXT = "Checking the three cities at once."
ANSWER = "Rome is the warmest at 19 degrees."

# what a live view shows, in document order: turns with their text and calls, and the answer
SHAPE = """(root) => [...root.querySelectorAll('.llm-body > .llm-turn')].map((t) => ({
  text: t.querySelector('.llm-text').textContent.trim(),
  calls: [...t.querySelectorAll('.llm-calls > .llm-call')].map((c) => c.querySelector('.llm-call-name').textContent),
  parallel: t.querySelector('.llm-group').dataset.parallel,
}))"""
STRAYS = "(root) => root.querySelectorAll('.llm-body > .llm-call').length"


def _script() -> list[Reply]:
    """Turn 1: text and three parallel calls; turn 2: the answer."""
    return [
        Reply(
            text=FIRST_TEXT,
            calls=[Call("get_weather", {"city": c}) for c in ("Paris", "Rome", "Oslo")],
            usage=(400, 60),
        ),
        Reply(text=ANSWER, usage=(500, 20), delay=0.5),
    ]


@pytest.fixture
def app_kind() -> str:
    return "lab"


@pytest.mark.parametrize("width", [700, 1600])
def test_a_live_view_made_again_keeps_every_turn(
    jupyter: tuple[str, Path],  # noqa: F811  (the fixtures of tests/browser/test_browser.py)
    page: Any,  # noqa: F811
    width: int,
    request: pytest.FixtureRequest,
) -> None:
    """The run ends, its display is updated (a new view of the same model), and a later cell
    shows the widget again: both views hold turn 1 (text and its 3 parallel calls) and turn 2
    (the answer), no call outside its turn."""
    url, root = jupyter
    shots = _artifacts(request)
    page.set_viewport_size({"width": width, "height": 1200})
    with OpenAIServer(_script()) as server:
        setup = SETUP.format(api_key=server.api_key, base_url=server.base_url)
        (root / "again.ipynb").write_text(json.dumps(notebook_of(setup, LIVE_CHAIN, SHOW_AGAIN)))
        _open_and_run(page, url, "lab", "again.ipynb")
        page.locator(".jp-OutputArea-output", has_text="shown again").wait_for()
        views = page.locator(".llm-magic-timeline.llm-live")
        try:
            page.wait_for_function(
                "() => [...document.querySelectorAll('.llm-magic-timeline.llm-live .llm-answer')]"
                f".filter((a) => a.textContent.includes({json.dumps(ANSWER)})).length === 2",
                timeout=30_000,
            )
        finally:  # what the views show, also when one of them lost its answer
            page.screenshot(path=str(shots / "page.png"), full_page=True)
        expected = [
            {
                "text": FIRST_TEXT,
                "calls": [f'get_weather(city="{c}")' for c in ("Paris", "Rome", "Oslo")],
                "parallel": "yes",
            },
            {"text": ANSWER, "calls": [], "parallel": "no"},
        ]
        for i in range(2):
            view = views.nth(i)
            view.scroll_into_view_if_needed()
            view.screenshot(path=str(shots / f"view-{i + 1}.png"))
            assert view.evaluate(SHAPE) == expected, i
            assert view.evaluate(STRAYS) == 0, i
        assert server.failures == [] and server.pending == 0


# -- a live view saved, reopened with no kernel -----------------------------------------------------


def _execute(tmp_path: Path, nb: dict) -> Path:
    """`nb` executed by nbclient (no widget state saved, as JupyterLab saves by default)."""
    import nbformat
    from nbclient import NotebookClient

    book = nbformat.from_dict(nb)
    env_path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    os.environ["PYTHONPATH"] = env_path
    client = NotebookClient(book, timeout=120, kernel_name="python3", store_widget_state=False)
    client.execute()
    path = tmp_path / "saved-live.ipynb"
    nbformat.write(book, path)
    return path


VISIBLE_TIMELINES = """() => [...document.querySelectorAll('.llm-magic-timeline')]
  .filter((el) => el.offsetParent !== null).length"""
VISIBLE_ERRORS = """() => [...document.querySelectorAll('.jp-OutputArea-output, .output_area, body *')]
  .filter((el) => el.offsetParent !== null && el.children.length === 0
          && /Loading widget|Error displaying widget|model not found/.test(el.textContent)).length"""


# the widget's output, whatever it says without its model: still looking for it, or given up
WIDGET_OUTPUT = """() => [...document.querySelectorAll('.jp-OutputArea-output')]
  .some((el) => /Loading widget|Error displaying widget/.test(el.textContent))"""


@pytest.mark.parametrize(
    ("trusted", "kernel"),
    [(True, False), (True, True), (False, False)],
    ids=["trusted-no-kernel", "trusted-new-kernel", "untrusted-no-kernel"],
)
def test_a_live_view_saved_reopens_as_its_static_timeline(
    tmp_path: Path,
    page: Any,  # noqa: F811
    trusted: bool,
    kernel: bool,
    request: pytest.FixtureRequest,
) -> None:
    """A `--live` cell saved without pressing Done (nbclient, no widget state), opened in
    JupyterLab (signed as the user's own or not; with no kernel, or a new one that knows no
    such model) and as nbconvert's HTML: one timeline shows, with the run's calls and answer,
    and neither "Loading widget..." nor "Error displaying widget"."""
    shots = _artifacts(request)
    with OpenAIServer(_script()) as server:
        setup = SETUP.format(api_key=server.api_key, base_url=server.base_url)
        saved = _execute(tmp_path, notebook_of(setup, LIVE_CHAIN))
        assert server.failures == [] and server.pending == 0
    outputs = json.loads(saved.read_text())["cells"][1]["outputs"]
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    assert sum(ANSWER in json.dumps(o.get("data", {}).get("text/html", "")) for o in outputs) == 1
    if trusted:
        subprocess.run([sys.executable, "-m", "jupyter", "trust", str(saved)], check=True)

    with jupyter_server("lab", "light", tmp_path, extra=() if kernel else NO_KERNELS) as (
        url,
        root,
    ):
        shutil.copy(saved, root / saved.name)
        page.goto(f"{url}/lab/tree/{saved.name}", wait_until="domcontentloaded")
        page.wait_for_function("() => !!window.jupyterapp")
        page.evaluate(APP_READY)
        if kernel:
            page.wait_for_function(KERNEL_IDLE)
        else:
            dialog = page.locator(NO_KERNEL_DIALOG)
            dialog.wait_for()
            dialog.locator("select").select_option(label="No Kernel")
            dialog.locator("button.jp-mod-accept").click()
        timeline = page.locator(".llm-magic-timeline.llm-static", has_text=ANSWER)
        try:
            timeline.wait_for(timeout=30_000)
            if trusted:  # the widget's output is there (untrusted, its text shows instead)
                page.wait_for_function(WIDGET_OUTPUT)
            if kernel:  # a new kernel: the widget manager gave the model up
                page.get_by_text("Error displaying widget").wait_for(state="attached")
        finally:  # what the reader sees, also when the timeline did not show
            page.screenshot(path=str(shots / "lab.png"), full_page=True)
        assert page.evaluate(VISIBLE_TIMELINES) == 1
        assert page.evaluate(VISIBLE_ERRORS) == 0
        text = timeline.inner_text()
        assert FIRST_TEXT in text and 'get_weather(city="Oslo")' in text

    subprocess.run(
        [sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", str(saved)],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    page.route("http*://**", lambda route: route.abort())  # closed network: fail fast
    page.goto(saved.with_suffix(".html").as_uri(), wait_until="domcontentloaded")
    page.locator(".llm-magic-timeline", has_text=ANSWER).first.wait_for()
    page.screenshot(path=str(shots / "nbconvert.png"), full_page=True)
    assert page.evaluate(VISIBLE_TIMELINES) == 1
    assert page.evaluate(VISIBLE_ERRORS) == 0
    # the saved timeline's Copy buttons work there (its <style> and inline handlers are kept)
    timeline = page.locator(".llm-magic-timeline.llm-static", has_text=ANSWER)
    call = timeline.locator("details.llm-call", has_text="Oslo")
    call.locator("summary").click()
    # the button held before the click: once copied, its text no longer says "Copy ..."
    copy = call.locator("button.llm-static-copy", has_text="Copy arguments").element_handle()
    copy.click()
    page.wait_for_function("el => el.textContent === 'Copied ✓'", arg=copy)
    assert json.loads(page.evaluate("() => navigator.clipboard.readText()")) == {"city": "Oslo"}
    answer = timeline.locator(
        "button.llm-static-copy", has_text="Copy answer"
    ).last.element_handle()
    answer.click()
    page.wait_for_function("el => el.textContent === 'Copied ✓'", arg=answer)
    assert page.evaluate("() => navigator.clipboard.readText()").strip() == ANSWER
