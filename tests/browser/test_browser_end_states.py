"""End states in a real browser (JupyterLab, headless Debian Chromium through Playwright, the
loopback OpenAI server), light and dark, 700 and 1600 px wide: a run stopped by its budget says
why it has no answer under the timeline, and its dollar figures read as written (JupyterLab
typesets `$...$` in HTML outputs as TeX unless told not to); a cut stream shows its tokens and
cost as unknown. Screenshots go to artifacts/<test name>/.
"""

from __future__ import annotations

import json
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
from tests.browser.test_browser_edit import AFTER, SETUP, app_kind  # noqa: F401  (JupyterLab)
from tests.servers import Call, OpenAIServer, Reply

pytestmark = pytest.mark.browser

BUDGET = "%%llm_chain -m openai-chat:gpt-4.1-mini -t get_weather --max-cost 0.0009\nWeather?"
CUT = """\
import asyncio, llm_magic
run = llm_magic.get_async_model("openai-chat:gpt-4.1-mini").chain("Tell me a story")
task = asyncio.ensure_future(run)
await asyncio.sleep(1.0)
run.cancel("cancelled by the user")
story = await task"""


@pytest.mark.parametrize("width", [700, 1600])
def test_a_budget_stop_and_a_cut_stream_say_what_happened(
    jupyter: tuple[str, Path],  # noqa: F811  (the fixtures of tests/browser/test_browser.py)
    page: Any,  # noqa: F811
    width: int,
    request: pytest.FixtureRequest,
) -> None:
    url, root = jupyter
    shots = _artifacts(request)
    page.set_viewport_size({"width": width, "height": 1200})
    first = Reply(text="Let me look.", calls=[Call("get_weather", {"city": "Paris"})])
    first.usage = (2000, 50)  # more than the budget leaves for a second turn
    story = Reply(text=" ".join(f"word{i}" for i in range(600)), chunk_delay=0.01)
    with OpenAIServer([first, story]) as server:
        setup = SETUP.format(api_key=server.api_key, base_url=server.base_url)
        (root / "ends.ipynb").write_text(json.dumps(notebook_of(setup, BUDGET, CUT, AFTER)))
        _open_and_run(page, url, "lab", "ends.ipynb")
        page.locator(".jp-OutputArea-output", has_text="cells done").wait_for()
        budget = page.locator(".jp-Cell").nth(1).locator(".jp-OutputArea")
        line = budget.locator(".llm-result-ref")
        text = line.inner_text()
        assert "no answer: stopped by max_cost before turn 2: $0.0009 spent of $0.0009" in text
        assert "timeline above" not in text
        note = budget.locator(".llm-note").inner_text()
        assert "$0.0009 spent of $0.0009" in note, note
        assert budget.locator("mjx-container").count() == 0  # nothing typeset as TeX
        budget.screenshot(path=str(shots / "budget.png"))

        cut = page.locator(".jp-Cell").nth(2).locator(".llm-magic-timeline")
        header = cut.locator(".llm-header").inner_text()
        assert "tokens unknown" in header and "cost unknown" in header, header
        assert "0 in / 0 out" not in cut.inner_text()
        cut.screenshot(path=str(shots / "cut.png"))
        assert server.failures == []
