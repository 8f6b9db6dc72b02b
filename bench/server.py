"""A minimal scripted OpenAI-compatible server for the benchmark (loopback, zero added latency).

It needs no script: it answers by looking at the request.

* the last message is a `tool` message, or the request has no tools -> a short final text answer;
* otherwise -> tool call(s) of the first tool named in the request, arguments `{"x": i}`.

The mode is the first path segment of the base URL, so one server serves every benchmark:

    /chain/v1/chat/completions     one tool call, then the final answer
    /par8/v1/chat/completions      8 parallel calls in one turn (any /parN/), then the answer
    /long2000/v1/chat/completions  a text answer of 2,000 one-token deltas (any /longN/)

`"stream": true` gets the same content as SSE chunks (`Transfer-Encoding: chunked`, one chunk and
one socket write per SSE event, the status line and headers going out with the first event);
a non-streaming response is one write (status line, headers, body) with Content-Length.
HTTP/1.1 keep-alive; `TCP_NODELAY` on every accepted socket; no authentication check.
`POST /stats` answers `{"connections": n}`, the TCP connections accepted so far, so a benchmark
can tell a pool that reuses its connections from one that churns them.

It runs in its own process (`python -m bench.server` prints `PORT <n>`), so it never shares a
GIL with the code being measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import socket
import sys
from functools import lru_cache

_MODE = re.compile(rb"^/(chain|par(\d+)|long(\d+))(/v1)?/chat/completions$")
_USAGE = {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}
FINAL_TEXT = ["The ", "answer ", "is ", "42", "."]
_WORDS = ["lorem ", "ipsum ", "dolor ", "sit ", "amet ", "consectetur ", "adipiscing ", "elit "]


def _dumps(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _chunk(delta: dict, finish: str | None = None) -> dict:
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "bench",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


def _calls(tool: str, n: int) -> list[dict]:
    return [
        {
            "id": f"call_bench{i:04d}",
            "type": "function",
            "function": {"name": tool, "arguments": _dumps({"x": i}).decode()},
        }
        for i in range(n)
    ]


@lru_cache(maxsize=256)
def render_json(kind: str, tool: str, n: int) -> bytes:
    """The whole non-streaming response (head and body) for a (kind, tool, n)."""
    if kind == "calls":
        message = {"role": "assistant", "content": None, "tool_calls": _calls(tool, n)}
        finish = "tool_calls"
    else:
        text = "".join(FINAL_TEXT if kind == "final" else (_WORDS[i % 8] for i in range(n)))
        message = {"role": "assistant", "content": text}
        finish = "stop"
    body = _dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": 1700000000,
            "model": "bench",
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
            ],
            "usage": _USAGE,
        }
    )
    head = (
        f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    ).encode()
    return head + body


@lru_cache(maxsize=256)
def render_stream(kind: str, tool: str, n: int, usage: bool) -> tuple[bytes, ...]:
    """The streaming response as the list of writes: one HTTP chunk per SSE event."""
    events: list[dict] = []
    if kind == "calls":
        for i, call in enumerate(_calls(tool, n)):
            head = {
                "index": i,
                "id": call["id"],
                "type": "function",
                "function": {"name": tool, "arguments": ""},
            }
            delta: dict = {"tool_calls": [head]}
            if i == 0:
                delta = {"role": "assistant", "content": None, **delta}
            events.append(_chunk(delta))
            args = call["function"]["arguments"]
            events.append(_chunk({"tool_calls": [{"index": i, "function": {"arguments": args}}]}))
        events.append(_chunk({}, "tool_calls"))
    else:
        pieces = FINAL_TEXT if kind == "final" else [_WORDS[i % 8] for i in range(n)]
        events.append(_chunk({"role": "assistant", "content": ""}))
        events.extend(_chunk({"content": p}) for p in pieces)
        events.append(_chunk({}, "stop"))
    if usage:
        events.append({**_chunk({}), "choices": [], "usage": _USAGE})
    frames = [b"data: " + _dumps(e) + b"\n\n" for e in events] + [b"data: [DONE]\n\n"]
    writes = [b"%x\r\n%b\r\n" % (len(f), f) for f in frames]
    writes[0] = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
        b"transfer-encoding: chunked\r\n\r\n" + writes[0]
    )
    writes[-1] += b"0\r\n\r\n"
    return tuple(writes)


def _error(status: int, message: str) -> bytes:
    body = _dumps({"error": {"message": message, "type": "invalid_request_error"}})
    return (
        f"HTTP/1.1 {status} Error\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode() + body


def respond(path: bytes, body: dict) -> bytes | tuple[bytes, ...]:
    """The bytes to write for one request (a tuple: one write each)."""
    m = _MODE.match(path.split(b"?", 1)[0])
    if m is None:
        return _error(404, f"unknown path {path.decode(errors='replace')}")
    messages = body.get("messages") or [{}]
    tools = body.get("tools") or []
    if m.group(3):
        kind, n = "long", int(m.group(3))
    elif not tools or messages[-1].get("role") == "tool":
        kind, n = "final", 0
    else:
        kind, n = "calls", int(m.group(2) or 1)
    tool = tools[0]["function"]["name"] if kind == "calls" else ""
    if body.get("stream"):
        usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return render_stream(kind, tool, n, usage)
    return render_json(kind, tool, n)


class _Protocol(asyncio.Protocol):
    accepted = 0  # connections accepted since start (POST /stats)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        _Protocol.accepted += 1
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while self._one():
            pass

    def _one(self) -> bool:
        """Serve one complete request from the buffer; False when more bytes are needed."""
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return False
        head = bytes(self.buf[:end]).split(b"\r\n")
        method, path, _ = head[0].split(b" ", 2)
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        start = end + 4
        if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
            body, consumed = _dechunk(self.buf, start)
            if body is None:
                return False
        else:
            length = int(headers.get(b"content-length", b"0") or 0)
            if len(self.buf) < start + length:
                return False
            body, consumed = bytes(self.buf[start : start + length]), start + length
        del self.buf[:consumed]
        try:
            payload = json.loads(body) if body else {}
        except ValueError:
            payload = None
        if path == b"/stats":
            out: bytes | tuple[bytes, ...] = _stats()
        elif method != b"POST" or not isinstance(payload, dict):
            out = _error(400, "POST a JSON object")
        else:
            out = respond(path, payload)
        write = self.transport.write
        if isinstance(out, bytes):
            write(out)
        else:
            for piece in out:
                write(piece)
        if headers.get(b"connection", b"").lower() == b"close":
            self.transport.close()
            return False
        return True


def _stats() -> bytes:
    body = _dumps({"connections": _Protocol.accepted})
    return (
        f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    ).encode() + body


def _dechunk(buf: bytearray, pos: int) -> tuple[bytes | None, int]:
    parts = []
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None, 0
        size = int(bytes(buf[pos:eol]).split(b";")[0] or b"0", 16)
        if size == 0:
            end = buf.find(b"\r\n", eol + 2)  # no trailers expected: the final CRLF
            return (b"".join(parts), end + 2) if end >= 0 else (None, 0)
        if len(buf) < eol + 2 + size + 2:
            return None, 0
        parts.append(bytes(buf[eol + 2 : eol + 2 + size]))
        pos = eol + 2 + size + 2


async def serve(port: int = 0) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Protocol, "127.0.0.1", port, backlog=512)
    actual = server.sockets[0].getsockname()[1]
    print(f"PORT {actual}", flush=True)
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    async with server:
        await stop


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    asyncio.run(serve(args.port))
    sys.exit(0)


if __name__ == "__main__":
    main()
