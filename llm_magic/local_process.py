"""The local model server's child process: started so that it never outlives the kernel.

The child is in its own process group (a kernel interrupt does not reach it), is sent SIGTERM by
the Linux kernel if the parent dies (``PR_SET_PDEATHSIG``; elsewhere a watchdog in the child
polls the parent pid), and removes its temporary folder when orphaned. Its output goes to a log
file, never to the notebook; `log_tail` quotes that log in errors.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import _runtime

# Runs in the child: a watchdog thread that ends the server if the parent process goes away (the
# portable fallback to PR_SET_PDEATHSIG, and a guard for the race where the parent dies before
# prctl), then the server itself as ``python -m llama_cpp.server``.
CHILD_BOOTSTRAP = r"""
import os, shutil, signal, sys, threading, time, runpy
parent = int(sys.argv.pop(1))
workdir = sys.argv.pop(1)
def _orphan_cleanup():
    if os.getppid() != parent and os.path.basename(workdir).startswith("llm_magic_local_"):
        shutil.rmtree(workdir, ignore_errors=True)  # the parent cannot remove it any more
def _watch():
    while True:
        if os.getppid() != parent:
            time.sleep(2.0)   # SIGTERM (pdeathsig) normally ends uvicorn first
            _orphan_cleanup()
            os._exit(0)
        time.sleep(0.5)
threading.Thread(target=_watch, name="llm_magic-parent-watchdog", daemon=True).start()
# uvicorn re-raises the SIGTERM it handled after its shutdown; exit through `finally` instead.
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
sys.argv[0] = "llama_cpp.server"
try:
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
finally:
    _orphan_cleanup()
"""


def _make_preexec(parent_pid: int) -> Callable[[], None] | None:
    """On Linux: a preexec_fn that asks the kernel to SIGTERM the child when the parent dies."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl  # resolved here, before fork: the child only makes the call
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1
    sigterm = int(signal.SIGTERM)

    def preexec() -> None:
        prctl(pr_set_pdeathsig, sigterm, 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def log_tail(path: Path | None, lines: int = 25) -> str:
    if path is None:
        return ""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 16384))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def spawn(
    cmd: list[str], env: dict[str, str], log_fh: Any, workdir: Path, parent_pid: int
) -> subprocess.Popen[bytes]:
    """Popen from a dedicated daemon thread that lives as long as the child.

    PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, not the process.
    ``LocalServer.ensure_started`` runs in short-lived worker threads, so the fork happens in a thread
    that stays (polling the child) until the child ends.
    """
    result: dict[str, object] = {}
    ready = threading.Event()

    def run() -> None:
        try:
            # its own process group: a kernel interrupt (SIGINT) misses it
            group: dict[str, Any] = (
                {"process_group": 0, "preexec_fn": _make_preexec(parent_pid)}
                if os.name == "posix"
                else {"creationflags": getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)}
            )
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log_fh,
                stderr=subprocess.STDOUT,
                cwd=str(workdir),
                env=env,
                close_fds=True,
                **group,
            )
        except BaseException as exc:
            result["error"] = exc
            ready.set()
            return
        result["proc"] = proc
        ready.set()
        # Stay alive as long as the child. Not proc.wait(): it holds Popen's waitpid lock
        # while blocked, and poll() from other threads then answers None even for a dead child.
        with contextlib.suppress(Exception):
            while proc.poll() is None:
                time.sleep(0.5)

    _runtime.daemon("llm_magic-local-server", run)
    ready.wait()
    if "error" in result:
        raise result["error"]  # type: ignore[misc]
    return result["proc"]  # type: ignore[return-value]


def stop(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM to the child's process group, SIGKILL after `timeout` seconds."""
    if proc.poll() is None:
        _signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _signal_group(proc, getattr(signal, "SIGKILL", signal.SIGTERM))
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5.0)


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        if os.name != "posix":
            raise OSError("no process groups")
        os.killpg(proc.pid, sig)  # the child leads its own group (process_group=0)
    except OSError:
        with contextlib.suppress(ProcessLookupError, OSError):
            proc.send_signal(sig)
