"""Terminal IPython and jupyter console: a real `ipython` on a pipe, and real terminals (tmux).

Terminal IPython runs top-level await with `run_until_complete` on a loop that lives on, so a
Ctrl-C that only raised KeyboardInterrupt would leave the run going into the next cells.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import llm_magic
from tests.kernel_harness import KERNEL_NAME, write_kernelspec
from tests.servers import Call, OpenAIServer, Reply

ROOT = Path(__file__).resolve().parents[2]
IPYTHON = str(Path(sys.executable).with_name("ipython"))

CELLS = """\
%load_ext llm_magic
import asyncio, signal
import llm_magic
from llm_magic.notebook.state import state
before = signal.getsignal(signal.SIGINT)
async def slow(x: int) -> int:
    \"\"\"Sleep for a long time.\"\"\"
    print("SLOW-STARTED", flush=True)
    await asyncio.sleep(30)
    return x
model = llm_magic.get_async_model("openai-chat:gpt-4.1-mini", base_url="{base_url}")
r = await llm_magic.notebook.chain("call slow with 1", tools=[slow], model=model)
print("STATUS", state.last_run.status, [c.status for c in state.last_run.records])
await asyncio.sleep(1)
print("STILL", state.last_run.status, [c.status for c in state.last_run.records])
print("HANDLER-RESTORED", signal.getsignal(signal.SIGINT) is before)
"""

# the core chain(): Ctrl-C cancels the run (its view's handler); the cell gets the result
CORE_CELLS = CELLS.replace("llm_magic.notebook.chain(", "llm_magic.chain(").replace(
    "state.last_run.status, [c.status for c in state.last_run.records]",
    "r.status, [c.status for c in r.tool_calls]",
)


@pytest.mark.parametrize("cells", [CELLS, CORE_CELLS], ids=["notebook-chain", "core-chain"])
def test_ctrl_c_in_terminal_ipython_cancels_the_run_and_restores_the_handler(cells):
    with OpenAIServer([Reply(calls=[Call("slow", {"x": 1})]), Reply(text="never")]) as server:
        env = dict(
            os.environ, PYTHONPATH=str(ROOT), OPENAI_API_KEY=server.api_key, PYTHONUNBUFFERED="1"
        )
        proc = subprocess.Popen(
            [IPYTHON, "--simple-prompt", "--colors=nocolor", "--no-banner"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(cells.format(base_url=server.base_url))
        proc.stdin.flush()
        seen = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # wait until the tool runs
            line = proc.stdout.readline()
            seen.append(line)
            if "SLOW-STARTED" in line or not line:
                break
        assert "SLOW-STARTED" in "".join(seen), "".join(seen)
        interrupted = time.monotonic()
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    out = "".join(seen) + rest
    assert "STATUS cancelled ['cancelled']" in out, out
    assert "STILL cancelled ['cancelled']" in out, out  # nothing runs on behind the prompt
    assert "HANDLER-RESTORED True" in out, out
    assert "KeyboardInterrupt" not in out, out
    assert cells is CORE_CELLS or "the chain was interrupted" in out, out
    assert "slow(x=1)" in out  # the text view's line for the call
    assert server.api_key not in out
    assert time.monotonic() - interrupted < 30


# -- a real terminal (tmux) -----------------------------------------------------------------------

needs_tmux = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
JUPYTER = str(Path(sys.executable).with_name("jupyter"))


class Tmux:
    """One program in a tmux pane on a private tmux server: keys in, screen text out."""

    def __init__(self, command: list[str], env: dict[str, str], tmp: Path) -> None:
        self.socket = str(tmp / "tmux.sock")  # a private server, gone with the test's tmp dir
        self.exit_mark = f"EXITED-{uuid.uuid4().hex[:6]}"
        script = tmp / "run.sh"
        exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items())
        script.write_text(
            f"{exports}cd {shlex.quote(str(ROOT))}\n{shlex.join(command)}\n"
            f"echo {self.exit_mark}\nsleep 600\n"
        )
        # bash, not sh: dash exits after its child when a Ctrl-C reached them both, even if the
        # child handled it, and the pane would close before the exit could be seen
        self.tmux("new-session", "-d", "-s", "t", "-x", "150", "-y", "50", f"bash {script}")

    def tmux(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-S", self.socket, *args], capture_output=True, text=True, timeout=30
        )
        return done.stdout

    def keys(self, *keys: str) -> None:
        for key in keys:
            if key in ("Enter", "C-c", "C-d"):
                self.tmux("send-keys", "-t", "t", key)
            else:
                self.tmux("send-keys", "-t", "t", "-l", key)
            time.sleep(0.15)

    def line(self, text: str) -> None:
        self.keys(text, "Enter")

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-J", "-t", "t", "-S", "-500")

    def wait_for(self, text: str, timeout: float = 60, after: int = 0) -> str:
        """Wait until `text` shows (counting only from character `after` of the screen)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen[after:]:  # (the screen is padded with blank lines below)
                return screen
            time.sleep(0.2)
        raise AssertionError(f"{text!r} never showed; the screen:\n{self.screen()}")

    def close(self) -> None:
        self.tmux("kill-server")


def _terminal_env(server: OpenAIServer, tmp: Path) -> dict[str, str]:
    ipython_dir = tmp / "ipython"
    (ipython_dir / "profile_default").mkdir(parents=True)
    (ipython_dir / "profile_default" / "ipython_config.py").write_text(
        "c.TerminalInteractiveShell.autosuggestions_provider = None\n"
        "c.HistoryManager.enabled = False\n"
    )
    return {
        "PYTHONPATH": str(ROOT),
        "OPENAI_API_KEY": server.api_key,
        "OPENAI_BASE_URL": server.base_url,
        "LLM_MAGIC_MODEL": "openai-chat:test-model",
        "IPYTHONDIR": str(ipython_dir),
        "JUPYTER_PATH": str(tmp / "jupyter"),
        "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
        "JUPYTER_CONFIG_DIR": str(tmp / "config"),
        "JUPYTER_PLATFORM_DIRS": "1",
        # the run log in the test's folder, never the user's (this env is not inherited)
        "LLM_MAGIC_LOG_PATH": str(tmp / "log.db"),
        "PYTHONUNBUFFERED": "1",
        "TERM": "xterm-256color",
    }


def _ipython() -> list[str]:
    return [IPYTHON, "--no-banner", "--colors=nocolor"]


def _console(tmp: Path) -> list[str]:
    write_kernelspec(tmp / "jupyter" / "kernels")
    return [
        JUPYTER,
        "console",
        f"--kernel={KERNEL_NAME}",
        "--ZMQTerminalInteractiveShell.banner=",
        # the answer must come from the kernel's is_complete_reply, not the console's own
        # fallback rule, which it switches to for good after one slow reply
        "--ZMQTerminalInteractiveShell.kernel_is_complete_timeout=60",
    ]


@pytest.fixture
def terminal(tmp_path):
    opened: list[Tmux] = []

    def start(command: list[str], server: OpenAIServer) -> Tmux:
        term = Tmux(command, _terminal_env(server, tmp_path), tmp_path)
        opened.append(term)
        return term

    yield start
    for term in opened:
        term.close()


@needs_tmux
@pytest.mark.parametrize("program", ["ipython", pytest.param("console", marks=pytest.mark.kernel)])
def test_enter_after_the_magic_line_asks_for_the_body(terminal, tmp_path, program):
    """`%%llm_chain` + Enter opens a continuation line (it used to run at once: "the cell has
    no prompt"); the prompt below it and a blank line run the cell."""
    with OpenAIServer([Reply(text="Paris is sunny")]) as server:
        term = terminal(_ipython() if program == "ipython" else _console(tmp_path), server)
        term.wait_for("In [1]:", timeout=90)
        term.line("%load_ext llm_magic")
        term.wait_for("In [2]:")
        term.line("%%llm_chain --no-tools")
        time.sleep(2)  # a complete cell would be running (and failing) by now
        screen = term.screen()
        assert "no prompt" not in screen and "In [3]:" not in screen, screen
        assert screen.rstrip().endswith("...:"), screen
        term.line("what is the weather in Paris?")
        term.keys("Enter", "Enter")
        screen = term.wait_for("In [3]:")
    assert "Paris is sunny" in screen, screen
    assert "did not respond" not in screen, screen  # the console used the kernel's answer
    assert [r.body["messages"][-1]["content"] for r in server.requests] == [
        "what is the weather in Paris?"
    ]


APPROVE_CELL = """\
def delete(name: str) -> str:
    \"\"\"Delete a file.\"\"\"
    print("DELETED", name)
    return "deleted " + name
"""


@needs_tmux
@pytest.mark.parametrize("autoawait", ["on", "off"])
def test_ctrl_c_at_the_approval_question_gives_the_terminal_back(terminal, autoawait):
    """Ctrl-C at `? approve ...` cancels the run and nothing goes on reading the keyboard:
    the next input runs, a later question still works, and IPython exits cleanly (with
    `%autoawait off` the cell runs through the fallback magic, on a loop of its own)."""
    script = [
        Reply(calls=[Call("delete", {"name": "old.csv"})]),
        Reply(calls=[Call("delete", {"name": "new.csv"})]),
        Reply(text="deleted it"),
    ]
    with OpenAIServer(script) as server:
        term = terminal(_ipython(), server)
        term.wait_for("In [1]:", timeout=90)
        term.line(f"%autoawait {autoawait}")
        term.wait_for("In [2]:")
        term.line("%load_ext llm_magic")
        term.wait_for("In [3]:")
        for line in APPROVE_CELL.splitlines():
            term.line(line.strip() if line.startswith("    ") else line)
        term.keys("Enter")
        term.wait_for("In [4]:")
        term.line("%%llm_chain --tools delete --approve delete")
        term.line("delete old.csv")
        term.keys("Enter", "Enter")
        term.wait_for('? approve delete(name="old.csv")?')
        time.sleep(0.5)
        term.keys("C-c")
        screen = term.wait_for("In [5]:")
        assert "the chain was interrupted" in screen, screen
        mark = len(screen.rstrip())
        term.line("print(6 * 7)")
        screen = term.wait_for("42", timeout=20, after=mark)
        term.wait_for("In [6]:")
        term.line("%%llm_chain --tools delete --approve delete")
        term.line("delete new.csv")
        term.keys("Enter", "Enter")
        term.wait_for('? approve delete(name="new.csv")?')
        term.line("y")
        screen = term.wait_for("In [7]:")
        assert "DELETED new.csv" in screen and "deleted it" in screen, screen
        assert "DELETED old.csv" not in screen, screen
        term.line("exit")
        screen = term.wait_for(term.exit_mark, timeout=30)
    assert "Traceback" not in screen, screen


# -- the approval question, in-process (stdin a pipe, as when input is piped in) ------------------

BODY = "Stale accounts removed:\n" + "\n".join(
    f"- account {i:03d}, idle since 2024" for i in range(8)
)


@contextlib.contextmanager
def piped_stdin(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """Replace stdin by a pipe; yields a function that types a line into it."""
    read_fd, write_fd = os.pipe()
    reader = os.fdopen(read_fd, "r")
    monkeypatch.setattr(sys, "stdin", reader)
    try:
        yield lambda line: os.write(write_fd, (line + "\n").encode())
    finally:
        os.close(write_fd)
        reader.close()


async def _run_in_text_mode(server: OpenAIServer, tools: list[Any]) -> Any:
    from llm_magic.notebook.timeline import Timeline

    model = llm_magic.get_async_model(
        "openai-chat:test", base_url=server.base_url, api_key=server.api_key
    )
    run = model.chain("go", tools=tools)
    tl = Timeline(run, model="term-model")
    tl.show()  # no kernel: text lines, and the question on the terminal
    result = await run
    tl.close()
    await model.aclose()
    return result


async def test_question_prints_every_argument_and_a_approves_the_calls_of_its_turn(
    monkeypatch, capsys
):
    """The arguments are printed whole before the question (not cut to one line); `?` prints
    the details and asks again; `a` approves this call and the other calls of its turn (it
    used to deny them with the reason "a")."""
    posted: list[str] = []

    @llm_magic.tool(requires_approval=True)
    def post(title: str, body: str) -> str:
        """Post a message to the team channel."""
        posted.append(title)
        return f"posted {title}"

    calls = [Call("post", {"title": f"note {i}", "body": BODY}) for i in range(3)]
    with (
        OpenAIServer([Reply(calls=calls), Reply(text="posted all three")]) as server,
        piped_stdin(monkeypatch) as type_line,
    ):
        type_line("?")
        type_line("a")
        result = await _run_in_text_mode(server, [post])
    out = capsys.readouterr().out
    assert [c.status for c in result.tool_calls] == ["ok", "ok", "ok"]
    assert sorted(posted) == ["note 0", "note 1", "note 2"]
    assert result.tool_calls[0].reason is None  # approved: no reason "a"
    assert out.count("? approve post(") == 2  # asked once, and again after `?`
    assert out.count("approved with the other calls of its turn") == 2
    for line in BODY.splitlines()[1:]:
        assert f"        {line}\n" in out  # every line of the long argument, whole
    assert "post: Post a message to the team channel." in out  # what `?` prints
    assert '"title": "note 0"' in out and "a: approve it and the other calls" in out


async def test_other_output_waits_below_the_question(monkeypatch, capsys):
    """A call that ends while the question waits prints its line after the answer, never on
    the question's line."""
    import threading

    @llm_magic.tool(requires_approval=True)
    def remove(path: str) -> str:
        """Remove a file."""
        return f"removed {path}"

    def lookup(key: str) -> str:
        """Look a key up."""
        time.sleep(0.3)  # ends while the question waits
        return f"value of {key}"

    calls = [Call("remove", {"path": "old.csv"}), Call("lookup", {"key": "k"})]
    with (
        OpenAIServer([Reply(calls=calls), Reply(text="done")]) as server,
        piped_stdin(monkeypatch) as type_line,
    ):
        threading.Timer(1.0, type_line, args=("y",)).start()
        await _run_in_text_mode(server, [remove, lookup])
    lines = capsys.readouterr().out.splitlines()
    asked = next(i for i, line in enumerate(lines) if "? approve remove(" in line)
    assert lines[asked].endswith("[y/N/a/?, or a reason to deny] "), lines
    assert "lookup(" in lines[asked + 1] and "value of k" in lines[asked + 1], lines
    assert not any("lookup(" in line for line in lines[:asked]), lines


POST_CELL = """\
@llm_magic.tool(requires_approval=True)
def post(title: str, body: str) -> str:
    \\"\\"\\"Post a message to the team channel.\\"\\"\\"
    print(f"POSTED {title}")  # one write: the two calls run at once, in two threads
    return "posted " + title
"""


@needs_tmux
def test_terminal_question_shows_whole_arguments_details_and_approves_all(terminal):
    """In a real terminal: the long argument shows whole before the question, `?` shows the
    details and asks again, `a` runs both calls of the turn (it used to deny with reason "a"),
    and no other output lands on the question's line."""
    calls = [Call("post", {"title": f"note {i}", "body": BODY}) for i in range(2)]
    with OpenAIServer([Reply(calls=calls), Reply(text="posted both notes")]) as server:
        term = terminal(_ipython(), server)
        term.wait_for("In [1]:", timeout=90)
        term.line("%load_ext llm_magic")
        term.wait_for("In [2]:")
        term.line("import llm_magic")
        term.wait_for("In [3]:")
        for line in POST_CELL.replace('\\"', '"').splitlines():
            term.line(line.strip() if line.startswith("    ") else line)
        term.keys("Enter")
        term.wait_for("In [4]:")
        term.line("%%llm_chain --tools post")
        term.line("post the notes")
        term.keys("Enter", "Enter")
        screen = term.wait_for("or a reason to deny]")
        for line in BODY.splitlines()[1:]:
            assert line in screen, screen
        term.line("?")
        screen = term.wait_for("Post a message to the team channel.")
        assert screen.count("? approve post(") == 2, screen
        term.line("a")
        screen = term.wait_for("In [5]:")
    shots = (
        ROOT / "artifacts" / "test_terminal_question_shows_whole_arguments_details_and_approves_all"
    )
    shots.mkdir(parents=True, exist_ok=True)
    (shots / "screen.txt").write_text(screen.rstrip() + "\n")  # the terminal as the user saw it
    assert "POSTED note 0" in screen and "POSTED note 1" in screen, screen
    assert "posted both notes" in screen, screen
    questions = [line for line in screen.splitlines() if "? approve post(" in line]
    assert all(line.rstrip().endswith(("deny]", "deny] ?", "deny] a")) for line in questions), (
        questions
    )
    assert "Traceback" not in screen, screen
