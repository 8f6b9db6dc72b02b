"""The runs a view showed before the one it shows now, each kept as its static timeline.

A re-run made from a live view (Edit & re-run) is shown in that same view, below the runs it
showed: the original first, then each branch, oldest first, each under a title that says what
it is. The live widget shows them above the current run (`history_html`); the saved timeline
stacks them all (`bundle`), so a saved notebook keeps every branch.
"""

from __future__ import annotations

from . import render as R
from .branch_view import branch_title_html, stack_html
from .entries import Entries
from .reducer import RunState


class RunStack:
    """A view's earlier runs: (title, HTML, text) each, oldest first.

    holder: who holds the first run shown (named in its title once a re-run stacks below it).
    """

    def __init__(self) -> None:
        self.holder = "the cell's result"
        self.past: list[tuple[str, str, str]] = []

    def title(self, number: int, state: RunState) -> str:
        if number == 0:
            return f"original run · {self.holder} holds this run"
        return f"branch {number} · {state.branch or 'a re-run'}"

    def push(self, number: int, state: RunState, entries: Entries) -> None:
        """Keep run `number` (shown now, as `state`) as a static section of the stack."""
        title = self.title(number, state)
        html = R.static_html(state, entries.detail_html, entries.line)
        self.past.append((title, branch_title_html(title) + html, R.static_text(state)))

    def history_html(self, number: int, state: RunState) -> str:
        """The live view's runs above the current one, and the current one's title."""
        if not self.past:
            return ""
        return "".join(p[1] for p in self.past) + branch_title_html(self._newest(number, state))

    def _newest(self, number: int, state: RunState) -> str:
        return f"{self.title(number, state)} · the newest: the notebook's last result"

    def bundle(self, number: int, state: RunState, entries: Entries) -> dict[str, str]:
        """The static timeline of every run the view showed, the current one (`number`) last."""
        text = R.static_text(state)
        html = R.static_html(state, entries.detail_html, entries.line)
        if self.past:
            title = self._newest(number, state)
            html = stack_html([p[1] for p in self.past], title, html)
            text = "\n\n".join([*(f"{t}\n{x}" for t, _h, x in self.past), f"{title}\n{text}"])
        return {"text/plain": text, "text/html": html}
