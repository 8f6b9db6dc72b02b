"""Terminal IPython (a real `ipython` process on a pipe): the live text view and Ctrl-C.

Terminal IPython runs top-level await with `run_until_complete` on a loop that lives on, so a
Ctrl-C that only raised KeyboardInterrupt would leave the run going into the next cells.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.servers import Call, OpenAIServer, Reply

ROOT = Path(__file__).resolve().parent.parent
IPYTHON = str(Path(sys.executable).with_name("ipython"))

CELLS = """\
%load_ext llm_magic
import asyncio, signal
import llm_magic
from llm_magic.notebook.session import state
before = signal.getsignal(signal.SIGINT)
async def slow(x: int) -> int:
    \"\"\"Sleep for a long time.\"\"\"
    print("SLOW-STARTED", flush=True)
    await asyncio.sleep(30)
    return x
model = llm_magic.get_async_model("openai:gpt-4.1-mini", base_url="{base_url}")
r = await llm_magic.chain("call slow with 1", tools=[slow], model=model)
print("STATUS", state.last_run.status, [c.status for c in state.last_run.records])
await asyncio.sleep(1)
print("STILL", state.last_run.status, [c.status for c in state.last_run.records])
print("HANDLER-RESTORED", signal.getsignal(signal.SIGINT) is before)
"""


def test_ctrl_c_in_terminal_ipython_cancels_the_run_and_restores_the_handler():
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
        proc.stdin.write(CELLS.format(base_url=server.base_url))
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
    assert "the chain was interrupted" in out and "KeyboardInterrupt" not in out, out
    assert "slow(x=1)" in out  # the text view's line for the call
    assert server.api_key not in out
    assert time.monotonic() - interrupted < 30
