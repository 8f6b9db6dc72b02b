"""The TLS context every provider client shares, its CA bundle loaded only when TLS is used.

httpx builds a new context, loading certifi's ~150 certificates (25-40 ms of CPU), for every
`AsyncClient`; one client per event loop per model paid it on its first request, and a plain-http
server (a local model, a test server) paid it for nothing (issue 15.5, first use). Here one
context serves the process, and its certificates are loaded at the first TLS handshake.
"""

from __future__ import annotations

import os
import ssl
import sys
import threading
from typing import Any


class LazyCAContext(ssl.SSLContext):
    """The TLS context of httpx's default (`httpx.create_ssl_context()`: certificates required,
    host names checked, certifi's CA bundle or `SSL_CERT_FILE` / `SSL_CERT_DIR`), whose CA bundle
    is loaded at the first TLS handshake rather than when a client is made (module doc)."""

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
            if cafile:
                self.load_verify_locations(cafile=cafile)
            elif capath:
                self.load_verify_locations(capath=capath)
            else:
                import certifi

                self.load_verify_locations(cafile=certifi.where())
            self._loaded = True


_ssl_lock = threading.Lock()
_ssl_context: LazyCAContext | None = None


def shared_ssl_context() -> LazyCAContext:
    """The process's one TLS context for provider clients (see `LazyCAContext`)."""
    global _ssl_context
    with _ssl_lock:
        if _ssl_context is None:
            context = LazyCAContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED, check_hostname
            # what `ssl.create_default_context` adds on newer Pythons (3.13: strict X.509)
            strict = getattr(ssl, "VERIFY_X509_STRICT", 0) if sys.version_info >= (3, 13) else 0
            partial = getattr(ssl, "VERIFY_X509_PARTIAL_CHAIN", 0) if strict else 0
            context.verify_flags |= strict | partial
            keylog = os.environ.get("SSLKEYLOGFILE")
            if keylog and not sys.flags.ignore_environment:
                context.keylog_filename = keylog
            _ssl_context = context
        return _ssl_context
