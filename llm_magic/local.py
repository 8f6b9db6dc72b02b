"""The embedded local model: Gemma 3 270M served by llama-cpp-python's OpenAI-compatible server.

With no API key and no network, llm_magic can still run a real chain against a real (small) model.
`LocalServer` starts ``python -m llama_cpp.server`` as a child process on a free loopback port, on
demand, and stops it with the parent (the kernel). It is part of the core layer: stdlib + httpx2
only, no IPython, no ipywidgets, and it never imports ``llama_cpp`` into the calling process.

Its parts: the weights and whether they are installed (local_weights), the two model aliases and
the server's config file (local_aliases), the child process that never outlives the kernel
(local_process), the wait until it answers (local_health). This module holds the lifecycle that
ties them: one lock and one state for find, start, watch and stop.

Usage::

    server = get_local_server()
    base_url = await server.ensure_started(progress=print)   # "http://127.0.0.1:PORT/v1"
    # POST {base_url}/chat/completions with model="gemma-tools" or "gemma-chat"
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from . import _runtime, local_process
from .errors import LocalServerError
from .local_aliases import CHAT_MODEL, TOOLS_MODEL, write_config
from .local_health import PortInUse, wait_healthy
from .local_weights import (
    GGUF_ENV_VAR,
    MODEL_DISPLAY_NAME,
    LocalModelUnavailable,
    Progress,
    require_server_packages,
    resolve_gguf_path,
)

__all__ = ["LocalServer", "get_local_server"]


class LocalServer:
    """One ``llama_cpp.server`` child process serving one GGUF as :data:`TOOLS_MODEL` and
    :data:`CHAT_MODEL` on ``127.0.0.1:<free port>``.

    ``ensure_started`` / ``ensure_started_sync`` start it on first use and return the base URL
    (``http://127.0.0.1:PORT/v1``); later and concurrent calls (any thread, any event loop) share
    the same process. If the process dies, the next call starts a new one.

    The child never outlives the kernel (local_process) and is stopped by :meth:`stop`,
    registered with the runtime's exit hook. Its output goes to a log file in a temporary folder
    (:attr:`log_path`), never to the notebook.
    """

    host = "127.0.0.1"

    def __init__(
        self,
        *,
        gguf_path: str | os.PathLike[str] | None = None,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        start_timeout: float = 120.0,
        progress: Progress | None = None,
    ) -> None:
        self.gguf_path = Path(gguf_path) if gguf_path is not None else None
        self.n_ctx = n_ctx
        self.n_threads = n_threads or max(1, min(4, os.cpu_count() or 2))
        self.start_timeout = start_timeout
        self._default_progress = progress
        self._start_lock = threading.Lock()  # one start at a time, across threads and loops
        self._listeners_lock = threading.Lock()
        self._listeners: list[Progress] = []
        self._proc: subprocess.Popen[bytes] | None = None
        self._base_url: str | None = None
        self._port: int | None = None
        self._workdir: Path | None = None
        self._log_path: Path | None = None
        self._owner_pid: int | None = None
        self._atexit_registered = False
        self.startup_seconds: float | None = None

    # ----------------------------------------------------------------- public API

    @property
    def base_url(self) -> str | None:
        """``http://127.0.0.1:PORT/v1`` while the server is running, else None."""
        return self._base_url if self.is_running() else None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def log_path(self) -> Path | None:
        """The server's log (stdout and stderr), kept until :meth:`stop`."""
        return self._log_path

    @property
    def models(self) -> tuple[str, str]:
        return (TOOLS_MODEL, CHAT_MODEL)

    def is_running(self) -> bool:
        proc = self._proc
        return proc is not None and proc.poll() is None and self._base_url is not None

    async def ensure_started(self, progress: Progress | None = None) -> str:
        """Start the server if needed and return its base URL. Safe to call concurrently.

        The start itself (a few seconds) runs in a worker thread, so the event loop stays free.
        ``progress`` receives start-up messages on this event loop's thread.
        """
        url = self._running_url()
        if url is not None:
            return url
        loop = asyncio.get_running_loop()
        on_loop: Progress | None = None
        if progress is not None:
            cb = progress

            def on_loop(msg: str) -> None:
                loop.call_soon_threadsafe(cb, msg)

            on_loop.__wrapped__ = cb  # type: ignore[attr-defined]  # for de-duplication

        return await asyncio.to_thread(self.ensure_started_sync, on_loop)

    def ensure_started_sync(self, progress: Progress | None = None) -> str:
        """Blocking twin of :meth:`ensure_started`; ``progress`` is called from this thread."""
        url = self._running_url()
        if url is not None:
            return url
        listener = progress or self._default_progress
        if listener is not None:
            with self._listeners_lock:
                self._listeners.append(listener)
        try:
            with self._start_lock:
                url = self._running_url()
                if url is not None:
                    return url
                return self._start_locked()
        finally:
            if listener is not None:
                with self._listeners_lock:
                    with contextlib.suppress(ValueError):
                        self._listeners.remove(listener)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the server (SIGTERM to its process group, SIGKILL after ``timeout``). Idempotent."""
        with self._start_lock:
            self._stop_locked(timeout)

    # ----------------------------------------------------------------- internals

    def _running_url(self) -> str | None:
        return self._base_url if self.is_running() else None

    def _emit(self, message: str) -> None:
        with self._listeners_lock:
            listeners = list(self._listeners)
        seen: list[object] = []  # one message per callback, however many callers passed it
        for listener in listeners:
            key = getattr(listener, "__wrapped__", listener)
            if any(key is k or key == k for k in seen):
                continue
            seen.append(key)
            with contextlib.suppress(Exception):
                listener(message)

    def _start_locked(self) -> str:
        if self._proc is not None:  # it was started before and has died since
            code = self._proc.poll()
            last = local_process.log_tail(self._log_path, 1).strip()
            self._emit(
                f"The local model server had stopped (exit code {code}"
                + (f"; last log line: {last}" if last else "")
                + "); restarting it…"
            )
            self._stop_locked(0.5)
        require_server_packages()
        try:
            gguf = self.gguf_path or resolve_gguf_path(self._emit)
        except LocalModelUnavailable:
            raise
        except Exception as exc:
            self._emit(f"The local model could not be prepared: {exc}")
            raise
        if not Path(gguf).is_file():
            raise LocalServerError(f"The model file {str(gguf)!r} does not exist.")

        last_error: LocalServerError | None = None
        for _attempt in range(3):  # a port taken between probe and bind: try another one
            try:
                return self._launch(Path(gguf))
            except PortInUse as exc:
                last_error = exc
                continue
        assert last_error is not None
        raise last_error

    def _launch(self, gguf: Path) -> str:
        port = local_process.free_port(self.host)
        workdir = Path(tempfile.mkdtemp(prefix="llm_magic_local_"))
        config_path = write_config(
            workdir, gguf, host=self.host, port=port, n_ctx=self.n_ctx, n_threads=self.n_threads
        )
        log_path = workdir / "llama_server.log"
        env = os.environ.copy()
        # __main__ of llama_cpp.server lets these override the config file; pin them.
        env["CONFIG_FILE"] = str(config_path)
        env["HOST"] = self.host
        env["PORT"] = str(port)
        env.setdefault("PYTHONUNBUFFERED", "1")
        parent_pid = os.getpid()
        cmd = [
            sys.executable,
            "-c",
            local_process.CHILD_BOOTSTRAP,
            str(parent_pid),
            str(workdir),
            "--config_file",
            str(config_path),
        ]

        name = (
            MODEL_DISPLAY_NAME
            if self.gguf_path is None and not os.environ.get(GGUF_ENV_VAR)
            else gguf.name
        )
        self._emit(f"Starting the local model ({name}) on {self.host}:{port}…")
        started = time.monotonic()
        log_fh = log_path.open("wb")
        try:
            proc = local_process.spawn(cmd, env, log_fh, workdir, parent_pid)
        except BaseException as exc:
            log_fh.close()
            shutil.rmtree(workdir, ignore_errors=True)
            if isinstance(exc, OSError):
                raise LocalServerError(f"Could not start the local model server: {exc}") from exc
            raise
        finally:
            if not log_fh.closed:
                log_fh.close()  # the child has its own copy of the descriptor

        self._proc, self._port, self._workdir, self._log_path = proc, port, workdir, log_path
        self._owner_pid = parent_pid
        if not self._atexit_registered:
            _runtime.at_exit(self._atexit_stop)
            self._atexit_registered = True

        base_url = f"http://{self.host}:{port}/v1"
        try:
            wait_healthy(proc, base_url, log_path, started, self.start_timeout, self._emit)
        except PortInUse:
            self._stop_locked(1.0)
            raise
        except BaseException:
            self._stop_locked(1.0, keep_log=True)  # the error message points at the log
            raise
        self._base_url = base_url
        self.startup_seconds = time.monotonic() - started
        self._emit(f"Local model ready in {self.startup_seconds:.1f} s")
        return base_url

    def _atexit_stop(self) -> None:
        with contextlib.suppress(Exception):
            self._stop_locked(3.0)

    def _stop_locked(self, timeout: float, keep_log: bool = False) -> None:
        proc, workdir = self._proc, self._workdir
        self._base_url = None
        self._proc = None
        if proc is not None and self._owner_pid == os.getpid():  # never from a forked child
            local_process.stop(proc, timeout)
        if workdir is not None and not keep_log:
            shutil.rmtree(workdir, ignore_errors=True)
            self._workdir = None
            self._log_path = None


def get_local_server() -> LocalServer:
    """The process-wide :class:`LocalServer` (created on first call, started on first use)."""
    return _runtime.shared("local-server", LocalServer)
