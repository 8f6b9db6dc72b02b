"""The tool-name mapping of one request: Python names out, wire names back.

The rule and the stand-ins are `llm_magic._tool_names` (shared with MCP's `server_tool` names);
this module applies them to a request's tools, tool choice and history, and maps the model's
calls back.
"""

from __future__ import annotations

import dataclasses
import functools

from .._tool_names import WIRE_NAME, wire_name, wire_names
from ..messages import Message, ModelRequest, ModelTurn, ToolSpec
from ._wire_cache import WireCache


class WireNames:
    """The name mapping of one request: `encode` the request, `decode` the turn it got."""

    def __init__(self, tools: list[ToolSpec]) -> None:
        self.forward, self.back, self.needed = _mapping(tuple([t.name for t in tools]))

    def encode(self, request: ModelRequest, cache: WireCache | None = None) -> ModelRequest:
        """The request with wire names; `cache` remembers which history messages need none."""
        if not self.needed and not _history_needs(request.messages, cache):
            return request
        choice = request.tool_choice
        if choice not in (None, "auto", "none", "required"):
            choice = self.wire(choice)
        return dataclasses.replace(
            request,
            tools=[dataclasses.replace(t, name=self.wire(t.name)) for t in request.tools],
            messages=[self._encode_message(m) for m in request.messages],
            tool_choice=choice,
        )

    def wire(self, name: str) -> str:
        """The name this request's tools sent for `name`; history of other tools maps alone."""
        return self.forward.get(name) or wire_name(name)

    def decode(self, turn: ModelTurn) -> ModelTurn:
        if self.needed:
            for call in turn.tool_calls:
                call.name = self.back.get(call.name, call.name)
        return turn

    def _encode_message(self, msg: Message) -> Message:
        """A copy with wire names (the conversation keeps the Python names)."""
        if not msg.tool_calls and not msg.tool_results:
            return msg
        return dataclasses.replace(
            msg,
            tool_calls=[dataclasses.replace(c, name=self.wire(c.name)) for c in msg.tool_calls],
            tool_results=[
                dataclasses.replace(r, name=self.wire(r.name) if r.name else r.name)
                for r in msg.tool_results
            ],
        )


@functools.lru_cache(maxsize=256)
def _mapping(names: tuple[str, ...]) -> tuple[dict[str, str], dict[str, str], bool]:
    """The names' wire names, the way back, and whether any differs: made once per set of
    names (a run sends the same tools every turn); read only, never edited."""
    forward = wire_names(names)
    back = {wire: name for name, wire in forward.items()}
    return forward, back, any(wire != name for wire, name in back.items())


def _history_needs(messages: list[Message], cache: WireCache | None) -> bool:
    """Whether a message of the history names a tool by a name no API takes (a tool since
    renamed); asked once per message, since a history's messages do not change."""
    if cache is None:
        return any(_needs(m) for m in messages)
    return bool(cache.encode_all(messages, "names", _needy))


def _needy(msg: Message) -> list[Message]:
    return [msg] if _needs(msg) else []


def _needs(msg: Message) -> bool:
    return any(not WIRE_NAME.match(c.name) for c in msg.tool_calls) or any(
        not WIRE_NAME.match(r.name) for r in msg.tool_results if r.name
    )
