"""The neutral message model as JSON, and back: what the log stores and what export writes.

Every field of `Message`, `ToolCall` and `ToolResult` is kept, provider data included (Anthropic
thinking blocks and their signatures, Gemini thought signatures, OpenAI reasoning items), so a
conversation read back continues at its provider exactly as it would have in the kernel that
made it. Dollar amounts are decimal strings: a float would change the cents.
"""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from typing import Any

from ..media import Media
from ..messages import Message, ToolCall, ToolResult, Usage


def media_to_dict(media: Media) -> dict[str, str]:
    return {"mime": media.mime, "data": media.base64(), "name": media.name, "note": media.note}


def media_from_dict(data: dict[str, Any]) -> Media:
    raw = base64.b64decode(str(data["data"]), validate=True)
    return Media(raw, str(data["mime"]), str(data.get("name", "")), str(data.get("note", "")))


def message_to_dict(message: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role, "text": message.text}
    if message.tool_calls:
        out["tool_calls"] = [
            {"id": c.id, "name": c.name, "arguments": c.arguments, "provider_data": c.provider_data}
            for c in message.tool_calls
        ]
    if message.tool_results:
        out["tool_results"] = [
            {
                "call_id": r.call_id,
                "name": r.name,
                "content": r.content,
                "is_error": r.is_error,
                **({"media": [media_to_dict(m) for m in r.media]} if r.media else {}),
            }
            for r in message.tool_results
        ]
    if message.media:
        out["media"] = [media_to_dict(m) for m in message.media]
    if message.provider_data:
        out["provider_data"] = message.provider_data
    return out


def message_from_dict(data: dict[str, Any]) -> Message:
    """A message from its JSON; a missing or wrong field raises ValueError, naming it."""
    try:
        role = data["role"]
        if role not in ("system", "user", "assistant", "tool"):
            raise ValueError(f"unknown role {role!r}")
        return Message(
            role,
            str(data.get("text", "")),
            [
                ToolCall(
                    str(c["id"]),
                    str(c["name"]),
                    str(c.get("arguments", "{}")),
                    dict(c.get("provider_data") or {}),
                )
                for c in data.get("tool_calls") or []
            ],
            [
                ToolResult(
                    str(r["call_id"]),
                    str(r["name"]),
                    str(r["content"]),
                    bool(r.get("is_error")),
                    tuple(media_from_dict(m) for m in r.get("media") or []),
                )
                for r in data.get("tool_results") or []
            ],
            tuple(media_from_dict(m) for m in data.get("media") or []),
            dict(data.get("provider_data") or {}),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a message: {exc!r} in {str(data)[:200]}") from None


def messages_json(messages: list[Message]) -> str:
    return dumps([message_to_dict(m) for m in messages])


def messages_from_json(text: str) -> list[Message]:
    return [message_from_dict(m) for m in json.loads(text)]


def usage_to_dict(usage: Usage) -> dict[str, int]:
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_read_tokens": usage.cache_read_tokens,
        "cache_write_tokens": usage.cache_write_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
    }


def usage_from_dict(data: dict[str, Any] | None) -> Usage:
    data = data or {}
    return Usage(**{k: int(data.get(k) or 0) for k in usage_to_dict(Usage())})


def dollars(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def from_dollars(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def dumps(value: Any) -> str:
    """JSON text; what JSON has no form for (a stray object in provider data) as its str."""
    return json.dumps(value, ensure_ascii=False, default=str)
