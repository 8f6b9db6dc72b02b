"""A saved run: what the log keeps of one run, the same whether written, read or exported.

Plain data only (text, numbers, the neutral messages): never the Python objects a tool returned
(their text, as the model saw it, is kept), never a key. `to_dict` / `from_dict` are the export
format, `llm_magic.run` version 1.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ..messages import Message, Usage
from .codec import (
    dollars,
    from_dollars,
    message_from_dict,
    message_to_dict,
    usage_from_dict,
    usage_to_dict,
)

FORMAT = "llm_magic.run"
FORMAT_VERSION = 1


@dataclass
class SavedCall:
    """One tool call: what the model asked, what the model saw back, how it ended, when."""

    call_id: str
    name: str
    arguments: str
    output: str
    status: str
    step: int = 0
    turn: int | None = None  # index of the model turn that made it; None: a branch's first calls
    started: float | None = None  # seconds after the run started
    ended: float | None = None
    server: str | None = None
    error: str | None = None
    truncated: bool = False


@dataclass
class SavedTurn:
    """One model turn: its text, usage and cost, and when it ran (seconds after the start)."""

    text: str = ""
    usage: Usage = field(default_factory=Usage)
    cost: Decimal | None = None
    finish_reason: str | None = None
    started: float | None = None
    ended: float | None = None
    priced: bool = False


@dataclass
class SavedRun:
    """One run as the log keeps it (see the module docstring)."""

    model: str
    provider: str
    prompt: str
    status: str
    messages: list[Message]
    model_id: str | None = None  # what `get_async_model` made it from (`openai-chat:gpt-4.1`)
    started_at: float = 0.0  # Unix time
    elapsed: float = 0.0
    base_url: str | None = None
    system: str | None = None
    stop_reason: str | None = None
    error: str | None = None
    answer: str = ""
    step_ends: list[int] = field(default_factory=list)
    turns: list[SavedTurn] = field(default_factory=list)
    tools: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    cost: Decimal | None = Decimal(0)
    conversation_cost: Decimal | None = Decimal(0)
    notebook: str | None = None
    cell: str | None = None
    branched_from: int | None = None  # the logged run this one branched from
    branch: dict[str, Any] | None = None  # step, kind, call_id, arguments
    calls: list[SavedCall] = field(default_factory=list)
    id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out.update(
            format=FORMAT,
            version=FORMAT_VERSION,
            messages=[message_to_dict(m) for m in self.messages],
            turns=[turn_to_dict(t) for t in self.turns],
            usage=usage_to_dict(self.usage),
            cost=dollars(self.cost),
            conversation_cost=dollars(self.conversation_cost),
            calls=[dataclasses.asdict(c) for c in self.calls],
        )
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SavedRun:
        """A run from its export; a wrong format or field raises ValueError, naming it."""
        if data.get("format") != FORMAT:
            raise ValueError(f"not an exported llm_magic run (format {data.get('format')!r})")
        if int(data.get("version", 0)) > FORMAT_VERSION:
            raise ValueError(f"exported by a newer llm_magic (version {data.get('version')})")
        names = {f.name for f in dataclasses.fields(cls)}
        plain = {k: v for k, v in data.items() if k in names}
        try:
            plain.update(
                messages=[message_from_dict(m) for m in data["messages"]],
                turns=[turn_from_dict(t) for t in data.get("turns") or []],
                usage=usage_from_dict(data.get("usage")),
                cost=from_dollars(data.get("cost")),
                conversation_cost=from_dollars(data.get("conversation_cost")),
                calls=[SavedCall(**c) for c in data.get("calls") or []],
                id=None,
            )
            return cls(**plain)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not an exported llm_magic run: {exc!r}") from None


def turn_to_dict(turn: SavedTurn) -> dict[str, Any]:
    return {
        "text": turn.text,
        "usage": usage_to_dict(turn.usage),
        "cost": dollars(turn.cost),
        "finish_reason": turn.finish_reason,
        "started": turn.started,
        "ended": turn.ended,
        "priced": turn.priced,
    }


def turn_from_dict(data: dict[str, Any]) -> SavedTurn:
    return SavedTurn(
        text=str(data.get("text", "")),
        usage=usage_from_dict(data.get("usage")),
        cost=from_dollars(data.get("cost")),
        finish_reason=data.get("finish_reason"),
        started=data.get("started"),
        ended=data.get("ended"),
        priced=bool(data.get("priced")),
    )
