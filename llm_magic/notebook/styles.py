"""The look of the timeline's fragments as CSS classes, written once in `static/entries.css`.

Fragments carry class names, not inline styles, so a live entry costs its words on the comm, not
its styling (an inline-styled call row was ~1.5 KB). The live widget loads the stylesheet with
its own CSS. The saved timeline carries it once, in a `<style>` block scoped to `.llm-static`;
viewers that drop `<style>` (JupyterLab's sanitizer for an untrusted notebook, which also drops
every declaration with `var()` or `color-mix()`) get a plain inline fallback on each element:
the layout, plus a plain colour for borders and translucent tints. The block's theme-aware
declarations are `!important`, so where it is kept they win over those fallbacks.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from .look import plain_colour

CSS = (Path(__file__).with_name("static") / "entries.css").read_text(encoding="utf-8")

_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_RULE = re.compile(r"([^{}]+)\{([^{}]*)\}")
_LAST_CLASS = re.compile(r"\.([\w-]+)\s*$")
_SPACE = re.compile(r"\s+")
_AROUND = re.compile(r"\s*([{};,>])\s*")
_CLASSED = re.compile(r'class="([^"]*)"(?: style="([^"]*)")?')
_TONE = "--llm-c"


def _important(decl: str) -> bool:
    return decl.endswith("!important")


def compact_css(css: str) -> str:
    """`css` without comments and spare white space (it travels with each run's widget)."""
    # a function, not the template r"\1": re expands a template in Python on every match
    return _AROUND.sub(_first_group, _SPACE.sub(" ", _COMMENT.sub("", css))).strip()


def _first_group(match: re.Match[str]) -> str:
    return match[1]


@functools.cache
def _rules() -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    """(selector, class it styles, declarations) of each rule, in the file's order."""
    out = []
    for selector, body in _RULE.findall(_COMMENT.sub("", CSS)):
        match = _LAST_CLASS.search(selector)  # a rule ending in a tag: the <style> block's only
        decls = tuple(
            f"{name.strip()}:{value.strip()}"
            for name, _, value in (d.partition(":") for d in body.split(";"))
            if name.strip()
        )
        out.append((" ".join(selector.split()), match[1] if match else "", decls))
    return tuple(out)


@functools.cache
def _by_class() -> dict[str, tuple[str, ...]]:
    table: dict[str, tuple[str, ...]] = {}
    for _selector, name, decls in _rules():
        if name:
            table[name] = table.get(name, ()) + decls
    return table


@functools.cache
def style_block() -> str:
    """The stylesheet as the saved timeline carries it: scoped to `.llm-static`, theme-aware
    declarations `!important` (they must win over the plain inline fallbacks)."""
    rules = []
    for selector, _name, decls in _rules():
        scoped = selector.replace(".llm-magic-timeline ", ".llm-static ", 1)
        body = ";".join(
            d + " !important" if ("var(" in d or "mix(" in d) and not _important(d) else d
            for d in decls
        )
        rules.append(f"{scoped}{{{body}}}")
    return f"<style>{''.join(rules)}</style>"


@functools.cache
def fallback(classes: str) -> str:
    """The plain inline style of an element with these classes (for viewers without <style>)."""
    table = _by_class()
    decls = [d for name in classes.split() for d in table.get(name, ())]
    tone = next((d.partition(":")[2] for d in decls if d.startswith(_TONE + ":")), None)
    out = []
    for decl in decls:
        name, _, value = decl.partition(":")
        if name.startswith("--") or _important(decl):  # the <style> block's own
            continue
        if tone is not None:
            value = value.replace(f"var({_TONE})", tone)
        if "var(" not in value and "mix(" not in value:
            out.append(f"{name}:{value}")
            continue
        tint = name.startswith("background") and "transparent" in value
        plain = plain_colour(value)
        if (name.startswith("border") or tint) and plain is not None:
            out.append(f"{name}:{plain}")
    return ";".join(out)


@functools.lru_cache(maxsize=4096)  # the same few pairs recur in every entry
def _attributes(classes: str, own: str) -> str:
    """The class and style attributes of an element, its fallback first; "" if it has none."""
    style = ";".join(s for s in (fallback(classes), own) if s)
    return f'class="{classes}" style="{style}"' if style else ""


def with_fallbacks(markup: str) -> str:
    """`markup` with each styled element's plain fallback inline, before its own inline style."""
    return _CLASSED.sub(lambda match: _attributes(match[1], match[2] or "") or match[0], markup)
