"""The answer in terminal IPython: printed once, as rendered Markdown (rich installed), and the
cell's `Out[]` a one-line reference to it; on a pipe (no terminal) the text streams as it comes
and is not printed again either. Real `ipython` in tmux (the harness of test_terminal.py) and on
a pipe, against the loopback OpenAI server."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.notebook.test_terminal import (  # noqa: F401  (terminal: fixture)
    IPYTHON,
    ROOT,
    _ipython,
    _terminal_env,
    needs_tmux,
    terminal,
)
from tests.servers import Call, OpenAIServer, Reply

ANSWER = "# Rome today\n\nIt is **19 degrees** and sunny.\n\n- take `sunglasses`\n- no umbrella\n"
SETUP = [
    "%load_ext llm_magic",
    "def get_weather(city: str) -> dict:",
    '    """Current weather for a city."""',
    '    return {"city": city, "temp": 19}',
    "",
]


def script() -> list[Reply]:
    return [Reply(calls=[Call("get_weather", {"city": "Rome"})]), Reply(text=ANSWER)]


@needs_tmux
def test_the_answer_shows_once_rendered_and_out_points_to_it(terminal, tmp_path):  # noqa: F811
    with OpenAIServer(script()) as server:
        term = terminal(_ipython(), server)
        term.wait_for("In [1]:", timeout=90)
        term.line(SETUP[0])
        term.wait_for("In [2]:")
        for line in SETUP[1:-1]:  # IPython indents the body itself
            term.line(line.strip())
        term.keys("Enter")
        term.wait_for("In [3]:")
        term.line("%%llm_chain -t get_weather")
        term.line("Weather in Rome?")
        term.keys("Enter", "Enter")
        screen = term.wait_for("In [4]:")
    shots = ROOT / "artifacts" / "test_the_answer_shows_once_rendered_and_out_points_to_it"
    shots.mkdir(parents=True, exist_ok=True)
    (shots / "screen.txt").write_text(screen.rstrip() + "\n")  # the terminal as the user saw it
    run = screen[screen.index("Weather in Rome?") :]
    assert run.count("19 degrees") == 1, run  # once: not streamed, then again as Out[]
    assert "**" not in run and "# Rome" not in run and "- take" not in run, run  # rendered
    assert "Rome today" in run and "• take sunglasses" in run, run
    out = re.search(r"Out\[3\]: (.*)", run)
    assert out is not None, run
    assert out.group(1) == "<ChainResult done · 1 tool call · the answer is printed above (.text)>"
    assert "Traceback" not in screen, screen


def test_on_a_pipe_the_answer_streams_once_unrendered(tmp_path):
    chain = "await llm_magic.chain('Weather in Rome?', tools=[get_weather])"
    cells = "\n".join([*SETUP, "import llm_magic", chain, "print('END')"])
    with OpenAIServer(script()) as server:
        env = _terminal_env(server, tmp_path)
        done = subprocess.run(
            [IPYTHON, "--no-banner", "--colors=nocolor", "--simple-prompt"],
            input=cells + "\n",
            capture_output=True,
            text=True,
            timeout=120,
            env={**env, "PATH": "/usr/bin:/bin"},
            cwd=ROOT,
        )
    out = done.stdout
    assert "END" in out, (out, done.stderr)
    assert out.count("19 degrees") == 1, out
    assert "It is **19 degrees** and sunny." in out  # no terminal: the text as the model wrote it
    assert "the answer is printed above (.text)>" in out, out
    assert "\x1b[" not in out  # no terminal codes on a pipe
    assert (tmp_path / "log.db").exists()  # the run was logged in the test's folder


@pytest.mark.parametrize(
    ("status", "expected"),
    [("done", "the answer is printed above"), ("max_cost", "no answer: stopped by max_cost")],
)
def test_out_line_says_what_the_run_did(status, expected):
    from llm_magic.messages import Usage
    from llm_magic.notebook.cell_value import mark_shown, result_text
    from llm_magic.results import ChainResult

    result = ChainResult("Let me look.", status, [], Usage(), 1, "m", 0.1)
    mark_shown(result)
    assert expected in result_text(result)
