"""Reading and deciding in the live timeline, in a real browser (JupyterLab, headless Debian
Chromium through Playwright, the loopback OpenAI server), light and dark, 700 and 1600 px:

* a parallel group that needs approval offers "Approve all N" and "Deny all N" once, and the
  reason box shows its whole placeholder;
* "Always allow" approves the card's call and the tool's other calls, later ones without a card;
  the header lists the tool with Revoke, which asks again;
* a code block of an answer has a background, keeps its lines whole, and offers Copy and
  Insert into a new cell;
* the header's figures never wrap away from their units.

Screenshots go to artifacts/<test name>/.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.browser.test_browser import (  # noqa: F401  (its fixtures, found by name)
    _artifacts,
    _open_and_run,
    jupyter,
    notebook_of,
    page,
    theme,
)
from tests.servers import Call, OpenAIServer, Reply

pytestmark = pytest.mark.browser

SETUP = '''\
%load_ext llm_magic
%config LLMMagic.static_after_run = False
import llm_magic
from llm_magic import tool

model = llm_magic.get_async_model("openai-chat:gpt-4.1-mini", base_url={base_url!r}, api_key={api_key!r})

@tool(requires_approval=True)
def remove(path: str) -> str:
    """Remove a file from the workspace."""
    return f"removed {{path}}"
'''
CHAIN = 'r = await llm_magic.chain("Tidy the workspace.", tools=[remove], model=model)'
CODE = "total_by_city = summarise_the_weather_readings(readings, by='city', unit='celsius')"
ANSWER = f"Done. To redo it:\n\n```python\n{CODE}\n```\n\nThat is all."
# the notebook's cell `i`, as JupyterLab's model holds it
CELL_SOURCE = """(i) => window.jupyterapp.shell.currentWidget.content.widgets[i].model.sharedModel
  .getSource()"""
# the reason box is at least as wide as its placeholder in the box's own font
PLACEHOLDER_FITS = """(input) => {
  const style = getComputedStyle(input);
  const ctx = document.createElement('canvas').getContext('2d');
  ctx.font = `${style.fontSize} ${style.fontFamily}`;
  const room = input.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  return ctx.measureText(input.placeholder).width <= room;
}"""
# every figure of the header on one line with its unit
SPLIT_FIGURES = """(root) => [...root.querySelectorAll('.llm-stats .llm-nw')]
  .filter((el) => el.getClientRects().length > 1).map((el) => el.textContent)"""


@pytest.fixture
def app_kind() -> str:
    return "lab"


def _script() -> list[Reply]:
    return [
        Reply(
            text="Removing the two old files.",
            calls=[Call("remove", {"path": p}) for p in ("old-1.csv", "old-2.csv")],
        ),
        Reply(text="And the third one.", calls=[Call("remove", {"path": "old-3.csv"})]),
        Reply(text=ANSWER, delay=0.5),
    ]


@pytest.mark.parametrize("width", [700, 1600])
def test_group_buttons_always_allow_code_blocks_and_figures(
    jupyter: tuple[str, Path],  # noqa: F811  (the fixtures of tests/browser/test_browser.py)
    page: Any,  # noqa: F811
    width: int,
    request: pytest.FixtureRequest,
) -> None:
    url, root = jupyter
    shots = _artifacts(request)
    page.set_viewport_size({"width": width, "height": 1200})
    with OpenAIServer(_script()) as server:
        setup = SETUP.format(base_url=server.base_url, api_key=server.api_key)
        (root / "reading.ipynb").write_text(json.dumps(notebook_of(setup, CHAIN)))
        _open_and_run(page, url, "lab", "reading.ipynb")
        live = page.locator(".llm-magic-timeline.llm-live")
        cards = live.locator(".llm-approval")
        page.wait_for_function(
            "() => document.querySelectorAll('.llm-live .llm-approval').length === 2"
        )
        live.screenshot(path=str(shots / "cards.png"))
        # the group's buttons once, not on every card
        group = live.locator("button.llm-approve-all:visible, button.llm-deny-all:visible")
        assert group.all_inner_texts() == ["Approve all 2", "Deny all 2"]
        reason = cards.nth(0).locator("input.llm-reason")
        assert reason.evaluate(PLACEHOLDER_FITS), reason.get_attribute("placeholder")

        # always allow: the card's call, its sibling, and the later call without a card
        cards.nth(0).locator(".llm-always input").check()
        cards.nth(0).locator("button.llm-approve").click()
        live.locator(".llm-allowed-tool", has_text="remove").wait_for()
        page.wait_for_function(
            "() => document.querySelectorAll('.llm-live .llm-call[data-status=\"ok\"]').length === 3"
        )
        assert cards.count() == 0
        assert live.evaluate(SPLIT_FIGURES) == []

        # the answer's code block: a background, whole lines, Copy, Insert into a new cell
        bar = live.locator(".llm-answer .llm-code-bar")
        bar.wait_for()
        block = live.locator(".llm-answer pre")
        assert block.evaluate("el => getComputedStyle(el).backgroundColor") != "rgba(0, 0, 0, 0)"
        assert block.locator("code").evaluate("el => getComputedStyle(el).whiteSpace") == "pre"
        live.screenshot(path=str(shots / "answer.png"))
        bar.locator("button.llm-code-copy").click()
        page.wait_for_function(
            "el => el.textContent === 'Copied ✓'",
            arg=bar.locator("button.llm-code-copy").element_handle(),
        )
        assert page.evaluate("() => navigator.clipboard.readText()") == CODE
        bar.locator("button.llm-code-insert").click()
        page.wait_for_function(f"() => ({CELL_SOURCE})(2) === {json.dumps(CODE)}")

        # Revoke: the header no longer lists the tool
        live.locator(".llm-allowed button.llm-revoke").click()
        live.locator(".llm-allowed-tool").wait_for(state="detached")
        live.screenshot(path=str(shots / "revoked.png"))
        assert server.failures == [] and server.pending == 0
