"""The timeline in a real browser, part 2: following the tail, "Approve all N", the saved
quickstart reopened with no kernel, and clipping at three widths.

Same parts as tests/test_browser.py (whose fixtures and helpers this module reuses): JupyterLab
or Notebook 7 on loopback, Debian Chromium through Playwright, a real kernel, the loopback OpenAI
server. Every wait is on a condition; screenshots go to artifacts/<test name>/.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests import test_browser as harness
from tests.servers import Call, OpenAIServer, Reply
from tests.test_browser import _artifacts, _open_and_run

# the fixtures of tests/test_browser.py, found by name
app_kind, theme, jupyter, page = harness.app_kind, harness.theme, harness.jupyter, harness.page

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent

SETUP = """\
%load_ext llm_magic
import llm_magic
from llm_magic import tool

model = llm_magic.get_async_model("openai:gpt-4.1-mini", base_url={base_url!r}, api_key={api_key!r})
"""


def _notebook(*cells: str) -> dict:
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nb


def _setup(server: OpenAIServer) -> str:
    return SETUP.format(base_url=server.base_url, api_key=server.api_key)


# -- 1. follow the tail ---------------------------------------------------------------------------

# the live timeline against the box that scrolls it: the first ancestor that scrolls must be the
# notebook's own scroller, not an inner box (an output area turned into a scroll box)
NOTEBOOK_SCROLLER = "jp-WindowedPanel-outer"
SCROLLER = """(root) => {
  for (let p = root.parentElement; p; p = p.parentElement) {
    if (/(auto|scroll)/.test(getComputedStyle(p).overflowY) && p.scrollHeight > p.clientHeight + 1)
      return p;
  }
  return document.scrollingElement;
}"""
GEOMETRY = f"""(root) => {{
  const sc = ({SCROLLER})(root);
  const box = root.getBoundingClientRect();
  const view = sc.getBoundingClientRect();
  return {{
    scroller: String(sc.className),
    scrollTop: sc.scrollTop,
    height: box.height,
    below: box.bottom - Math.min(view.bottom, window.innerHeight),  // > 0: the end is out of view
  }};
}}"""

# resolves once the scroller has not moved for 10 animation frames (a wheel scroll has settled)
SETTLED = f"""(root) => new Promise((resolve) => {{
  const sc = ({SCROLLER})(root);
  let last = -1, still = 0;
  const tick = () => {{
    still = sc.scrollTop === last ? still + 1 : 0;
    last = sc.scrollTop;
    if (still >= 10) resolve(last); else requestAnimationFrame(tick);
  }};
  requestAnimationFrame(tick);
}})"""

GREW = "([el, h]) => el.getBoundingClientRect().height > h"


def story(paragraphs: int = 160) -> str:
    """A long Markdown answer: numbered paragraphs, long enough to grow far past the view."""
    words = "the quick brown fox jumps over the lazy dog while the timeline keeps up".split()
    return "\n\n".join(
        f"**Part {i}.** " + " ".join(words[(i + k) % len(words)] for k in range(24))
        for i in range(1, paragraphs + 1)
    )


def _geometry(live: Any) -> dict:
    return dict(live.evaluate(GEOMETRY))


def _wait_growth(page: Any, live: Any, by: float) -> dict:
    before = _geometry(live)
    page.wait_for_function(GREW, arg=[live.element_handle(), before["height"] + by])
    return _geometry(live)


@pytest.mark.parametrize("theme", ["light"])
def test_follows_the_tail_until_the_user_scrolls_up(
    jupyter: tuple[str, Path], page: Any, app_kind: str, request: pytest.FixtureRequest
) -> None:
    """A streamed answer that grows far past the view: the page follows its end while the user
    has not scrolled; after a scroll up it stays where the user put it while the text grows; back
    at the bottom it follows again. The notebook's own scroller moves, never an inner box."""
    url, root = jupyter
    shots = _artifacts(request)
    page.set_viewport_size({"width": 1000, "height": 800})
    text = story()
    script = [Reply(text=text, usage=(50, 3000), chunk_delay=0.03)]
    with OpenAIServer(script) as server:
        nb = _notebook(
            _setup(server),
            'result = await llm_magic.chain("Tell me a long story.", model=model)',
            'print("after the chain:", result.status)',
        )
        (root / "tail.ipynb").write_text(json.dumps(nb))
        _open_and_run(page, url, app_kind, "tail.ipynb")
        live = page.locator(".llm-magic-timeline.llm-live")
        live.wait_for()

        # following: once the text is taller than the view, its end stays in view as it grows
        page.wait_for_function(
            "el => el.getBoundingClientRect().height > 1.5 * window.innerHeight",
            arg=live.element_handle(),
        )
        for _ in range(3):
            shape = _wait_growth(page, live, 60)
            assert NOTEBOOK_SCROLLER in shape["scroller"], f"an inner scroll box: {shape}"
            assert shape["below"] <= 2, f"the end of the text is out of view: {shape}"
        assert shape["scrollTop"] > 0
        page.screenshot(path=str(shots / "following.png"))

        # the user scrolls up: the view stays put while the text keeps growing
        box = live.bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, 300)
        page.mouse.wheel(0, -500)
        parked = live.evaluate(SETTLED)
        shape = _wait_growth(page, live, 200)
        assert abs(shape["scrollTop"] - parked) <= 1, (parked, shape)
        assert shape["below"] > 200, shape
        shape = _wait_growth(page, live, 200)
        assert abs(shape["scrollTop"] - parked) <= 1, (parked, shape)
        page.screenshot(path=str(shots / "scrolled-up.png"))

        # back at the bottom: it follows again
        page.mouse.wheel(0, 100_000)
        live.evaluate(SETTLED)
        for _ in range(2):
            shape = _wait_growth(page, live, 100)
            assert shape["below"] <= 2, f"did not follow again: {shape}"
        assert shape["scrollTop"] > parked
        assert NOTEBOOK_SCROLLER in shape["scroller"], shape
        page.screenshot(path=str(shots / "following-again.png"))

        # the run ends (Cancel: the story is long); the partial text is kept, marked partial
        live.locator("button.llm-cancel").click()
        static = page.locator(".llm-magic-timeline.llm-static")
        static.wait_for()
        page.locator(".jp-OutputArea-output", has_text="after the chain:").wait_for()
        assert "partial" in static.inner_text()
        assert server.failures == []


# -- 2. "Approve all N" ---------------------------------------------------------------------------

BATCH = ["a.csv", "b.csv", "c.csv", "d.csv"]
RISKY_TOOL = '''
from pathlib import Path

@tool(requires_approval=True)
def remove(path: str) -> str:
    """Remove a file from the workspace."""
    with open("removed.log", "a") as log:  # the side effect the test counts
        log.write(path + "\\n")
    return f"removed {path}"
'''

# every message the page sends to the kernel, kept in order (the kernel connection's own signal)
RECORD_SENT = """() => {
  const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  window.__sent = [];
  kernel.anyMessage.connect((_k, args) => {
    if (args.direction === 'send') window.__sent.push(args.msg);
  });
  return true;
}"""

SENT_COMM = """() => window.__sent
  .filter((m) => m.header.msg_type === 'comm_msg')
  .map((m) => m.content.data)"""


@pytest.mark.parametrize("theme", ["light"])
def test_approve_all_is_one_click_and_one_message(
    jupyter: tuple[str, Path], page: Any, app_kind: str, request: pytest.FixtureRequest
) -> None:
    """A parallel batch of 4 calls that need approval: every card offers "Approve all 4"; one
    click sends one comm message with the 4 ids, and each call runs exactly once."""
    url, root = jupyter
    shots = _artifacts(request)
    script = [
        Reply(text="Removing the old files.", calls=[Call("remove", {"path": p}) for p in BATCH]),
        Reply(text="Removed the 4 files."),
    ]
    with OpenAIServer(script) as server:
        nb = _notebook(
            _setup(server) + RISKY_TOOL,
            'result = await llm_magic.chain("Remove the old files.", tools=[remove], model=model)',
            'print("after the chain:", result.status, [c.status for c in result.tool_calls])',
        )
        (root / "batch.ipynb").write_text(json.dumps(nb))
        _open_and_run(page, url, app_kind, "batch.ipynb")
        page.evaluate(RECORD_SENT)
        live = page.locator(".llm-magic-timeline.llm-live")
        cards = live.locator(".llm-approval")
        page.wait_for_function(
            f"() => document.querySelectorAll('.llm-live .llm-approval').length === {len(BATCH)}"
        )
        live.locator(".llm-head-info", has_text=f"waiting for you: {len(BATCH)}").wait_for()
        for i in range(len(BATCH)):
            assert cards.nth(i).locator("button.llm-approve-all").inner_text() == "Approve all 4"
        assert not (root / "removed.log").exists()  # nothing ran before the click
        live.screenshot(path=str(shots / "batch.png"))
        cards.nth(2).locator("button.llm-approve-all").click()

        after = page.locator(".jp-OutputArea-output", has_text="after the chain:")
        after.wait_for()
        static = page.locator(".llm-magic-timeline.llm-static")
        static.wait_for()
        assert "after the chain: done ['ok', 'ok', 'ok', 'ok']" in after.inner_text()
        assert static.locator(".llm-pill[data-status='ok']").count() == len(BATCH)
        static.screenshot(path=str(shots / "static.png"))
        requests = list(server.requests)
        assert server.failures == [] and server.pending == 0

    decisions = [
        d for d in page.evaluate(SENT_COMM) if d.get("content", {}).get("type") == "decide"
    ]
    assert len(decisions) == 1, decisions  # one click, one message
    decided = decisions[0]["content"]
    assert decided["approved"] is True and len(decided["ids"]) == len(BATCH)
    # each call ran exactly once, and each result went back to the model
    assert sorted((root / "removed.log").read_text().splitlines()) == BATCH
    results = [m["content"] for m in requests[1].body["messages"] if m["role"] == "tool"]
    assert sorted(results) == [f"removed {p}" for p in BATCH]
