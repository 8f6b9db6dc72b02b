"""The `%%llm_chain` option line and `{name}` placeholders.

Everything here is plain Python (no IPython), so the parsing is easy to test and the errors are
the same wherever the line comes from (the input transformer or the registered magic).
"""

from __future__ import annotations

import argparse
import difflib
import keyword
import re
import shlex
import types
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal, NoReturn

from . import NotebookError

USAGE = "%%llm_chain [options]\n<prompt>"

HELP = """\
%%llm_chain [options]  -- run the cell as a prompt; the model may call your functions as tools.

The cell runs on the kernel's own event loop (it becomes a top-level `await`), so other cells
queue behind it, a kernel interrupt stops it, and `print()` inside your tools lands in this cell.
The cell's value is the result: its repr is the answer; `.text`, `.tool_calls`, `.usage`,
`.status`, and `await result.continue_("...")` to go on.

Options:
  -m, --model MODEL       model id or alias (gpt-4.1-mini, claude-sonnet-4-5, gemini-2.5-flash,
                          local, openai:NAME, ollama:NAME...; %llm_models lists them)
  -t, --tools a,b         tools by name from the notebook's namespace (obj.method works too);
                          default: every function marked with @llm_magic.tool
      --no-tools          no tools: a plain model answer
  -s, --system TEXT       system prompt (quote it: -s "Answer in French.")
      --max-steps N       rounds of tool calls before the model must answer
      --timeout SECONDS   wall-time limit of the run
  -a, --approve a,b|all   ask before these tools run (Approve/Deny in the timeline)
  -o, --out NAME          also bind the result to NAME
  -c, --continue [NAME]   go on with the notebook's conversation, or with the result or
                          conversation stored in NAME
      --reset             start a fresh notebook conversation
      --history N         send at most N earlier messages when continuing (0: all)
      --no-stream         wait for whole model turns instead of streaming text
  -q, --quiet             no timeline, just the answer
      --no-interpolate    leave {name} placeholders as written
  -h, --help              this help

Placeholders: {name} and {name.attr} are replaced by the value of a variable of that name in the
notebook; any other brace ({}, JSON, code, {{name}}, names that do not exist) is left exactly as
written.

Defaults come from %config LLMMagic (see %llm_config) and LLM_MAGIC_MODEL.

Example:
  %%llm_chain -m gpt-4.1-mini -t get_weather -o trip
  Is it warmer in {city} or Rome right now?
"""


class OptionError(NotebookError):
    """A bad `%%llm_chain` option line."""


@dataclass
class CellOptions:
    model: str | None = None
    tools: list[str] | None = None
    no_tools: bool = False
    system: str | None = None
    max_steps: int | None = None
    timeout: float | None = None
    approve: list[str] | Literal["all"] | None = None
    out: str | None = None
    continue_: str | Literal[True] | None = None
    reset: bool = False
    history: int | None = None
    no_stream: bool = False
    quiet: bool = False
    no_interpolate: bool = False
    help: bool = False


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise OptionError(f"%%llm_chain: {message} (%%llm_chain --help lists the options)")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise OptionError(f"%%llm_chain: {message or 'bad options'}")


def _names(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _parser() -> _Parser:
    p = _Parser(prog="%%llm_chain", add_help=False, allow_abbrev=False, exit_on_error=False)
    p.add_argument("-m", "--model")
    p.add_argument("-t", "--tools", action="append", metavar="a,b")
    p.add_argument("--no-tools", action="store_true")
    p.add_argument("-s", "--system")
    p.add_argument("--max-steps", type=int, metavar="N")
    p.add_argument("--timeout", type=float, metavar="SECONDS")
    p.add_argument("-a", "--approve", action="append", metavar="a,b|all")
    p.add_argument("-o", "--out", metavar="NAME")
    p.add_argument("-c", "--continue", dest="continue_", nargs="?", const=True, metavar="NAME")
    p.add_argument("--reset", action="store_true")
    p.add_argument("--history", type=int, metavar="N")
    p.add_argument("--no-stream", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--no-interpolate", action="store_true")
    p.add_argument("-h", "--help", action="store_true")
    return p


def option_strings() -> list[str]:
    return sorted(_parser()._option_string_actions)


def parse_line(line: str) -> CellOptions:
    """Parse the text after `%%llm_chain`; raises OptionError with a one-line explanation."""
    try:
        tokens = shlex.split(line, posix=True)
    except ValueError as exc:
        raise OptionError(
            f"%%llm_chain: cannot read the options ({exc}); quote values with spaces: "
            '-s "Answer briefly."'
        ) from None
    parser = _parser()
    try:
        ns, extra = parser.parse_known_args(tokens)
    except argparse.ArgumentError as exc:
        raise OptionError(f"%%llm_chain: {exc} (%%llm_chain --help lists the options)") from None
    if extra:
        raise OptionError(_unknown(extra))
    opts = CellOptions(
        model=ns.model,
        no_tools=ns.no_tools,
        system=ns.system,
        max_steps=ns.max_steps,
        timeout=ns.timeout,
        out=ns.out,
        continue_=ns.continue_,
        reset=ns.reset,
        history=ns.history,
        no_stream=ns.no_stream,
        quiet=ns.quiet,
        no_interpolate=ns.no_interpolate,
        help=ns.help,
    )
    if ns.tools is not None:
        opts.tools = [name for value in ns.tools for name in _names(value)]
    if ns.approve is not None:
        names = [name for value in ns.approve for name in _names(value)]
        opts.approve = "all" if "all" in names else names
    _check(opts)
    return opts


def _unknown(extra: list[str]) -> str:
    first = extra[0]
    if first.startswith("-") and len(first) > 1:
        name = first.split("=", 1)[0]
        close = difflib.get_close_matches(name, option_strings(), n=2, cutoff=0.7)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        return f"%%llm_chain: unknown option {name}{hint} (%%llm_chain --help lists the options)"
    return (
        f"%%llm_chain: unexpected {first!r} on the magic line; the prompt goes in the cell "
        'below the line, and values with spaces need quotes (-s "Be brief.")'
    )


def _check(opts: CellOptions) -> None:
    if opts.tools is not None and opts.no_tools:
        raise OptionError("%%llm_chain: use either --tools or --no-tools, not both")
    if opts.tools is not None and not opts.tools:
        raise OptionError("%%llm_chain: --tools needs names, e.g. --tools get_weather,fetch")
    if opts.reset and opts.continue_ is not None:
        raise OptionError(
            "%%llm_chain: use either --reset (a fresh conversation) or --continue, not both"
        )
    if opts.max_steps is not None and opts.max_steps < 1:
        raise OptionError(f"%%llm_chain: --max-steps must be 1 or more, got {opts.max_steps}")
    if opts.timeout is not None and not opts.timeout > 0:
        raise OptionError(
            f"%%llm_chain: --timeout must be a positive number of seconds, got {opts.timeout}"
        )
    if opts.history is not None and opts.history < 0:
        raise OptionError(f"%%llm_chain: --history must be 0 (all) or more, got {opts.history}")
    if opts.out is not None and (not opts.out.isidentifier() or keyword.iskeyword(opts.out)):
        raise OptionError(f"%%llm_chain: --out needs a variable name, got {opts.out!r}")
    if isinstance(opts.continue_, str) and not _dotted(opts.continue_):
        raise OptionError(f"%%llm_chain: --continue takes a variable name, got {opts.continue_!r}")
    if opts.model is not None and not opts.model.strip():
        raise OptionError("%%llm_chain: --model needs a model id (%llm_models lists them)")


def _dotted(name: str) -> bool:
    return all(part.isidentifier() for part in name.split("."))


# -- placeholders ---------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"(?<!\{)\{([^\W\d]\w*(?:\.[^\W\d]\w*)*)\}(?!\})")


def interpolate(text: str, namespace: Mapping[str, Any], hidden: Collection[str] = ()) -> str:
    """Fill `{name}` / `{name.attr}` whose name is a variable in `namespace`; keep all else.

    Left exactly as written: `{}`, JSON and dict literals, `{{name}}`, `{ name }`, names that do
    not exist (or whose attribute does not), modules, and the shell's own variables (`hidden`).
    """

    def fill(match: re.Match[str]) -> str:
        first, *attrs = match.group(1).split(".")
        if first not in namespace or first in hidden:
            return match.group(0)
        value = namespace[first]
        try:
            for attr in attrs:
                value = getattr(value, attr)
            if isinstance(value, types.ModuleType):
                return match.group(0)
            return str(value)
        except Exception:
            return match.group(0)

    return _PLACEHOLDER.sub(fill, text)


def lookup(name: str, namespace: Mapping[str, Any]) -> tuple[bool, Any]:
    """Resolve `name` or `obj.attr` in a namespace: (found, value)."""
    first, *attrs = name.split(".")
    if first not in namespace:
        return False, None
    value = namespace[first]
    for attr in attrs:
        try:
            value = getattr(value, attr)
        except Exception:
            return False, None
    return True, value


def close_names(name: str, candidates: Collection[str]) -> list[str]:
    return difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.6)
