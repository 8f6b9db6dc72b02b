"""Each message's wire form, remembered per provider, so a continuation encodes only what is new.

A conversation resends its whole history every turn; the history's messages do not change, so
their wire forms (parsed tool arguments, parsed results, content blocks) are kept while the
message lives (a weak reference: the cache never keeps a conversation alive). A message is found
by its identity, and is the same message while its fields hold the same objects: nothing in
llm_magic edits a message once it is in a history, and one whose content was replaced (a new
text, a new list of results) is encoded again. The entry holds those field objects, so their
identities cannot be reused while it lives. Comparing identities costs the same at turn 200 as
at turn 2, where comparing contents grew with each message's text, arguments and results. Wire
forms are shared between requests: nothing may edit them.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from ..messages import Message

T = TypeVar("T")


def _fields(msg: Message) -> tuple[Any, ...]:
    return (msg.role, msg.text, msg.tool_calls, msg.tool_results, msg.provider_data)


def _same(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    return all(x is y for x, y in zip(a, b, strict=True))


class WireCache:
    def __init__(self) -> None:
        self._entries: dict[tuple[int, str], tuple[weakref.ref[Message], tuple[Any, ...], Any]]
        self._entries = {}

    def __len__(self) -> int:
        return len(self._entries)

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


def cached(cache: WireCache | None, msg: Message, kind: str, encode: Callable[[Message], T]) -> T:
    """`encode(msg)` through `cache` when there is one."""
    return encode(msg) if cache is None else cache.get(msg, kind, encode)
