"""The `%%llm_chain` option line and `{name}` placeholders.

Everything here is plain Python (no IPython), so the parsing is easy to test and the errors are
the same wherever the line comes from (the input transformer or the registered magic).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import difflib
import functools
import keyword
import re
import shlex
import textwrap
import types
import typing
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from ..media import MediaError, attachment, is_image_like
from ..options import ChainOptions, Option, field_hints, literal_values, option, options_of
from .errors import NotebookError

INTRO = """\
%%llm_chain [options]  -- run the cell as a prompt; the model may call your functions as tools.

The cell runs on the kernel's own event loop (it becomes a top-level `await`), so other cells
queue behind it, a kernel interrupt stops it, and `print()` inside your tools lands in this cell.
The cell's value is the result: its repr is the answer; `.text`, `.tool_calls`, `.usage`,
`.status`, and `await result.continue_("...")` to go on.
"""

OUTRO = """\
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


@dataclass(kw_only=True)
class CellOptions:
    """The notebook's own options, declared once like `ChainOptions` (see llm_magic.options)."""

    model: str | None = option(
        None,
        help="model id or alias (gpt-4.1-mini, local, openai:NAME, ollama:NAME...; "
        "%llm_models lists them)",
        flags=("-m", "--model"),
        metavar="MODEL",
        config="default_model",
    )
    tools: list[str] | None = option(
        None,
        help="tools by name from the notebook's namespace (obj.method works too); 'notebook': "
        "tools to list, describe and read the notebook's variables and cells ('notebook+run' "
        "adds run_python, approved call by call); default: every function marked with "
        "@llm_magic.tool",
        flags=("-t", "--tools"),
        metavar="a,b",
    )
    no_tools: bool = option(False, help="no tools: a plain model answer", flags=("--no-tools",))
    context: list[str] | None = option(
        None,
        help="describe these notebook variables to the model after the prompt (a DataFrame's "
        "shape, dtypes, first rows and statistics...), so it needs no tool call to see them",
        flags=("--context",),
        metavar="a,b",
    )
    private_names: str = option(
        "",
        help="variables the model never sees through the notebook tools or --context (names, "
        "comma separated; an object whose class sets __llm_private__ = True is private too)",
        config=True,
    )
    mcp: list[str] | None = option(
        None,
        help="MCP servers by name (declared with %llm_mcp add NAME ...): their tools "
        "(NAME_tool) join the run's, with --no-tools instead of the notebook's functions",
        flags=("--mcp",),
        metavar="a,b",
    )
    system: str | None = option(
        None,
        help='system prompt (quote it: -s "Answer in French.")',
        flags=("-s", "--system"),
        metavar="TEXT",
        config=True,
    )
    out: str | None = option(
        None, help="also bind the result to NAME", flags=("-o", "--out"), metavar="NAME"
    )
    continue_: str | bool | None = option(
        None,
        help="go on with the notebook's conversation, or with the result or conversation "
        "stored in NAME, or with run ID of the run log (%llm_log lists them)",
        flags=("-c", "--continue"),
        metavar="NAME|ID",
    )
    reset: bool = option(False, help="start a fresh notebook conversation", flags=("--reset",))
    history: int = option(
        40,
        help="send at most N earlier messages when continuing (0: all); the cut is made at a "
        "user message, so no tool call is separated from its result",
        flags=("--history",),
        metavar="N",
        config="history_window",
    )
    quiet: bool = option(
        False, help="no timeline, just the answer", flags=("-q", "--quiet"), config=True
    )
    interpolate: bool = option(
        True,
        help="fill {name} placeholders from the notebook (--no-interpolate: leave them)",
        flags=("--no-interpolate",),
        config=True,
    )
    auto_continue: bool = option(
        False,
        help="every %%llm_chain cell continues the notebook's conversation, as if --continue "
        "were given (--reset starts a fresh one)",
        config=True,
    )
    static_after_run: bool = option(
        True,
        help="--live: keep the timeline a live widget after the run ends, with Edit & re-run "
        "on each call (by default the widget gives way to static HTML, so a saved notebook "
        "reads everywhere)",
        flags=("--live",),
        config=True,
    )
    help: bool = option(False, help="this help", flags=("-h", "--help"))


@dataclass(frozen=True)
class CellLine:
    """A parsed `%%llm_chain` line: the notebook's options and the run's, both complete."""

    cell: CellOptions
    chain: ChainOptions


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise OptionError(f"%%llm_chain: {message} (%%llm_chain --help lists the options)")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise OptionError(f"%%llm_chain: {message or 'bad options'}")


def _names(values: list[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _add(parser: argparse.ArgumentParser, f: Any, meta: Option, hint: Any) -> None:
    """One argparse option from a declared field: its type decides the kind of option."""
    kinds = set(typing.get_args(hint)) - {type(None)} or {hint}
    kw: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": meta.help}
    if kinds == {bool}:
        kw["action"] = "store_false" if f.default is True else "store_true"
    elif {bool, str} <= kinds:  # --continue [NAME]
        kw.update(nargs="?", const=True, metavar=meta.metavar)
    elif kinds & {int, float}:
        kw.update(type=int if int in kinds else float, metavar=meta.metavar)
    elif literal_values(hint):  # one of some words (--thinking high, --on-tool-error raise)
        kw.update(choices=literal_values(hint), metavar=meta.metavar)
    elif kinds <= {str} or meta.resolve:  # resolve: a name, looked up in `_build`
        kw["metavar"] = meta.metavar
    else:  # lists of names (tools, approve), repeatable and comma separated
        kw.update(action="append", metavar=meta.metavar)
    parser.add_argument(*meta.flags, **kw)


@functools.cache  # the parser and the help text (made at `%load_ext`) read the same list
def _declared() -> list[tuple[type, Any, Option, Any]]:
    out: list[tuple[type, Any, Option, Any]] = []
    for cls in (CellOptions, ChainOptions):
        hints = field_hints(cls)
        out += [(cls, f, meta, hints[f.name]) for f, meta in options_of(cls) if meta.flags]
    return out


@functools.cache
def _parser() -> _Parser:
    p = _Parser(prog="%%llm_chain", add_help=False, allow_abbrev=False, exit_on_error=False)
    for _, f, meta, hint in _declared():
        _add(p, f, meta, hint)
    return p


def help_text() -> str:
    """`%%llm_chain --help`: the prose around the options, the options from their declaration."""
    rows = []
    for _, _field, meta, hint in _declared():
        flags = ", ".join(meta.flags)
        if meta.metavar:
            optional = {bool, str} <= set(typing.get_args(hint))  # --continue [NAME]
            flags += f" [{meta.metavar}]" if optional else f" {meta.metavar}"
        rows.append((("    " if meta.flags[0].startswith("--") else "") + flags, meta.help))
    width = max(len(left) for left, _ in rows) + 2
    lines = []
    for left, text in rows:
        wrapped = textwrap.wrap(text, 96 - width - 2) or [""]
        lines.append(f"  {left:<{width}}{wrapped[0]}")
        lines += [f"  {'':<{width}}{more}" for more in wrapped[1:]]
    return f"{INTRO}\nOptions:\n" + "\n".join(lines) + f"\n\n{OUTRO}"


def option_strings() -> list[str]:
    return sorted(_parser()._option_string_actions)


def parse_line(
    line: str,
    defaults: Mapping[str, Any] | None = None,
    namespace: Mapping[str, Any] | None = None,
) -> CellLine:
    """Parse the text after `%%llm_chain`; raises OptionError with a one-line explanation.

    defaults: `%config LLMMagic` values by field name; what the line gives wins over them.
    namespace: where names given to options that take one (`--output-type NAME`) are found.
    """
    try:
        tokens = shlex.split(line, posix=True)
    except ValueError as exc:
        raise OptionError(
            f"%%llm_chain: cannot read the options ({exc}); quote values with spaces: "
            '-s "Answer briefly."'
        ) from None
    try:
        ns, extra = _parser().parse_known_args(tokens)
    except argparse.ArgumentError as exc:
        raise OptionError(f"%%llm_chain: {exc} (%%llm_chain --help lists the options)") from None
    if extra:
        raise OptionError(_unknown(extra))
    given = vars(ns)
    for name in ("tools", "approve", "mcp", "context", "attachments"):
        if name in given:
            given[name] = _names(given[name])
    _resolve(given, namespace or {})
    if "attachments" in given:
        given["attachments"] = [_attachment(n, namespace or {}) for n in given["attachments"]]
    return _build(given, dict(defaults or {}))


def _resolve(given: dict[str, Any], namespace: Mapping[str, Any]) -> None:
    """Options given as a name of the notebook (`--output-type Movie`): their values."""
    for _, f, meta, _hint in _declared():
        if meta.resolve and isinstance(given.get(f.name), str):
            name = given[f.name]
            found, value = lookup(name, namespace)
            if not found:
                close = close_names(name, [k for k in namespace if not k.startswith("_")])
                hint = f"; did you mean {' or '.join(close)}?" if close else ""
                raise OptionError(
                    f"%%llm_chain: {meta.flags[-1]} {name}: there is no {name!r} in the "
                    f"notebook{hint} (define it in a cell above)"
                )
            given[f.name] = value


def _attachment(name: str, namespace: Mapping[str, Any]) -> Any:
    """`--attach NAME`: a variable of the notebook (a figure, an image, bytes, a path), else a
    path to a file."""
    found, value = lookup(name, namespace)
    if not found and Path(name).expanduser().is_file():
        found, value = True, Path(name)
    if not found:
        close = close_names(name, [k for k in namespace if not k.startswith("_")])
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise OptionError(
            f"%%llm_chain: --attach {name}: there is no variable or file named {name!r}{hint}"
        )
    try:
        return attachment(value, name)
    except MediaError as exc:
        raise OptionError(f"%%llm_chain: --attach {name}: {exc}") from None


def _build(given: dict[str, Any], defaults: dict[str, Any]) -> CellLine:
    split: dict[type, dict[str, Any]] = {CellOptions: {}, ChainOptions: {}}
    for cls in split:
        names = {f.name for f in dataclasses.fields(cls)}
        split[cls] = {k: v for k, v in {**defaults, **given}.items() if k in names}
    cell = CellOptions(**split[CellOptions])
    _check(cell, given)
    try:
        chain = ChainOptions(**split[ChainOptions])
    except (TypeError, ValueError) as exc:
        raise OptionError(f"%%llm_chain: {_in_flags(str(exc))}") from None
    return CellLine(cell, chain)


def _in_flags(message: str) -> str:
    """A ChainOptions error names the field (`max_steps must ...`): say the flag instead."""
    for f, meta in options_of(ChainOptions):
        if meta.flags and message.startswith(f"{f.name} "):
            return meta.flags[-1] + message[len(f.name) :]
    return message


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


def _check(opts: CellOptions, given: Mapping[str, Any]) -> None:
    if "tools" in given and opts.no_tools:
        raise OptionError("%%llm_chain: use either --tools or --no-tools, not both")
    if opts.tools is not None and not opts.tools:
        raise OptionError("%%llm_chain: --tools needs names, e.g. --tools get_weather,fetch")
    if opts.reset and opts.continue_ is not None:
        raise OptionError(
            "%%llm_chain: use either --reset (a fresh conversation) or --continue, not both"
        )
    if opts.history < 0:
        raise OptionError(f"%%llm_chain: --history must be 0 (all) or more, got {opts.history}")
    if opts.out is not None and (not opts.out.isidentifier() or keyword.iskeyword(opts.out)):
        raise OptionError(f"%%llm_chain: --out needs a variable name, got {opts.out!r}")
    if isinstance(opts.continue_, str) and not (
        _dotted(opts.continue_) or opts.continue_.isdigit()
    ):
        raise OptionError(
            f"%%llm_chain: --continue takes a variable name or a run log id, got {opts.continue_!r}"
        )
    if "model" in given and not (opts.model or "").strip():
        raise OptionError("%%llm_chain: --model needs a model id (%llm_models lists them)")


def _dotted(name: str) -> bool:
    return all(part.isidentifier() for part in name.split("."))


# -- placeholders ---------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"(?<!\{)\{([^\W\d]\w*(?:\.[^\W\d]\w*)*)\}(?!\})")


def interpolate(
    text: str,
    namespace: Mapping[str, Any],
    hidden: Collection[str] = (),
    images: list[Any] | None = None,
) -> str:
    """Fill `{name}` / `{name.attr}` whose name is a variable in `namespace`; keep all else.

    Left exactly as written: `{}`, JSON and dict literals, `{{name}}`, `{ name }`, names that do
    not exist (or whose attribute does not), modules, and the shell's own variables (`hidden`).
    An image (a figure, a PIL image, `llm_magic.Media`) is not its repr: with `images` given it
    goes there, to be sent as an image, and the text says `[image: name, attached]`.
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
            if images is not None and is_image_like(value):
                with contextlib.suppress(MediaError):  # no image after all: its text, as before
                    images.append(attachment(value, match.group(1)))
                    return f"[image: {match.group(1)}, attached]"
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
