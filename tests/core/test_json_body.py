"""A request body whose history is written from the JSON kept per wire form: the same bytes as
`json.dumps(body, ensure_ascii=False).encode()`, each item encoded once, edits never lost."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from llm_magic._json_body import SHORT, ItemsJSON, WireList, encode_body

KINDS: list[dict[str, Any]] = [
    {"role": "user", "content": 'héllo "quoted"\n\ttab \\ 🙂 \u2028 <b>'},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}
        ],
    },
    {"role": "tool", "tool_call_id": "c1", "content": "1"},
    {"role": "assistant", "content": "", "n": 1.5, "flags": [True, False], "nested": {"k": []}},
]
ITEMS = [{**KINDS[i % len(KINDS)], "i": i} for i in range(SHORT + 4)]


def dumped(body: dict[Any, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode()


def kept(items: list[dict[str, Any]], *head: dict[str, Any]) -> WireList[dict[str, Any]]:
    out = WireList(list(items), ItemsJSON(list(items)))
    return out.after(*head) if head else out


@pytest.mark.parametrize("head", [(), ({"role": "system", "content": "be brief"},)])
@pytest.mark.parametrize("count", [SHORT, len(ITEMS)])
def test_a_body_from_kept_json_is_the_bytes_json_dumps_gives(
    head: tuple[dict[str, Any], ...], count: int
) -> None:
    messages = kept(ITEMS[:count], *head)
    body = {"model": "m", "messages": messages, "stream": False, "temperature": 0.2, "x": None}
    assert messages.json() is not None  # written from what is kept, not encoded whole
    assert encode_body(body) == dumped(body)
    assert messages == [*head, *ITEMS[:count]]  # to everything that reads it, a list


@pytest.mark.parametrize("count", [0, 1, SHORT - 1])
def test_a_short_list_is_encoded_whole_with_its_body(count: int) -> None:
    messages = kept(ITEMS[:count], {"role": "system", "content": "s"})
    body = {"model": "m", "messages": messages}
    assert messages.json() is None and encode_body(body) == dumped(body)


def test_each_run_of_items_is_encoded_once_and_a_longer_list_starts_from_it() -> None:
    first = ItemsJSON(ITEMS[:SHORT])
    pieces = first.pieces()
    longer = first.then(ITEMS[: SHORT + 2])
    again = longer.pieces()
    assert len(pieces) == 1 and len(again) == 2 and again[0] is pieces[0]
    assert longer.pieces() is again  # asked again: nothing encoded again
    whole = json.dumps(ITEMS[: SHORT + 2], ensure_ascii=False).encode()
    assert b"[" + b", ".join(again) + b"]" == whole


EDITS: dict[str, Callable[[list[Any]], None]] = {
    "appended": lambda items: items.append({"role": "user", "content": "more"}),
    "replaced": lambda items: items.__setitem__(1, {"role": "assistant", "content": "new"}),
    "removed": lambda items: items.pop(0),
    "inserted": lambda items: items.insert(0, {"role": "system", "content": "first"}),
    "reversed": lambda items: items.reverse(),
}


@pytest.mark.parametrize("edit", EDITS)
def test_a_list_edited_after_it_was_built_is_sent_as_it_is_now(edit: str) -> None:
    messages = kept(ITEMS, {"role": "system", "content": "s"})
    messages.json()  # its JSON kept first
    EDITS[edit](messages)
    body = {"messages": messages}
    assert messages.json() is None
    assert json.loads(encode_body(body)) == {"messages": list(messages)}
    assert encode_body(body) == dumped(body)


def test_live_items_are_sent_as_they_are_now_not_as_they_were() -> None:
    """A message's opaque provider blocks are sent as they are when the request goes out."""
    block = {"type": "reasoning", "encrypted_content": "sealed"}
    items = [*ITEMS[:3], block, *ITEMS[3:]]
    known = ItemsJSON(items, live=(3,))
    assert b"sealed" in b"".join(known.pieces())
    del block["encrypted_content"]
    body = {"input": WireList(items, known)}
    assert b"sealed" not in encode_body(body) and encode_body(body) == dumped(body)
    longer = known.then([*items, block, ITEMS[0]], live=(len(items),))
    body = {"input": WireList(list(longer.items), longer)}
    assert encode_body(body) == dumped(body)
    block["encrypted_content"] = "again"
    assert encode_body(body).count(b"again") == 2 and encode_body(body) == dumped(body)


def test_a_body_json_dumps_would_write_differently_is_encoded_whole() -> None:
    """A key that is not a string (json.dumps writes 1 as "1") takes the plain path."""
    body = {"messages": kept(ITEMS), 1: "one"}
    assert encode_body(body) == dumped(body)
