"""`%llm_log`: the run log in the notebook (list, search, show a run's saved timeline), and
where a run started (the notebook and cell the log records).

    %llm_log                      the 20 newest runs: id, time, model, prompt, tool calls, cost
    %llm_log -q weather -n 5      full-text search (prompt, answer, tool calls)
    %llm_log --model claude --tool get_weather
    %llm_log 12                   run 12's timeline, drawn as it was when it ended

A saved timeline is the run's events replayed (`llm_magic.log.restore.replay`) through the same
reducer and renderer as a live one, shown as the static HTML a finished run leaves.
"""

from __future__ import annotations

import argparse
import shlex
from collections import Counter
from typing import Any

from .. import log
from ..cost import format_cost
from ..errors import LLMMagicError
from ..log import settings
from ..log.origin import Where
from .errors import NotebookError
from .look import esc, shorten
from .reducer import RunState, apply
from .state import shell


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # one line in the cell, not SystemExit
        raise NotebookError(f"%llm_log: {message}\n{self.format_usage().strip()}")


def _parser() -> _Parser:
    parser = _Parser(prog="%llm_log", add_help=False, description=__doc__)
    parser.add_argument("id", nargs="?", type=int, help="show this run's saved timeline")
    parser.add_argument("-q", "--query", help="words the prompt, answer or calls contain")
    parser.add_argument("-n", type=int, default=20, help="how many runs (default 20)")
    parser.add_argument("--model", help="runs of models whose name contains this")
    parser.add_argument("--tool", help="runs that called this tool")
    parser.add_argument("-h", "--help", action="store_true")
    return parser


def llm_log(line: str = "") -> None:
    """List, search and show the logged runs (`%llm_log --help`)."""
    try:
        args = _parser().parse_args(shlex.split(line))
    except ValueError as exc:
        raise NotebookError(f"%llm_log: {exc}") from None
    if args.help:
        print(_parser().format_help())
        return
    if not settings.enabled():
        print(
            "llm_magic: the run log is off (LLM_MAGIC_LOG=0 or %config LLMMagic.log = False); "
            f"reading what {log.path()} already holds"
        )
    try:
        if args.id is not None:
            show(args.id)
        else:
            print(listing(args.query, args.n, args.model, args.tool))
    except LLMMagicError as exc:
        raise NotebookError(f"%llm_log: {exc}") from None


def listing(query: str | None, limit: int, model: str | None, tool: str | None) -> str:
    """The runs as text lines, newest first."""
    entries = log.runs(query, limit=limit, model=model, tool=tool)
    if not entries:
        asked = " matching that" if query or model or tool else ""
        return f"no runs{asked} in the run log ({log.path()})"
    rows = [("id", "time", "model", "prompt", "tool calls", "cost")]
    for e in entries:
        calls = ", ".join(f"{n}×{c}" if c > 1 else n for n, c in Counter(e.tool_calls).items())
        rows.append(
            (
                str(e.id),
                e.time.strftime("%Y-%m-%d %H:%M"),
                e.model,
                shorten(" ".join(e.prompt.split()), 40),
                shorten(calls, 40) or "-",
                format_cost(e.cost),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]
    lines.append(f"({log.path()}; %llm_log ID shows a run, llm_magic.log.get(ID) goes on from it)")
    return "\n".join(lines)


def timeline(run_id: int) -> dict[str, str]:
    """Run `run_id`'s saved timeline: its static HTML and text, as a display bundle."""
    from ..log.restore import replay  # with the first saved timeline: `where` runs every start
    from . import render as R

    saved = log.saved(run_id)
    state = RunState(model=saved.model)
    for event in replay(saved):
        apply(state, event)
    state.error = saved.error
    if saved.branch is not None:
        origin = f"run {saved.branched_from}" if saved.branched_from else "a run"
        call = saved.branch.get("call_id")
        what = f"{saved.branch['kind']} of call {call}" if call else "a fork"
        state.branch = f"{origin}, step {saved.branch['step']}, {what}"
    where = " · ".join(x for x in (saved.notebook, saved.cell) if x)
    title = f"run {run_id} · {saved.model_id or saved.model}" + (f" · {where}" if where else "")
    return {
        "text/plain": f"{title}\n{R.static_text(state)}",
        "text/html": f'<div style="font-size:12px;opacity:.7">{esc(title)}</div>'
        + R.static_html(state),
    }


def show(run_id: int) -> None:
    from IPython.display import display

    display(timeline(run_id), raw=True)  # type: ignore[no-untyped-call]


def where() -> Where:
    """The notebook (JupyterLab's session path, VS Code's file) and cell a run starts from."""
    ip = shell()
    if ip is None:
        return Where()
    ns = getattr(ip, "user_ns", {})
    notebook = ns.get("__vsc_ipynb_file__") or ns.get("__session__")
    cell = None
    kernel = getattr(ip, "kernel", None)
    if kernel is not None:
        parent = kernel.get_parent() or {}
        cell = (parent.get("metadata") or {}).get("cellId")
    history = getattr(getattr(ip, "history_manager", None), "input_hist_raw", None)
    if cell is None and history:  # stored before the cell runs, in every IPython
        cell = f"In [{len(history) - 1}]"
    return Where(str(notebook) if notebook else None, str(cell) if cell else None)
