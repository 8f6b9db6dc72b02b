"""The timeline in a real browser: JupyterLab and Notebook 7 on loopback, light and dark themes,
headless Debian Chromium driven by Playwright.

Each live test starts the loopback OpenAI server and the Jupyter server itself, writes a notebook
whose cells run a chain against that server, runs every cell through the application's own
command (`notebook:run-all-cells`, no menu clicking), and checks while the cell still runs:
entries appear with spinners and running times, nothing is clipped at 1,000 px, details open
with named toggles, copy really copies, a turn collapses, the approval card takes a reason typed
key by key and Enter sends it whole, and neither the model's nor a tool's HTML runs any script.
Once the run ends the widget gives way to the static timeline, which survives a reload with the
kernel gone. Text contrast is checked against the computed colours (>= 4.5:1).

Everything waits on conditions (never fixed sleeps) and uses exact selectors. Screenshots go to
artifacts/<test name>/. Without /usr/bin/chromium every test here skips with the install hint.
Run alone with `pytest -m browser`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.notebook.test_timeline import FINAL_ANSWER, _execute_notebook, demo_notebook, demo_script
from tests.servers import Call, OpenAIServer, Reply

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = "/usr/bin/chromium"
INSTALL_HINT = "Debian chromium is not installed at /usr/bin/chromium (apt-get install chromium)"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
WIDTH = 1000  # nothing of a row is clipped at 1,000 px

# what a model or a tool could be steered into writing (prompt injection)
HOSTILE_ANSWER = (
    FINAL_ANSWER + ' <img src=x onerror="window.__pwned = 1"> <script>window.__pwned = 2</script>'
)
HOSTILE_TOOL = '''
class Page:
    def _repr_html_(self):
        return '<b>page</b><img src=x onerror="window.__pwned = 3"><script>window.__pwned = 4</script>'

def fetch_page(url: str) -> Page:
    """Fetch a page."""
    return Page()

def echo(text: str) -> str:
    """Echo text."""
    return text
'''
AFTER = (
    'print("after the chain:", result.status, len(result.tool_calls));'
    'print("last output:", result.tool_calls[-1].output)'
)


def _need_chromium() -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(INSTALL_HINT)
    pytest.importorskip("playwright", reason="pip install playwright (the browser is Debian's)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not answer within {timeout} s") from None
            time.sleep(0.2)  # polling an HTTP endpoint until it answers, not ordering


def _artifacts(request: pytest.FixtureRequest) -> Path:
    folder = ARTIFACTS / re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(params=["lab", "notebook"])
def app_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=["light", "dark"])
def theme(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def jupyter(app_kind: str, theme: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """JupyterLab or Notebook 7 on a free loopback port, no token, fresh settings."""
    with jupyter_server(app_kind, theme, tmp_path) as started:
        yield started


@contextlib.contextmanager
def jupyter_server(
    app_kind: str, theme: str, tmp_path: Path, extra: tuple[str, ...] = ()
) -> Iterator[tuple[str, Path]]:
    """The `jupyter` fixture's server; `extra`: more command-line options for it."""
    _need_chromium()
    root = tmp_path / "nb"
    root.mkdir()
    settings = tmp_path / "settings"
    apputils = settings / "@jupyterlab" / "apputils-extension"
    apputils.mkdir(parents=True)
    (apputils / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    name = "JupyterLab Dark" if theme == "dark" else "JupyterLab Light"
    (apputils / "themes.jupyterlab-settings").write_text(json.dumps({"theme": name}))
    port = _free_port()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["JUPYTER_CONFIG_DIR"] = str(tmp_path / "config")
    env["JUPYTER_RUNTIME_DIR"] = str(tmp_path / "runtime")
    env["JUPYTERLAB_SETTINGS_DIR"] = str(settings)
    env["JUPYTERLAB_WORKSPACES_DIR"] = str(tmp_path / "workspaces")
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter",
            app_kind,
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            "--allow-root",
            "--IdentityProvider.token=",
            "--ServerApp.password=",
            "--ServerApp.disable_check_xsrf=True",
            f"--ServerApp.root_dir={root}",
            "--expose-app-in-browser",
        ]
        + (
            [
                "--LabApp.news_url=",
                "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                "--LabApp.extension_manager=readonly",
            ]
            if app_kind == "lab"
            else []
        )
        + list(extra),
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=root,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_http(f"{url}/api/status")
        yield url, root
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Any]:
    _need_chromium()
    from playwright.sync_api import Error, sync_playwright

    with sync_playwright() as p:
        try:
            context = p.chromium.launch_persistent_context(
                str(tmp_path / "chromium-profile"),
                executable_path=CHROMIUM,
                args=CHROMIUM_ARGS,
                headless=True,
                viewport={"width": WIDTH, "height": 1400},
                permissions=["clipboard-read", "clipboard-write"],
            )
        except Error as exc:  # a broken browser install: say what to do, not a traceback
            pytest.skip(f"{INSTALL_HINT}; launching it failed: {str(exc).splitlines()[0]}")
        try:
            pg = context.pages[0] if context.pages else context.new_page()
            pg.set_default_timeout(90_000)
            yield pg
        finally:
            context.close()


# -- helpers ------------------------------------------------------------------------------------

APP_READY = """async () => {
  const app = window.jupyterapp;
  await app.started; await app.restored;
  return true;
}"""

KERNEL_IDLE = """() => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return !!k && k.status === 'idle' && !!w.content && w.content.widgets.length > 0;
}"""

# not awaited: the command's promise settles only when every cell has run
RUN_ALL = "() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); return true; }"

# relative luminance contrast of an element's text against its effective background
CONTRAST = """(el) => {
  const parse = (s) => {
    let m = s.match(/rgba?\\(([^)]+)\\)/);
    if (m) { const p = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
             return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; }
    m = s.match(/color\\(srgb ([^)]+)\\)/);
    if (m) { const p = m[1].split(/[ /]+/).filter(Boolean).map(Number);
             return [p[0] * 255, p[1] * 255, p[2] * 255, p.length > 3 ? p[3] : 1]; }
    return [0, 0, 0, 0];
  };
  const over = (top, under) => {
    const a = top[3];
    return [0, 1, 2].map((i) => top[i] * a + under[i] * (1 - a)).concat([1]);
  };
  const layers = [];
  for (let n = el; n; n = n.parentElement) {
    const c = parse(getComputedStyle(n).backgroundColor);
    if (c[3] > 0) layers.push(c);
    if (c[3] >= 1) break;
  }
  let bg = [255, 255, 255, 1];
  for (let i = layers.length - 1; i >= 0; i--) bg = over(layers[i], bg);
  const fg = over(parse(getComputedStyle(el).color), bg);
  const lum = (c) => {
    const v = c.slice(0, 3).map((x) => { x /= 255; return x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4); });
    return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2];
  };
  const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
  return (a + 0.05) / (b + 0.05);
}"""

CLIPPED = """(root) => {
  const out = [];
  const box = root.getBoundingClientRect();
  for (const el of root.querySelectorAll('.llm-pill, .llm-duration, .llm-button:not([hidden])')) {
    if (el.offsetParent === null) continue;
    const r = el.getBoundingClientRect();
    if (el.scrollWidth > el.clientWidth + 1 || r.right > box.right + 1 || r.width < 4)
      out.push(el.className + ': ' + el.textContent);
  }
  for (const el of root.querySelectorAll('.llm-answer')) {  // model text stays in its box
    if (el.offsetParent !== null && el.getBoundingClientRect().right > box.right + 1)
      out.push('text overflows: ' + el.textContent.slice(0, 30));
  }
  return out;
}"""


def _open_and_run(page: Any, url: str, app_kind: str, name: str) -> None:
    path = f"/lab/tree/{name}" if app_kind == "lab" else f"/notebooks/{name}"
    page.goto(url + path, wait_until="domcontentloaded")
    page.wait_for_function("() => !!window.jupyterapp")
    page.evaluate(APP_READY)
    page.wait_for_function(KERNEL_IDLE)
    page.evaluate(RUN_ALL)


def _contrast_failures(page: Any, scope: str) -> list[str]:
    bad = []
    selector = f"{scope} .llm-pill, {scope} .llm-stats, {scope} .llm-line b, {scope} .llm-answer p"
    for el in page.locator(selector).all():
        if not el.is_visible():
            continue
        ratio = el.evaluate(CONTRAST)
        if ratio < 4.5:
            bad.append(f"{el.inner_text()[:30]!r}: {ratio:.2f}")
    return bad


def notebook_of(*cells: str) -> dict:
    """A notebook of these code cells on the python3 kernel."""
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nb


def browser_script() -> list[Reply]:
    """The demo run with hostile HTML in the model's answer and in a tool's result."""
    first, approval, _final = demo_script(final_chunk_delay=0.02)
    first.calls.append(Call("fetch_page", {"url": "https://example.com"}))
    first.calls.append(Call("echo", {"text": '<img src=x onerror="window.__pwned = 5">'}))
    return [first, approval, Reply(text=HOSTILE_ANSWER, usage=(702, 44), chunk_delay=0.02)]


def browser_notebook(server: OpenAIServer) -> dict:
    import nbformat

    nb = demo_notebook(server.base_url, server.api_key, delay=2.0, extra=HOSTILE_TOOL)
    nb["cells"][1]["source"] = nb["cells"][1]["source"].replace(
        "tools=[get_weather, city_table, delete_file]",
        "tools=[get_weather, city_table, delete_file, fetch_page, echo]",
    )
    nb["cells"][2] = nbformat.v4.new_code_cell(AFTER)
    return nb


# -- the tests ------------------------------------------------------------------------------------


def test_live_timeline(jupyter: tuple[str, Path], page: Any, app_kind: str, theme: str, request):
    """One run, checked live and after it ends (see the module docstring)."""
    url, root = jupyter
    shots = _artifacts(request)
    with OpenAIServer(browser_script()) as server:
        (root / "timeline.ipynb").write_text(json.dumps(browser_notebook(server)))
        _open_and_run(page, url, app_kind, "timeline.ipynb")

        live = page.locator(".llm-magic-timeline.llm-live")
        live.wait_for()
        after = page.locator(".jp-OutputArea-output", has_text="after the chain:")
        # running calls: a spinner and a running time that counts up (the tools sleep 2 s)
        running = live.locator('.llm-call[data-status="running"]')
        running.first.wait_for()
        assert running.first.locator(".llm-spin").count() == 1
        elapsed = running.first.locator(".llm-elapsed")
        first_value = elapsed.inner_text()
        page.wait_for_function(
            "([el, v]) => el.isConnected && el.textContent !== v",
            arg=[elapsed.element_handle(), first_value],
        )
        assert after.count() == 0, "the cell ended before the entries were checked"
        assert (
            page.locator(".llm-live .llm-head").evaluate("el => getComputedStyle(el).position")
            == "sticky"
        )

        # expand the table call once it has its result: a named toggle, its table, copy
        table = live.locator(
            ".llm-call", has=page.locator(".llm-call-name b", has_text="city_table")
        )
        table.and_(page.locator('[data-status="ok"]')).wait_for()
        toggle = table.locator(".llm-call-row > .llm-toggle")
        assert toggle.get_attribute("aria-expanded") == "false"
        assert toggle.get_attribute("aria-label").startswith("Show details of city_table(")
        toggle.click()
        table.locator("table.dataframe").wait_for()
        assert toggle.get_attribute("aria-expanded") == "true"
        copy = table.locator("button.llm-copy-arguments")
        copy.click()
        page.wait_for_function("el => el.textContent === 'Copied ✓'", arg=copy.element_handle())
        copied = json.loads(page.evaluate("() => navigator.clipboard.readText()"))
        assert copied == {"cities": ["Paris", "Rome", "Oslo"]}

        # a turn collapses and opens again
        turn = live.locator(".llm-turn").first
        turn_toggle = turn.locator(".llm-turn-row > .llm-toggle")
        turn_toggle.click()
        assert not turn.locator(".llm-turn-body").is_visible()
        assert turn_toggle.get_attribute("aria-expanded") == "false"
        turn_toggle.click()
        turn.locator(".llm-turn-body").wait_for()

        # the approval card: arguments first, the run says it waits for the user
        card = live.locator(".llm-approval")
        card.wait_for()
        assert ">old.csv<" in card.locator(".llm-approval-args").inner_html()
        live.locator(".llm-head-info", has_text="waiting for you: 1").wait_for()
        assert after.count() == 0
        assert live.evaluate(CLIPPED) == []  # at 1,000 px: pills, durations, buttons whole
        live.screenshot(path=str(shots / "approval.png"))
        # a reason typed key by key while the cell runs; Enter alone decides nothing,
        # Ctrl+Enter sends the reason whole, with the decision (deny)
        reason = "keep old.csv, it is the backup"
        card.locator("input.llm-reason").press_sequentially(reason, delay=25)
        card.locator("input.llm-reason").press("Enter")
        assert card.locator("button.llm-deny").is_enabled() and after.count() == 0
        card.locator("input.llm-reason").press("Control+Enter")

        # the run ends: the widget gives way to the static timeline
        static = page.locator(".llm-magic-timeline.llm-static")
        static.wait_for()
        after.wait_for()
        assert page.locator(".llm-magic-timeline.llm-live").count() == 0
        out = after.inner_text()
        assert "after the chain: done 7" in out and "last output: denied" in out
        assert reason in out, out  # every character of the reason reached the model's record
        text = static.inner_text()
        assert "Rome is the warmest" in text and "delete_file" in text and "denied" in text
        # nothing the model or a tool wrote ran or became an element
        assert page.evaluate("() => window.__pwned") is None
        assert page.locator('img[src="x"]').count() == 0
        assert "<img src=x" in text or "&lt;img" in static.inner_html()
        assert _contrast_failures(page, ".llm-static") == []
        assert static.evaluate(CLIPPED) == []
        static.screenshot(path=str(shots / "static.png"))
        page.screenshot(path=str(shots / "page.png"), full_page=True)
        assert server.failures == [] and server.pending == 0

    # reopened after a save, with the kernel gone: the timeline, not "model not found"
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_function("() => !window.jupyterapp.shell.currentWidget.context.model.dirty")
    page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.shutdown()")
    page.reload(wait_until="domcontentloaded")
    page.wait_for_function("() => !!window.jupyterapp")
    page.evaluate(APP_READY)
    reopened = page.locator(".llm-magic-timeline.llm-static")
    reopened.wait_for()
    assert "Rome is the warmest" in reopened.inner_text()
    assert page.get_by_text("Error displaying widget").count() == 0
    assert page.get_by_text("model not found").count() == 0
    reopened.screenshot(path=str(shots / "reopened.png"))


@pytest.mark.parametrize("store_widget_state", [False, True], ids=["no-state", "widget-state"])
def test_nbconvert_page_shows_every_call(tmp_path: Path, page: Any, store_widget_state, request):
    """nbclient-executed, nbconvert-ed to HTML, opened offline: the static timeline shows every
    call, and its entries open without any script, with or without saved widget state."""
    import nbformat

    with OpenAIServer(demo_script()) as server:
        nb = _execute_notebook(tmp_path, server, store_widget_state)
    path = tmp_path / "static.ipynb"
    nbformat.write(nb, path)
    subprocess.run(
        [sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", str(path)],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    page.route("http*://**", lambda route: route.abort())  # closed network: fail fast
    page.goto((tmp_path / "static.html").as_uri(), wait_until="domcontentloaded")
    timeline = page.locator(".llm-magic-timeline").first
    timeline.wait_for()
    text = timeline.inner_text()
    for line in (
        'get_weather(city="Paris")',
        'get_weather(city="Rome")',
        'get_weather(city="Oslo")',
        "city_table(",
        'delete_file(path="old.csv")',
    ):
        assert line in text, line
    assert "done" in text and "Rome is the warmest" in text
    table = timeline.locator("details.llm-call", has_text="city_table").first
    assert not table.locator("table").first.is_visible()
    table.locator("summary").first.click()
    table.locator("table").first.wait_for()
    timeline.screenshot(path=str(_artifacts(request) / "static.png"))


HOSTILE_HTML = [
    '<b>report</b><svg/onload="document.body.dataset.pwned=1"></svg>',
    '<img/src=x/onerror="document.body.dataset.pwned=2">',
    '<a href="jav&#x61;script:document.body.dataset.pwned=3" id="evil-link">open</a>',
    "<script>document.body.dataset.pwned=4</script>",
    '<style>body{background:red}</style><div style="x" onclick="x">styled</div>',
]


class _Hostile:
    def __init__(self, markup: str) -> None:
        self.markup = markup

    def _repr_html_(self) -> str:
        return self.markup


class _HostilePNG:
    def _repr_png_(self) -> str:  # a broken formatter: not base64, an attribute breakout
        return 'x" onerror="document.body.dataset.pwned=5'


def test_tool_results_run_no_code_in_the_page(tmp_path: Path, page: Any):
    """Results' own HTML goes through the sanitizer: nothing in it runs in a real browser."""
    from llm_magic.notebook import render, values

    parts = [values.rich_html(_Hostile(m)) for m in HOSTILE_HTML]
    parts.append(values.rich_html(_HostilePNG()))
    parts.append(render.turn_text_html("<img src=x onerror=document.body.dataset.pwned=6> hi"))
    page_html = tmp_path / "hostile.html"
    page_html.write_text("<!doctype html><html><body>" + "".join(parts) + "</body></html>")
    page.goto(page_html.as_uri(), wait_until="load")
    page.locator("a", has_text="open").first.click()
    assert page.evaluate("document.body.dataset.pwned") is None
    assert "open" in page.inner_text("body") and "styled" in page.inner_text("body")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background != "rgb(255, 0, 0)"


if __name__ == "__main__":  # pragma: no cover - manual run: python tests/browser/test_browser.py
    sys.exit(pytest.main([__file__, "-m", "browser", "-x", "-s"]))
