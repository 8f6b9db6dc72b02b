"""The contenders the benchmark times side by side, and the loopback server they all talk to.

Each contender runs the same chain (two model turns around one `add_one` tool call) and the same
streamed answer, against bench/server.py:

* `Raw`: hand-written HTTP/1.1 over asyncio streams + `json`, one kept-alive connection. The
  floor: what no HTTP library can beat, so the distance from bare httpx2 to the limit shows.
* `Bare`: one `httpx2.AsyncClient`, bodies built by hand. What a careful person writes with
  httpx2, llm_magic's HTTP stack: the baseline (key `bare_httpx`, kept so that runs before and
  after the move from httpx compare). `Bare(stack="httpx")` is the same loop on httpx 0.x and
  httpcore 1 (`bare_httpx_legacy`), where httpx is installed: how the two stacks differ.
* `Magic`: llm_magic's `get_async_model(...).chain(...)`.
* `LLM`: the `llm` library's async OpenAI model, as shipped (a new OpenAI client, so a new HTTP
  client and SSL context, per request), and with `reuse_client=True` one client cached per model,
  to tell the engine's cost from that per-request set-up.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PROMPT = "Use the tool on 1, then tell me the answer."
ONE_TOOL_S = 0.2
API_KEY = "sk-bench"

# -- the tools ---------------------------------------------------------------------------------
CALLS = {"n": 0}


def add_one(x: int) -> int:
    """Add one to x."""
    CALLS["n"] += 1
    return x + 1


def slow_sync(x: int) -> int:
    """Wait 0.2 seconds (blocking), then return x."""
    time.sleep(ONE_TOOL_S)
    return x


async def slow_async(x: int) -> int:
    """Wait 0.2 seconds (async), then return x."""
    await asyncio.sleep(ONE_TOOL_S)
    return x


TOOL_SPEC = {
    "type": "function",
    "function": {
        "name": "add_one",
        "description": "Add one to x.",
        "parameters": {
            "type": "object",
            "properties": {"x": {"type": "integer"}},
            "required": ["x"],
        },
    },
}


# -- the server --------------------------------------------------------------------------------
class Server:
    """bench/server.py in its own process (so it never competes for this process's GIL)."""

    def __enter__(self) -> Server:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.server", "--port", "0"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            self.proc.kill()
            raise RuntimeError(f"bench server did not start: {line!r}")
        self.port = int(line.split()[1])
        return self

    def url(self, mode: str) -> str:
        return f"http://127.0.0.1:{self.port}/{mode}/v1"

    def connections(self) -> int:
        """How many TCP connections the server has accepted so far (its `/stats` path)."""
        with socket.create_connection(("127.0.0.1", self.port)) as sock:
            sock.sendall(b"POST /stats HTTP/1.1\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
        return int(json.loads(data.split(b"\r\n\r\n", 1)[1])["connections"])

    def __exit__(self, *exc: Any) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def setup_llm(server: Server, modes: list[str], tmp: Path) -> Any:
    """The llm library, with one model per server mode in a temporary user directory."""
    os.environ["LLM_USER_PATH"] = str(tmp)
    lines = []
    for mode in modes:
        lines += [
            f"- model_id: bench-{mode}",
            "  model_name: bench",
            f"  api_base: {server.url(mode)}",
            "  api_key_name: bench",
            "  supports_tools: true",
        ]
    (tmp / "extra-openai-models.yaml").write_text("\n".join(lines) + "\n")
    (tmp / "keys.json").write_text(json.dumps({"bench": API_KEY}))
    import llm

    return llm


# -- the wire format, shared by the two hand-written contenders ----------------------------------
def request_body(messages: list[dict[str, Any]], stream: bool, tools: bool = True) -> bytes:
    body: dict[str, Any] = {"model": "bench", "messages": messages, "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}
    if tools:
        body["tools"] = [TOOL_SPEC]
    return json.dumps(body).encode()


class Accumulator:
    """Folds streamed Chat Completions chunks into the assistant message, as a person would."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.calls: dict[int, dict[str, Any]] = {}
        self.deltas = 0

    def feed(self, data: bytes | str) -> None:
        if data == "[DONE]" or data == b"[DONE]":
            return
        for choice in json.loads(data)["choices"]:
            delta = choice["delta"]
            if delta.get("content"):
                self.text.append(delta["content"])
                self.deltas += 1
            for tc in delta.get("tool_calls") or ():
                slot = self.calls.setdefault(tc["index"], {"id": "", "name": "", "arguments": ""})
                slot["id"] = slot["id"] or tc.get("id") or ""
                fn = tc.get("function") or {}
                slot["name"] = slot["name"] or fn.get("name") or ""
                slot["arguments"] += fn.get("arguments") or ""

    def message(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": "".join(self.text) or None}
        if self.calls:
            message["tool_calls"] = [
                {
                    "id": c["id"],
                    "type": "function",
                    "function": {"name": c["name"], "arguments": c["arguments"]},
                }
                for _, c in sorted(self.calls.items())
            ]
        return message


async def hand_chain(
    turn: Callable[[list[dict[str, Any]]], Any], history: list[dict[str, Any]] | None = None
) -> str:
    """The chain loop both hand-written contenders share: turn, run the tool inline, repeat.
    `history`: a conversation to continue (appended to), else a new one."""
    messages: list[dict[str, Any]] = [] if history is None else history
    messages.append({"role": "user", "content": PROMPT})
    while True:
        message = await turn(messages)
        messages.append(message)
        if not message.get("tool_calls"):
            return str(message["content"])
        for call in message["tool_calls"]:
            result = add_one(**json.loads(call["function"]["arguments"]))
            messages.append(
                {"role": "tool", "tool_call_id": call["id"], "content": json.dumps(result)}
            )


WRITE_PROMPT = [{"role": "user", "content": "Write."}]


# -- the contenders ----------------------------------------------------------------------------
class Raw:
    """Hand-written HTTP/1.1 over one kept-alive asyncio stream: the floor for any library."""

    name = "raw_socket"

    def __init__(self, server: Server) -> None:
        self.port = server.port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _send(self, path: str, body: bytes) -> tuple[asyncio.StreamReader, dict[str, str]]:
        if self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
            self.writer.get_extra_info("socket").setsockopt(
                socket.IPPROTO_TCP, socket.TCP_NODELAY, 1
            )
        assert self.reader is not None
        head = (
            f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1:{self.port}\r\n"
            f"authorization: Bearer {API_KEY}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        lines = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        if lines[0].split(" ", 2)[1] != "200":
            raise RuntimeError(f"raw: {lines[0]}")
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        return self.reader, headers

    async def _json(self, path: str, body: bytes) -> dict[str, Any]:
        reader, headers = await self._send(path, body)
        data: dict[str, Any] = json.loads(await reader.readexactly(int(headers["content-length"])))
        return data

    async def _sse(self, path: str, body: bytes) -> AsyncIterator[bytes]:
        """The `data:` payloads of a chunked SSE body, read to its end (the connection lives)."""
        reader, headers = await self._send(path, body)
        assert headers.get("transfer-encoding") == "chunked"
        buffer = b""
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            if size == 0:
                await reader.readline()  # the CRLF after the last chunk (no trailers)
                return
            buffer += (await reader.readexactly(size + 2))[:-2]
            *events, buffer = buffer.split(b"\n\n")
            for event in events:
                for line in event.split(b"\n"):
                    if line.startswith(b"data: "):
                        yield line[6:]

    async def _turn(self, messages: list[dict[str, Any]], stream: bool) -> dict[str, Any]:
        path = "/chain/v1/chat/completions"
        if not stream:
            data = await self._json(path, request_body(messages, False))
            message: dict[str, Any] = data["choices"][0]["message"]
            return message
        acc = Accumulator()
        async for data in self._sse(path, request_body(messages, True)):
            acc.feed(data)
        return acc.message()

    async def chain(self, stream: bool) -> str:
        return await hand_chain(lambda messages: self._turn(messages, stream))

    async def stream_events(self, mode: str) -> int:
        acc = Accumulator()
        body = request_body(WRITE_PROMPT, True, tools=False)
        async for data in self._sse(f"/{mode}/v1/chat/completions", body):
            acc.feed(data)
        return acc.deltas

    async def aclose(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()


class Bare:
    """What a careful person writes by hand with httpx2 (or, `stack="httpx"`, with httpx): the
    floor for any library on that stack."""

    def __init__(self, server: Server, transport: Any = None, stack: str = "httpx2") -> None:
        import importlib

        http = importlib.import_module(stack)
        self.name = "bare_httpx" if stack == "httpx2" else f"bare_{stack}_legacy"
        self.server = server
        self.client = http.AsyncClient(
            headers={"authorization": f"Bearer {API_KEY}"},
            transport=transport,
            # llm_magic's default (_http.py): the stack's own 5 s pool timeout fails 1,000 chains
            # queued on 100 connections with PoolTimeout
            timeout=http.Timeout(600.0, connect=10.0),
        )

    async def _turn(self, messages: list[dict[str, Any]], stream: bool) -> dict[str, Any]:
        url = self.server.url("chain") + "/chat/completions"
        headers = {"content-type": "application/json"}
        content = request_body(messages, stream)
        if not stream:
            r = await self.client.post(url, content=content, headers=headers)
            message: dict[str, Any] = json.loads(r.content)["choices"][0]["message"]
            return message
        acc = Accumulator()
        async with self.client.stream("POST", url, content=content, headers=headers) as r:
            # read to the end of the body (no break at [DONE]): a response closed before its
            # last chunk takes its connection out of the pool
            async for line in r.aiter_lines():
                if line.startswith("data: "):
                    acc.feed(line[6:])
        return acc.message()

    async def chain(self, stream: bool, history: list[dict[str, Any]] | None = None) -> str:
        return await hand_chain(lambda messages: self._turn(messages, stream), history)

    async def stream_events(self, mode: str) -> int:
        url = self.server.url(mode) + "/chat/completions"
        body = request_body(WRITE_PROMPT, True, tools=False)
        acc = Accumulator()
        headers = {"content-type": "application/json"}
        async with self.client.stream("POST", url, content=body, headers=headers) as r:
            async for line in r.aiter_lines():
                if line.startswith("data: "):
                    acc.feed(line[6:])
        return acc.deltas

    async def aclose(self) -> None:
        await self.client.aclose()


class Magic:
    """llm_magic as shipped: its sync tool runs on a worker thread. `on_loop=True` runs it on
    the loop's thread instead (`Tool.from_function(add_one, on_loop=True)`), as the hand-written
    contenders do, to compare the engines alone."""

    def __init__(self, server: Server, on_loop: bool = False, **options: Any) -> None:
        import llm_magic

        self.lm = llm_magic
        self.name = "llm_magic_on_loop_tool" if on_loop else "llm_magic"
        self.tool: Any = llm_magic.Tool.from_function(add_one, on_loop=True) if on_loop else add_one
        self.server = server
        self.options = options  # e.g. transport=..., passed to get_async_model
        self.models: dict[str, Any] = {}

    def model(self, mode: str) -> Any:
        if mode not in self.models:
            self.models[mode] = self.lm.get_async_model(
                "openai-chat:bench", base_url=self.server.url(mode), api_key=API_KEY, **self.options
            )
        return self.models[mode]

    async def chain(self, stream: bool) -> str:
        result = await self.model("chain").chain(PROMPT, tools=[self.tool], stream=stream)
        if result.status != "done" or len(result.tool_calls) != 1:
            raise AssertionError(f"llm_magic chain: {result.status}, {result.tool_calls}")
        return str(result.text)

    async def tools(self, fn: Callable[..., Any], mode: str) -> str:
        result = await self.model(mode).chain(PROMPT, tools=[fn])
        if result.status != "done" or not all(r.status == "ok" for r in result.tool_calls):
            raise AssertionError(f"llm_magic tools: {result.status}, {result.tool_calls}")
        return str(result.text)

    async def stream_events(self, mode: str) -> int:
        from llm_magic.events import TextDelta

        count = 0
        async for event in self.model(mode).chain("Write.", stream=True):
            if isinstance(event, TextDelta):
                count += 1
        return count

    async def aclose(self) -> None:
        for model in self.models.values():
            await model.aclose()


class LLM:
    """The `llm` library; `reuse_client=True` caches its OpenAI client per model."""

    def __init__(self, llm: Any, reuse_client: bool = False) -> None:
        self.llm = llm
        self.reuse_client = reuse_client
        self.name = "llm_reused_client" if reuse_client else "llm"
        self.models: dict[str, Any] = {}

    def model(self, mode: str) -> Any:
        if mode not in self.models:
            model = self.llm.get_async_model(f"bench-{mode}")
            if self.reuse_client:
                model = _with_cached_client(model)
            self.models[mode] = model
        return self.models[mode]

    async def chain(self, stream: bool) -> str:
        before = CALLS["n"]
        text = await self.model("chain").chain(PROMPT, tools=[add_one], stream=stream).text()
        if CALLS["n"] != before + 1 or "42" not in text:
            raise AssertionError(f"llm chain: {CALLS['n'] - before} calls, {text!r}")
        return str(text)

    async def tools(self, fn: Callable[..., Any], mode: str) -> str:
        return str(await self.model(mode).chain(PROMPT, tools=[fn]).text())

    async def stream_events(self, mode: str) -> int:
        count = 0
        async for _chunk in self.model(mode).prompt("Write.", stream=True):
            count += 1
        return count

    async def aclose(self) -> None:
        for model in self.models.values():
            client = getattr(model, "_bench_client", None)
            if client is not None:
                await client.close()


def _with_cached_client(model: Any) -> Any:
    """A copy of an llm model whose `get_client` builds its OpenAI client once, then reuses it
    (as shipped, llm builds a new one, with a new HTTP client and SSL context, per request)."""
    import copy

    clone = copy.copy(model)
    build = model.get_client

    def get_client(*args: Any, **kwargs: Any) -> Any:
        if getattr(clone, "_bench_client", None) is None:
            clone._bench_client = build(*args, **kwargs)
        return clone._bench_client

    clone.get_client = get_client
    return clone


def legacy_bare(server: Server) -> list[Bare]:
    """The bare loop on httpx 0.x, if installed (information beside the httpx2 baseline)."""
    import importlib.util

    return [Bare(server, stack="httpx")] if importlib.util.find_spec("httpx") else []


def unlogged() -> None:
    """Turn llm_magic's run log off for this process (unless the environment chose): the
    per-chain figures compare llm_magic with bare loops that write no log, and
    bench/log_cost.py reports what the log adds."""
    os.environ.setdefault("LLM_MAGIC_LOG", "0")
