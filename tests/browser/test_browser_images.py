"""The image a model saw, in a real browser: a thumbnail in the tool call's line of the live
timeline, full size in its details, and the same in the static timeline after the run and in the
saved notebook reopened with no kernel.

Same parts as tests/browser/test_browser.py (its server, page fixture and helpers): JupyterLab
on loopback, Debian Chromium through Playwright, a real kernel, the loopback OpenAI server,
which decodes the figure it receives and answers with its size.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.browser import test_browser as harness
from tests.browser.test_browser import (
    APP_READY,
    _artifacts,
    _open_and_run,
    jupyter_server,
    notebook_of,
)
from tests.servers import Call, OpenAIServer, Reply

page = harness.page  # the fixture of tests/browser/test_browser.py, found by name

pytestmark = pytest.mark.browser

CELL = """\
%load_ext llm_magic
import llm_magic
from matplotlib.figure import Figure

model = llm_magic.get_async_model("openai-chat:gpt-4.1-mini", base_url={base_url!r}, api_key={api_key!r})


def plot() -> Figure:
    \"\"\"Draw the chart.\"\"\"
    fig = Figure(figsize=(4, 3), dpi=100)
    fig.subplots().bar(["a", "b", "c"], [3, 1, 2], color="teal")
    return fig


result = await llm_magic.chain("Plot it and describe it.", model=model, tools=[plot])
print("answer:", result.text)
"""
ATTACHED = """\
attached = await llm_magic.chain("What is this?", model=model, attachments=[plot()])
print("attached:", attached.text)
"""

# the live view's thumbnail and full image, read from the page
SIZES = """(img) => ({width: img.getBoundingClientRect().width,
  height: img.getBoundingClientRect().height, natural: img.naturalWidth,
  src: img.getAttribute('src').slice(0, 22)})"""


def test_the_image_the_model_saw_shows_live_and_saved(tmp_path: Path, page: Any, request):
    shots = _artifacts(request)
    script = [
        Reply(calls=[Call("plot", {})]),
        Reply(text="I see {images}.", delay=4.0),  # the live view shows the finished call
        Reply(text="It is {images}."),
    ]
    with (
        jupyter_server("lab", "light", tmp_path) as (url, root),
        OpenAIServer(script) as server,
    ):
        cell = CELL.format(base_url=server.base_url, api_key=server.api_key)
        (root / "images.ipynb").write_text(json.dumps(notebook_of(cell, ATTACHED)))
        _open_and_run(page, url, "lab", "images.ipynb")

        live = page.locator(".llm-magic-timeline.llm-live")
        call = live.locator('.llm-call[data-status="ok"]')
        call.wait_for()
        thumb = call.locator(".llm-line-slot img.llm-media")
        thumb.wait_for()
        seen = thumb.evaluate(SIZES)
        assert seen["src"] == "data:image/png;base64,"
        assert (seen["width"], seen["height"], seen["natural"]) == (96, 72, 400)
        call.locator(".llm-call-row > .llm-toggle").click()
        full = call.locator(".llm-detail-body img.llm-media")
        full.wait_for()
        assert full.evaluate(SIZES)["width"] == 400
        live.screenshot(path=str(shots / "live.png"))

        static = page.locator(".llm-magic-timeline.llm-static").first
        static.wait_for()
        page.locator(
            ".jp-OutputArea-output", has_text="answer: I see image/png 400x300."
        ).wait_for()
        assert (
            static.locator("details.llm-call summary img.llm-media").evaluate(SIZES)["width"] == 96
        )
        static.locator("details.llm-call > summary").first.click()
        assert static.locator(".llm-detail-body img.llm-media").evaluate(SIZES)["width"] == 400
        static.screenshot(path=str(shots / "static.png"))
        # the prompt's attachment: a thumbnail under the header, full size when opened
        page.locator(
            ".jp-OutputArea-output", has_text="attached: It is image/png 400x300."
        ).wait_for()
        header = page.locator(".llm-magic-timeline.llm-static .llm-attachments")
        assert header.locator("summary img.llm-media").evaluate(SIZES)["width"] == 96
        header.locator("summary").click()
        assert (
            header.locator(":scope > .llm-media-strip img.llm-media").evaluate(SIZES)["width"]
            == 400
        )
        assert server.failures == [] and server.pending == 0
        assert [i[:3] for i in server.requests[1].images] == [("image/png", 400, 300)]
        assert [i[:3] for i in server.requests[2].images] == [("image/png", 400, 300)]

        # saved, the kernel gone, reopened: the saved notebook keeps the image
        page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
        page.wait_for_function("() => !window.jupyterapp.shell.currentWidget.context.model.dirty")
        page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.shutdown()")
        page.reload(wait_until="domcontentloaded")
        page.wait_for_function("() => !!window.jupyterapp")
        page.evaluate(APP_READY)
        reopened = page.locator(".llm-magic-timeline.llm-static").first
        reopened.wait_for()
        # the second cell's output may come after the first one's: wait for it, then count
        attached = page.locator(".llm-attachments summary img.llm-media")
        attached.first.wait_for(state="attached")
        assert attached.count() == 1
        saved = reopened.locator("details.llm-call summary img.llm-media")
        saved.wait_for()
        page.wait_for_function(
            "(img) => img.complete && img.naturalWidth > 0", arg=saved.element_handle()
        )
        assert saved.evaluate(SIZES)["width"] == 96
        reopened.screenshot(path=str(shots / "reopened.png"))
    stored = json.loads((root / "images.ipynb").read_text())
    assert "data:image/png;base64," in json.dumps(stored)
