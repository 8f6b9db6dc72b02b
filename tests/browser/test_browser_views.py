"""The timeline in a real browser, part 2: following the tail, "Approve all N", the saved
quickstart reopened with no kernel, and clipping at three widths.

Same parts as tests/browser/test_browser.py (whose fixtures and helpers this module reuses): JupyterLab
or Notebook 7 on loopback, Debian Chromium through Playwright, a real kernel, the loopback OpenAI
server. Every wait is on a condition; screenshots go to artifacts/<test name>/.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
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

# the fixtures of tests/browser/test_browser.py, found by name
app_kind, theme, jupyter, page = harness.app_kind, harness.theme, harness.jupyter, harness.page

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]

SETUP = """\
%load_ext llm_magic
import llm_magic
from llm_magic import tool

model = llm_magic.get_async_model("openai-chat:gpt-4.1-mini", base_url={base_url!r}, api_key={api_key!r})
"""


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
    // the sticky header: at the top of the view once the timeline's top scrolled out of it
    head: root.querySelector('.llm-head').getBoundingClientRect().top - Math.max(view.top, box.top),
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
    at the bottom it follows again. The notebook's own scroller moves, never an inner box, and
    the header stays at the top of the view all along."""
    url, root = jupyter
    shots = _artifacts(request)
    page.set_viewport_size({"width": 1000, "height": 800})
    text = story()
    script = [Reply(text=text, usage=(50, 3000), chunk_delay=0.03)]
    with OpenAIServer(script) as server:
        nb = notebook_of(
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
            assert abs(shape["head"]) <= 1, f"the header scrolled away: {shape}"
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
        assert abs(shape["head"]) <= 1, f"the header scrolled away: {shape}"
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
    """A parallel batch of 4 calls that need approval: the group offers "Approve all 4" and
    "Deny all 4" once (on its first card, not on every card); one click sends one comm message
    with the 4 ids, and each call runs exactly once."""
    url, root = jupyter
    shots = _artifacts(request)
    script = [
        Reply(text="Removing the old files.", calls=[Call("remove", {"path": p}) for p in BATCH]),
        Reply(text="Removed the 4 files."),
    ]
    with OpenAIServer(script) as server:
        nb = notebook_of(
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
        # the group's buttons once, on its first card: "Approve all 4" and "Deny all 4"
        group_buttons = live.locator("button.llm-approve-all:visible, button.llm-deny-all:visible")
        assert group_buttons.all_inner_texts() == ["Approve all 4", "Deny all 4"]
        assert cards.nth(0).locator("button.llm-approve-all").is_visible()
        assert not (root / "removed.log").exists()  # nothing ran before the click
        live.screenshot(path=str(shots / "batch.png"))
        cards.nth(0).locator("button.llm-approve-all").click()

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


# -- 3. the saved quickstart, reopened in JupyterLab with no kernel --------------------------------

QUICKSTART = ROOT / "notebooks" / "quickstart.ipynb"
# a server that offers no kernel at all: opening a notebook asks which kernel to start, and the
# test answers "No Kernel", as a reader without the notebook's environment would
NO_KERNELS = ("--KernelSpecManager.allowed_kernelspecs=no-such-kernel",)
NO_KERNEL_DIALOG = ".jp-Dialog"
PROVIDER_ENV = ("LLM_MAGIC_MODEL", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY")


def _execute_quickstart(output: Path, env: dict[str, str], timeout: float) -> dict:
    """The README's main command, `python notebooks/run.py notebooks/quickstart.ipynb`."""
    clean = {k: v for k, v in os.environ.items() if k not in PROVIDER_ENV}
    clean["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), clean.get("PYTHONPATH")]))
    clean["JUPYTER_RUNTIME_DIR"] = str(output.parent / "runtime")
    done = subprocess.run(
        [sys.executable, "notebooks/run.py", str(QUICKSTART), "--output", str(output)],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return dict(json.loads(output.read_text()))


def _chain_cells(nb: dict) -> list[dict]:
    return [
        c
        for c in nb["cells"]
        if c["cell_type"] == "code"
        and re.search(r"^%%llm_chain|await llm_magic\.chain\(", "".join(c["source"]), re.M)
    ]


def _saved_rows(cell: dict) -> int:
    html = "".join("".join(o.get("data", {}).get("text/html", "")) for o in cell.get("outputs", []))
    return html.count('class="llm-call"')


@pytest.mark.parametrize(
    "model",
    [
        "loopback",
        pytest.param("local", marks=[pytest.mark.local_model, pytest.mark.timeout(1500)]),
    ],
)
def test_saved_quickstart_reopened_with_no_kernel_shows_every_timeline(
    tmp_path: Path, page: Any, model: str, request: pytest.FixtureRequest
) -> None:
    """notebooks/run.py executes the quickstart (on the loopback server, or on the embedded local
    model as the README's main command does); JupyterLab opens the saved copy with "No Kernel":
    every chain cell shows its static timeline with its tool call rows, and nothing says "Error
    displaying widget" or "model not found"."""
    shots = _artifacts(request)
    saved = tmp_path / "run" / "quickstart.executed.ipynb"
    saved.parent.mkdir()
    if model == "loopback":
        from tests.kernel.test_notebooks import QUICKSTART_SCRIPT

        with OpenAIServer(QUICKSTART_SCRIPT) as server:
            env = {
                "LLM_MAGIC_MODEL": "openai-chat:test-model",
                "OPENAI_API_KEY": server.api_key,
                "OPENAI_BASE_URL": server.base_url,
            }
            nb = _execute_quickstart(saved, env, timeout=600)
            assert server.failures == [] and server.pending == 0
        assert server.api_key not in saved.read_text()
    else:
        nb = _execute_quickstart(saved, {}, timeout=1200)
    chains = _chain_cells(nb)
    rows = [_saved_rows(c) for c in chains]
    assert len(chains) == 5
    if model == "loopback":
        assert rows == [1, 2, 1, 1, 1]  # the script's calls, one timeline per chain cell
    assert sum(rows) > 0, "the model called no tool at all"

    with jupyter_server("lab", "light", tmp_path, extra=NO_KERNELS) as (url, root):
        shutil.copy(saved, root / saved.name)
        page.goto(f"{url}/lab/tree/{saved.name}", wait_until="domcontentloaded")
        page.wait_for_function("() => !!window.jupyterapp")
        page.evaluate(APP_READY)
        dialog = page.locator(NO_KERNEL_DIALOG)
        dialog.wait_for()
        dialog.locator("select").select_option(label="No Kernel")
        dialog.locator("button.jp-mod-accept").click()
        page.wait_for_function(
            "() => { const w = window.jupyterapp.shell.currentWidget; const s = w && w.sessionContext;"
            " return !!s && s.kernelDisplayName === 'No Kernel' && !(s.session && s.session.kernel)"
            " && w.content.widgets.length > 0; }"
        )
        timelines = page.locator(".llm-magic-timeline.llm-static")
        page.wait_for_function(
            f"() => document.querySelectorAll('.llm-magic-timeline.llm-static').length"
            f" >= {len(chains)}"
        )
        assert timelines.count() == len(chains)
        for i, expected in enumerate(rows):
            timeline = timelines.nth(i)
            timeline.scroll_into_view_if_needed()
            assert timeline.locator(".llm-call .llm-line").count() == expected, i
            assert timeline.locator(".llm-pill").first.is_visible()
            timeline.screenshot(path=str(shots / f"timeline-{i + 1}.png"))
            # untrusted here, so JupyterLab stripped every var() style: the plain colours stay
            assert timeline.evaluate("el => getComputedStyle(el).borderTopStyle") == "solid"
            pill = timeline.locator(".llm-pill").first
            assert pill.evaluate("el => getComputedStyle(el).borderTopStyle") == "solid"
            assert pill.evaluate("el => getComputedStyle(el).backgroundColor") != "rgba(0, 0, 0, 0)"
        body = page.locator("body").inner_text()
        assert "Error displaying widget" not in body and "model not found" not in body
        assert page.locator(".jp-OutputArea-output .widget-error").count() == 0
        page.screenshot(path=str(shots / "notebook.png"))


# -- 4. nothing clipped at narrow, normal and wide widths -----------------------------------------

WIDE_TEXT = (
    "Checking. A long link: https://example.com/" + "very-long-path-segment-" * 8 + "\n\n"
    "```\nx = " + " + ".join(str(i) for i in range(60)) + "\n```\n\n"
    "| " + " | ".join(f"column {i}" for i in range(12)) + " |\n"
    "|" + "---|" * 12 + "\n"
    "| " + " | ".join(f"value {i}" for i in range(12)) + " |\n\n"
    "And `" + "a_long_inline_code_span_" * 6 + "` too."
)

# every pill, duration, glyph and visible button whole (not shrunk, not cut by any box around
# it), the model's text inside its box, and nothing wider than the timeline
CUT = """(root) => {
  const out = [];
  const name = (el) => `${String(el.className).split(' ')[0]} ${JSON.stringify(el.textContent.slice(0, 30))}`;
  const clippers = (el) => {
    const list = [];
    for (let p = el.parentElement; p && p !== root; p = p.parentElement)
      if (getComputedStyle(p).overflowX !== 'visible') list.push(p);
    return list.concat([root]);
  };
  const items = '.llm-pill, .llm-duration, .llm-glyph, .llm-button:not([hidden]), .llm-reason';
  for (const el of root.querySelectorAll(items)) {
    if (el.offsetParent === null) continue;  // in a collapsed part
    const r = el.getBoundingClientRect();
    if (el.scrollWidth > el.clientWidth + 1 || r.width < 4) out.push('shrunk: ' + name(el));
    for (const c of clippers(el)) {
      const b = c.getBoundingClientRect();
      if (r.left < b.left - 1 || r.right > b.right + 1) { out.push(`cut: ${name(el)} by ${String(c.className).split(' ')[0]}`); break; }
    }
  }
  for (const el of root.querySelectorAll('summary')) {  // the static view's toggle markers
    if (el.offsetParent === null || getComputedStyle(el).listStylePosition === 'inside') continue;
    const room = el.getBoundingClientRect().left - clippers(el)[0].getBoundingClientRect().left;
    if (room < 16) out.push(`toggle marker cut: ${JSON.stringify(el.textContent.slice(0, 30))}`);
  }
  const widest = (box) => {  // what sticks out of `box` the most, to say what to fix
    let worst = null, by = 0;
    const edge = box.getBoundingClientRect().right;
    for (const el of box.querySelectorAll('*')) {
      if (clippers(el).some((c) => c !== root && c !== box && box.contains(c))) continue;
      const over = el.getBoundingClientRect().right - edge;
      if (over > by) { by = over; worst = el; }
    }
    return worst ? `${worst.tagName.toLowerCase()}.${String(worst.className).split(' ')[0]} ${JSON.stringify(worst.textContent.slice(0, 30))}` : '?';
  };
  for (const el of root.querySelectorAll('.llm-answer')) {  // wide tables, code may scroll in it
    if (el.offsetParent === null) continue;
    if (el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).overflowX === 'visible')
      out.push(`text overflows its box by ${el.scrollWidth - el.clientWidth} px: ${widest(el)}`);
    const edge = el.getBoundingClientRect().right;
    for (const p of el.querySelectorAll('p, li, h1, h2, h3, h4, blockquote, th, td')) {
      if (p.getBoundingClientRect().right > edge + 1 && !p.closest('table'))
        out.push(`text runs out of its box: ${JSON.stringify(p.textContent.slice(0, 30))}`);
      if (p.scrollWidth > p.clientWidth + 1)
        out.push(`text does not wrap: ${JSON.stringify(p.textContent.slice(0, 30))}`);
    }
  }
  const notebook = root.closest('.jp-WindowedPanel-outer');  // the timeline fits the notebook
  const over = notebook ? root.getBoundingClientRect().right - notebook.getBoundingClientRect().right : 0;
  if (over > 1) out.push(`timeline wider than the notebook by ${Math.round(over)} px`);
  if (root.scrollWidth > root.clientWidth + 1)
    out.push(`timeline overflows by ${root.scrollWidth - root.clientWidth} px: ${widest(root)}`);
  return out;
}"""

HEAD_BUTTONS = """(root) => [...root.querySelectorAll('.llm-head-actions .llm-button:not([hidden])')]
  .map((b) => [b.textContent, b.scrollWidth <= b.clientWidth + 1])"""


@pytest.mark.parametrize("theme", ["light"])
@pytest.mark.parametrize("width", [700, 1000, 1600])
def test_nothing_is_clipped_at_narrow_normal_and_wide_widths(
    jupyter: tuple[str, Path],
    page: Any,
    app_kind: str,
    width: int,
    request: pytest.FixtureRequest,
) -> None:
    """Live (waiting for approval) and static: header buttons never shrink ("Can…"), pills,
    durations and glyphs of every row are whole, the model's text (a long link, a wide code
    block, a wide table) stays in its box."""
    url, root = jupyter
    shots = _artifacts(request)
    page.set_viewport_size({"width": width, "height": 1200})
    script = harness.browser_script()
    script[0].text = WIDE_TEXT
    script[0].calls.append(Call("echo", {"text": "a long argument " * 20}))
    script[-1].text = WIDE_TEXT
    with OpenAIServer(script) as server:
        (root / "wide.ipynb").write_text(json.dumps(harness.browser_notebook(server)))
        _open_and_run(page, url, app_kind, "wide.ipynb")
        live = page.locator(".llm-magic-timeline.llm-live")
        card = live.locator(".llm-approval")
        card.wait_for()
        live.locator(".llm-head-info", has_text="waiting for you: 1").wait_for()
        live.screenshot(path=str(shots / "waiting.png"))
        assert live.evaluate(HEAD_BUTTONS) == [["Expand all", True], ["Cancel", True]]
        assert not (cut := live.evaluate(CUT)), cut
        live.locator("button.llm-expand-all").click()  # the details too
        live.locator(".llm-detail-body").first.wait_for()
        assert live.evaluate(HEAD_BUTTONS) == [["Collapse all", True], ["Cancel", True]]
        assert not (cut := live.evaluate(CUT)), cut
        live.screenshot(path=str(shots / "live.png"))
        card.locator("button.llm-approve").click()

        static = page.locator(".llm-magic-timeline.llm-static")
        static.wait_for()
        page.locator(".jp-OutputArea-output", has_text="after the chain:").wait_for()
        assert not (cut := static.evaluate(CUT)), cut
        static.screenshot(path=str(shots / "static.png"))
        assert server.failures == []
