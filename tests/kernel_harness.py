"""A real ipykernel driven through jupyter_client, for tests a notebook runner cannot do.

nbclient sends one cell at a time; a frontend queues cells (Run All) and sends interrupts. This
harness does both: `run([...])` sends every cell back to back without waiting, records every
IOPub message with its arrival time and the cell it belongs to, and can interrupt the kernel
when a condition is met (a text in the output, or a delay).

The kernel runs this interpreter (`sys.executable`) from a kernelspec written to a temporary
directory, with the repository on PYTHONPATH, so it imports this checkout of llm_magic.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

ROOT = Path(__file__).resolve().parent.parent
KERNEL_NAME = "llm-magic-test"


@dataclass
class Msg:
    at: float  # seconds since the first cell was sent
    type: str
    content: dict[str, Any]
    parent_id: str | None


@dataclass
class Cell:
    code: str
    msg_id: str
    messages: list[Msg] = field(default_factory=list)
    reply: dict[str, Any] | None = None
    idle_at: float | None = None

    @property
    def status(self) -> str | None:
        return self.reply["status"] if self.reply else None

    def stream(self, name: str = "stdout") -> str:
        return "".join(
            m.content["text"]
            for m in self.messages
            if m.type == "stream" and m.content["name"] == name
        )

    @property
    def errors(self) -> list[dict[str, Any]]:
        return [m.content for m in self.messages if m.type == "error"]

    @property
    def result_text(self) -> str | None:
        for m in self.messages:
            if m.type == "execute_result":
                return str(m.content["data"].get("text/plain"))
        return None

    def first(self, predicate: Callable[[Msg], bool]) -> Msg | None:
        return next((m for m in self.messages if predicate(m)), None)


def write_kernelspec(directory: Path) -> Path:
    spec = directory / KERNEL_NAME
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "llm_magic test kernel",
                "language": "python",
                "interrupt_mode": "signal",
            }
        )
    )
    return directory


def kernel_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.pop("LLM_MAGIC_MODEL", None)
    env.update(extra or {})
    return env


class KernelSession:
    """One kernel for a test (or a module of tests)."""

    def __init__(self, env: dict[str, str] | None = None, startup_timeout: float = 60) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="llm-magic-kernels-")
        specs = KernelSpecManager(kernel_dirs=[str(write_kernelspec(Path(self._tmp.name)))])
        self.km = KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=specs)
        self.km.start_kernel(env=kernel_env(env), cwd=str(ROOT))
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=startup_timeout)
        self.drain()

    def drain(self, quiet_for: float = 0.3) -> None:
        while True:
            try:
                self.kc.get_iopub_msg(timeout=quiet_for)
            except queue.Empty:
                return

    def run(
        self,
        cells: list[str],
        *,
        timeout: float = 60,
        interrupt_when: Callable[[Msg, list[Cell]], bool] | None = None,
        on_message: Callable[[Msg, list[Cell]], None] | None = None,
        stop_on_error: bool = True,
        stdin: Callable[[dict[str, Any]], str] | None = None,
    ) -> list[Cell]:
        """Send every cell without waiting, then collect until each cell is idle and replied.

        on_message: called with every IOPub message as it arrives (to act as a frontend would,
        e.g. click a widget with `send_comm`). stdin: answers the kernel's `input_request`s
        (`input()`, `getpass`), given each request's content, as a frontend's input box would."""
        t0 = time.monotonic()
        sent = [
            Cell(code, self.kc.execute(code, stop_on_error=stop_on_error, allow_stdin=bool(stdin)))
            for code in cells
        ]
        by_id = {c.msg_id: c for c in sent}
        self.interrupted_at: float | None = None
        deadline = t0 + timeout
        while time.monotonic() < deadline and any(
            c.idle_at is None or c.reply is None for c in sent
        ):
            try:
                raw = self.kc.get_iopub_msg(timeout=0.02)
            except queue.Empty:
                raw = None
            if raw is not None:
                parent = raw["parent_header"].get("msg_id")
                msg = Msg(time.monotonic() - t0, raw["msg_type"], raw["content"], parent)
                cell = by_id.get(parent)
                if cell is not None:
                    cell.messages.append(msg)
                    if msg.type == "status" and msg.content["execution_state"] == "idle":
                        cell.idle_at = msg.at
                if on_message is not None:
                    on_message(msg, sent)
                if (
                    interrupt_when is not None
                    and self.interrupted_at is None
                    and interrupt_when(msg, sent)
                ):
                    self.km.interrupt_kernel()
                    self.interrupted_at = time.monotonic() - t0
            while stdin is not None:
                try:
                    request = self.kc.get_stdin_msg(timeout=0)
                except queue.Empty:
                    break
                self.kc.input(stdin(request["content"]))
            while True:
                try:
                    reply = self.kc.get_shell_msg(timeout=0)
                except queue.Empty:
                    break
                cell = by_id.get(reply["parent_header"].get("msg_id"))
                if cell is not None:
                    cell.reply = reply["content"]
        pending = [c.code.splitlines()[0] for c in sent if c.idle_at is None or c.reply is None]
        if pending:
            raise TimeoutError(f"cells still pending after {timeout} s: {pending}")
        return sent

    def send_comm(self, comm_id: str, data: dict[str, Any]) -> None:
        """A comm message from the frontend, e.g. `{"method": "custom", "content": {"event":
        "click"}}`, what a click on an ipywidgets Button sends."""
        msg = self.kc.session.msg("comm_msg", {"comm_id": comm_id, "data": data})
        self.kc.shell_channel.send(msg)

    def run_one(self, code: str, timeout: float = 60) -> Cell:
        return self.run([code], timeout=timeout)[0]

    def shutdown(self) -> None:
        try:
            self.kc.stop_channels()
            self.km.shutdown_kernel(now=True)
        finally:
            self._tmp.cleanup()


TIMELINE_CLASS = "llm-magic-timeline-widget"  # the one widget of a run's timeline


def clicker(
    kernel: KernelSession,
    action: str,
    when: Callable[[Msg], bool] | None = None,
    reason: str = "",
) -> tuple[Callable[[Msg, list[Cell]], None], dict[str, Any]]:
    """An on_message hook that clicks in the timeline widget as a front end would (one comm_msg
    on the shell channel): `approve` or `deny` (with `reason`) the first call awaiting
    approval, or `cancel` the run once `when` says so. The dict it returns fills with what it
    saw: the widget's comm `id`, the `waiting` entry, its approval `card`, when it `clicked`."""
    found: dict[str, Any] = {}

    def on_message(msg: Msg, cells: list[Cell]) -> None:
        content = msg.content
        if msg.type == "comm_open":
            state = content.get("data", {}).get("state", {})
            if TIMELINE_CLASS in state.get("_dom_classes", []):
                found["id"] = content["comm_id"]
        if msg.type in ("comm_open", "comm_msg") and content.get("comm_id") == found.get("id"):
            state = content.get("data", {}).get("state", {})
            for entry in state.get("patch", {}).get("entries", []):
                if "approval" in entry:
                    found.setdefault("waiting", entry["id"])
                    found.setdefault("card", entry["approval"])
        if "id" not in found or "clicked" in found or not (when is None or when(msg)):
            return
        if action in ("approve", "deny") and "waiting" in found:
            approved = action == "approve"
            click = {"type": "decide", "ids": [found["waiting"]], "approved": approved}
            click["reason"] = reason
        elif action == "cancel":
            click = {"type": "cancel"}
        else:
            return
        found["clicked"] = msg.at
        kernel.send_comm(found["id"], {"method": "custom", "content": click})

    return on_message, found


@contextlib.contextmanager
def kernel_with_server(server: Any, setup: str, model: str) -> Iterator[KernelSession]:
    """A kernel whose OpenAI settings point at a loopback `server`, with `setup` run first."""
    session = KernelSession(
        {
            "OPENAI_API_KEY": server.api_key,
            "OPENAI_BASE_URL": server.base_url,
            "LLM_MAGIC_MODEL": model,
        }
    )
    try:
        cell = session.run_one(setup)
        assert cell.status == "ok", cell.errors
        yield session
    finally:
        session.shutdown()


def openai_kernel_fixtures(setup: str, model: str) -> tuple[Any, Any]:
    """Module-scoped `server` and `kernel` fixtures: one loopback OpenAI server, and a kernel
    pointed at it with `setup` run first. Use as `server, kernel = openai_kernel_fixtures(...)`."""
    from tests.servers import OpenAIServer

    @pytest.fixture(scope="module")
    def server() -> Iterator[Any]:
        with OpenAIServer() as srv:
            yield srv

    @pytest.fixture(scope="module")
    def kernel(server: Any) -> Iterator[KernelSession]:
        with kernel_with_server(server, setup, model) as session:
            yield session

    return server, kernel
