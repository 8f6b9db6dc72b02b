"""A branched run as the timeline names it, and a view's runs stacked, oldest first.

A re-run or fork made from a view adds to that view's history: each earlier run stays as its
static timeline under a title (`stack_html`), and the branch's header says what it is
(`branch_html`: its name from `reducer.describe_branch`, the edited arguments as a diff, a
fork's new prompt). The live widget and the saved notebook show the same fragments.
"""

from __future__ import annotations

from .look import ERROR, FG, FONT, MONO, MUTED, NO_MATH, esc, shorten
from .reducer import RunState


def branch_html(state: RunState) -> str:
    """What a branched run is: its name, the edited arguments as a diff, a fork's new prompt."""
    rows = "".join(
        f'<div style="{MONO};font-size:12px"><b>{esc(key)}</b>: '
        + (f'<del style="{ERROR}">{esc(shorten(old, 60))}</del> ' if old else "")
        + (
            f'<ins style="color:var(--jp-success-color1,#1a7f37)">{esc(shorten(new, 60))}</ins>'
            if new
            else ""
        )
        + "</div>"
        for key, old, new in state.branch_diff
    )
    diff = f'<div class="llm-branch-diff" style="margin:1px 0 0 2px">{rows}</div>' if rows else ""
    prompt = (
        f'<div class="llm-branch-prompt" style="{FG};font-size:12px;overflow-wrap:anywhere">'
        f"new prompt: {esc(shorten(state.prompt, 300))}</div>"
        if state.prompt and state.branch
        else ""
    )
    return (
        f'<div class="llm-branch" style="{MUTED};font-size:12px;overflow-wrap:anywhere">'
        f"{esc(state.branch or '')}</div>{diff}{prompt}"
    )


def branch_lines(state: RunState) -> list[str]:
    """`branch_html` as text lines."""
    lines = [f"  {state.branch}"] if state.branch else []
    lines += [
        f"    {k}: {old or '(none)'} -> {new or '(removed)'}" for k, old, new in state.branch_diff
    ]
    if state.prompt and state.branch:
        lines.append(f"  new prompt: {state.prompt}")
    return lines


def branch_title_html(title: str) -> str:
    """The title over one run of a view's stack of branches (see `stack_html`)."""
    return (
        f'<div class="llm-stack-title" style="{FONT};{MUTED};font-size:12px;font-weight:600;'
        f'margin:10px 0 3px;overflow-wrap:anywhere">{esc(title)}</div>'
    )


def stack_html(past: list[str], title: str, current: str) -> str:
    """A view's runs stacked, oldest first: the original and each branch made from the view,
    each under its title, so a saved notebook keeps every branch (no script needed)."""
    return (
        f'<div class="llm-stack {NO_MATH}" style="max-width:100%">{"".join(past)}'
        f"{branch_title_html(title)}{current}</div>"
    )
