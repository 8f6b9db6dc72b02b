"""Docstring parsing: a summary for the tool and a description per parameter.

Understands the three styles people write: Google (`Args:`), NumPy (`Parameters` underlined)
and reST (`:param name:`). Anything it does not recognise stays in the summary.
"""

from __future__ import annotations

import functools
import inspect
import re
from dataclasses import dataclass, field

_GOOGLE_HEAD = re.compile(
    r"^(Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments|Returns|Return|"
    r"Yields|Raises|Examples?|Notes?|Attributes|See Also|Warnings?)\s*:\s*$"
)
_GOOGLE_PARAMS = {"Args", "Arguments", "Parameters", "Params", "Keyword Args", "Keyword Arguments"}
_GOOGLE_ITEM = re.compile(r"^\*{0,2}(\w+)\s*(\([^)]*\))?\s*:\s*(.*)$")
# `name : type`, or several names sharing one entry: `x, y : float`
_NUMPY_ITEM = re.compile(r"^(\*{0,2}\w+(?:\s*,\s*\*{0,2}\w+)*)\s*(:.*)?$")
_REST_PARAM = re.compile(r"^:param\s+(?:[^:]*\s)?(\w+)\s*:\s*(.*)$")
_REST_ANY = re.compile(r"^:\w+")


@dataclass
class Docstring:
    summary: str = ""
    params: dict[str, str] = field(default_factory=dict)


def parse_docstring(doc: str | None) -> Docstring:
    """The docstring's summary and parameter descriptions. Parsed once per text: a tool is
    read from its function on every run, and the parse depends on the text alone."""
    found = _parsed(doc)
    return Docstring(found.summary, dict(found.params))


@functools.lru_cache(maxsize=512)
def _parsed(doc: str | None) -> Docstring:
    if not doc:
        return Docstring()
    lines = inspect.cleandoc(doc).splitlines()
    for parser in (_parse_rest, _parse_numpy, _parse_google):
        result = parser(lines)
        if result is not None:
            return result
    return Docstring(summary="\n".join(lines).strip())


def _join(parts: list[str]) -> str:
    return " ".join(p.strip() for p in parts if p.strip())


def _parse_google(lines: list[str]) -> Docstring | None:
    heads = [i for i, line in enumerate(lines) if _GOOGLE_HEAD.match(line.strip())]
    if not heads:
        return None
    out = Docstring(summary="\n".join(lines[: heads[0]]).strip())
    for n, start in enumerate(heads):
        name = _GOOGLE_HEAD.match(lines[start].strip()).group(1)  # type: ignore[union-attr]
        end = heads[n + 1] if n + 1 < len(heads) else len(lines)
        if name not in _GOOGLE_PARAMS:
            continue
        body = [line for line in lines[start + 1 : end]]
        indent = min((len(b) - len(b.lstrip()) for b in body if b.strip()), default=0)
        current: str | None = None
        for raw in body:
            if not raw.strip():
                continue
            level = len(raw) - len(raw.lstrip())
            m = _GOOGLE_ITEM.match(raw.strip())
            if level <= indent and m:
                current = m.group(1)
                out.params[current] = m.group(3).strip()
            elif current:
                out.params[current] = _join([out.params[current], raw])
    return out


def _parse_numpy(lines: list[str]) -> Docstring | None:
    starts = [
        i
        for i in range(len(lines) - 1)
        if lines[i].strip() and re.fullmatch(r"-{3,}", lines[i + 1].strip())
    ]
    if not starts:
        return None
    out = Docstring(summary="\n".join(lines[: starts[0]]).strip())
    for n, start in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else len(lines)
        if lines[start].strip() not in ("Parameters", "Other Parameters", "Keyword Arguments"):
            continue
        current: list[str] = []  # the names the indented text describes
        for raw in lines[start + 2 : end]:
            if not raw.strip():
                continue
            if not raw.startswith((" ", "\t")):
                m = _NUMPY_ITEM.match(raw.strip())
                if m:
                    current = [name.strip().lstrip("*") for name in m.group(1).split(",")]
                    for name in current:
                        out.params.setdefault(name, "")
                    continue
            for name in current:
                out.params[name] = _join([out.params[name], raw])
    return out


def _parse_rest(lines: list[str]) -> Docstring | None:
    if not any(_REST_PARAM.match(line.strip()) for line in lines):
        return None
    first = next(i for i, line in enumerate(lines) if _REST_ANY.match(line.strip()))
    out = Docstring(summary="\n".join(lines[:first]).strip())
    current: str | None = None
    for raw in lines[first:]:
        line = raw.strip()
        m = _REST_PARAM.match(line)
        if m:
            current = m.group(1)
            out.params[current] = m.group(2).strip()
        elif _REST_ANY.match(line):
            current = None
        elif current and line:
            out.params[current] = _join([out.params[current], line])
    return out
