"""The TLS context every provider client shares, its CA certificates loaded only when TLS is used.

httpx2 builds a new context for every `AsyncClient` made with the default `verify=True`
(`httpx2.create_ssl_context()`), and on Linux that loads the system's ~150 CA certificates
(15-40 ms of CPU): one client per event loop per model paid it on its first request, and a
plain-http server (a local model, a test server) paid it for nothing. Here
one context serves the process, and on Linux its certificates are loaded at the first TLS handshake.

What httpx2 changed from httpx: certificates come from the operating system's trust store, not
certifi's bundle (httpcore2 `_ssl.py` `default_ssl_context`, read 2026-12-07). On Windows and
macOS that is `truststore.SSLContext`, which asks the OS to verify each chain and loads nothing up
front, so that context is shared as httpx2 builds it; on Linux it is OpenSSL's own paths (the
distribution's CA bundle), which is the load deferred here. `SSL_CERT_FILE` / `SSL_CERT_DIR` win on
every platform, as in httpx2. A corporate proxy's CA installed in the OS store is now trusted
without configuration.
"""

from __future__ import annotations

import os
import platform
import re
import ssl
import sys
import threading
from typing import Any

from . import _runtime

# httpcore2 `_ssl.py` `CA_FILE_CANDIDATES` (read 2026-12-07), itself truststore's Linux fallbacks
# for when OpenSSL's compiled-in paths are unusable (a Python built elsewhere, e.g. by uv).
_CA_FILE_CANDIDATES = (
    "/etc/ssl/cert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/pki/tls/cert.pem",
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/ssl/ca-bundle.pem",
)


class LazyCAContext(ssl.SSLContext):
    """The TLS context of httpx2's default on Linux (`httpx2.create_ssl_context()`: certificates
    required, host names checked, `SSL_CERT_FILE` / `SSL_CERT_DIR` or the OS's CA bundle), whose
    CA certificates are loaded at the first TLS handshake rather than when a client is made."""

    _loaded = False

    def wrap_bio(self, *args: Any, **kwargs: Any) -> ssl.SSLObject:  # asyncio / anyio
        self._load_cas()
        return super().wrap_bio(*args, **kwargs)

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:  # a sync transport
        self._load_cas()
        return super().wrap_socket(*args, **kwargs)

    def _load_cas(self) -> None:
        if self._loaded:
            return
        with _ssl_lock:
            if self._loaded:
                return
            cafile, capath = os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")
            if not cafile and not capath:
                cafile, capath = _os_ca_locations()
            if cafile or capath:  # none at all: every handshake fails CERTIFICATE_VERIFY_FAILED
                self.load_verify_locations(cafile=cafile or None, capath=capath or None)
            self._loaded = True


def _os_ca_locations() -> tuple[str | None, str | None]:
    """OpenSSL's compiled-in CA file and directory, as httpcore2 finds them (its `_ssl.py`):
    `ssl.get_default_verify_paths()` would read `SSL_CERT_*` again, a directory counts only if
    it holds hashed certificate names, and a known distribution bundle is the last resort."""
    paths = ssl.get_default_verify_paths()
    cafile = paths.openssl_cafile if os.path.isfile(paths.openssl_cafile) else None
    capath = paths.openssl_capath if os.path.isdir(paths.openssl_capath) else None
    if capath and not cafile:
        hashed = re.compile(r"[0-9a-fA-F]{8}\.\d")
        if not any(hashed.fullmatch(name) for name in os.listdir(capath)):
            capath = None
    if not cafile and not capath:
        cafile = next(filter(os.path.isfile, _CA_FILE_CANDIDATES), None)
    return cafile, capath


_ssl_lock = threading.Lock()  # one thread loads the CA certificates


def shared_ssl_context() -> ssl.SSLContext:
    """The process's one TLS context for provider clients (module doc): a live resource, so
    the runtime holds it, made on first use."""
    return _runtime.shared("ssl_context", _new_context)


def _new_context() -> ssl.SSLContext:
    """Where the OS verifies chains itself (Windows, macOS) there is nothing to defer: httpx2's
    own default context (truststore, or `SSL_CERT_*`). Elsewhere the lazy one."""
    if platform.system() in ("Windows", "Darwin"):
        import httpx2

        context = httpx2.create_ssl_context()
    else:
        context = LazyCAContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED, check_hostname
    keylog = os.environ.get("SSLKEYLOGFILE")  # httpx honoured it; httpx2 does not
    if keylog and not sys.flags.ignore_environment:
        context.keylog_filename = keylog
    return context
