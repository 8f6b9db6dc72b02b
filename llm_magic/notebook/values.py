"""How values are shown: argument and result summaries, JSON, rich results, tracebacks.

A tool's result is data, never code: its own HTML (a DataFrame's table) goes through an allowlist
sanitizer; HTML that is mostly script (Plotly, Bokeh, Folium, inline SVG) shows as its image or
text form instead. The model's Markdown is rendered with raw HTML off and sanitized again.
"""

from __future__ import annotations

import base64
import functools
import json
import re
from collections.abc import Callable
from typing import Any

from ..records import ToolCallRecord
from .look import ERROR, FG, MONO, MUTED, PRE_BLOCK, SUBTLE_BG, esc, fmt_int, shorten

FOLD_LINES = 12
FOLD_CHARS = 1_500
MAX_SHOWN_CHARS = 400_000  # a result bigger than this is cut in the view too (and says so)
MAX_RICH_HTML = 300_000

# one encoder each, made once: `json.dumps` with options builds a new encoder on every call,
# and a detail view encodes every nested value of a result
_dumps = json.JSONEncoder(ensure_ascii=False).encode
_dumps_repr = json.JSONEncoder(ensure_ascii=False, default=repr).encode
_dumps_compact = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=repr).encode


def _value_summary(value: Any, width: int = 40) -> str:
    if isinstance(value, str):
        return _dumps(shorten(value, width))
    try:
        text = _dumps_compact(value)
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
    note = rec.thread_note  # a thread that outlived its call: never just "cancelled"
    if note is not None and rec.status in ("cancelled", "error"):
        what = "cancelled" if rec.status == "cancelled" else rec.reason or "error"
        return shorten(f"{what}; {note}", width)
    if rec.status == "ok":
        kind = kind_summary(rec.result)
        return kind if kind is not None else shorten(rec.output, width)
    if rec.status == "error":
        if rec.error is not None:
            return shorten(f"{type(rec.error).__name__}: {rec.error}", width)
        return shorten(rec.output.removeprefix("error: "), width)
    if rec.status in ("denied", "cancelled"):
        return shorten(rec.reason or rec.output.removeprefix("denied: "), width)
    return ""


def kind_summary(value: Any) -> str | None:
    """A short name for a value whose text form would be noise: "DataFrame 3×4", "Figure"."""
    name = type(value).__name__
    shape = getattr(value, "shape", None)
    if name in ("DataFrame", "Series", "ndarray") and isinstance(shape, tuple):
        return f"{name} {'×'.join(str(n) for n in shape)}"
    if name == "Figure" and hasattr(value, "savefig"):
        return "Figure (image)"
    return None


def pretty_json(value: Any, width: int = 72) -> str:
    """Indented JSON that keeps short lists and objects on one line."""
    try:
        return _pretty(json.loads(_dumps_repr(value)), 0, width)
    except (TypeError, ValueError, RecursionError):
        return repr(value)


def _pretty(value: Any, indent: int, width: int) -> str:
    flat = _dumps(value)
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
    items = [f"{inner}{_dumps(str(k))}: {_pretty(v, indent + 2, width)}" for k, v in value.items()]
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


# The only `data:` URLs kept: PNG and JPEG images (a tool's table with an inline chart, the
# images a model saw); a `data:text/html` link or an SVG could carry script.
_DATA_IMAGE = re.compile(r"data:image/(png|jpeg);base64,[A-Za-z0-9+/=]*\Z")


def _data_images_only(_tag: str, attribute: str, value: str) -> str | None:
    if attribute in ("src", "href") and value.strip().lower().startswith("data:"):
        return value if _DATA_IMAGE.match(value.strip()) else None
    return value


def safe_html(markup: str) -> str:
    """`markup` with everything that could run code removed (see `_HTML_ATTRIBUTES`); `data:`
    URLs only for PNG and JPEG images."""
    import nh3

    return nh3.clean(
        markup,
        attributes=_allowed_attributes(),
        url_schemes=_URL_SCHEMES,
        attribute_filter=_data_images_only,
    )


def _format(obj: Any) -> dict[str, Any]:
    """The display mimebundle of an object via IPython's formatters (the shell's, if any)."""
    try:
        from IPython import get_ipython

        shell = get_ipython()
        formatter: Any = shell.display_formatter if shell is not None else None
        if formatter is None:
            from IPython.core.formatters import DisplayFormatter

            formatter = DisplayFormatter()
        data, _ = formatter.format(obj)
        return dict(data)
    except Exception:
        return {"text/plain": _safe_repr(obj)}


def _safe_repr(obj: Any) -> str:
    try:
        return repr(obj)
    except Exception as exc:
        return f"<unrepresentable {type(obj).__name__}: {exc!r}>"


def error_html(text: str) -> str:
    """An error's one-line title, in the error colour."""
    return f'<div style="{ERROR};{MONO};font-size:12px;white-space:pre-wrap">{esc(text)}</div>'


def thread_parts(rec: ToolCallRecord, label: Callable[[str], str]) -> list[str]:
    """A let-go call's thread in its details: still running, or what it returned or raised after
    the run let the call go (the model was told the call was cancelled or timed out)."""
    note = rec.thread_note
    if note is None:
        return []
    parts = [label("its thread"), f'<div class="llm-thread" style="{FG}">{esc(note)}</div>']
    err = rec.late_error
    if err is not None:
        parts += [
            label("raised after the call was let go"),
            error_html(f"{type(err).__name__}: {err}"),
        ]
    elif rec.thread in ("returned", "stopped"):
        kind = type(rec.late_result).__name__
        parts += [label(f"returned after the call was let go · {kind}"), rich_html(rec.late_result)]
    return parts


def pre(text: str) -> str:
    return f'<pre style="{PRE_BLOCK}">{esc(text)}</pre>'


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


def _figure_png(figure: Any) -> str | None:
    """A matplotlib figure as base64 PNG (also once pyplot has closed it)."""
    import io

    try:
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", bbox_inches="tight")
    except Exception:
        return None
    return base64.b64encode(buffer.getvalue()).decode()


def rich_html(value: Any) -> str:
    """A result rendered for the user: HTML table, image, JSON or folded text."""
    if isinstance(value, str):
        return folded(value)
    if value is None:
        return pre("None")
    if isinstance(value, dict | list | tuple | int | float | bool):
        try:
            return folded(_pretty(json.loads(_dumps(value)), 0, 72))
        except (TypeError, ValueError, RecursionError):
            pass
    if type(value).__name__ == "Figure" and hasattr(value, "savefig"):
        png = _figure_png(value)
        if png is not None:
            return (
                f'<img style="max-width:100%;max-height:420px" src="data:image/png;base64,{png}"/>'
            )
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
    shown = folded(text if isinstance(text, str) else _safe_repr(value))
    return _removed_note(data.get("text/html"), shown)


def _removed_note(markup: Any, shown: str) -> str:
    """`shown` (an object's text form), after a line that says what its HTML held and why it
    is not shown: its scripts and frames never run in the timeline. Where text is left once
    they are removed, that text is shown instead of the bare repr."""
    if not isinstance(markup, str):
        return shown
    tags = sorted({m.lower() for m in _ACTIVE_HTML.findall(markup)})
    if not tags:
        return shown
    held = " and ".join(f"<{t}>" for t in tags)
    clean = safe_html(markup) if len(markup) <= MAX_RICH_HTML else ""
    left = re.sub(r"<[^>]*>", "", clean).strip()
    if left:
        what = "removed; the rest of its HTML is below"
        shown = f'<div class="jp-RenderedHTMLCommon" style="font-size:12px">{clean}</div>'
    else:
        what = "removed, and nothing else was in it; its text form is below"
    return (
        f'<div class="llm-removed" style="{MUTED};font-size:12px;margin:0 0 2px">'
        f"its HTML held {esc(held)}, {what} (code a tool returns never runs in the timeline)"
        f"</div>{shown}"
    )


@functools.cache
def _markdown() -> Any:
    from markdown_it import MarkdownIt

    # raw HTML in the model's text is shown as text, never parsed (html=False)
    return MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])


# Text with none of these characters, no line that starts with a list marker or a digit, and no
# line with white space at either end, is plain paragraphs to CommonMark: rendered here, it is
# what markdown-it renders (tests/core/test_first_use.py checks both agree), without importing
# markdown-it (68 modules, 20-30 ms) for a run whose answer has no Markdown in it.
_MARKDOWN_SYNTAX = re.compile(r"[\\`*_\[\]<>#|~!&=\x00-\x09\x0b-\x1f]|^[+\-0-9]", re.M)


def _plain_paragraphs(text: str) -> str | None:
    """CommonMark's HTML for `text` if it is plain paragraphs (see `_MARKDOWN_SYNTAX`)."""
    if _MARKDOWN_SYNTAX.search(text):
        return None
    lines = text.split("\n")
    if any(line != line.strip() for line in lines):
        return None
    blocks = [b for b in re.split(r"\n(?:\n)+", text.strip("\n")) if b]
    return "".join(f"<p>{b}</p>\n" for b in blocks).replace('"', "&quot;")


def markdown_html(text: str) -> str:
    """Markdown as HTML: CommonMark with tables; raw HTML escaped, the result sanitized too."""
    try:
        plain = _plain_paragraphs(text)
        return safe_html(plain if plain is not None else _markdown().render(text))
    except Exception:  # never lose the text over a rendering problem
        return f'<div style="white-space:pre-wrap">{esc(text)}</div>'


# -- tracebacks -----------------------------------------------------------------------------------

_FRAME = re.compile(r'^  File "(?P<file>[^"]+)", line (?P<line>\d+)(?P<rest>.*)$')
_LIBRARY = re.compile(
    r"[/\\](site-packages|dist-packages|llm_magic|asyncio|concurrent|threading\.py|lib[/\\]python3)"
    r"|^<frozen "
)


def _cell_names() -> dict[str, str]:
    """Kernel cell file names -> "Cell In[n]" (IPython's compiler keeps the map)."""
    try:
        from IPython import get_ipython

        shell = get_ipython()
        names = getattr(getattr(shell, "compile", None), "_filename_map", {}) or {}
        return {str(k): f"Cell In[{v}]" for k, v in names.items()}
    except Exception:
        return {}


def traceback_html(text: str) -> str:
    """A traceback that opens on the user's own frames; library frames fold into one line each run.

    A frame is a `File ...` line plus the source lines under it. Consecutive library frames
    (llm_magic, asyncio, site-packages) become one `<details>` saying how many there are.
    """
    cells = _cell_names()
    blocks: list[tuple[bool, list[str]]] = []  # (is_library, lines)
    for line in text.rstrip("\n").split("\n"):
        match = _FRAME.match(line)
        if match:
            name = match["file"]
            library = bool(_LIBRARY.search(name)) and name not in cells
            if name in cells:
                line = f"  {cells[name]}, line {match['line']}{match['rest']}"
            blocks.append((library, [line]))
        elif blocks and line.startswith("    "):
            blocks[-1][1].append(line)
        else:
            blocks.append((False, [line]))
    out: list[str] = []
    i = 0
    while i < len(blocks):
        library, lines = blocks[i]
        if not library:
            out.append("\n".join(lines))
            i += 1
            continue
        j = i
        folded_lines: list[str] = []
        while j < len(blocks) and blocks[j][0]:
            folded_lines += blocks[j][1]
            j += 1
        n = j - i
        out.append(
            f'\x00<details class="llm-frames"><summary style="cursor:pointer;{MUTED}">'
            f"{n} library frame{'s' if n != 1 else ''}</summary>"
            f"{esc(chr(10).join(folded_lines))}</details>\x00"
        )
        i = j
    body = "\n".join(out)
    # escape the user's lines, keep the folds' markup
    pieces = body.split("\x00")
    rendered = "".join(p if k % 2 else esc(p) for k, p in enumerate(pieces))
    return (
        f'<pre class="llm-traceback" style="{MONO};font-size:12px;line-height:1.4;margin:0;'
        f"padding:5px 8px;white-space:pre-wrap;overflow-wrap:anywhere;background:{SUBTLE_BG};"
        f'border-radius:4px">{rendered}</pre>'
    )


GIVEN_LIMIT = 20_000  # characters of a result offered for editing as JSON


def given_json(rec: ToolCallRecord) -> str:
    """What "Edit result" starts from: the call's result as JSON when it is JSON (and not
    huge), else the text the model got; `null` for a call that failed."""
    if rec.status != "ok":
        return "null"
    try:
        flat = json.dumps(rec.result)
    except (TypeError, ValueError):
        return json.dumps(rec.output)
    return pretty_json(rec.result) if len(flat) <= GIVEN_LIMIT else json.dumps(rec.output)
