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
# Items: a list this short is encoded whole with its body; each encoder call costs about as
# much as a few messages, so the kept pieces pay only from about this length on.
SHORT = 8


def _inner(value: list[Any] | dict[str, Any]) -> bytes:
    """The JSON of a non-empty list or dict without its brackets or braces: its items or
    fields as they sit inside a longer one, in one encoder call."""
    return _encode(value).encode()[1:-1]


class ItemsJSON:
    """The JSON of a list that is never edited, kept in pieces: each the JSON of the run of
    items one request added (encoded in one call, the first time it is asked for), so a longer
    list that begins with these items (`then`) encodes only what follows them. The items at the
    indices `live` (a message's opaque provider blocks, sent as they are now, not as they were)
    are pieces of their own, encoded again each time."""

    __slots__ = ("items", "kept", "live")

    def __init__(
        self,
        items: list[Any],
        live: tuple[int, ...] = (),
        kept: tuple[list[bytes], int, tuple[tuple[int, int], ...]] = ([], 0, ()),
    ) -> None:
        self.items = items
        self.live = live  # ascending
        # The pieces, how many items they cover, and (piece, item) of each live item: one
        # tuple, replaced whole and never edited, so no reader sees half of an update.
        self.kept = kept

    def then(self, items: list[Any], live: tuple[int, ...] = ()) -> ItemsJSON:
        """The JSON of `items`, which begin with this list's items (`live`: the new live
        indices): what is kept is kept."""
        return ItemsJSON(items, self.live + live, self.kept)

    def pieces(self) -> list[bytes]:
        """The pieces, joined by ", " the items' JSON (the items not encoded yet encoded now)."""
        pieces, covered, live_at = self.kept
        items = self.items
        if covered < len(items):
            pieces, at = list(pieces), list(live_at)
            start = covered
            for i in self.live:
                if i >= covered:
                    if i > start:
                        pieces.append(_inner(items[start:i]))
                    at.append((len(pieces), i))
                    pieces.append(b"")  # encoded as it is at each call, below
                    start = i + 1
            if start < len(items):
                pieces.append(_inner(items[start:]))
            live_at = tuple(at)
            self.kept = (pieces, len(items), live_at)
        if not live_at:
            return pieces
        now = list(pieces)
        for piece, i in live_at:
            now[piece] = _encode(items[i]).encode()
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
        """The list as JSON from its kept pieces; None when it is better encoded whole: it is
        short (`SHORT`), or it was edited since it was built."""
        known, start = self.known, self.start
        if len(known.items) < SHORT:
            return None
        if len(self) - start != len(known.items) or not all(
            map(operator.is_, islice(self, start, None), known.items)
        ):
            return None
        head = [_inner(self[:start])] if start else []
        return b"[" + b", ".join(head + known.pieces()) + b"]"


def encode_body(body: dict[str, Any]) -> bytes:
    """`json.dumps(body, ensure_ascii=False).encode()`, with its `WireList`s from their kept JSON
    (the other fields encoded together, a run of them per call)."""
    lists = {k: v.json() for k, v in body.items() if isinstance(v, WireList)}
    if not lists or None in lists.values() or not all(type(k) is str for k in body):
        return _encode(body).encode()
    parts: list[bytes] = []
    run: dict[str, Any] = {}
    for key, value in body.items():
        kept = lists.get(key)
        if kept is None:
            run[key] = value
            continue
        if run:
            parts.append(_inner(run))
            run = {}
        parts.append(_encode(key).encode() + b": " + kept)
    if run:
        parts.append(_inner(run))
    return b"{" + b", ".join(parts) + b"}"
