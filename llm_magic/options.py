"""Every run option, declared once.

`ChainOptions` is the one declaration. Each field carries an `Option` in its metadata: the help
text, and how it appears on the `%%llm_chain` line (`flags`) and in `%config LLMMagic`
(`config`). The notebook layer derives its argparse parser, its `--help` text and its traitlets
defaults from these fields, so adding an option here adds it everywhere.

The public API takes the same names as keyword-only, typed parameters through `ChainKwargs`, a
TypedDict used as `**options: Unpack[ChainKwargs]` (PEP 692). Python's type system cannot derive
keyword parameters from a dataclass, so `ChainKwargs` mirrors the fields; a test checks that
the two never drift apart. A misspelt or mistyped option then fails `mypy --strict` in user
code, and still fails at run time with a clear `TypeError` or `ValueError` in untyped code.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

from .records import ToolCallRecord

OnToolError = Literal["model", "raise"]
# How hard the model thinks; each adapter maps it onto its model's own fields
# (llm_magic.providers._fields). None: the model's default.
ThinkingLevel = Literal["off", "low", "medium", "high"]
THINKING_LEVELS: tuple[ThinkingLevel, ...] = ("off", "low", "medium", "high")
ApproveSpec = frozenset[str] | Literal["all"] | None


@dataclass(frozen=True)
class Approval:
    """A decision on a call that needs approval."""

    approved: bool
    reason: str | None = None


ApprovalCallback = Callable[["ToolCallRecord"], Awaitable["Approval | bool"]]


@dataclass(frozen=True)
class Option:
    """How one option is shown to people: help text, command-line flags, `%config` default."""

    help: str
    flags: tuple[str, ...] = ()  # empty: not on the `%%llm_chain` line
    metavar: str | None = None
    config: bool | str = False  # also a `%config LLMMagic.<name>` default (str: another name)
    resolve: bool = False  # on the `%%llm_chain` line: a name in the notebook's namespace

    def config_name(self, field_name: str) -> str | None:
        if self.config is True:
            return field_name
        return self.config or None


def option(
    default: Any = dataclasses.MISSING,
    *,
    help: str,
    flags: tuple[str, ...] = (),
    metavar: str | None = None,
    config: bool | str = False,
    factory: Callable[[], Any] | None = None,
    resolve: bool = False,
) -> Any:
    """A dataclass field carrying its `Option` (typed `Any` so it fits any annotation)."""
    meta = {"option": Option(help, flags, metavar, config, resolve)}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def options_of(cls: type) -> Iterator[tuple[dataclasses.Field[Any], Option]]:
    """The fields of an options dataclass with their `Option`, in declaration order."""
    for f in dataclasses.fields(cls):
        meta = f.metadata.get("option")
        if isinstance(meta, Option):
            yield f, meta


def default_of(f: dataclasses.Field[Any]) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def literal_values(hint: Any) -> tuple[Any, ...]:
    """The values of a `Literal[...]` annotation, or of `Literal[...] | None`; () otherwise."""
    if typing.get_origin(hint) is Literal:
        return typing.get_args(hint)
    kinds = [k for k in typing.get_args(hint) if k is not type(None)]
    if len(kinds) == 1 and typing.get_origin(kinds[0]) is Literal:
        return typing.get_args(kinds[0])
    return ()


@functools.cache  # asked for by the cell's parser, its help and `%config`: resolved once
def field_hints(cls: type) -> dict[str, Any]:
    """Resolved annotations of an options dataclass (its module's names in scope); read only."""
    import sys

    module = sys.modules[cls.__module__]
    extra = {
        "ApprovalCallback": ApprovalCallback,
        "ApproveSpec": ApproveSpec,
        "ToolCallRecord": ToolCallRecord,
    }
    return typing.get_type_hints(cls, {**vars(module), **extra})


@dataclass(frozen=True, kw_only=True)
class ChainOptions:
    """Per-run settings, frozen once the run is built. A tool's own options are overridden by
    a run-level value where both exist (timeout, on_error)."""

    max_steps: int | None = option(
        None,
        help="rounds of tool calls before the model must answer (None: the model's default, "
        "10; 1 for the small local model)",
        flags=("--max-steps",),
        metavar="N",
        config=True,
    )
    max_tool_calls: int = option(
        100,
        help="tool calls a run may make in all",
        flags=("--max-tool-calls",),
        metavar="N",
        config=True,
    )
    timeout: float | None = option(
        None,
        help="wall-time limit of the run in seconds (None: no limit)",
        flags=("--timeout",),
        metavar="SECONDS",
        config=True,
    )
    tool_timeout: float | None = option(
        None,
        help="time limit of each tool call in seconds",
        flags=("--tool-timeout",),
        metavar="SECONDS",
        config=True,
    )
    max_concurrency: int = option(
        8,
        help="tool calls of one turn that run at once",
        flags=("--max-concurrency",),
        metavar="N",
        config=True,
    )
    approve: ApproveSpec = option(
        None,
        help="ask before these tools run: names, or 'all'",
        flags=("-a", "--approve"),
        metavar="a,b|all",
    )
    on_tool_error: OnToolError | None = option(
        None,
        help="a tool that raises: tell the model (model) or end the run (raise)",
        flags=("--on-tool-error",),
        metavar="model|raise",
    )
    tool_choice: str | None = option(
        None,
        help="auto, none, required, or a tool name the model must call",
        flags=("--tool-choice",),
        metavar="CHOICE",
    )
    max_cost: float | None = option(
        None,
        help="US dollars the run may spend, never more: each model turn's output (reasoning "
        "included) is capped to what the rest pays for after its prompt, estimated on the high "
        "side; the run stops (status max_cost, the figures in result.stop_reason) before a turn "
        "that cannot pay its prompt and 16 output tokens; needs a model with a known price",
        flags=("--max-cost",),
        metavar="USD",
        config=True,
    )
    output_type: type[Any] | None = option(
        None,
        help="a dataclass, TypedDict or pydantic model the final answer is validated into "
        "(result.output); the model may call tools first",
        flags=("--output-type",),
        metavar="NAME",
        resolve=True,
    )
    thinking: ThinkingLevel | None = option(
        None,
        help="how hard the model thinks before it answers: off, low, medium or high, sent in "
        "each model's own fields (None: the model's default)",
        flags=("--thinking",),
        metavar="off|low|medium|high",
        config=True,
    )
    stream: bool = option(
        True,
        help="stream model text as it arrives (--no-stream: wait for whole turns)",
        flags=("--no-stream",),
        config=True,
    )
    final_turn_on_limit: bool = option(
        True, help="when a limit ends the tool rounds, ask the model for a last answer"
    )
    prefer_sync: bool = option(
        False, help="use the sync implementation of a paired tool (the sync API sets it)"
    )
    approval_callback: ApprovalCallback | None = option(
        None, help="decides calls that need approval (else the run's view asks, or it denies)"
    )
    model_options: Mapping[str, Any] = option(
        help="extra fields for the provider's request (temperature, max_tokens, ...)",
        factory=dict,
    )
    attachments: tuple[Any, ...] = option(
        (),
        help="images and files sent with the prompt: figures, images, paths (PNG, JPEG, GIF, "
        "WebP, PDF), bytes; names of the notebook's variables or paths on the line",
        flags=("--attach",),
        metavar="fig,report.pdf",
    )

    def __post_init__(self) -> None:
        _check_int(self, "max_steps", minimum=1, optional=True)
        _check_int(self, "max_tool_calls", minimum=0)
        _check_int(self, "max_concurrency", minimum=1)
        _check_seconds(self, "timeout")
        _check_seconds(self, "tool_timeout")
        _check_dollars(self.max_cost)
        _check_output_type(self.output_type)
        for name in ("stream", "final_turn_on_limit", "prefer_sync"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.on_tool_error not in (None, "model", "raise"):
            raise ValueError(
                f"on_tool_error must be 'model' or 'raise', got {self.on_tool_error!r}"
            )
        if self.thinking is not None and self.thinking not in THINKING_LEVELS:
            raise ValueError(
                f"thinking must be one of {', '.join(THINKING_LEVELS)}, got {self.thinking!r}"
            )
        if self.tool_choice is not None and not isinstance(self.tool_choice, str):
            raise TypeError(f"tool_choice must be a string, got {self.tool_choice!r}")
        if self.approval_callback is not None and not callable(self.approval_callback):
            raise TypeError("approval_callback must be an async function of a ToolCallRecord")
        object.__setattr__(self, "approve", normalize_approve(self.approve))
        if not isinstance(self.model_options, Mapping):
            raise TypeError(f"model_options must be a dict, got {self.model_options!r}")
        object.__setattr__(self, "model_options", types.MappingProxyType(dict(self.model_options)))
        given = self.attachments  # a list of them, or one (a figure, a path)
        object.__setattr__(
            self, "attachments", tuple(given) if isinstance(given, list | tuple) else (given,)
        )

    def replace(self, **changes: Any) -> ChainOptions:
        """A copy with some fields changed (the original never changes)."""
        return dataclasses.replace(self, **changes)

    def needs_approval(self, tool_name: str) -> bool:
        return self.approve == "all" or (self.approve is not None and tool_name in self.approve)


class ChainKwargs(TypedDict, total=False):
    """The options as keyword arguments: `model.chain(prompt, **options)` (see module doc)."""

    max_steps: int | None
    max_tool_calls: int
    timeout: float | None
    tool_timeout: float | None
    max_concurrency: int
    approve: str | Iterable[str] | None
    on_tool_error: OnToolError | None
    tool_choice: str | None
    max_cost: float | None
    output_type: type[Any] | None
    thinking: ThinkingLevel | None
    stream: bool
    final_turn_on_limit: bool
    prefer_sync: bool
    approval_callback: ApprovalCallback | None
    model_options: Mapping[str, Any]
    attachments: Iterable[Any] | Any


def build_options(
    base: ChainOptions | None = None, *, others: Iterable[str] = (), **kwargs: Any
) -> ChainOptions:
    """`ChainOptions` from keyword arguments, with a clear error for an unknown name.

    others: the caller's own parameter names, suggested and listed along with the options.
    """
    unknown = sorted(set(kwargs) - _OPTION_NAMES)
    if unknown:
        import difflib

        name = unknown[0]
        known = _OPTION_NAMES | set(others)
        close = difflib.get_close_matches(name, sorted(known), n=2, cutoff=0.6)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise TypeError(
            f"unknown option {name!r}{hint} (the options are {', '.join(sorted(known))})"
        )
    if base is not None:
        return dataclasses.replace(base, **kwargs)
    try:  # the same plain keywords, the same frozen options: checked and built once
        key = tuple((name, type(value), value) for name, value in sorted(kwargs.items()))
        built = _BUILT.get(key)
    except TypeError:  # an unhashable value (a dict of model options): built each time
        return ChainOptions(**kwargs)
    if built is None:
        if len(_BUILT) >= _BUILT_MAX:
            _BUILT.clear()
        built = _BUILT[key] = ChainOptions(**kwargs)
    return built


_OPTION_NAMES = frozenset(f.name for f in dataclasses.fields(ChainOptions))
# Options built from keywords alone, by their (name, type, value)s: most runs pass the same few.
_BUILT: dict[tuple[Any, ...], ChainOptions] = {}
_BUILT_MAX = 256


def normalize_approve(value: Any) -> ApproveSpec:
    """None, 'all', or a frozenset of tool names.

    A string is one list of names separated by commas, never a sequence of characters
    (`approve="drop_table"` once made a tool named `d` or `drop` need approval).
    """
    if value is None or value == "all":
        return value  # type: ignore[no-any-return]
    if isinstance(value, str):
        names = [value]
    elif isinstance(value, Iterable):
        names = list(value)
    else:
        raise TypeError(f"approve takes tool names or 'all', got {value!r}")
    out: set[str] = set()
    for item in names:
        if not isinstance(item, str):
            raise TypeError(f"approve takes tool names (strings), got {item!r}")
        out.update(part.strip() for part in item.split(",") if part.strip())
    return "all" if "all" in out else frozenset(out)


def _check_int(opts: ChainOptions, name: str, *, minimum: int, optional: bool = False) -> None:
    value = getattr(opts, name)
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a whole number, got {value!r}")
    if value < minimum:
        default = " (None: the provider's default)" if optional else ""
        raise ValueError(f"{name} must be {minimum} or more{default}, got {value}")


def _check_seconds(opts: ChainOptions, name: str) -> None:
    value = getattr(opts, name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, got {value!r}")
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")


def _check_dollars(value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"max_cost must be a number of US dollars, got {value!r}")
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"max_cost must be a positive number of US dollars, got {value!r}")


def _check_output_type(value: Any) -> None:
    """A class whose fields make a JSON object: a dataclass, a TypedDict or a pydantic model."""
    if value is None:
        return
    from .schema import ObjectConv, PydanticConv, converter_for

    why = "it is not a class"
    if isinstance(value, type):
        try:
            if isinstance(converter_for(value), ObjectConv | PydanticConv):
                return
            why = "its values are not a JSON object"
        except TypeError as exc:
            why = str(exc)
    raise TypeError(
        f"output_type must be a dataclass, TypedDict or pydantic model, got {value!r} ({why})"
    )
