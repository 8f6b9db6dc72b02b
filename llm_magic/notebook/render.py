"""The timeline's HTML and text, one renderer for the live widget and the saved notebook.

Fragments carry classes whose rules are in static/entries.css (`styles`): the live widget loads
that stylesheet, and `static_html` carries it once, with plain inline fallbacks for viewers that
drop `<style>`. Every fragment escapes what the model and the tools wrote and holds no script:
the live widget's front end places these fragments and adds the interaction (toggles, copy,
approval); a saved notebook shows `static_html`, where `<details>` does the folding without any
script (GitHub, nbviewer, VS Code, JupyterLab with no kernel). Nothing here imports ipywidgets.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from ..cost import format_cost
from ..records import ToolCallRecord
from .branch_view import branch_html, branch_lines
from .highlight import python_html
from .look import (
    MATH,
    NO_MATH,
    STATUS,
    esc,
    fmt_duration,
    fmt_int,
    glyph,
    live_duration,
    pill,
    plural,
    shorten,
    untrusted_safe,
)
from .reducer import RunState, TurnState
from .styles import style_block, with_fallbacks
from .thumbnails import FULL_SIZE, THUMBNAIL, attachments_html, media_html
from .values import (
    arg_summary,
    arguments_json,
    error_html,
    folded,
    markdown_html,
    outcome_summary,
    pre,
    pretty_json,
    result_json,
    rich_html,
    thread_parts,
    traceback_html,
)

FOLD_GROUP = 10  # a parallel group larger than this starts folded, with a summary line
LISTED_FAILURES = 5
STATIC_DETAILS = 200  # the saved timeline keeps details of this many calls (and every failure)


def _label(text: str) -> str:
    return f'<div class="llm-label">{esc(text)}</div>'


def call_title(rec: ToolCallRecord, width: int = 60) -> str:
    """`get_weather(city="Paris")`: what the toggles and the approval card name."""
    return f"{rec.name}({arg_summary(rec, width)})"


# -- tool calls ---------------------------------------------------------------------------------


def _sent_as_shown(rec: ToolCallRecord) -> bool:
    """True when the text the model got is the result exactly as the view shows it."""
    import json

    if rec.truncated or rec.status != "ok":
        return False
    value = rec.result
    if isinstance(value, str):
        return rec.output == value
    if isinstance(value, dict | list | int | float | bool) or value is None:
        try:
            return bool(json.loads(rec.output) == value)
        except ValueError:
            return False
    return False


def server_badge_html(rec: ToolCallRecord) -> str:
    """ "MCP · units" before a call of an MCP server's tool (which server ran it); nothing for a
    notebook function. It never shrinks; a long server name is shortened."""
    if not rec.server:
        return ""
    return (
        f'<span class="llm-server" title="a tool of the MCP server {esc(rec.server)}">'
        f"MCP · {esc(shorten(rec.server, 24))}</span>"
    )


def call_line_html(rec: ToolCallRecord, now: float | None = None) -> str:
    """The collapsed line: glyph, tool name and arguments, outcome, status pill, duration.

    Name and outcome shrink (ellipsis); the pill and the duration never do. `now`: the live
    view's clock, for the running time of a call that has not ended.
    """
    outcome = outcome_summary(rec)
    outcome_html = f'<span class="llm-outcome">→ {esc(outcome)}</span>' if outcome else ""
    strike = " llm-struck" if rec.status == "cancelled" else ""
    truncated = (
        '<span class="llm-trunc" title="the text sent to the model was truncated; the full result '
        'is in the details">truncated for the model</span>'
        if rec.truncated
        else ""
    )
    name = (
        f'<b class="llm-err">{esc(rec.name)}</b>'
        if rec.status == "error"
        else f"<b>{esc(rec.name)}</b>"
    )
    if rec.duration is not None:
        took = esc(fmt_duration(rec.duration))
    elif rec.status == "running" and rec.started_at is not None and now is not None:
        took = live_duration(max(0.0, now - rec.started_at))
    else:
        took = ""
    return (
        f'<div class="llm-line">{glyph(rec.status)}{server_badge_html(rec)}'
        f'<span class="llm-call-name{strike}">{name}<span class="llm-m">(</span>'
        f'{esc(arg_summary(rec))}<span class="llm-m">)</span></span>{outcome_html}'
        f'<span class="llm-end">{truncated}{pill(rec.status)}</span>'
        f'<span class="llm-duration">{took}</span></div>'
    ) + (media_html(rec.media, THUMBNAIL) if rec.media else "")


def approval_args_html(rec: ToolCallRecord, code: Collection[str] = ()) -> str:
    """The arguments of a call awaiting approval, readable: strings as text, not JSON; those
    named in `code` (Python source, such as run_python's) highlighted as Python."""
    args = rec.arguments
    if not isinstance(args, dict):
        return pre(arguments_json(rec))
    if not args:
        return '<div class="llm-m">no arguments</div>'
    rows = []
    for key, value in args.items():
        shown = value if isinstance(value, str) else pretty_json(value)
        if key in code and isinstance(value, str):
            rows.append(f"{_arg_name(key)}<td>{python_html(shorten_block(value))}</td></tr>")
            continue
        rows.append(
            f'{_arg_name(key)}<td style="padding:1px 0">'
            f'<div class="llm-arg-value">{esc(shorten_block(shown))}</div></td></tr>'
        )
    return f'<table class="llm-args-table">{"".join(rows)}</table>'


def _arg_name(key: str) -> str:
    return f'<tr><th class="llm-arg-name">{esc(key)}</th>'


def shorten_block(text: str, limit: int = 4_000) -> str:
    return text if len(text) <= limit else text[:limit] + f"\n[… {fmt_int(len(text) - limit)} more]"


def call_detail_html(rec: ToolCallRecord, result_markup: str | None = None) -> str:
    """The expanded part: arguments, rich result, text sent to the model, error and traceback."""
    parts = [_label("arguments"), f'<div class="llm-args">{pre(arguments_json(rec))}</div>']
    same = _sent_as_shown(rec)
    shown_as_sent = rec.media and not hasattr(rec.result, "__llm_output__")  # the image itself
    if rec.status == "ok" and not shown_as_sent:
        kind = type(rec.result).__name__
        parts += [_label(f"result · {kind}" + (" · sent to the model as is" if same else ""))]
        shown = result_markup if result_markup is not None else rich_html(rec.result)
        parts.append(f'<div class="llm-result">{shown}</div>')
    if rec.status == "error":
        err = rec.error
        title = f"{type(err).__name__}: {err}" if err is not None else rec.output
        parts += [_label("error"), error_html(title)]
        if rec.traceback:
            parts += [_label("traceback"), traceback_html(rec.traceback)]
    if rec.reason and rec.status in ("denied", "cancelled"):
        parts += [_label("reason"), f'<div class="llm-fg">{esc(rec.reason)}</div>']
    parts += thread_parts(rec, _label)
    if rec.media:
        kind = f"result · {type(rec.result).__name__} · " if shown_as_sent else ""
        parts += [_label(f"{kind}images sent to the model"), media_html(rec.media, FULL_SIZE)]
    if rec.status in ("ok", "error", "denied", "cancelled") and not same:
        sent = "sent to the model"
        if rec.truncated:
            sent += " · truncated for the model (the full result is above)"
        parts += [_label(sent), folded(rec.output)]
    meta = [f"id {rec.id}", f"turn {rec.step}"]
    if rec.server:
        meta.append(f"MCP server {rec.server}")
    if rec.implementation:
        meta.append(f"{rec.implementation} implementation")
    if rec.duration is not None:
        meta.append(fmt_duration(rec.duration))
    parts.append(f'<div class="llm-meta">{esc(" · ".join(meta))}</div>')
    return f'<div class="llm-detail-body">{"".join(parts)}</div>'


def copy_texts(rec: ToolCallRecord) -> dict[str, str]:
    """What the copy buttons put on the clipboard."""
    return {"arguments": arguments_json(rec), "call": result_json(rec)}


# -- model turns ----------------------------------------------------------------------------------


def turn_bits(turn: TurnState, now: float | None = None) -> list[str]:
    bits = []
    if turn.status == "streaming":
        bits.append("writing…")
    elif turn.status != "done":
        bits.append(turn.status)
    if turn.duration is not None:
        bits.append(fmt_duration(turn.duration))
    if turn.usage is not None and (turn.usage.input_tokens or turn.usage.output_tokens):
        bits.append(
            f"{fmt_int(turn.usage.input_tokens)} in / {fmt_int(turn.usage.output_tokens)} out tokens"
        )
    elif turn.usage_lost:
        bits.append(UNKNOWN_TOKENS)
    if turn.priced:
        bits.append(turn_cost_text(turn))
    if turn.calls:
        bits.append(plural(len(turn.calls), "tool call"))
    return bits


UNKNOWN_TOKENS = "tokens unknown (cut off before the provider reported them)"


def turn_cost_text(turn: TurnState) -> str:
    """A turn's cost, and why it is unknown when it is."""
    why = "no token count" if turn.usage_lost else "no price for this model"
    return format_cost(turn.cost) if turn.cost is not None else f"cost unknown ({why})"


def turn_line_html(turn: TurnState, now: float | None = None) -> str:
    running = ""
    if turn.status == "streaming" and now is not None:
        running = f" · {live_duration(max(0.0, now - turn.started_at))}"
    return (
        f'<div class="llm-line">{pill("model")}<b class="llm-turn-name">turn {turn.step}</b>'
        f'<span class="llm-bits">{esc(" · ".join(turn_bits(turn)))}{running}</span></div>'
    )


def turn_text_html(text: str, streaming: bool = False, partial: bool = False) -> str:
    """A model's text as Markdown, also while it streams (the live view re-renders it, throttled);
    a cursor while it streams, a note when the run stopped it half-way."""
    cursor = '<span class="llm-cursor" aria-hidden="true">▍</span>' if streaming else ""
    note = (
        '<div class="llm-partial">partial: the run was cancelled while the model was writing</div>'
        if partial
        else ""
    )
    # break-word, not anywhere: a long word or link still wraps, but a table's cells keep their
    # words whole (anywhere lets them shrink to a letter a line); what is wider than the box (a
    # wide table or code line) scrolls inside it instead of spilling out of the timeline
    return f'<div class="jp-RenderedHTMLCommon llm-answer {MATH}">{markdown_html(text)}{cursor}{note}</div>'


def group_label_html(turn: TurnState) -> str:
    """ "4 parallel calls", and for a big group the outcome counts and the failures by name."""
    n = len(turn.calls)
    head = f"{n} parallel calls"
    counts = [
        f"{turn.counts[s]} {STATUS[s][0]}"
        for s in ("ok", "error", "denied", "cancelled", "running", "awaiting_approval", "queued")
        if turn.counts.get(s)
    ]
    if counts and n > FOLD_GROUP:
        head += " · " + ", ".join(counts)
    failures = ""
    if n > FOLD_GROUP and turn.failed:
        items = "".join(
            f'<li class="llm-failure">{esc(call_title(r, 40))} → {esc(outcome_summary(r, 60))}</li>'
            for r in turn.failed[:LISTED_FAILURES]
        )
        more = len(turn.failed) - LISTED_FAILURES
        if more > 0:
            items += f'<li class="llm-failure-more">… and {more} more</li>'
        failures = f'<ul class="llm-failures">{items}</ul>'
    return f'<div class="llm-group-label">{esc(head)}{failures}</div>'


# -- the header -----------------------------------------------------------------------------------


def header_stats(state: RunState, now: float | None = None) -> list[str]:
    """Turns, tool calls by outcome, elapsed time, tokens (the elapsed time live if `now`)."""
    n = len(state.calls)
    bits = [plural(len(state.turns), "turn")]
    if n:
        calls = plural(n, "tool call")
        detail = [
            f"{state.counts[s]} {STATUS[s][0]}"
            for s in ("ok", "error", "denied", "cancelled", "running", "queued")
            if state.counts.get(s)
        ]
        if detail and not (len(detail) == 1 and state.counts.get("ok") == n):
            calls += f" ({', '.join(detail)})"
        bits.append(calls)
    if state.waiting:
        bits.append(f"{state.waiting} need{'s' if state.waiting == 1 else ''} approval")
    used = state.usage
    tokens = f"{fmt_int(used.input_tokens)} in / {fmt_int(used.output_tokens)} out tokens"
    if state.usage_lost:  # a cut turn's tokens were billed, not counted
        counted = used.input_tokens or used.output_tokens
        tokens = f"{tokens} + a cut turn's, unknown" if counted else UNKNOWN_TOKENS
    bits.append(tokens)
    return bits


def cost_bits(state: RunState) -> list[str]:
    """The run's cost once a turn was priced: `cost $0.0123`, or `cost unknown`."""
    if not state.priced:  # the header asks on every update: nothing to work out before
        return []
    cut = state.usage_lost
    why = "a cut turn's tokens are unknown" if cut else "no price for this model"
    shown = format_cost(state.cost) if state.cost is not None else f"unknown ({why})"
    return [f"cost {shown}"]


def run_status(state: RunState) -> str:
    return "waiting" if state.running and state.waiting else state.status


_NW_BETWEEN = '</span> · <span class="llm-nw">'  # between two figures that keep their units


def header_html(state: RunState, now: float | None = None) -> str:
    status = run_status(state)
    label = f"waiting for you: {state.waiting}" if status == "waiting" else None
    elapsed = state.elapsed(now)
    if elapsed is None:
        took = ""
    elif state.running and now is not None:
        took = f' · <span class="llm-nw">{live_duration(elapsed)}</span>'
    else:
        took = f' · <span class="llm-nw">{esc(fmt_duration(elapsed))}</span>'
    # each figure stays with its unit: a narrow header wraps between figures only
    bits = header_stats(state) + cost_bits(state)
    stats = f'<span class="llm-nw">{_NW_BETWEEN.join(map(esc, bits))}</span>' if bits else ""
    error = f'<div class="llm-run-error">{esc(state.error)}</div>' if state.error else ""
    if state.branch:
        error = branch_html(state) + error
    if state.media:
        error += attachments_html(tuple(state.media))
    return (
        '<div class="llm-header"><div class="llm-header-row"><b class="llm-brand">LLM</b>'
        f'<span class="llm-model">{esc(state.model)}</span>{pill(status, label)}'
        f'<span class="llm-stats">{stats}{took}</span></div>{error}</div>'
    )


def note_html(text: str) -> str:
    return f'<div class="llm-note">{esc(text)}</div>'


# -- the static timeline --------------------------------------------------------------------------

Detail = Callable[[ToolCallRecord], str]


def static_html(state: RunState, detail: Detail | None = None, line: Detail | None = None) -> str:
    """The whole timeline as one self-contained block (saved notebooks, nbconvert, GitHub): the
    stylesheet once, then the fragments, each with its plain fallback style (see `styles`).

    `detail(rec)` and `line(rec)` may supply cached markup for a call.
    """
    out = [
        f'<div class="llm-magic-timeline llm-static {NO_MATH}">',
        style_block(),
        f'<div class="llm-static-head">{header_html(state)}</div>',
        '<div class="llm-static-body">',
    ]
    if state.note:
        out.append(note_html(state.note))
    # calls before the first turn (a branch's re-run calls) come first
    out += [_static_call(r, detail, line) for r in state.calls if r.id not in state.parents]
    for turn in state.turns:
        out.append(f'<details class="llm-turn" open>{_summary(turn_line_html(turn))}')
        if turn.text:
            out.append(_copy_bar(("answer", "this.parentNode.nextElementSibling")))
            out.append(turn_text_html(turn.text, partial=turn.partial))
        if turn.calls:
            out.append('<div class="llm-group">')
            calls = "".join(
                _static_call(rec, detail, line, int(state.keys[rec.id][1:])) for rec in turn.calls
            )
            if len(turn.calls) > 1:
                start = "" if len(turn.calls) > FOLD_GROUP else " open"
                out.append(f"<details{start}>{_summary(group_label_html(turn))}{calls}</details>")
            else:
                out.append(calls)
            out.append("</div>")
        out.append("</details>")
    if state.calls:
        out.append(EDIT_HINT)
    if len(state.calls) > STATIC_DETAILS:
        out.append(
            f'<div class="llm-static-more">details of the first {fmt_int(STATIC_DETAILS)} calls '
            "and of every failed call are kept here; every call is in "
            "<code>result.tool_calls</code></div>"
        )
    out.append("</div></div>")
    return untrusted_safe(with_fallbacks("".join(out)))


# The saved timeline's Copy buttons: a small inline handler copies the text of a block (what a
# person would select). Hidden by an inline style that only the timeline's <style> overrides: a
# viewer that drops <style> drops inline handlers too (JupyterLab's sanitizer for an untrusted
# notebook, GitHub), and there the text stays selectable instead of a button that does nothing.
_COPY_BUTTON = (
    '<button type="button" class="llm-static-copy" style="display:none" title="Copy the {what}" '
    'onclick="navigator.clipboard.writeText({target}.innerText).then(() => '
    "{{this.textContent = 'Copied ✓'}})\">Copy {what}</button>"
)
EDIT_HINT = (
    '<div class="llm-static-more">Re-run a call with other arguments, or go on with another '
    "result: <code>%llm_edit</code> in a new cell (the last result), or "
    "<code>%llm_edit NAME</code> for a result kept with <code>--out NAME</code>.</div>"
)


def _copy_bar(*buttons: tuple[str, str]) -> str:
    """Copy buttons of the saved timeline: (what, the JavaScript expression of its block)."""
    inner = "".join(_COPY_BUTTON.format(what=w, target=t) for w, t in buttons)
    return f'<div class="llm-static-bar">{inner}</div>'


def _summary(inner: str) -> str:
    return f'<summary class="llm-sum"><div class="llm-sum-box">{inner}</div></summary>'


def _static_call(
    rec: ToolCallRecord, detail: Detail | None, line: Detail | None = None, index: int = 0
) -> str:
    shown = line(rec) if line is not None else call_line_html(rec)
    if index >= STATIC_DETAILS and rec.status in ("ok", "cancelled"):
        return f'<div class="llm-call" style="margin-left:16px">{shown}</div>'
    body = detail(rec) if detail is not None else call_detail_html(rec)
    copies = [("arguments", "this.closest('details').querySelector('.llm-args')")]
    if rec.status == "ok":
        copies.append(("result", "this.closest('details').querySelector('.llm-result')"))
    return (
        f'<details class="llm-call">{_summary(shown)}<div class="llm-call-body">'
        f"{_copy_bar(*copies)}{body}</div></details>"
    )


# -- text -----------------------------------------------------------------------------------------


def call_text(rec: ToolCallRecord) -> str:
    label, icon, _colour = STATUS.get(rec.status, STATUS["queued"])
    line = f"{icon} {rec.name}({arg_summary(rec, 70)}) · {label}"
    if rec.server:
        line += f" · MCP {rec.server}"
    if rec.duration is not None:
        line += f" · {fmt_duration(rec.duration)}"
    outcome = outcome_summary(rec, 60)
    if outcome:
        line += f" → {outcome}"
    if rec.truncated:
        line += " (truncated for the model)"
    return line


def header_text(state: RunState) -> str:
    status = STATUS.get(state.status, (state.status,))[0]
    bits = header_stats(state)
    elapsed = state.elapsed()
    if elapsed is not None:
        bits.insert(-1, fmt_duration(elapsed))
    bits += cost_bits(state)
    text = f"LLM {state.model} · {status} · {' · '.join(bits)}"
    if state.branch:
        text += "\n" + "\n".join(branch_lines(state))
    if state.error:
        text += f"\n  {state.error}"
    return text


def static_text(state: RunState) -> str:
    lines = [header_text(state)]
    if state.note:
        lines.append(f"  note: {state.note}")
    lines += ["  " + call_text(r) for r in state.calls if r.id not in state.parents]
    for turn in state.turns:
        head = f"  turn {turn.step}"
        extra = turn_line_bits(turn)
        if extra:
            head += " · " + extra
        lines.append(head)
        if turn.text:
            lines += ["    " + line for line in turn.text.splitlines()]
            if turn.partial:
                lines.append("    (partial: the run was cancelled while the model was writing)")
        parallel = len(turn.calls) > 1
        if parallel:
            lines.append(f"    ┌ {len(turn.calls)} parallel calls")
        for rec in turn.calls:
            lines.append(("    │ " if parallel else "    ") + call_text(rec))
    return "\n".join(lines)


def turn_line_bits(turn: TurnState) -> str:
    bits = []
    if turn.status not in ("done", "streaming"):
        bits.append(turn.status)
    if turn.duration is not None:
        bits.append(fmt_duration(turn.duration))
    if turn.usage is not None and (turn.usage.input_tokens or turn.usage.output_tokens):
        bits.append(f"{turn.usage.input_tokens} in / {turn.usage.output_tokens} out tokens")
    elif turn.usage_lost:
        bits.append(UNKNOWN_TOKENS)
    if turn.priced:
        bits.append(turn_cost_text(turn))
    return " · ".join(bits)
