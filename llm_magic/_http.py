"""The HTTP layer every provider shares: one AsyncClient per event loop, retries, clear errors.

Lifetimes: a client belongs to one event loop. It is closed by `aclose()` (the model's
`aclose()`/`close()`), and also when `asyncio.run()` shuts its loop down: each client is held by
a small async generator, and `asyncio.run()` closes every live async generator of its loop
before it closes the loop (`loop.shutdown_asyncgens()`), so twenty `asyncio.run(...)` calls in a
row leave no sockets behind.

In flight: at most `limits.max_connections` requests per client (per loop) are on the wire at
once; the rest wait their turn in a FIFO semaphore of that loop (`_LoopClient`), not in
httpcore2's pool. Held by a request from before it is sent until its response is closed (a
stream: until its last event is read), and never while a retry waits. Under 1,000 concurrent
chains httpcore 1's pool walked every queued request times every connection whenever a response
ended, and with keep-alive below the pool's size closed a connection per response
(bench/README.md "Pool limits"); httpcore2 fixed both, and the bound stays: queued here, requests
are served first come, first served, and the pool only ever sees what it can serve.
`max_connections=None` lifts the bound along with the pool's.

Retries follow what the official SDKs do: 408/409/429/5xx (and Anthropic's 529), connection
errors and timeouts, exponential backoff with jitter, `Retry-After` / `retry-after-ms` honoured
up to a cap.
Errors quote the provider's own message and request id, and never the API key.

The stack is httpx2 (on httpcore2), the one genai-prices, openai-python 3, anthropic 2 and mcp 2
use, so a notebook loads one HTTP stack, not httpx beside it. Its API is httpx's; what differs
for us: TLS verified against the OS trust store (`tls`), a `Timeout` or `Limits` from httpx is
refused (httpx2 2.17 raises TypeError for an httpx `Timeout`; here `HTTPSession` says so at once
for the limits and transport too), and its exceptions are httpx2's own classes.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import math
import random
import re
import time
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

import httpx2

from ._json_body import encode_body
from ._sse import SSEDecoder, SSEEvent
from ._tls import shared_ssl_context
from .errors import (
    AuthenticationError,
    ProviderError,
    RateLimitError,
    StreamError,
    scrub_exception,
)

# httpx2 keeps 20 idle connections by default and closes the rest as they are released, so a
# burst of more than 20 concurrent requests reopens connections on every round:
# keep as many idle connections as may be open. max_connections also bounds the requests in
# flight per client (module doc).
DEFAULT_LIMITS = httpx2.Limits(max_connections=100, max_keepalive_connections=100)
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
_RETRIED_ERRORS = (httpx2.ConnectError, httpx2.TimeoutException, httpx2.RemoteProtocolError)
_REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-goog-request-id", "cf-ray")


# The longest server-requested wait (Retry-After / retry-after-ms / Gemini's RetryInfo) each
# official SDK honours before it gives up instead of retrying:
# - openai-python `_base_client.py` `_calculate_retry_timeout`: 0 < wait <= 120 s, longer: no
#   retry (commit "honor Retry-After delays up to two minutes", openai 3.x);
# - anthropic-sdk-python 2.x `_base_client.py`: any positive value is honoured;
# - google-genai `_api_client.py` (`HttpRetryOptions`, tenacity `wait_exponential_jitter(max=60)`)
#   reads no server delay at all; 60 s keeps a quota's `retryDelay` (often 20-60 s) usable.
MAX_WAIT = {"openai": 120.0, "anthropic": math.inf, "gemini": 60.0}


@dataclass
class RetryPolicy:
    """How a provider retries. `max_wait`: a server asking to wait longer than this gets an
    error at once rather than a hang; None means the cap of the provider's official SDK
    (`MAX_WAIT`), e.g. `RetryPolicy(max_wait=300)` to wait longer for any provider."""

    max_retries: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_wait: float | None = None

    def wait_cap(self, provider: str) -> float:
        return self.max_wait if self.max_wait is not None else MAX_WAIT.get(provider, 60.0)

    def backoff(self, attempt: int) -> float:
        return min(self.max_delay, self.base_delay * 2.0**attempt) * (0.5 + random.random() / 2)


def retry_after(headers: httpx2.Headers) -> float | None:
    """Seconds the server asked us to wait, from `retry-after-ms` or `Retry-After`."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):  # neither seconds nor a date: use our own backoff
        return None
    return max(0.0, parsed.timestamp() - time.time())


def scrub(text: str, secret: str | None) -> str:
    if secret and len(secret) >= 4 and secret in text:
        return text.replace(secret, "***")
    return text


class HTTPSession:
    """Posts JSON for one provider; the client is created per running loop and reused."""

    def __init__(
        self,
        provider: str,
        base_url: str,
        headers: dict[str, str],
        *,
        secret: str | None = None,
        timeout: float | httpx2.Timeout = httpx2.Timeout(600.0, connect=10.0),
        retry: RetryPolicy | None = None,
        transport: httpx2.AsyncBaseTransport | None = None,
        limits: httpx2.Limits | None = None,
    ) -> None:
        _require_httpx2(transport=transport, limits=limits, timeout=timeout)
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self._headers = headers
        self._secret = secret
        self._timeout = timeout
        self.retry = retry or RetryPolicy()
        self._transport = transport
        self.limits = limits or DEFAULT_LIMITS
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopClient]
        self._clients = weakref.WeakKeyDictionary()
        # Each endpoint's whole URL, merged with the base URL once: parsing and merging it
        # anew took a third of what building a request costs.
        self._urls: dict[str, httpx2.URL] = {}

    def __repr__(self) -> str:
        return f"<HTTPSession {self.provider} {self.base_url}>"

    @property
    def open_clients(self) -> int:
        """Clients not closed yet, over all loops (for tests and leak checks)."""
        return sum(not held.client.is_closed for held in list(self._clients.values()))

    async def client(self) -> httpx2.AsyncClient:
        """This loop's client, made on first use and closed with the loop (module doc)."""
        return (await self._held()).client

    async def _held(self) -> _LoopClient:
        loop = asyncio.get_running_loop()
        held = self._clients.get(loop)
        if held is None or held.client.is_closed:
            client = httpx2.AsyncClient(
                base_url=self.base_url,
                headers=self._headers,
                timeout=self._timeout,
                transport=self._transport,
                limits=self.limits,
                verify=shared_ssl_context(),
            )
            in_flight = self.limits.max_connections
            held = self._clients[loop] = await _LoopClient.hold(client, in_flight)
        return held

    async def aclose(self) -> None:
        """Close this loop's client; clients of other loops close with their loops."""
        held = self._clients.pop(asyncio.get_running_loop(), None)
        if held is not None:
            await held.release()

    @contextmanager
    def redacting(self) -> Iterator[None]:
        """Scrub the key from any error raised inside, its attributes and chained errors too:
        the provider's own text (an error event in a stream, an error in a 200 body, an echoed
        request id, a body kept by a JSONDecodeError) may quote it."""
        try:
            yield
        except Exception as exc:
            scrub_exception(exc, lambda text: scrub(text, self._secret))
            raise

    async def post_json(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response, _ = await self._send(path, body, stream=False)
        try:
            data: dict[str, Any] = json.loads(response.content)
        except ValueError:
            raise ProviderError(
                f"response is not JSON: {response.text[:200]!r}",
                provider=self.provider,
                status=response.status_code,
                request_id=_request_id(response),
            ) from None
        return data

    async def get_json(self, path: str, timeout: float = 10.0) -> Any:
        """One GET without retries (a listing shown beside an error, never on a run's path)."""
        client = (await self._held()).client
        try:
            response = await client.get(path, timeout=timeout)
        except httpx2.TransportError as exc:
            raise self._transport_error(exc) from None
        if response.status_code >= 400:
            raise self._error(response)
        try:
            return json.loads(response.content)
        except ValueError:
            raise ProviderError("response is not JSON", provider=self.provider) from None

    @asynccontextmanager
    async def stream(
        self, path: str, body: dict[str, Any]
    ) -> AsyncIterator[AsyncIterator[SSEEvent]]:
        """Yield the response's SSE events; a connection cut mid-way raises StreamError."""
        response, release = await self._send(path, body, stream=True)
        try:
            yield self._events(response)
        finally:
            try:
                await response.aclose()
            finally:
                release()

    async def _events(self, response: httpx2.Response) -> AsyncIterator[SSEEvent]:
        # The StreamError is raised outside the `except`: an httpx2 exception holds its request,
        # headers and key included, and must not stay chained as `__context__`.
        # One generator between httpx2's bytes and the provider (this runs once per token):
        # the SSE decoding is here rather than in a generator of its own.
        failure: StreamError | None = None
        decoder = SSEDecoder()
        try:
            async for chunk in response.aiter_bytes():
                for event in decoder.feed_bytes(chunk):
                    yield event
            for event in decoder.flush():
                yield event
        except httpx2.ReadTimeout:
            failure = StreamError(
                f"the stream stalled: no data for {self._limit('read')} s",
                provider=self.provider,
            )
        except (httpx2.RemoteProtocolError, httpx2.ReadError) as exc:
            failure = StreamError(
                f"the stream was cut before it ended ({type(exc).__name__})", provider=self.provider
            )
        if failure is not None:
            raise failure

    async def _send(
        self, path: str, body: dict[str, Any], *, stream: bool
    ) -> tuple[httpx2.Response, Callable[[], None]]:
        """The response, and what frees its in-flight slot: already freed unless `stream` (the
        caller frees it once the response is closed)."""
        held = await self._held()
        client = held.client
        content = encode_body(body)
        headers = {"content-type": "application/json"}
        attempt = 0
        while True:
            response: httpx2.Response | None = None
            failure: ProviderError | None = None
            release = await held.slot()
            try:
                url = self._urls.get(path)
                if url is None:
                    url = self._urls[path] = client.build_request("POST", path).url
                request = client.build_request("POST", url, content=content, headers=headers)
                response = await client.send(request, stream=stream)
            except _RETRIED_ERRORS as exc:
                if attempt >= self.retry.max_retries:
                    failure = self._transport_error(exc)
            except BaseException:
                release()
                raise
            if response is not None and response.status_code >= 400:
                try:
                    await response.aread()
                finally:
                    await response.aclose()
                    release()
            elif response is None or not stream:  # a body read whole, or no response
                release()
            if failure is not None:  # raised here, not in the `except`: see `_events`
                raise failure
            if response is None:
                await asyncio.sleep(self.retry.backoff(attempt))
                attempt += 1
                continue
            if response.status_code < 400:
                return response, release
            wait = retry_after(response.headers)
            if wait is None:
                wait = _retry_delay_in_body(response)
            if _should_retry(response) and attempt < self.retry.max_retries:
                cap = self.retry.wait_cap(self.provider)
                if wait is not None and wait > cap:
                    raise self._error(
                        response,
                        extra=(
                            f"; the server asked to wait {wait:.0f} s, more than the "
                            f"{cap:.0f} s cap (RetryPolicy.max_wait)"
                        ),
                    )
                await asyncio.sleep(wait if wait is not None else self.retry.backoff(attempt))
                attempt += 1
                continue
            raise self._error(response)

    def _transport_error(self, exc: httpx2.TransportError) -> ProviderError:
        """No response: httpx2's own message is often empty (a read timeout), so say what."""
        if isinstance(exc, httpx2.ConnectTimeout) or not isinstance(exc, httpx2.TimeoutException):
            message = f"cannot reach {self.base_url}: {type(exc).__name__}: {exc}"
        else:
            kind = {httpx2.WriteTimeout: "write", httpx2.PoolTimeout: "pool"}.get(type(exc), "read")
            message = (
                f"the request to {self.base_url} timed out after {self._limit(kind)} s "
                f"({kind} timeout)"
            )
        return ProviderError(scrub(message, self._secret), provider=self.provider)

    def _limit(self, kind: str) -> Any:
        """The configured timeout of one kind (read, write, pool), for messages."""
        return getattr(self._timeout, kind, self._timeout)

    def _error(self, response: httpx2.Response, extra: str = "") -> ProviderError:
        message, auth = _error_message(response)
        message = scrub(message, self._secret) + extra
        status = response.status_code
        kwargs: dict[str, Any] = dict(
            provider=self.provider,
            status=status,
            request_id=_request_id(response),
            retry_after=retry_after(response.headers),
        )
        if auth or status in (401, 403):
            return AuthenticationError(message + " (the API key was rejected)", **kwargs)
        if status == 429:
            return RateLimitError(message, **kwargs)
        return ProviderError(message, **kwargs)


class _LoopClient:
    """A client held open by an async generator of its loop, so that the loop's shutdown
    (`asyncio.run` calls `shutdown_asyncgens()`) closes the client while the loop still runs;
    and the loop's in-flight bound (module doc)."""

    def __init__(self, client: httpx2.AsyncClient, in_flight: int | None) -> None:
        self.client = client
        self._slots = asyncio.Semaphore(in_flight) if in_flight else None
        self._keeper = self._keep()

    @classmethod
    async def hold(cls, client: httpx2.AsyncClient, in_flight: int | None) -> _LoopClient:
        held = cls(client, in_flight)
        await held._keeper.__anext__()  # registered with the loop's async generator hooks
        return held

    async def slot(self) -> Callable[[], None]:
        """Wait for an in-flight slot; returns its release, which frees it once however often
        it is called."""
        slots = self._slots
        if slots is None:
            return _nothing
        await slots.acquire()
        held = [slots]

        def release() -> None:
            if held:
                held.pop().release()

        return release

    async def _keep(self) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            await self.client.aclose()

    async def release(self) -> None:
        await self._keeper.aclose()


def _nothing() -> None:
    pass


# what each may be besides None; the first type is the one an error names
_HTTPX2_TYPES: dict[str, tuple[type, ...]] = {
    "transport": (httpx2.AsyncBaseTransport,),
    "limits": (httpx2.Limits,),
    "timeout": (httpx2.Timeout, int, float),
}


def _require_httpx2(**given: object) -> None:
    """Refuse an httpx object (or anything else) where an httpx2 one is needed, naming both:
    an httpx transport would raise httpx's exceptions, which no retry or key scrubbing here
    catches, and httpx2 itself fails an httpx `Timeout` only later, while connecting."""
    for name, value in given.items():
        expected = _HTTPX2_TYPES[name]
        if value is None or isinstance(value, expected):
            continue
        kind = type(value)
        raise TypeError(
            f"{name} must be an httpx2.{expected[0].__name__} (llm_magic's HTTP stack is httpx2, "
            f"not httpx), got {kind.__module__.split('.')[0]}.{kind.__qualname__}"
        )


def _retry_delay_in_body(response: httpx2.Response) -> float | None:
    """Gemini puts the wait in the body: `RetryInfo.retryDelay` such as "41s"."""
    if b"retryDelay" not in response.content:
        return None
    match = re.search(rb'"retryDelay"\s*:\s*"([0-9.]+)s"', response.content)
    return float(match.group(1)) if match else None


def _should_retry(response: httpx2.Response) -> bool:
    """`x-should-retry` wins; OpenAI's `insufficient_quota` 429 is never worth retrying."""
    flag: str | None = response.headers.get("x-should-retry")
    if flag in ("true", "false"):
        return bool(flag == "true")
    if b"insufficient_quota" in response.content:
        return False
    return response.status_code in RETRY_STATUSES


def _request_id(response: httpx2.Response) -> str | None:
    for name in _REQUEST_ID_HEADERS:
        if name in response.headers:
            return response.headers[name]
    return None


def _error_message(response: httpx2.Response) -> tuple[str, bool]:
    """The provider's own message, and whether it says the key was rejected.

    OpenAI and Gemini put it in `error.message`, Anthropic in `error.message` under
    `type: error`; Gemini reports a bad key as a 400 whose details say API_KEY_INVALID.
    """
    text = response.text
    try:
        body = json.loads(text)
    except ValueError:
        return (text.strip()[:300] or response.reason_phrase), False
    if isinstance(body, list) and body:
        body = body[0]
    err = body.get("error", body) if isinstance(body, dict) else {}
    if not isinstance(err, dict):
        return str(err)[:300], False
    message = str(err.get("message") or text[:300])
    kind = err.get("type") or err.get("status") or err.get("code")
    if kind and str(kind) not in message:
        message = f"{message} [{kind}]"
    auth = "API_KEY_INVALID" in text or err.get("type") == "authentication_error"
    return message, auth
