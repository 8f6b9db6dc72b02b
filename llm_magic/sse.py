"""Server-sent events, decoded incrementally from text chunks cut at any boundary."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass


@dataclass(slots=True)
class SSEEvent:
    event: str
    data: str


class SSEDecoder:
    """Feed text chunks, get complete events. Handles \\n, \\r\\n and \\r line ends."""

    __slots__ = ("_buf", "_data", "_event", "_pending_cr")

    def __init__(self) -> None:
        self._buf = ""
        self._data: list[str] = []
        self._event = ""
        self._pending_cr = False

    def feed(self, chunk: str) -> list[SSEEvent]:
        if not chunk:  # an empty chunk must not forget a pending \r
            return []
        if self._pending_cr and chunk.startswith("\n"):
            chunk = chunk[1:]  # the \n of a \r\n split across chunks
        self._pending_cr = chunk.endswith("\r")
        buf = self._buf + chunk
        if "\r" in buf:
            buf = buf.replace("\r\n", "\n").replace("\r", "\n")
        lines = buf.split("\n")
        self._buf = lines.pop()
        out: list[SSEEvent] = []
        for line in lines:
            event = self._line(line)
            if event is not None:
                out.append(event)
        return out

    def flush(self) -> list[SSEEvent]:
        """End of stream: a trailing event without its blank line is still delivered."""
        out = []
        if self._buf:
            event = self._line(self._buf)
            self._buf = ""
            if event is not None:
                out.append(event)
        event = self._line("")
        if event is not None:
            out.append(event)
        return out

    def _line(self, line: str) -> SSEEvent | None:
        if not line:
            if not self._data and not self._event:
                return None
            event = SSEEvent(self._event or "message", "\n".join(self._data))
            self._data, self._event = [], ""
            return event
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        return None


async def aiter_sse(chunks: AsyncIterator[str]) -> AsyncIterator[SSEEvent]:
    decoder = SSEDecoder()
    async for chunk in chunks:
        for event in decoder.feed(chunk):
            yield event
    for event in decoder.flush():
        yield event
