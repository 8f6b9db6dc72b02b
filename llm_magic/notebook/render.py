"""The timeline's state and its static renderings: self-contained HTML and plain text.

Nothing here imports ipywidgets. `RunState` is built from chain events only (the live widget in
`timeline.py` keeps one and renders from it); every HTML fragment uses inline styles and escaped
content, never a script, so a saved notebook shows it on GitHub, nbviewer and VS Code unchanged.
"""

from __future__ import annotations

import base64
import functools
import html
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from ..events import ToolCallRecord
from ..messages import Usage

# -- look ------------------------------------------------------------------------------------

FONT = (
    "font-family:var(--jp-ui-font-family,system-ui,-apple-system,'Segoe UI',sans-serif);"
    "font-size:13px;line-height:1.45"
)
MONO = "font-family:var(--jp-code-font-family,SFMono-Regular,Menlo,monospace)"
FG = "color:var(--jp-ui-font-color1,#1f2328)"
MUTED = "color:var(--jp-ui-font-color2,#656d76)"
BORDER = "var(--jp-border-color2,#d0d7de)"
SUBTLE_BG = "var(--jp-layout-color2,#f6f8fa)"

# status -> (label, icon, foreground, background)
STATUS: dict[str, tuple[str, str, str, str]] = {
    "queued": ("queued", "·", "#57606a", "#eaeef2"),
    "awaiting_approval": ("needs approval", "?", "#7d4e00", "#fff1b8"),
    "running": ("running", "…", "#0550ae", "#ddf4ff"),
    "ok": ("ok", "✓", "#116329", "#dafbe1"),
    "error": ("error", "✗", "#a40e26", "#ffebe9"),
    "denied": ("denied", "⊘", "#953800", "#ffe7d1"),
    "cancelled": ("cancelled", "■", "#57606a", "#eaeef2"),
    # run-level states
    "pending": ("pending", "·", "#57606a", "#eaeef2"),
    "done": ("done", "✓", "#116329", "#dafbe1"),
    "failed": ("failed", "✗", "#a40e26", "#ffebe9"),
    "timeout": ("timed out", "⏱", "#953800", "#ffe7d1"),
    "max_steps": ("step limit", "⏹", "#953800", "#ffe7d1"),
    "max_tool_calls": ("call limit", "⏹", "#953800", "#ffe7d1"),
    "streaming": ("writing", "…", "#6639ba", "#fbefff"),
}

FOLD_LINES = 12
FOLD_CHARS = 1_500
MAX_SHOWN_CHARS = 400_000  # a result bigger than this is cut in the view too (and says so)
MAX_RICH_HTML = 300_000


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def pill(status: str) -> str:
    label, _icon, fg, bg = STATUS.get(status, (status, "", "#57606a", "#eaeef2"))
    return (
        f'<span style="display:inline-block;padding:0 7px;border-radius:9px;font-size:11px;'
        f"font-weight:600;line-height:18px;white-space:nowrap;color:{fg};background:{bg};"
        f'border:1px solid {fg}33">{esc(label)}</span>'
    )


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 0.001:
        return "<1 ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"
    minutes, sec = divmod(int(seconds), 60)
    return f"{minutes} min {sec:02d} s"


def fmt_int(n: int) -> str:
    return f"{n:,}"


def shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: max(1, width - 1)] + "…"


# -- state -------------------------------------------------------------------------------------


@dataclass(eq=False)
class TurnState:
    """One model turn as the timeline sees it."""

    step: int
    started_at: float
    ended_at: float | None = None
    parts: list[str] = field(default_factory=list)
    final_text: str | None = None
    usage: Usage | None = None
    status: str = "streaming"  # streaming | done | cancelled | failed
    calls: list[ToolCallRecord] = field(default_factory=list)
    _joined: str = ""
    _joined_parts: int = 0

    @property
    def text(self) -> str:
        if self.final_text is not None:
            return self.final_text
        if self._joined_parts != len(self.parts):  # join incrementally, once per read
            self._joined += "".join(self.parts[self._joined_parts :])
            self._joined_parts = len(self.parts)
        return self._joined

    @property
    def duration(self) -> float | None:
        return None if self.ended_at is None else self.ended_at - self.started_at


@dataclass(eq=False)
class RunState:
    """Everything the timeline shows, kept up to date event by event in O(1)."""

    model: str
    status: str = "pending"
    started_at: float | None = None
    ended_at: float | None = None
    turns: list[TurnState] = field(default_factory=list)
    calls: list[ToolCallRecord] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # tool calls by status
    seen: dict[str, str] = field(default_factory=dict)  # call id -> last counted status
    usage: Usage = field(default_factory=Usage)
    steps: int = 0
    error: str | None = None
    note: str | None = None

    def count(self, rec: ToolCallRecord) -> None:
        old = self.seen.get(rec.id)
        if old == rec.status:
            return
        if old is not None:
            self.counts[old] -= 1
        self.counts[rec.status] = self.counts.get(rec.status, 0) + 1
        self.seen[rec.id] = rec.status

    def elapsed(self, now: float | None = None) -> float | None:
        if self.started_at is None:
            return None
        end = self.ended_at if self.ended_at is not None else (now or time.monotonic())
        return end - self.started_at

    @property
    def running(self) -> bool:
        return self.status in ("pending", "running")


# -- summaries -------------------------------------------------------------------------------


def _value_summary(value: Any, width: int = 40) -> str:
    if isinstance(value, str):
        return json.dumps(shorten(value, width), ensure_ascii=False)
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=repr)
    except (TypeError, ValueError):
        text = repr(value)
    return shorten(text, width)


def arg_summary(rec: ToolCallRecord, width: int = 90) -> str:
    """A one-line summary of a call's arguments: `city="Paris", unit="c"`."""
    args = rec.arguments
    if args is None:
        try:
            parsed = json.loads(rec.raw_arguments) if rec.raw_arguments.strip() else {}
        except ValueError:
            return shorten(rec.raw_arguments, width)
        if not isinstance(parsed, dict):
            return shorten(rec.raw_arguments, width)
        args = parsed
    text = ", ".join(f"{k}={_value_summary(v)}" for k, v in args.items())
    return shorten(text, width)


def outcome_summary(rec: ToolCallRecord, width: int = 70) -> str:
    """What came of a call, in a few words, for the collapsed line."""
    if rec.status == "ok":
        return shorten(rec.output, width)
    if rec.status == "error":
        if rec.error is not None:
            return shorten(f"{type(rec.error).__name__}: {rec.error}", width)
        return shorten(rec.output.removeprefix("error: "), width)
    if rec.status in ("denied", "cancelled"):
        return shorten(rec.reason or rec.output.removeprefix("denied: "), width)
    return ""


def pretty_json(value: Any, width: int = 72) -> str:
    """Indented JSON that keeps short lists and objects on one line."""
    try:
        return _pretty(json.loads(json.dumps(value, ensure_ascii=False, default=repr)), 0, width)
    except (TypeError, ValueError, RecursionError):
        return repr(value)


def _pretty(value: Any, indent: int, width: int) -> str:
    flat = json.dumps(value, ensure_ascii=False)
    top_object = indent == 0 and isinstance(value, dict) and len(value) > 1
    if (
        not isinstance(value, dict | list)
        or not value
        or (len(flat) + indent <= width and not top_object)
    ):
        return flat
    pad, inner = " " * indent, " " * (indent + 2)
    if isinstance(value, list):
        items = [inner + _pretty(v, indent + 2, width) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    items = [
        f"{inner}{json.dumps(str(k), ensure_ascii=False)}: {_pretty(v, indent + 2, width)}"
        for k, v in value.items()
    ]
    return "{\n" + ",\n".join(items) + "\n" + pad + "}"


def arguments_json(rec: ToolCallRecord) -> str:
    if rec.arguments is not None:
        return pretty_json(rec.arguments)
    try:
        return pretty_json(json.loads(rec.raw_arguments))
    except ValueError:
        return rec.raw_arguments


def result_json(rec: ToolCallRecord) -> str:
    """The call as JSON, for copying: name, arguments, status, and result or error."""
    from ..tools import serialize_result

    out: dict[str, Any] = {"tool": rec.name, "arguments": rec.arguments, "status": rec.status}
    if rec.arguments is None:
        out["arguments"] = rec.raw_arguments
    if rec.status == "ok":
        text, _ = serialize_result(rec.result, max_chars=10**12)
        try:
            out["result"] = json.loads(text)
        except ValueError:
            out["result"] = text
    elif rec.status in ("error", "denied", "cancelled"):
        out["output"] = rec.output
        if rec.error is not None:
            out["error"] = f"{type(rec.error).__name__}: {rec.error}"
    if rec.duration is not None:
        out["duration_s"] = round(rec.duration, 4)
    return pretty_json(out)


# -- rich results --------------------------------------------------------------------------------

# HTML that is mostly code or a frame (Plotly, Altair, Bokeh, Folium, inline SVG) would sanitize
# to an empty box: such objects show as their image or text form instead.
_ACTIVE_HTML = re.compile(r"<\s*(script|iframe|object|embed|svg|canvas)\b", re.I)
_BASE64 = re.compile(r"[A-Za-z0-9+/=\s]+")
# A tool result's own HTML (a DataFrame's table, a fetched page wrapped for display) is data, not
# code: an allowlist sanitizer (ammonia, through nh3) keeps tables and text and drops scripts,
# event handlers, `<style>`, `javascript:` links and every other way to run code in the notebook.
_HTML_ATTRIBUTES = {"*": {"class", "title"}, "table": {"border"}}
_URL_SCHEMES = {"http", "https", "data"}


@functools.cache
def _allowed_attributes() -> dict[str, set[str]]:
    import nh3

    attributes = {tag: set(nh3.ALLOWED_ATTRIBUTES.get(tag, ())) for tag in nh3.ALLOWED_TAGS}
    for tag, extra in _HTML_ATTRIBUTES.items():
        attributes.setdefault(tag, set()).update(extra)
    return attributes


def safe_html(markup: str) -> str:
    """`markup` with everything that could run code removed (see `_HTML_ATTRIBUTES`)."""
    import nh3

    return nh3.clean(markup, attributes=_allowed_attributes(), url_schemes=_URL_SCHEMES)


def _format(obj: Any) -> dict[str, Any]:
    """The display mimebundle of an object via IPython's formatters (the shell's, if any)."""
    try:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None:
            data, _ = shell.display_formatter.format(obj)
            return data
        from IPython.core.formatters import DisplayFormatter

        data, _ = DisplayFormatter().format(obj)
        return data
    except Exception:
        return {"text/plain": _safe_repr(obj)}


def _safe_repr(obj: Any) -> str:
    try:
        return repr(obj)
    except Exception as exc:
        return f"<unrepresentable {type(obj).__name__}: {exc!r}>"


def pre(text: str) -> str:
    return (
        f'<pre style="{MONO};font-size:12px;line-height:1.4;margin:0;padding:5px 8px;'
        f'white-space:pre-wrap;overflow-wrap:anywhere;background:{SUBTLE_BG};border-radius:4px">'
        f"{esc(text)}</pre>"
    )


def folded(text: str) -> str:
    """Text in a block; long text shows its start and folds the rest behind "show all"."""
    note = ""
    if len(text) > MAX_SHOWN_CHARS:
        note = f"\n[… {fmt_int(len(text) - MAX_SHOWN_CHARS)} more characters not shown here]"
        text = text[:MAX_SHOWN_CHARS]
    lines = text.count("\n") + 1
    if lines <= FOLD_LINES and len(text) <= FOLD_CHARS:
        return pre(text + note)
    head = "\n".join(text.split("\n", FOLD_LINES)[:FOLD_LINES])[:FOLD_CHARS]
    size = f"{fmt_int(lines)} lines, {fmt_int(len(text))} characters"
    return (
        pre(head + " …")
        + f'<details style="margin-top:2px"><summary style="cursor:pointer;font-size:12px;'
        f'{MUTED}">show all ({size})</summary>{pre(text + note)}</details>'
    )


def _static_html(markup: Any) -> str | None:
    """An object's HTML, sanitized, if it is static and something is left to see."""
    if not isinstance(markup, str) or len(markup) > MAX_RICH_HTML or _ACTIVE_HTML.search(markup):
        return None
    clean = safe_html(markup)
    visible = re.sub(r"<[^>]*>", "", clean).strip() or re.search(r"<(img|hr)\b", clean)
    return clean if visible else None


def rich_html(value: Any) -> str:
    """A result rendered for the user: HTML table, image, JSON or folded text."""
    if isinstance(value, str):
        return folded(value)
    if value is None:
        return pre("None")
    if isinstance(value, dict | list | tuple | int | float | bool):
        try:
            return folded(_pretty(json.loads(json.dumps(value, ensure_ascii=False)), 0, 72))
        except (TypeError, ValueError, RecursionError):
            pass
    data = _format(value)
    markup = _static_html(data.get("text/html"))
    if markup is not None:
        return (
            f'<div style="overflow:auto;max-height:420px;max-width:100%">'
            f'<div class="jp-RenderedHTMLCommon" style="display:inline-block;font-size:12px;'
            f'padding:0;min-width:0">{markup}</div></div>'
        )
    for mime in ("image/png", "image/jpeg", "image/gif", "image/svg+xml"):
        blob = data.get(mime)
        if blob is None:
            continue
        if isinstance(blob, bytes):
            b64 = base64.b64encode(blob).decode()
        elif mime == "image/svg+xml":
            b64 = base64.b64encode(str(blob).encode()).decode()
        elif isinstance(blob, str) and _BASE64.fullmatch(blob):
            b64 = re.sub(r"\s", "", blob)
        else:
            continue  # not base64: never put it into an attribute
        return f'<img style="max-width:100%;max-height:420px" src="data:{mime};base64,{b64}"/>'
    text = data.get("text/plain")
    return folded(text if isinstance(text, str) else _safe_repr(value))


# -- HTML fragments --------------------------------------------------------------------------------


def _label(text: str) -> str:
    return (
        f'<div style="font-size:11px;font-weight:600;text-transform:uppercase;letter-spacing:.04em;'
        f'{MUTED};margin:6px 0 2px">{esc(text)}</div>'
    )


def _sent_as_shown(rec: ToolCallRecord) -> bool:
    """True when the text the model got is the result exactly as the view shows it."""
    if rec.truncated or rec.status != "ok":
        return False
    value = rec.result
    if isinstance(value, str):
        return rec.output == value
    if isinstance(value, dict | list | int | float | bool) or value is None:
        try:
            return json.loads(rec.output) == value
        except ValueError:
            return False
    return False


def glyph(status: str) -> str:
    _label, icon, fg, bg = STATUS.get(status, STATUS["queued"])
    return (
        f'<span style="flex:none;display:inline-block;width:18px;height:18px;line-height:18px;'
        f"border-radius:50%;text-align:center;font-size:11px;font-weight:700;color:{fg};"
        f'background:{bg};border:1px solid {fg}40">{esc(icon)}</span>'
    )


def call_line_html(rec: ToolCallRecord) -> str:
    """The collapsed line: status, tool name, argument summary, outcome, duration."""
    outcome = outcome_summary(rec)
    outcome_html = (
        f'<span style="{MUTED};overflow:hidden;text-overflow:ellipsis;min-width:0;'
        f'flex:0 1000 auto">→ {esc(outcome)}</span>'
        if outcome
        else ""
    )
    strike = "text-decoration:line-through;" if rec.status == "cancelled" else ""
    truncated = (
        '<span title="the text sent to the model was truncated; the full result is in the '
        'details" style="font-size:11px;color:#bc4c00;margin-right:6px">truncated for the '
        "model</span>"
        if rec.truncated
        else ""
    )
    name_color = {"error": "#d1242f", "denied": "#bc4c00"}.get(rec.status, "inherit")
    return (
        f'<div style="{FONT};{FG};display:flex;align-items:center;gap:8px;white-space:nowrap;'
        f'overflow:hidden;min-width:0">{glyph(rec.status)}'
        f'<span style="{MONO};font-size:12.5px;overflow:hidden;text-overflow:ellipsis;min-width:0;'
        f'flex:0 1 auto;{strike}"><b style="color:{name_color}">{esc(rec.name)}</b>'
        f'<span style="{MUTED}">(</span>{esc(arg_summary(rec))}<span style="{MUTED}">)</span></span>'
        f"{outcome_html}"
        f'<span style="margin-left:auto;flex:none;padding-left:8px">{truncated}{pill(rec.status)}</span>'
        f'<span style="flex:none;width:56px;text-align:right;{MUTED};font-size:12px">'
        f"{esc(fmt_duration(rec.duration))}</span></div>"
    )


def call_detail_html(rec: ToolCallRecord, result_markup: str | None = None) -> str:
    """The expanded part: arguments, rich result, text sent to the model, error and traceback."""
    parts = [_label("arguments"), pre(arguments_json(rec))]
    same = _sent_as_shown(rec)
    if rec.status == "ok":
        kind = type(rec.result).__name__
        parts += [_label(f"result · {kind}" + (" · sent to the model as is" if same else ""))]
        parts.append(result_markup if result_markup is not None else rich_html(rec.result))
    if rec.status == "error":
        err = rec.error
        title = f"{type(err).__name__}: {err}" if err is not None else rec.output
        parts += [
            _label("error"),
            f'<div style="color:#d1242f;{MONO};font-size:12px;white-space:pre-wrap">'
            f"{esc(title)}</div>",
        ]
        if rec.traceback:
            parts += [_label("traceback"), folded(rec.traceback)]
    if rec.reason and rec.status in ("denied", "cancelled"):
        parts += [_label("reason"), f'<div style="{FG}">{esc(rec.reason)}</div>']
    if rec.status in ("ok", "error", "denied", "cancelled") and not same:
        sent = "sent to the model"
        if rec.truncated:
            sent += " · truncated for the model (the full result is above)"
        parts += [_label(sent), folded(rec.output)]
    meta = [f"id {rec.id}", f"step {rec.step}"]
    if rec.implementation:
        meta.append(f"{rec.implementation} implementation")
    if rec.duration is not None:
        meta.append(fmt_duration(rec.duration))
    parts.append(
        f'<div style="{MUTED};font-size:11px;margin-top:6px">{esc(" · ".join(meta))}</div>'
    )
    return f'<div style="{FONT};{FG};padding:2px 0 6px">{"".join(parts)}</div>'


def turn_line_html(turn: TurnState, model: str) -> str:
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
    if turn.calls:
        n = len(turn.calls)
        bits.append(f"{n} tool call{'s' if n != 1 else ''}")
    return (
        f'<div style="{FONT};{FG};display:flex;align-items:center;gap:8px;white-space:nowrap">'
        f'<span style="display:inline-block;padding:0 7px;border-radius:9px;font-size:11px;'
        f'font-weight:600;line-height:18px;color:#6639ba;background:#fbefff;border:1px solid #6639ba33">'
        f"model</span><b>turn {turn.step}</b>"
        f'<span style="{MUTED};font-size:12px;overflow:hidden;text-overflow:ellipsis">'
        f"{esc(' · '.join(bits))}</span></div>"
    )


def turn_text_html(text: str, streaming: bool = False) -> str:
    """A model's text: as it streams, plain with a cursor; once the turn is done, its Markdown."""
    if streaming:
        return (
            f'<div style="{FONT};{FG};white-space:pre-wrap;word-break:break-word;'
            f'padding:2px 0 4px 2px;max-height:480px;overflow:auto">{esc(text)}'
            '<span style="color:#6639ba">▍</span></div>'
        )
    return (
        f'<div class="jp-RenderedHTMLCommon llm-answer" style="{FONT};{FG};word-break:break-word;'
        f'padding:0 0 2px 2px;max-height:480px;overflow:auto">{markdown_html(text)}</div>'
    )


@functools.cache
def _markdown() -> Any:
    from markdown_it import MarkdownIt

    # raw HTML in the model's text is shown as text, never parsed (html=False)
    return MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])


def markdown_html(text: str) -> str:
    """Markdown as HTML: CommonMark with tables; raw HTML escaped, the result sanitized too."""
    try:
        return safe_html(_markdown().render(text))
    except Exception:  # never lose the text over a rendering problem
        return f'<div style="white-space:pre-wrap">{esc(text)}</div>'


def group_label_html(n: int) -> str:
    return (
        f'<div style="{FONT};{MUTED};font-size:11px;font-weight:600;text-transform:uppercase;'
        f'letter-spacing:.04em">{n} parallel calls</div>'
    )


def header_stats(state: RunState) -> str:
    n = len(state.calls)
    bits = [f"{state.steps} step{'s' if state.steps != 1 else ''}"]
    calls = f"{fmt_int(n)} tool call{'s' if n != 1 else ''}"
    detail = [
        f"{state.counts[s]} {STATUS[s][0]}"
        for s in ("ok", "error", "denied", "cancelled", "running", "awaiting_approval", "queued")
        if state.counts.get(s)
    ]
    if detail and not (len(detail) == 1 and state.counts.get("ok") == n):
        calls += f" ({', '.join(detail)})"
    bits.append(calls)
    elapsed = state.elapsed()
    if elapsed is not None:
        bits.append(fmt_duration(elapsed))
    bits.append(
        f"{fmt_int(state.usage.input_tokens)} in / {fmt_int(state.usage.output_tokens)} out tokens"
    )
    return " · ".join(bits)


def header_html(state: RunState) -> str:
    error = (
        f'<div style="color:#d1242f;font-size:12px;margin-top:2px;white-space:pre-wrap">'
        f"{esc(state.error)}</div>"
        if state.error
        else ""
    )
    return (
        f'<div style="{FONT};{FG};line-height:1.4"><div style="display:flex;align-items:center;'
        f'gap:8px;flex-wrap:wrap"><b style="font-size:13px">LLM</b>'
        f'<span style="{MONO};font-size:12px">{esc(state.model)}</span>{pill(state.status)}'
        f'<span style="{MUTED};font-size:12px">{esc(header_stats(state))}</span></div>{error}</div>'
    )


def note_html(text: str) -> str:
    return (
        f'<div style="{FONT};font-size:12px;color:#7d4e00;background:#fff8c5;'
        f'border:1px solid #d4a72c66;border-radius:4px;padding:3px 8px">{esc(text)}</div>'
    )


def static_html(state: RunState, detail: Any = None) -> str:
    """The whole timeline as one self-contained block (saved notebooks, nbconvert, GitHub).

    `detail(rec)` may supply cached detail markup for a call.
    """
    out = [
        f'<div class="llm-magic-timeline" style="{FONT};{FG};border:1px solid {BORDER};'
        f'border-radius:6px;overflow:hidden;max-width:100%">',
        f'<div style="padding:6px 10px;background:{SUBTLE_BG};border-bottom:1px solid {BORDER}">'
        f"{header_html(state)}</div>",
        '<div style="padding:4px 10px 6px">',
    ]
    if state.note:
        out.append(note_html(state.note))
    seen: set[str] = set()
    for turn in state.turns:
        out.append(f'<div style="margin:4px 0">{turn_line_html(turn, state.model)}')
        if turn.text:
            out.append(turn_text_html(turn.text))
        if turn.calls:
            out.append(
                f'<div style="border-left:2px solid {BORDER};margin:2px 0 2px 6px;'
                f'padding:0 0 0 10px">'
            )
            if len(turn.calls) > 1:
                out.append(group_label_html(len(turn.calls)))
            for rec in turn.calls:
                seen.add(rec.id)
                out.append(_static_call(rec, detail))
            out.append("</div>")
        out.append("</div>")
    orphans = [r for r in state.calls if r.id not in seen]
    for rec in orphans:
        out.append(_static_call(rec, detail))
    out.append("</div></div>")
    # the root sets font and colour once; nested fragments (shared with the widgets, where each
    # stands alone) need not repeat them
    head, body = out[0], "".join(out[1:])
    return head + body.replace(f'style="{FONT};{FG};', 'style="')


def _static_call(rec: ToolCallRecord, detail: Any) -> str:
    body = detail(rec) if detail is not None else call_detail_html(rec)
    return (
        f'<details class="llm-call" style="margin:1px 0"><summary style="cursor:pointer;list-style-position:'
        f'outside;padding:1px 0"><div style="display:inline-block;vertical-align:middle;'
        f'width:calc(100% - 20px)">{call_line_html(rec)}</div></summary>'
        f'<div style="padding:0 0 0 18px">{body}</div></details>'
    )


# -- text -------------------------------------------------------------------------------------------


def call_text(rec: ToolCallRecord) -> str:
    label, icon, _fg, _bg = STATUS.get(rec.status, STATUS["queued"])
    line = f"{icon} {rec.name}({arg_summary(rec, 70)}) · {label}"
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
    text = f"LLM {state.model} · {status} · {header_stats(state)}"
    if state.error:
        text += f"\n  {state.error}"
    return text


def static_text(state: RunState) -> str:
    lines = [header_text(state)]
    if state.note:
        lines.append(f"  note: {state.note}")
    for turn in state.turns:
        head = f"  turn {turn.step}"
        extra = turn_line_bits(turn)
        if extra:
            head += " · " + extra
        lines.append(head)
        if turn.text:
            lines += ["    " + line for line in turn.text.splitlines()]
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
    return " · ".join(bits)
