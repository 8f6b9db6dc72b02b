"""Each message's wire form, remembered per provider, so a continuation encodes only what is new.

A conversation resends its whole history every turn; the history's messages do not change, so
their wire forms (parsed tool arguments, parsed results, content blocks) are kept while the
message lives (a weak reference: the cache never keeps a conversation alive). A message whose
content was replaced is encoded again: its content is part of the key, and comparing unchanged
strings is an identity check. Wire forms are shared between requests: nothing may edit them.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from ..messages import Message

T = TypeVar("T")


def _fingerprint(msg: Message) -> tuple[Any, ...]:
    return (
        msg.role,
        msg.text,
        tuple((c.id, c.name, c.arguments, id(c.provider_data)) for c in msg.tool_calls),
        tuple((r.call_id, r.name, r.content, r.is_error, r.media) for r in msg.tool_results),
        msg.media,
        id(msg.provider_data),
    )


class WireCache:
    def __init__(self) -> None:
        self._entries: dict[tuple[int, str], tuple[weakref.ref[Message], tuple[Any, ...], Any]]
        self._entries = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, msg: Message, kind: str, encode: Callable[[Message], T]) -> T:
        """`encode(msg)`, computed once per message (and `kind` of encoding)."""
        key = (id(msg), kind)
        fingerprint = _fingerprint(msg)
        entry = self._entries.get(key)
        if entry is not None and entry[0]() is msg and entry[1] == fingerprint:
            return entry[2]  # type: ignore[no-any-return]
        wire = encode(msg)
        entries = self._entries

        def forget(_: object, key: tuple[int, str] = key) -> None:
            entries.pop(key, None)

        self._entries[key] = (weakref.ref(msg, forget), fingerprint, wire)
        return wire


def cached(cache: WireCache | None, msg: Message, kind: str, encode: Callable[[Message], T]) -> T:
    """`encode(msg)` through `cache` when there is one."""
    return encode(msg) if cache is None else cache.get(msg, kind, encode)
