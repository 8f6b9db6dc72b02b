"""A request body as JSON bytes, where a long list's items are encoded once, not per request.

A conversation resends its whole history on every request, and the history's wire forms do not
change (llm_magic.providers._wire_cache keeps them). Encoding the whole body with `json.dumps`
every time costs a Python-level step per key and value of every message; joining the bytes of
messages encoded when they were new is a copy. A `WireList` is the list a body holds (a plain
list to everything that reads it) that also knows where its items' JSON is kept (`ItemsJSON`);
`encode_body` writes the body with `json.dumps`'s own separators and escapes (`ensure_ascii`
off), so the bytes are the ones `json.dumps(body, ensure_ascii=False).encode()` gives.

A list edited after it was built (an adapter subclass appending a message) is noticed (its items
are compared by identity with the ones whose JSON is kept, at C speed) and encoded as it is.
"""

from __future__ import annotations

import json
import operator
from itertools import islice
from typing import Any, TypeVar

T = TypeVar("T")

# `json.dumps(value, ensure_ascii=False)`, without building an encoder per call
_encode = json.JSONEncoder(ensure_ascii=False).encode


class ItemsJSON:
    """The JSON of each item of a list that is never edited, encoded the first time it is
    asked for. `encoded` covers the first items; it is replaced, never edited, so a longer list
    that begins with these items may start from it (`then`). The items at the indices `live`
    (a message's opaque provider blocks, which are sent as they are now, not as they were) are
    encoded again each time."""

    __slots__ = ("encoded", "items", "live")

    def __init__(
        self, items: list[Any], live: tuple[int, ...] = (), encoded: list[bytes] | None = None
    ) -> None:
        self.items = items
        self.live = live
        self.encoded: list[bytes] = encoded if encoded is not None else []

    def then(self, items: list[Any], live: tuple[int, ...] = ()) -> ItemsJSON:
        """The JSON of `items`, which begin with this list's items (`live`: the new live
        indices): what is known is kept."""
        return ItemsJSON(items, self.live + live, self.encoded)

    def chunks(self) -> list[bytes]:
        """Each item's JSON, in order (the items not encoded yet are encoded now, once)."""
        encoded, items = self.encoded, self.items
        if len(encoded) < len(items):
            new = islice(items, len(encoded), None)
            encoded = self.encoded = encoded + [_encode(x).encode() for x in new]
        if not self.live:
            return encoded
        now = list(encoded)
        for i in self.live:
            now[i] = _encode(items[i]).encode()
        return now


class WireList(list[T]):
    """A list to send, whose items from `start` on are `known.items` (their JSON kept there);
    the items before `start` (a system message put in front) are encoded with the body."""

    __slots__ = ("known", "start")

    def __init__(self, items: list[T], known: ItemsJSON, start: int = 0) -> None:
        super().__init__(items)
        self.known = known
        self.start = start

    def after(self, *head: T) -> WireList[T]:
        """This list with `head` in front (what is known stays known)."""
        return WireList([*head, *self], self.known, self.start + len(head))

    def json(self) -> bytes | None:
        """The list as JSON; None when it was edited since it was built."""
        known, start = self.known, self.start
        if len(self) - start != len(known.items) or not all(
            map(operator.is_, islice(self, start, None), known.items)
        ):
            return None
        head = [_encode(x).encode() for x in islice(self, start)]
        return b"[" + b", ".join(head + known.chunks()) + b"]"


def encode_body(body: dict[str, Any]) -> bytes:
    """`json.dumps(body, ensure_ascii=False).encode()`, with its `WireList`s from their kept JSON."""
    lists = {k: v.json() for k, v in body.items() if isinstance(v, WireList)}
    if not lists or None in lists.values() or not all(type(k) is str for k in body):
        return _encode(body).encode()
    parts = [
        _encode(key).encode() + b": " + (lists.get(key) or _encode(value).encode())
        for key, value in body.items()
    ]
    return b"{" + b", ".join(parts) + b"}"
