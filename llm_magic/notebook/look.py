"""The timeline's look: theme-aware colours, status pills and glyphs, number formats.

Every colour is a JupyterLab theme variable with a light fallback, so the same HTML reads in the
light and dark themes and in viewers without JupyterLab's CSS (GitHub, nbviewer, VS Code). Pills
and glyphs are classes (their rules are in static/entries.css, see `styles`); the constants below
style the fragments that still carry inline styles. Pills print the theme's own text colour on a
faint tint of the status colour: the text keeps the theme's contrast (>= 4.5:1) whichever theme
is active. Glyphs are decoration only and
hidden from screen readers; the status is always spelled out next to them.
"""

from __future__ import annotations

import functools
import html
import re

FONT = (
    "font-family:var(--jp-ui-font-family,system-ui,-apple-system,'Segoe UI',sans-serif);"
    "font-size:13px;line-height:1.45"
)
MONO = "font-family:var(--jp-code-font-family,SFMono-Regular,Menlo,monospace)"
FG = "color:var(--jp-ui-font-color1,#1f2328)"
# secondary text: the theme's own text colour, lighter; --jp-ui-font-color2 on the header's
# background falls just short of 4.5:1 in JupyterLab's light theme (measured 4.43)
MUTED = "color:color-mix(in srgb,var(--jp-ui-font-color1,#1f2328) 75%,transparent)"
BORDER = "var(--jp-border-color2,#d0d7de)"
SUBTLE_BG = "var(--jp-layout-color2,#f6f8fa)"
# a block of code or text: monospace, wrapped, on the subtle background
PRE_BLOCK = (
    f"{MONO};font-size:12px;line-height:1.4;margin:0;padding:5px 8px;white-space:pre-wrap;"
    f"overflow-wrap:anywhere;background:{SUBTLE_BG};border-radius:4px"
)
ERROR = "color:var(--jp-error-color1,#c62828)"

_OK = "var(--jp-success-color1,#1a7f37)"
_BAD = "var(--jp-error-color1,#c62828)"
_WARN = "var(--jp-warn-color1,#9a6700)"
_INFO = "var(--jp-brand-color1,#0969da)"
_IDLE = "var(--jp-border-color1,#8c959f)"
_MODEL = "var(--jp-accent-color1,#8250df)"

# status -> (label, glyph, theme colour)
STATUS: dict[str, tuple[str, str, str]] = {
    "queued": ("queued", "·", _IDLE),
    "awaiting_approval": ("needs approval", "?", _WARN),
    "running": ("running", "…", _INFO),
    "ok": ("ok", "✓", _OK),
    "error": ("error", "✗", _BAD),
    "denied": ("denied", "⊘", _WARN),
    "cancelled": ("cancelled", "■", _IDLE),
    # run-level states
    "pending": ("pending", "·", _IDLE),
    "done": ("done", "✓", _OK),
    "failed": ("failed", "✗", _BAD),
    "timeout": ("timed out", "⏱", _WARN),
    "max_steps": ("turn limit", "⏹", _WARN),
    "max_tool_calls": ("call limit", "⏹", _WARN),
    "max_cost": ("budget reached", "⏹", _WARN),
    "waiting": ("waiting for you", "?", _WARN),
    "streaming": ("writing", "…", _MODEL),
    "model": ("model", "", _MODEL),
}


# JupyterLab typesets `$...$` in HTML outputs as TeX: "$0.0009 spent of $0.0009" became math.
# MathJax skips elements of these classes (MathJax 3's default, and the MathJax 2 one), except
# the model's own text inside them (MATH), which may hold TeX as before.
NO_MATH = "mathjax_ignore tex2jax_ignore"
MATH = "mathjax_process tex2jax_process"


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


# a status colour -> the tone class that sets it (static/entries.css)
_TONES = {_OK: "ok", _BAD: "bad", _WARN: "warn", _INFO: "info", _IDLE: "idle", _MODEL: "model"}


def pill(status: str, label: str | None = None) -> str:
    name, _glyph, colour = STATUS.get(status, (status, "", _IDLE))
    return (
        f'<span class="llm-pill llm-t-{_TONES[colour]}" data-status="{esc(status)}">'
        f"{esc(label or name)}</span>"
    )


def glyph(status: str) -> str:
    _name, icon, colour = STATUS.get(status, STATUS["queued"])
    spin = " llm-spin" if status == "running" else ""
    return (
        f'<span class="llm-glyph llm-t-{_TONES[colour]}{spin}" aria-hidden="true">'
        f"{esc(icon)}</span>"
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


def live_duration(seconds: float) -> str:
    """A duration the live view keeps counting (the front end adds the time since it arrived)."""
    return f'<span class="llm-elapsed" data-elapsed="{seconds:.3f}">{esc(fmt_duration(seconds))}</span>'


def fmt_int(n: int) -> str:
    return f"{n:,}"


def plural(n: int, word: str, words: str | None = None) -> str:
    return f"{fmt_int(n)} {word if n == 1 else (words or word + 's')}"


def shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: max(1, width - 1)] + "…"


# JupyterLab sanitizes untrusted outputs (a saved notebook opened fresh): it drops every style
# declaration whose value it cannot parse, var() and color-mix() included, so the saved timeline
# lost its borders and its pills' tints. A plain colour declared first survives there; trusted
# outputs take the theme-aware declaration after it. Only borders and translucent tints get one:
# a fixed text colour or an opaque background would not read in both light and dark themes.
_VAR = re.compile(r"var\(--[\w-]+,\s*(#[0-9a-fA-F]{6})\)")
_MIX = re.compile(r"color-mix\(in srgb,\s*#([0-9a-fA-F]{6}) (\d+)%,\s*transparent\)")
_STYLE = re.compile(r'style="([^"]*)"')


def _rgba(match: re.Match[str]) -> str:
    r, g, b = (int(match[1][i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{int(match[2]) / 100:g})"


def plain_colour(value: str) -> str | None:
    """`value` with each theme variable and tint as its plain light colour; None if some part
    has no plain form."""
    plain = _MIX.sub(_rgba, _VAR.sub(r"\1", value))
    return None if "(--" in plain or "mix(" in plain else plain


@functools.lru_cache(maxsize=4096)  # the same few styles recur in every entry
def _with_plain(style: str) -> str:
    out = []
    for decl in style.split(";"):
        name, _, value = decl.partition(":")
        if "var(" in value or "color-mix(" in value:
            plain = plain_colour(value)
            tint = name.startswith("background") and "transparent" in value
            if (name.startswith("border") or tint) and plain is not None:
                out.append(f"{name}:{plain}")
        out.append(decl)
    return ";".join(out)


def untrusted_safe(markup: str) -> str:
    """`markup` with a plain-colour declaration before each theme-aware border and tint (above)."""
    return _STYLE.sub(lambda m: f'style="{_with_plain(m[1])}"', markup)
