"""LoopbackServer: a real HTTP/1.1 server on 127.0.0.1 that serves scripted model replies.

Provider subclasses supply routing, auth, checks and rendering; this module owns the socket, the
script queue, the request log and the bytes: a JSON response is one write with Content-Length; a
stream is chunked, one chunk (one write) per SSE event; a cut stream closes the socket without the
final zero-length chunk, so the client sees an incomplete body (httpx2: `RemoteProtocolError`).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import itertools
import json
import socket
import sys
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from .media_rules import describe
from .script import CHARS_PER_TOKEN, UNCAPPED_OUTPUT, WORD, Call, Reply, as_reply

_counter = itertools.count(1)  # process-wide, so ids never repeat across servers in one run
_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def token(n: int) -> str:
    """A deterministic (per process, by call order) random-looking alphanumeric id of n chars."""
    digest = int.from_bytes(hashlib.sha256(str(next(_counter)).encode()).digest(), "big")
    out = []
    for _ in range(n):
        digest, r = divmod(digest, 62)
        out.append(_ALNUM[r])
    return "".join(out)


def signature(text: str) -> str:
    """A base64 'signature' for a thinking block, unique per call."""
    raw = hashlib.sha256(f"{next(_counter)}:{text}".encode()).digest() * 3
    return "Eq" + base64.b64encode(raw).decode()


def dumps(obj) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass
class RecordedRequest:
    path: str  # raw request target, query string included
    headers: dict[str, str]  # lower-case keys
    body: dict
    stream: bool
    method: str = "POST"
    query: dict[str, str] = field(default_factory=dict)
    # the images the request carried, as the server decoded them (mime, width, height, where)
    images: list[tuple[str, int, int, str]] = field(default_factory=list)


@dataclass
class ResolvedCall:
    """A scripted Call with its wire id fixed, shared by the JSON and the streaming renderings."""

    id: str | None  # None: no id on the wire
    name: str
    text: str  # the arguments as a JSON string (verbatim when scripted as a str)
    obj: object  # parsed arguments, or None when `text` is not valid JSON


@dataclass
class Response:
    status: int
    body: object = None
    headers: dict[str, str] = field(default_factory=dict)
    events: list[bytes] | None = None  # a stream when not None
    content_type: str = "application/json"
    cut_after: int | None = None
    chunk_delay: float = 0.0


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    owner: LoopbackServer

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], OSError):  # a client hanging up is not an error
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # TCP_NODELAY on every accepted socket
    server_version = "loopback/1"

    def setup(self):
        super().setup()
        self.server.owner._conns.add(self.connection)

    def finish(self):
        self.server.owner._conns.discard(self.connection)
        super().finish()

    def log_message(self, format, *args):  # quiet
        pass

    def do_POST(self):
        self.server.owner._dispatch(self)

    do_GET = do_PUT = do_DELETE = do_POST

    def read_body(self) -> bytes | None:
        """The request body; None when the client went away before sending all of it (a run
        cancelled mid-request). A real server never sees that as a request, so neither do we."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(parts)
        size = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(size)
        return data if len(data) == size else None


class LoopbackServer:
    """Base class. Subclasses: OpenAIServer, AnthropicServer, GeminiServer."""

    provider = ""
    base_path = ""
    default_model = ""
    terminal_events = 1  # trailing events a `stream_error` replaces (e.g. OpenAI's [DONE])
    cap_finish_reason = ""  # the API's signal for a reply cut at the request's output cap
    retry_after_header = True  # Reply.retry_after -> a Retry-After header
    models_path = ""  # GET here lists `served_models`, as each API's list endpoint does
    # None: every model name is served; a list: the models this key can use, and a request for
    # any other gets the API's own "model not found" (`not_found`)
    served_models: list[str] | None = None

    def __init__(self, script=None, *, strict: bool = False, api_key: str = "sk-test-123"):
        self.strict = strict
        self.api_key = api_key
        self.requests: list[RecordedRequest] = []
        self.failures: list[str] = []
        self._script: deque[Reply] = deque(as_reply(r) for r in script or ())
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- public API ------------------------------------------------------------------------
    def start(self) -> LoopbackServer:
        self._httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name=f"{type(self).__name__}:{self.port}",
        )
        self._thread.start()
        return self

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.base_path}"

    def push(self, *replies: Reply | str) -> None:
        with self._lock:
            self._script.extend(as_reply(r) for r in replies)

    @property
    def kind(self) -> str:
        """One of KINDS ("openai", "openai-strict", "openai-responses"...), as in provider_server."""
        return self.provider + ("-strict" if self.strict else "")

    @property
    def pending(self) -> int:
        """Scripted replies not served yet."""
        return len(self._script)

    def take_failures(self) -> list[str]:
        """Return and clear the recorded failures (for tests that provoke them on purpose)."""
        with self._lock:
            out, self.failures[:] = list(self.failures), []
        return out

    def close(self) -> None:
        """Stop serving, then fail (AssertionError) if any request broke a rule of the API:
        every way out of a server (`close`, `with`, the fixtures) enforces its checks, so no
        test can pass while the library sent something the real API would reject. A test that
        provokes failures on purpose consumes them with `take_failures()` first."""
        self._shutdown()
        self.check()

    def check(self, error: BaseException | None = None) -> None:
        """Raise the recorded failures; with `error` (the test's own exception), attach them to
        it as a note instead, so the first cause stays the one reported."""
        if not self.failures:
            return
        text = f"{self.kind} loopback server saw {len(self.failures)} malformed request(s):\n"
        text += "\n".join(f"  - {f}" for f in self.failures)
        if error is not None:
            error.add_note(text)
            return
        raise AssertionError(text)

    def _shutdown(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        for conn in list(self._conns):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._httpd.server_close()
        self._thread.join(timeout=5)
        self._httpd = None

    def __enter__(self):
        return self.start() if self._httpd is None else self

    def __exit__(self, exc_type, exc, tb):
        self._shutdown()
        self.check(exc)

    # ---- provider hooks --------------------------------------------------------------------
    # Subclasses implement:
    #   route(method, path, query) -> (stream_by_path, model_from_path) | None for unknown endpoints
    #   check_auth(rec) -> (status, message, code) | None
    #   check_request(rec) -> list of problems (each one a recorded failure; any -> a 400)
    #   error_body(status, message, code, reply) -> the provider's JSON error body
    #   call_id() -> a fresh tool-call id in the provider's format (or None: no id)
    #   render_json(reply, calls, rec) -> dict
    #   render_events(reply, calls, rec) -> (framed SSE events incl. terminator, content type)
    #   stream_error_event(message, reply) -> one framed in-stream error event
    def is_stream(self, routed_stream: bool, body: dict) -> bool:
        return body.get("stream") is True

    def remember(self, reply: Reply, calls: list[ResolvedCall]) -> None:
        """Note what a served reply issued (signatures...) for later echo checks."""

    def output_cap(self, body: dict) -> int | None:
        """The output-token cap the request set, in this API's field (None: none)."""
        return None

    def write_until_cap(self, reply: Reply, rec: RecordedRequest) -> Reply:
        """A `until_cap` reply as the API would give it: as many output tokens as the request's
        cap allows (reasoning and calls included, as every API counts them), cut there with the
        API's truncation signal; input tokens counted from the request body, JSON framing and
        all, at CHARS_PER_TOKEN (a real tokenizer counts about that much)."""
        cap = self.output_cap(rec.body) or UNCAPPED_OUTPUT
        reasoning = min(reply.reasoning, cap)
        call_tokens = sum(
            -(-len(c.name + json.dumps(c.arguments)) // CHARS_PER_TOKEN) for c in reply.calls
        )
        words = max(0, cap - reasoning - call_tokens)
        finish = reply.finish_reason if reply.calls else self.cap_finish_reason
        return dataclasses.replace(
            reply,
            text=WORD * words,
            usage=(-(-len(dumps(rec.body)) // CHARS_PER_TOKEN), cap),
            reasoning=reasoning,
            finish_reason=finish,
            text_chunks=reply.text_chunks or min(words, 40) or None,
            until_cap=False,
        )

    def default_message(self, status: int) -> str:
        try:
            return HTTPStatus(status).phrase
        except ValueError:
            return "Error"

    # ---- machinery -------------------------------------------------------------------------
    def resolve(self, call: Call) -> ResolvedCall:
        if isinstance(call.arguments, str):
            text = call.arguments
            try:
                obj = json.loads(text) if text.strip() else {}
            except ValueError:
                obj = None
        else:
            text, obj = json.dumps(call.arguments, ensure_ascii=False), call.arguments
        cid = self.call_id() if call.id is None else (call.id or None)
        return ResolvedCall(cid, call.name, text, obj)

    def fail(self, message: str) -> None:
        with self._lock:
            self.failures.append(message)

    def error(self, status, message=None, code=None, reply=None) -> Response:
        message = message or self.default_message(status)
        headers = {}
        if reply is not None:
            if reply.retry_after is not None and self.retry_after_header:
                ra = reply.retry_after
                headers["retry-after"] = str(int(ra)) if float(ra).is_integer() else str(ra)
            if reply.retry_after_ms is not None:
                headers["retry-after-ms"] = str(reply.retry_after_ms)
            headers.update(reply.headers)
        return Response(status, self.error_body(status, message, code, reply), headers)

    # ---- the model list and "model not found" (each subclass renders its API's shapes) ------
    def requested_model(self, rec: RecordedRequest, routed) -> str:
        return str(rec.body.get("model", ""))

    def render_models(self, ids: list[str]) -> dict:
        raise NotImplementedError

    def not_found(self, model: str) -> Response:
        raise NotImplementedError

    def _respond(self, rec: RecordedRequest, routed, valid_json: bool) -> Response:
        auth = self.check_auth(rec)
        if auth is not None:
            return self.error(*auth)
        if rec.method == "GET" and self.models_path and rec.path.split("?")[0] == self.models_path:
            return Response(200, self.render_models(list(self.served_models or ())))
        if routed is not None and self.served_models is not None:
            model = self.requested_model(rec, routed)
            if model not in self.served_models:
                return self.not_found(model)
        if routed is None:
            self.fail(f"{rec.method} {rec.path}: no such endpoint on the {self.provider} server")
            return self.error(404, f"Unknown endpoint {rec.method} {rec.path}")
        if not valid_json:
            self.fail(f"{rec.path}: request body is not a JSON object")
            return self.error(400, "Request body is not valid JSON")
        problems = self.check_request(rec)
        if problems:
            for p in problems:
                self.fail(f"{rec.path}: {p}")
            return self.error(400, "; ".join(problems))
        with self._lock:
            reply = self._script.popleft() if self._script else None
        if reply is None:
            self.fail(f"{rec.path}: script exhausted (request #{len(self.requests)})")
            return self.error(500, "loopback server: script exhausted")
        if reply.answer is not None:
            reply = dataclasses.replace(reply, text=reply.answer(rec.body), answer=None)
        if reply.until_cap:
            reply = self.write_until_cap(reply, rec)
        if "{images}" in reply.text:  # the model answers from the images it was sent
            reply = dataclasses.replace(reply, text=reply.text.replace("{images}", describe(rec)))
        if reply.delay:
            time.sleep(reply.delay)
        if reply.status != 200:
            return self.error(reply.status, reply.error_message or None, reply.error_code, reply)
        if reply.raw_events is not None and rec.stream:
            events = [e.encode() for e in reply.raw_events]
            return Response(200, None, dict(reply.headers), events, "text/event-stream")
        if reply.raw_body is not None and not rec.stream:
            return Response(200, reply.raw_body.encode(), dict(reply.headers))
        calls = [self.resolve(c) for c in reply.calls]
        self.remember(reply, calls)
        if not rec.stream:
            return Response(
                200,
                self.render_json(reply, calls, rec),
                dict(reply.headers),
                cut_after=reply.cut_after,
            )
        events, ctype = self.render_events(reply, calls, rec)
        cut = reply.cut_after
        if reply.stream_error is not None:
            keep = len(events) - self.terminal_events if cut is None else cut
            events = [*events[:keep], self.stream_error_event(reply.stream_error, reply)]
            cut = None
        return Response(200, None, dict(reply.headers), events, ctype, cut, reply.chunk_delay)

    def _dispatch(self, h: _Handler) -> None:
        split = urlsplit(h.path)
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        headers = {k.lower(): v for k, v in h.headers.items()}
        raw = h.read_body()
        if raw is None:  # the client hung up mid-request: nothing to answer or to check
            h.close_connection = True
            return
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = None
        valid = isinstance(body, dict)
        body = body if valid else {}
        routed = self.route(h.command, split.path, query)
        stream = routed is not None and self.is_stream(routed[0], body)
        rec = RecordedRequest(h.path, headers, body, stream, h.command, query)
        with self._lock:
            self.requests.append(rec)
        try:
            response = self._respond(rec, routed, valid)
        except Exception as exc:  # a bug in a check or renderer: make it loud, not a hang
            self.fail(f"{rec.path}: loopback server crashed: {exc!r}\n{traceback.format_exc()}")
            response = Response(500, {"error": {"message": f"loopback server crashed: {exc!r}"}})
        try:
            self._write(h, response)
        except (BrokenPipeError, ConnectionResetError):  # the client went away mid-response
            h.close_connection = True

    def _head(self, h: _Handler, r: Response, extra: str) -> bytes:
        phrase = "Overloaded" if r.status == 529 else self.default_message(r.status)
        lines = [f"HTTP/1.1 {r.status} {phrase}", f"Content-Type: {r.content_type}", extra]
        lines += [f"{k}: {v}" for k, v in r.headers.items()]
        if h.close_connection:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _write(self, h: _Handler, r: Response) -> None:
        w = h.wfile.write
        if r.events is None:
            data = r.body if isinstance(r.body, bytes) else dumps(r.body)
            head = self._head(h, r, f"Content-Length: {len(data)}")
            if r.cut_after is not None:  # a truncated JSON body, then close
                h.close_connection = True
                w(head + data[: min(len(data) - 1, max(0, r.cut_after))])
            else:
                w(head + data)
            return
        w(self._head(h, r, "Transfer-Encoding: chunked\r\nCache-Control: no-cache"))
        events = r.events if r.cut_after is None else r.events[: r.cut_after]
        for i, ev in enumerate(events):
            if r.chunk_delay and i:
                time.sleep(r.chunk_delay)
            w(b"%x\r\n%b\r\n" % (len(ev), ev))
        if r.cut_after is None:
            w(b"0\r\n\r\n")
        else:
            h.close_connection = True
            try:
                h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
