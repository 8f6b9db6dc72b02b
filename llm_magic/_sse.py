"""Server-sent events, decoded incrementally from chunks cut at any boundary.

One event per network chunk is the usual shape of a model's stream, so the per-line work is
written out in `feed` (a 2,000-token answer is 4,000 lines): `_field` takes the rare lines.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

# SSE is UTF-8 by definition (WHATWG HTML, "Parsing an event stream"): the codec found once
_UTF8 = codecs.getincrementaldecoder("utf-8")


@dataclass(slots=True)
class SSEEvent:
    event: str
    data: str


class SSEDecoder:
    """Feed text chunks, get complete events. Handles \\n, \\r\\n and \\r line ends."""

    __slots__ = ("_buf", "_data", "_event", "_pending_cr", "_utf8")

    def __init__(self) -> None:
        self._buf = ""
        self._data: list[str] = []
        self._event = ""
        self._pending_cr = False
        # UTF-8 whatever the content type says; a character cut between chunks is decoded whole
        self._utf8 = _UTF8("replace")

    def feed_bytes(self, chunk: bytes) -> list[SSEEvent]:
        """`feed` for raw bytes, a multi-byte character split across chunks included."""
        return self.feed(self._utf8.decode(chunk))

    def feed(self, chunk: str) -> list[SSEEvent]:
        if not chunk:  # an empty chunk must not forget a pending \r
            return []
        if (  # the usual chunk, one whole `data:` event and nothing pending: no split, no loop
            chunk.endswith("\n\n")
            and chunk.startswith("data: ")
            and not self._buf
            and not self._data
            and not self._event
            and chunk.count("\n") == 2
            and "\r" not in chunk
        ):
            self._pending_cr = False
            return [SSEEvent("message", chunk[6:-2])]
        if self._pending_cr and chunk.startswith("\n"):
            chunk = chunk[1:]  # the \n of a \r\n split across chunks
        self._pending_cr = chunk.endswith("\r")
        buf = self._buf + chunk
        if "\r" in buf:
            buf = buf.replace("\r\n", "\n").replace("\r", "\n")
        lines = buf.split("\n")
        self._buf = lines.pop()
        out: list[SSEEvent] = []
        data = self._data
        for line in lines:
            if line.startswith("data: "):
                data.append(line[6:])
            elif not line:
                event = self._dispatch()
                if event is not None:
                    out.append(event)
                    data = self._data
            else:
                self._field(line)
        return out

    def flush(self) -> list[SSEEvent]:
        """End of stream: a trailing event without its blank line is still delivered."""
        out = self.feed(self._utf8.decode(b"", final=True))
        if self._buf:
            self._field(self._buf)
            self._buf = ""
        event = self._dispatch()
        if event is not None:
            out.append(event)
        return out

    def _dispatch(self) -> SSEEvent | None:
        """A blank line: the event gathered so far, if any."""
        if not self._data and not self._event:
            return None
        event = SSEEvent(self._event or "message", "\n".join(self._data))
        self._data, self._event = [], ""
        return event

    def _field(self, line: str) -> None:
        """A line that is not blank: a comment, or a field (`data`, `event`; others ignored)."""
        if line.startswith(":"):
            return
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
