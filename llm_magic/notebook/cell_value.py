"""A chain's result as a cell's value: sanitized, and the answer shown once.

`%load_ext llm_magic` registers an HTML formatter for `ChainResult` on the shell (`unload`
removes it). The model's answer is Markdown the model wrote, maybe steered by a tool's result
(prompt injection): it is rendered with raw HTML off and sanitized, never passed on as
`text/markdown` for the front end to render with its HTML. When a live timeline already shows the
answer, the cell value is one quiet line that points there instead of a second copy; its
`text/plain` stays the answer, for `jupyter console`, nbclient and tests.
"""

from __future__ import annotations

import sys
import weakref
from typing import Any

from ..results import ChainResult

_shown: weakref.WeakSet[ChainResult[Any]] = weakref.WeakSet()


def mark_shown(result: ChainResult[Any]) -> None:
    """The timeline showed this result's answer."""
    _shown.add(result)


def no_answer(result: ChainResult[Any]) -> str | None:
    """Why a run ended without an answer, with the limit's figures; None when it answered.

    The last turn's text of a run a limit or a cancel stopped is what the model said before
    calling tools, not an answer, so it is never presented as one."""
    status = result.status
    options = result.options
    turn = len(result.turns) + 1
    if status == "done":
        return None if result.text else "the model ended its turn without any text"
    if status == "max_cost":
        return result.stop_reason or f"stopped by max_cost before turn {turn}"
    if status in ("max_steps", "max_tool_calls"):
        limit = getattr(options, status, None)
        figure = f" ({limit})" if limit is not None else ""
        n = len(result.turns)
        return f"stopped by {status}{figure} after {n} turn{'s' if n != 1 else ''}"
    if status == "timeout":
        limit = getattr(options, "timeout", None)
        return f"stopped by the timeout ({limit} s) during turn {turn}" if limit else "timed out"
    if status == "cancelled":
        n = len(result.turns)
        if n and result.turns[-1].finish_reason == "cancelled":
            return f"cancelled while the model was writing turn {n}; its partial text is kept"
        return f"cancelled before the model answered, after {n} turn{'s' if n != 1 else ''}"
    if status == "failed":
        error = result.error
        return f"the run failed: {type(error).__name__}: {error}" if error else "the run failed"
    return f"the run ended as {status}"


def result_html(result: ChainResult[Any]) -> str | None:
    from .look import FONT, MUTED, NO_MATH, esc  # with the first result shown, not at `%load_ext`

    calls = len(result.tool_calls)
    what = f"{calls} tool call{'s' if calls != 1 else ''} · " if calls else ""
    why = no_answer(result)
    if why is not None:
        return (
            f'<div class="llm-result-ref llm-no-answer {NO_MATH}" style="{FONT};{MUTED};font-size:12px">'
            f"ChainResult · {esc(result.status)} · {esc(what)}no answer: {esc(why)}</div>"
        )
    if result in _shown:
        return (
            f'<div class="llm-result-ref {NO_MATH}" style="{FONT};{MUTED};font-size:12px">'
            f"ChainResult · {esc(result.status)} · {esc(what)}the answer is in the timeline above "
            f"(<code>.text</code>)</div>"
        )
    if not result.text:
        return None
    from .values import markdown_html

    return (
        f'<div class="jp-RenderedHTMLCommon llm-answer" style="{FONT};overflow-wrap:anywhere">'
        f"{markdown_html(result.text)}</div>"
    )


def _no_markdown(result: ChainResult[Any]) -> None:
    return None


def result_text(result: ChainResult[Any]) -> str:
    """A result as terminal IPython's `Out[]` shows it: one line when the run's text view
    printed the answer already (or why there is none), else the answer, rendered with rich
    when it is installed and the output is a terminal."""
    calls = len(result.tool_calls)
    what = f" · {calls} tool call{'s' if calls != 1 else ''}" if calls else ""
    why = no_answer(result)
    if why is not None:
        return f"<ChainResult {result.status}{what} · no answer: {why}>"
    if result.output is not None:  # a typed answer: its repr, not the JSON text again
        return repr(result)
    if result in _shown:
        return f"<ChainResult {result.status}{what} · the answer is printed above (.text)>"
    from .terminal_markdown import can_render, render_text

    if can_render(sys.stdout):
        return render_text(result.text)
    return result.text


def _print_text(result: ChainResult[Any], printer: Any, _cycle: bool) -> None:
    printer.text(result_text(result))


def register(shell: Any) -> None:
    formatters = shell.display_formatter.formatters
    formatters["text/html"].for_type(ChainResult, result_html)
    formatters["text/markdown"].for_type(ChainResult, _no_markdown)
    if getattr(shell, "kernel", None) is None:  # terminal IPython: a kernel's stays the answer
        formatters["text/plain"].for_type(ChainResult, _print_text)


def unregister(shell: Any) -> None:
    formatters = shell.display_formatter.formatters
    printers = (("text/html", result_html), ("text/markdown", _no_markdown))
    for mime, func in (*printers, ("text/plain", _print_text)):
        if formatters[mime].type_printers.get(ChainResult) is func:
            formatters[mime].pop(ChainResult)
