"""Whether the local model server is up: its `/v1/models` lists both aliases before the deadline.

A child that exits during start-up fails at once with the last lines of its log; one that exited
because its port was taken in the meantime is `PortInUse`, so the caller tries another port.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import httpx2

from ._tls import shared_ssl_context
from .errors import LocalServerError
from .local_aliases import CHAT_MODEL, TOOLS_MODEL
from .local_process import log_tail


class PortInUse(LocalServerError):
    """The port chosen was taken between the probe and the server's bind."""


def wait_healthy(
    proc: subprocess.Popen[bytes],
    base_url: str,
    log_path: Path,
    started: float,
    timeout: float,
    emit: Callable[[str], None],
) -> None:
    """Poll `base_url/models` until both aliases are listed; fail when the child exits or
    `timeout` seconds have passed since `started` (a `time.monotonic()` value)."""
    deadline = started + timeout
    last_exc: Exception | None = None
    # trust_env=False: never send loopback traffic through an HTTP(S)_PROXY. The shared TLS
    # context: httpx2's default would load the OS's CA certificates for a plain-http check.
    with httpx2.Client(
        timeout=httpx2.Timeout(5.0, connect=1.0), trust_env=False, verify=shared_ssl_context()
    ) as client:
        while True:
            code = proc.poll()
            if code is not None:
                _exited(code, log_path, emit)
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
                _too_late(base_url, log_path, timeout, last_exc, emit)
            time.sleep(0.1)


def _exited(code: int, log_path: Path, emit: Callable[[str], None]) -> NoReturn:
    tail = log_tail(log_path)
    if "address already in use" in tail.lower():
        raise PortInUse("port taken", log_path=log_path)
    emit(f"The local model failed to start (exit code {code}).")
    raise LocalServerError(
        f"The local model server exited with code {code} during start-up. "
        f"Last lines of its log ({log_path}):\n{tail}",
        log_path=log_path,
    )


def _too_late(
    base_url: str,
    log_path: Path,
    timeout: float,
    last_exc: Exception | None,
    emit: Callable[[str], None],
) -> NoReturn:
    tail = log_tail(log_path)
    emit(f"The local model did not answer within {timeout:.0f} s.")
    raise LocalServerError(
        f"The local model server did not answer on {base_url}/models within "
        f"{timeout:.0f} s (last error: {last_exc!r}). "
        f"Last lines of its log ({log_path}):\n{tail}",
        log_path=log_path,
    )
