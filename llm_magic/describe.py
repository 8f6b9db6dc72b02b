"""Short, bounded descriptions of Python values, for a model that cannot look at the kernel.

The notebook tools (`notebook_tools()`) and `--context` describe the user's variables with these:
a listing row per variable (name, type, size, shape) and a description of one (a DataFrame's
shape, dtypes, head and summary; an array's shape, dtype and statistics; any other object's
repr, docstring and signature). pandas and numpy are recognised by what the objects have, never
imported. Every text is bounded and says when it was cut, and the values of the providers' API
keys found in the environment never leave here.

Which variables may be shown at all is decided here too (`shown`): not `_`-prefixed names, not
modules, not what the user marked private (by name, or an object whose class sets
`__llm_private__ = True`). The shell's own names (`In`, `Out`, ...) are the notebook layer's to add.
"""

from __future__ import annotations

import inspect
import os
import reprlib
import types
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from ._http import scrub
from ._serialize import _cut
from .registry import ROUTES

DESCRIBE_CHARS = 4_000  # one variable's description
LISTING_ROWS = 200  # variables listed at most
LISTING_CHARS = 8_000
REPR_CHARS = 1_000
DOC_CHARS = 600
HEAD_ROWS = 5
PRIVATE_ATTR = "__llm_private__"

_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxtuple, _REPR.maxset = 3, 20, 20, 20
_REPR.maxdict, _REPR.maxstring, _REPR.maxother, _REPR.maxlong = 20, 300, REPR_CHARS, 100


def shown(
    namespace: Mapping[str, Any], hidden: Collection[str] = (), private: Collection[str] = ()
) -> list[tuple[str, Any]]:
    """The variables a model may see, in the namespace's order: not `_`-prefixed, not in
    `hidden` (the shell's own) or `private` (the user's list), not modules, not marked private."""
    out = []
    for name, value in list(namespace.items()):
        if name.startswith("_") or name in hidden or name in private:
            continue
        if isinstance(value, types.ModuleType) or is_marked_private(value):
            continue
        out.append((name, value))
    return out


def is_marked_private(value: Any) -> bool:
    """True for an object whose class (or itself) sets `__llm_private__ = True`."""
    try:
        return getattr(value, PRIVATE_ATTR, False) is True
    except Exception:  # a proxy whose attribute access raises: not marked
        return False


def type_name(value: Any) -> str:
    """`int`, `pandas.DataFrame`, `numpy.ndarray`: the top package and the class's name."""
    cls = type(value)
    module = (cls.__module__ or "").split(".")[0]
    return (
        cls.__qualname__ if module in ("builtins", "__main__", "") else f"{module}.{cls.__name__}"
    )


def shape_of(value: Any) -> tuple[int, ...] | None:
    """An array's or frame's `.shape`, when it is a tuple of ints."""
    shape = _attr(value, "shape")
    if isinstance(shape, tuple) and all(isinstance(n, int) for n in shape):
        return shape
    return None


def size_of(value: Any) -> int | None:
    """How many items: an array's or frame's `.size` (elements), else `len()`; None if neither."""
    if isinstance(value, type):  # a class's `size` is an attribute of its instances
        return None
    size = _attr(value, "size")
    if isinstance(size, int) and not isinstance(size, bool) and shape_of(value) is not None:
        return size
    try:
        return len(value)
    except Exception:
        return None


def listing(variables: Iterable[tuple[str, Any]], limit: int = LISTING_ROWS) -> str:
    """One row per variable (name, type, size, shape), at most `limit` rows, saying so if more."""
    rows = [("name", "type", "size", "shape")]
    extra = 0
    for name, value in variables:
        if len(rows) > limit:
            extra += 1
            continue
        size, shape = size_of(value), shape_of(value)
        rows.append((name, type_name(value), "" if size is None else str(size), str(shape or "")))
    if len(rows) == 1:
        return "no variables (names starting with _, modules and private ones are not shown)"
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ["  ".join([*(r[i].ljust(widths[i]) for i in range(3)), r[3]]).rstrip() for r in rows]
    if extra:
        lines.append(f"[cut: {extra} more variables not listed]")
    return bounded("\n".join(lines), LISTING_CHARS)


def describe(value: Any, limit: int = DESCRIBE_CHARS) -> str:
    """What a model should know of a value: its kind's own summary, bounded to `limit`."""
    for looks_like, describer, kind in _DESCRIBERS:
        if looks_like(value):
            try:
                return bounded(describer(value), limit)
            except Exception as exc:  # a broken frame or array: say so, describe it plainly
                note = f"(could not describe it as {kind}: {_error(exc)})"
                return bounded(f"{note}\n{_describe_object(value)}", limit)
    return bounded(_describe_object(value), limit)


def context_block(variables: Iterable[tuple[str, Any]], limit: int = DESCRIBE_CHARS) -> str:
    """The descriptions of named variables, as a block that follows a prompt (`--context`)."""
    parts = [f"## {name}\n{describe(value, limit)}" for name, value in variables]
    return "Variables of the user's Python session, described:\n\n" + "\n\n".join(parts)


def bounded(text: str, limit: int) -> str:
    """`text` cut to `limit` characters (saying how much was cut), with API keys masked."""
    return _cut(without_keys(text), limit)[0]


def without_keys(text: str) -> str:
    """`text` with the value of every provider API key set in the environment masked."""
    for route in ROUTES.values():
        for env in route.vendor.key_env:
            text = scrub(text, os.environ.get(env))
    return text


# -- describers -------------------------------------------------------------------------------


def _is_frame(value: Any) -> bool:
    shape = shape_of(value)
    return shape is not None and len(shape) == 2 and _has(value, "dtypes", "columns", "head")


def _is_series(value: Any) -> bool:
    shape = shape_of(value)
    return shape is not None and len(shape) == 1 and _has(value, "dtype", "index", "head")


def _is_array(value: Any) -> bool:
    return shape_of(value) is not None and _has(value, "dtype", "ndim")


def _describe_frame(frame: Any) -> str:
    rows, cols = frame.shape
    parts = [
        f"{type_name(frame)}: {rows} rows × {cols} columns",
        "dtypes:\n" + frame.dtypes.to_string(),
        f"head({HEAD_ROWS}):\n" + frame.head(HEAD_ROWS).to_string(),
    ]
    summary = _summary(frame)
    if summary:
        parts.append("describe():\n" + summary)
    return "\n\n".join(parts)


def _describe_series(series: Any) -> str:
    name = getattr(series, "name", None)
    title = f"{type_name(series)} {name!r}" if name is not None else type_name(series)
    parts = [
        f"{title}: {series.shape[0]} values, dtype {series.dtype}",
        f"head({HEAD_ROWS}):\n" + series.head(HEAD_ROWS).to_string(),
    ]
    summary = _summary(series)
    if summary:
        parts.append("describe():\n" + summary)
    return "\n\n".join(parts)


def _summary(data: Any) -> str:
    """pandas' `describe()` as text; empty when it has nothing to say or fails."""
    try:
        return str(data.describe().to_string())
    except Exception:
        return ""


def _describe_array(array: Any) -> str:
    lines = [f"{type_name(array)}: shape {array.shape}, dtype {array.dtype}"]
    kind = getattr(array.dtype, "kind", "")
    if kind in "biuf" and array.size:  # numbers: bool, ints, floats
        stats = []
        for stat in ("min", "max", "mean", "std"):
            try:
                stats.append(f"{stat} {getattr(array, stat)():.6g}")
            except Exception:
                continue
        if stats:
            lines.append(", ".join(stats))
    lines.append("values:\n" + short_repr(array))
    return "\n".join(lines)


def _describe_object(value: Any) -> str:
    if inspect.isroutine(value) or isinstance(value, type):  # its repr says no more than this
        name = getattr(value, "__qualname__", None) or getattr(value, "__name__", "?")
        lines = [f"{type_name(value)} {name}{_signature(value)}"]
    else:
        lines = [f"{type_name(value)}: {short_repr(value)}"]
        signature = _signature(value) if callable(value) else ""
        if signature:
            lines.append(f"signature: {signature}")
    doc = _doc(value)
    if doc:
        lines.append("docstring:\n" + _cut(doc, DOC_CHARS)[0])
    return "\n".join(lines)


_DESCRIBERS: list[tuple[Callable[[Any], bool], Callable[[Any], str], str]] = [
    (_is_frame, _describe_frame, "a table"),
    (_is_series, _describe_series, "a series"),
    (_is_array, _describe_array, "an array"),
]


def short_repr(value: Any) -> str:
    """A repr bounded while it is made (containers, strings) and after (anything else)."""
    try:
        return _cut(_REPR.repr(value), REPR_CHARS)[0]
    except Exception as exc:
        return f"<repr failed: {_error(exc)}>"


def _signature(value: Any) -> str:
    """The signature with its hints as written (`from __future__ import annotations` leaves
    them strings: they are evaluated when they can be)."""
    for eval_str in (True, False):
        try:
            return str(inspect.signature(value, eval_str=eval_str))
        except (TypeError, ValueError):
            return ""
        except Exception:  # a hint naming what does not exist
            continue
    return ""


def _doc(value: Any) -> str:
    """The object's own docstring; an instance gets its class's only when the class is not a
    builtin (`int`'s docstring says nothing about the user's number)."""
    try:
        doc = inspect.getdoc(value)
    except Exception:
        return ""
    cls = type(value)
    if not (inspect.isroutine(value) or isinstance(value, type)) and cls.__module__ == "builtins":
        return ""
    return doc or ""


def _attr(value: Any, name: str) -> Any:
    try:
        return getattr(value, name, None)
    except Exception:
        return None


def _has(value: Any, *names: str) -> bool:
    return all(_attr(value, n) is not None for n in names)


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
