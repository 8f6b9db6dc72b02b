"""Python source as highlighted HTML, for code a person must read before it runs (the approval
card of `run_python`).

The colours are JupyterLab's own editor theme variables (with the light theme's values as
fallbacks), so the code reads as it would in a cell, in the light and the dark theme alike.
Pygments (a dependency of IPython) splits the code into tokens; without it the code is plain.
"""

from __future__ import annotations

from typing import Any

from .look import PRE_BLOCK, esc

PYTHON = "text/x-python"  # the media type of a tool argument that is Python source

# (pygments token type name, style): the first whose type contains a token's type wins
_STYLES = (
    ("Comment", "color:var(--jp-mirror-editor-comment-color,#408080);font-style:italic"),
    ("Keyword", "color:var(--jp-mirror-editor-keyword-color,#008000);font-weight:bold"),
    ("Operator.Word", "color:var(--jp-mirror-editor-keyword-color,#008000);font-weight:bold"),
    ("Name.Builtin", "color:var(--jp-mirror-editor-builtin-color,#008000)"),
    ("Name.Function", "color:var(--jp-mirror-editor-def-color,#0000ff)"),
    ("Name.Class", "color:var(--jp-mirror-editor-def-color,#0000ff)"),
    ("Literal.String", "color:var(--jp-mirror-editor-string-color,#ba2121)"),
    ("Literal.Number", "color:var(--jp-mirror-editor-number-color,#008800)"),
    ("Operator", "color:var(--jp-mirror-editor-operator-color,#aa22ff)"),
)


def code_arguments(schema: dict[str, Any]) -> list[str]:
    """The arguments of a tool's JSON schema that hold Python source (`contentMediaType`)."""
    props = schema.get("properties") or {}
    return [
        k for k, v in props.items() if isinstance(v, dict) and v.get("contentMediaType") == PYTHON
    ]


def python_html(code: str) -> str:
    """`code` in a block, its tokens coloured; escaped, no script, inline styles only."""
    return f'<pre class="llm-code" style="{PRE_BLOCK}">{_spans(code)}</pre>'


def _spans(code: str) -> str:
    try:
        from pygments.lexers import PythonLexer
        from pygments.token import string_to_tokentype
    except ImportError:
        return esc(code)
    styles = [(string_to_tokentype(name), style) for name, style in _STYLES]
    out = []
    for kind, text in PythonLexer(stripnl=False, ensurenl=False).get_tokens(code):
        style = next((s for t, s in styles if kind in t), None)
        out.append(f'<span style="{style}">{esc(text)}</span>' if style else esc(text))
    return "".join(out)
