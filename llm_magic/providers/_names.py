"""Tool names as every provider accepts them on the wire, and back.

OpenAI and Anthropic take `^[a-zA-Z0-9_-]{1,64}$`; Gemini takes a letter or underscore first,
then `[a-zA-Z0-9_.:-]`, up to 128 characters. A Python identifier such as `température`, or one
longer than 64 characters, fits none of them. Such a name is sent as an ASCII stem plus a short
hash of the original (deterministic, so a conversation's history maps the same way on every
turn) and mapped back when the model calls it; valid names are sent unchanged.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import unicodedata

from ..messages import Message, ModelRequest, ModelTurn, ToolSpec

VALID = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_-]{0,63}$")
_BAD = re.compile(r"[^a-zA-Z0-9_]+")


def wire_name(name: str) -> str:
    """`name` when every provider accepts it, else a valid stand-in unique to `name`."""
    if VALID.match(name):
        return name
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    stem = _BAD.sub("_", ascii_name).strip("_")[:50] or "tool"
    if not (stem[0].isalpha() or stem[0] == "_"):
        stem = "t_" + stem
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    return f"{stem[:52]}_{digest}"


class WireNames:
    """The name mapping of one request: `encode` the request, `decode` the turn it got."""

    def __init__(self, tools: list[ToolSpec]) -> None:
        self.back = {wire_name(t.name): t.name for t in tools}
        self.needed = any(wire != name for wire, name in self.back.items())

    def encode(self, request: ModelRequest) -> ModelRequest:
        if not self.needed and not _history_needs(request.messages):
            return request
        choice = request.tool_choice
        if choice not in (None, "auto", "none", "required"):
            choice = wire_name(choice)
        return dataclasses.replace(
            request,
            tools=[dataclasses.replace(t, name=wire_name(t.name)) for t in request.tools],
            messages=[_encode_message(m) for m in request.messages],
            tool_choice=choice,
        )

    def decode(self, turn: ModelTurn) -> ModelTurn:
        if self.needed:
            for call in turn.tool_calls:
                call.name = self.back.get(call.name, call.name)
        return turn


def _history_needs(messages: list[Message]) -> bool:
    return any(not VALID.match(c.name) for m in messages for c in m.tool_calls) or any(
        not VALID.match(r.name) for m in messages for r in m.tool_results if r.name
    )


def _encode_message(msg: Message) -> Message:
    """A copy with wire names (the conversation keeps the Python names)."""
    if not msg.tool_calls and not msg.tool_results:
        return msg
    return dataclasses.replace(
        msg,
        tool_calls=[dataclasses.replace(c, name=wire_name(c.name)) for c in msg.tool_calls],
        tool_results=[
            dataclasses.replace(r, name=wire_name(r.name) if r.name else r.name)
            for r in msg.tool_results
        ],
    )
