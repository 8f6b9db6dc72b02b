"""The timeline's entries: what the widget gets for each model turn and each tool call, and
the caches that keep a long run cheap to show (a finished call's line, title and detail, and a
turn's text, are rendered once while they do not change).

A timeline keeps one `Entries` per run it shows; a re-run shown in the same view gets a new one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable
from typing import Any

from ..records import ToolCallRecord
from . import render as R
from .reducer import HEAD, RunState
from .values import given_json, pretty_json

FINISHED = ("ok", "error", "denied", "cancelled")


class Entries:
    """The entries of one run's state, rendered and cached.

    asking: ids of the calls whose approval card is shown (the timeline's pending questions);
    code_arguments: a tool's arguments the card highlights as Python (by the tool's name).
    opened: keys of the calls whose details the front end shows. editable_ids: the finished
    calls offering Edit & re-run (none until the view offers edits); edit_errors: per call key,
    the attempt and the message of the last refused edit.
    """

    def __init__(
        self,
        state: RunState,
        asking: Collection[str],
        code_arguments: Callable[[str], Collection[str]] = lambda name: (),
    ) -> None:
        self.state = state
        self.asking = asking
        self.code_arguments = code_arguments  # a tool's arguments that are Python source
        self.opened: set[str] = set()
        self.editable_ids: set[str] = set()
        self.edit_errors: dict[str, tuple[int, str]] = {}
        self._details: dict[str, tuple[Any, str]] = {}
        self._texts: dict[str, tuple[Any, str]] = {}
        self._lines: dict[str, tuple[str, str]] = {}  # call id -> (status/thread, line HTML)
        self._titles: dict[str, str] = {}
        self._sent_text: dict[str, str] = {}  # turn key -> the text HTML the front end has
        self._sent_turns: dict[str, tuple[str, str, bool]] = {}  # turn key -> line, label, fold

    def detail_html(self, rec: ToolCallRecord) -> str:
        """Detail markup of a call, cached while the call's state does not change."""
        key = (rec.status, rec.ended_at, rec.reason, rec.thread)
        cached = self._details.get(rec.id)
        if cached is not None and cached[0] == key:
            return cached[1]
        markup = R.call_detail_html(rec)
        self._details[rec.id] = (key, markup)
        return markup

    def line(self, rec: ToolCallRecord, now: float | None = None) -> str:
        """A call's line; a finished call's line no longer changes and is rendered once."""
        if rec.status not in FINISHED:
            return R.call_line_html(rec, now)
        cached = self._lines.get(rec.id)
        state = f"{rec.status}/{rec.thread}"  # a let-go thread's end changes a finished line
        if cached is None or cached[0] != state:
            cached = self._lines[rec.id] = (state, R.call_line_html(rec))
        return cached[1]

    def _title(self, rec: ToolCallRecord) -> str:
        title = self._titles.get(rec.id)
        if title is None and rec.arguments is not None:
            title = self._titles[rec.id] = R.call_title(rec)
        return title if title is not None else R.call_title(rec)

    def _turn_text(self, key: str) -> str:
        """A turn's text as HTML, rendered again only when the text or its status changed
        (a call event marks its turn for the group label, not for the text)."""
        turn = self.state.turns[int(key[1:])]
        signature = (len(turn.parts), turn.final_text is not None, turn.status)
        cached = self._texts.get(key)
        if cached is not None and cached[0] == signature:
            return cached[1]
        text = turn.text
        markup = R.turn_text_html(text, turn.status == "streaming", turn.partial) if text else ""
        self._texts[key] = (signature, markup)
        return markup

    def entries(self, key: str, now: float, full: bool = False) -> Iterable[dict[str, Any]]:
        index = int(key[1:])
        state = self.state
        if key[0] == "t":
            turn = state.turns[index]
            entry: dict[str, Any] = {
                "id": key,
                "kind": "turn",
                "title": f"turn {turn.step}",
                "line": R.turn_line_html(turn, now),
                "group": R.group_label_html(turn) if len(turn.calls) > 1 else "",
                "fold": len(turn.calls) > R.FOLD_GROUP,
            }
            text = self._turn_text(key)
            if full or self._sent_text.get(key) != text:
                entry["text"] = self._sent_text[key] = text
            # a call event marks its turn (for the group label): a turn whose line and label
            # did not change is not sent again
            shown = (entry["line"], entry["group"], entry["fold"])
            if full or "text" in entry or self._sent_turns.get(key) != shown:
                self._sent_turns[key] = shown
                yield entry
            return
        rec = state.calls[index]
        parent = state.parents.get(rec.id)
        entry = {
            "id": key,
            "kind": "call",
            "parent": parent.key if parent is not None else "",
            "title": self._title(rec),
            "status": rec.status,
            "line": self.line(rec, now),
        }
        if rec.id in self.asking and rec.status == "awaiting_approval":
            args = R.approval_args_html(rec, self.code_arguments(rec.name))
            entry["approval"] = {"name": rec.name, "args": args}
        if key in self.opened:
            entry["detail"] = self.detail_html(rec)
            entry["copy"] = R.copy_texts(rec)
        if rec.id in self.editable_ids and rec.status in FINISHED:
            entry["edit"] = pretty_json(rec.arguments if rec.arguments is not None else {})
            entry["given"] = given_json(rec)
            attempt, error = self.edit_errors.get(key, (0, ""))
            entry["edit_error"], entry["edit_try"] = error, attempt
        yield entry

    def snapshot(self) -> list[dict[str, Any]]:
        """Every entry, in order (a view that opens late)."""
        now = time.monotonic()
        keys = [t.key for t in self.state.turns] + list(self.state.keys.values())
        return [e for k in sorted(keys, key=self.order) for e in self.entries(k, now, full=True)]

    def order(self, key: str) -> tuple[int, int]:
        """Turns before calls (a call's turn must exist first); a branch's calls made before
        the first turn (a re-run call) before everything."""
        if key == HEAD:
            return (-2, 0)
        index = int(key[1:])
        if key[0] == "t":
            return (0, index)
        return (-1 if self.state.calls[index].id not in self.state.parents else 1, index)
