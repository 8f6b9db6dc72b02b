"""The timeline in a real browser: JupyterLab on loopback, headless Debian Chromium, Playwright.

The test starts the loopback OpenAI server and JupyterLab itself, writes a notebook whose cells
run a chain against that server with a Timeline, runs it in the browser, and checks while the
cell is still running: tool-call entries appear, one expands, the call that needs approval is
approved with a click. The screenshot of the timeline is kept in artifacts/timeline.png.

Run alone with `pytest -m browser`. Needs `apt-get install chromium` (Playwright cannot download
browsers here) and JupyterLab with jupyterlab_widgets in this environment.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.servers import OpenAIServer
from tests.test_timeline import _execute_notebook, demo_notebook, demo_script

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.25)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


@pytest.fixture(params=["light", "dark"])
def lab(request, tmp_path):
    """JupyterLab on a free loopback port, no token, fresh settings; yields (url, root, theme)."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    pytest.importorskip("playwright")
    root = tmp_path / "nb"
    root.mkdir()
    settings = tmp_path / "settings"
    news = settings / "@jupyterlab" / "apputils-extension"
    news.mkdir(parents=True)
    (news / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    if request.param == "dark":
        (news / "themes.jupyterlab-settings").write_text(json.dumps({"theme": "JupyterLab Dark"}))
    port = _free_port()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["JUPYTER_CONFIG_DIR"] = str(tmp_path / "config")
    env["JUPYTER_RUNTIME_DIR"] = str(tmp_path / "runtime")
    log = open(tmp_path / "lab.log", "w")  # closed below
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            "--no-browser",
            "--ip",
            "127.0.0.1",
            "--port",
            str(port),
            "--allow-root",
            "--IdentityProvider.token=",
            "--ServerApp.password=",
            "--LabApp.extension_manager=readonly",
            "--LabApp.news_url=",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--ServerApp.disable_check_xsrf=True",
            f"--ServerApp.root_dir={root}",
            f"--LabApp.user_settings_dir={settings}",
            f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=root,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_http(f"{url}/api/status")
        yield url, root, request.param
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture
def browser_page(tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1280, "height": 1900},
        )
        try:
            page = context.pages[0] if context.pages else context.new_page()
            yield page
        finally:
            context.close()


def _cell_running(page, index: int) -> bool:
    prompt = page.locator(".jp-Cell .jp-InputPrompt").nth(index).inner_text()
    return "*" in prompt


def test_timeline_live_in_jupyterlab(lab, browser_page):
    url, root, theme = lab
    suffix = "" if theme == "light" else f"-{theme}"
    page = browser_page
    with OpenAIServer(demo_script(final_chunk_delay=0.03)) as server:
        nb = demo_notebook(server.base_url, server.api_key, delay=2.0)
        (root / "timeline.ipynb").write_text(json.dumps(nb))
        page.goto(f"{url}/lab/tree/timeline.ipynb", wait_until="domcontentloaded")
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
        # wait for the kernel to be ready before running
        page.wait_for_selector(
            ".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000
        )
        # close the file browser: more room for the notebook
        page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current").first.click()
        page.locator(".jp-Cell").first.click()
        # Run All, as a user would (menu command through its keyboard-free path)
        page.locator("text=Run").first.click()
        page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()

        timeline = page.locator(".llm-magic-timeline").first
        timeline.wait_for(timeout=60_000)
        # tool-call entries show while the cell still runs (the tools sleep 2 s)
        rows = timeline.locator(".llm-call-row")
        rows.nth(3).wait_for(timeout=30_000)
        run_cell = 1
        assert _cell_running(page, run_cell), "the cell finished before the entries showed"
        live_text = timeline.inner_text()
        assert "get_weather" in live_text and "city_table" in live_text
        assert "running" in live_text

        # expand the table call once it has its result
        table_row = timeline.locator(".llm-call", has_text="city_table").first
        table_row.locator(".llm-call-row", has_text="ok").wait_for(timeout=30_000)
        table_row.locator("button").first.click()
        table_row.locator("table.dataframe").wait_for(timeout=15_000)

        # approve the call that needs approval, while the cell waits for it
        approve = timeline.locator("button", has_text="Approve")
        approve.wait_for(timeout=30_000)
        assert _cell_running(page, run_cell)
        ARTIFACTS.mkdir(exist_ok=True)
        timeline.screenshot(path=str(ARTIFACTS / f"timeline-approval{suffix}.png"))
        approve.click()
        timeline.locator(".llm-call", has_text="delete_file").locator(
            ".llm-call-row", has_text="ok"
        ).wait_for(timeout=30_000)

        # the run finishes, the cell ends and the next cell runs
        page.wait_for_function(
            "() => document.querySelector('.llm-magic-timeline') &&"
            " document.querySelector('.llm-magic-timeline').innerText.includes('done')",
            timeout=60_000,
        )
        page.locator(".jp-OutputArea-output", has_text="after the chain").wait_for(timeout=30_000)
        final = timeline.inner_text()
        assert "Rome" in final and "delete_file" in final
        timeline.scroll_into_view_if_needed()
        timeline.screenshot(path=str(ARTIFACTS / f"timeline{suffix}.png"))
        page.screenshot(path=str(ARTIFACTS / f"timeline-page{suffix}.png"), full_page=True)
        assert server.pending == 0


@pytest.mark.parametrize(
    ("store_widget_state", "static"),
    [(False, False), (True, True)],
    ids=["no-widget-state", "widget-state-static-after-run"],
)
def test_nbconvert_page_shows_every_call(tmp_path, browser_page, store_widget_state, static):
    """A notebook saved without widget state (JupyterLab's default), or with it and
    `static_after_run`, converted by nbconvert: the static timeline shows every call, and its
    entries open without any script."""
    import nbformat

    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    with OpenAIServer(demo_script()) as server:
        nb = _execute_notebook(tmp_path, server, store_widget_state, static)
    path = tmp_path / "static.ipynb"
    nbformat.write(nb, path)
    subprocess.run(
        [sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", str(path)],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    page = browser_page
    page.route("http*://**", lambda route: route.abort())  # closed network: fail fast
    page.goto((tmp_path / "static.html").as_uri(), wait_until="domcontentloaded")
    timeline = page.locator(".llm-magic-timeline").first
    timeline.wait_for(timeout=15_000)
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
    assert table.locator("table").first.is_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    timeline.screenshot(path=str(ARTIFACTS / f"timeline-static-{int(static)}.png"))


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


def test_tool_results_run_no_code_in_the_page(tmp_path, browser_page):
    """Results' own HTML goes through the sanitizer: nothing in it runs in a real browser."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    from llm_magic.notebook import render

    parts = [render.rich_html(_Hostile(m)) for m in HOSTILE_HTML]
    parts.append(render.rich_html(_HostilePNG()))
    page_html = tmp_path / "hostile.html"
    page_html.write_text("<!doctype html><html><body>" + "".join(parts) + "</body></html>")
    page = browser_page
    page.goto(page_html.as_uri(), wait_until="load")
    page.locator("#evil-link, a", has_text="open").first.click()
    page.wait_for_timeout(300)
    assert page.evaluate("document.body.dataset.pwned") is None
    assert "open" in page.inner_text("body") and "styled" in page.inner_text("body")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background != "rgb(255, 0, 0)"


if __name__ == "__main__":  # pragma: no cover - manual run: python tests/test_browser.py
    sys.exit(pytest.main([__file__, "-m", "browser", "-x", "-s"]))
