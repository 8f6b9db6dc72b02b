"""Each message's wire form, remembered per provider, so a continuation encodes only what is new.

A conversation resends its whole history every turn; the history's messages do not change, so
their wire forms (parsed tool arguments, parsed results, content blocks) are kept while the
message lives (a weak reference: the cache never keeps a conversation alive). A message is the
same message while its fields hold the same objects: nothing in llm_magic edits a message once
it is in a history, and one whose content was replaced (a new text, a new list of results) is
encoded again. An entry holds those field objects, so their identities cannot be reused while it
lives. Wire forms are shared between requests: nothing may edit them.

`encode_all` goes further for an adapter that encodes message by message: it keeps the last
history it encoded, whole, and when the next request's history begins with those very messages
(compared field by field at C speed: `operator.attrgetter`, `map`, `all`), it encodes only
the messages after them. The cost of a continuation then no longer grows with a Python step per
message of history, only with the copy of a list. The list it gives is a `WireList`: the JSON of
each wire form is kept with the history too (llm_magic._json_body), so the body's history is
written by joining bytes, not encoded again.
"""

from __future__ import annotations

import operator
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from .._json_body import ItemsJSON, WireList
from ..messages import Message

T = TypeVar("T")

_fields = operator.attrgetter(
    "role", "text", "tool_calls", "tool_results", "media", "provider_data"
)


def _same(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    return all(x is y for x, y in zip(a, b, strict=True))


@dataclass
class _Sequence:
    """The last history encoded in one kind: each message's fields, and the wire forms in order."""

    fields: list[tuple[Any, ...]]
    wire: ItemsJSON  # the wire forms (`items`), and their JSON once a request was sent
    alive: weakref.ref[Message] | None = None  # the history's last message


class WireCache:
    def __init__(self) -> None:
        self._entries: dict[tuple[int, str], tuple[weakref.ref[Message], tuple[Any, ...], Any]]
        self._entries = {}
        self._sequences: dict[str, _Sequence] = {}

    def __len__(self) -> int:
        return len(self._entries) + len(self._sequences)

    def get(self, msg: Message, kind: str, encode: Callable[[Message], T]) -> T:
        """`encode(msg)`, computed once per message (and `kind` of encoding)."""
        key = (id(msg), kind)
        fields = _fields(msg)
        entry = self._entries.get(key)
        if entry is not None and entry[0]() is msg and _same(entry[1], fields):
            return entry[2]  # type: ignore[no-any-return]
        wire = encode(msg)
        entries = self._entries

        def forget(_: object, key: tuple[int, str] = key) -> None:
            entries.pop(key, None)

        self._entries[key] = (weakref.ref(msg, forget), fields, wire)
        return wire

    def encode_all(
        self, messages: Sequence[Message], kind: str, encode: Callable[[Message], list[T]]
    ) -> WireList[T]:
        """Every message's `encode(msg)`, in one new list; the history of the last call in
        this `kind`, when `messages` begins with it, is not looked at again one by one."""
        last = self._sequences.get(kind)
        known = len(last.fields) if last is not None else 0
        if (
            last is not None
            and 0 < known <= len(messages)
            and all(map(operator.eq, map(_fields, messages[:known]), last.fields))
        ):
            fields, wire = last.fields, list(last.wire.items)
        else:
            fields, wire, known = [], [], 0
        new = messages[known:]
        live: list[int] = []  # provider blocks: sent as they are now (llm_magic._json_body)
        for msg in new:
            start = len(wire)
            wire.extend(self.get(msg, kind, encode))
            if msg.provider_data:
                live += range(start, len(wire))
        if known and last is not None:
            kept = last.wire.then(wire, tuple(live))
        else:
            kept = ItemsJSON(wire, tuple(live))
        self._remember(kind, messages, _Sequence(fields + list(map(_fields, new)), kept))
        return WireList(wire, kept)  # the caller's own list: what is kept is never edited

    def _remember(self, kind: str, messages: Sequence[Message], sequence: _Sequence) -> None:
        """Keep `sequence` while the history's last message lives (a dropped conversation
        takes its sequence with it)."""
        if not messages:
            self._sequences.pop(kind, None)
            return
        sequences = self._sequences

        def forget(_: object) -> None:
            if sequences.get(kind) is sequence:
                del sequences[kind]

        sequence.alive = weakref.ref(messages[-1], forget)
        sequences[kind] = sequence


def cached(cache: WireCache | None, msg: Message, kind: str, encode: Callable[[Message], T]) -> T:
    """`encode(msg)` through `cache` when there is one."""
    return encode(msg) if cache is None else cache.get(msg, kind, encode)
