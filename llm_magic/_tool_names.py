"""Tool names as every provider accepts them on the wire: one rule, one mapping.

OpenAI and Anthropic take `^[a-zA-Z0-9_-]{1,64}$`; Gemini takes a letter or underscore first,
then `[a-zA-Z0-9_.:-]`, up to 128 characters. `WIRE_NAME` is what all of them take. A Python
identifier such as `température`, a name longer than 64 characters or an MCP server's
`files/read.v2` fits none of them: it is sent as a readable ASCII stand-in, with a short hash of
the original when it is too long or when another name of the same request already took it
(`wire_names`), so the model's calls map back to exactly one tool. The mapping is deterministic,
so a conversation's history maps the same way on every turn.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable

WIRE_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_-]{0,63}$")
_BAD = re.compile(r"[^a-zA-Z0-9_-]")


def wire_name(name: str, *, distinct: bool = False) -> str:
    """`name` when every provider accepts it, else a valid stand-in for it.

    Other characters become `_` (accents dropped first); a name longer than 64 keeps its start
    and ends with a short hash of the full name, so two long names stay apart. `distinct` always
    adds that hash: for the second of two names that map to one stand-in (`a.b`, `a_b`).
    """
    if not distinct and WIRE_NAME.match(name):
        return name
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    stem = _BAD.sub("_", ascii_name) or "tool"
    if not (stem[0].isalpha() or stem[0] == "_"):
        stem = "t_" + stem
    if len(stem) > 64 or distinct:
        digest = hashlib.sha1(name.encode()).hexdigest()[:8]
        stem = f"{stem[:55]}_{digest}"
    assert WIRE_NAME.match(stem), stem
    return stem


def wire_names(names: Iterable[str]) -> dict[str, str]:
    """Each name's wire name, no two alike: valid names keep theirs, the others yield to them."""
    unique = list(dict.fromkeys(names))
    out = {n: n for n in unique if WIRE_NAME.match(n)}
    taken = set(out)
    for name in unique:
        if name in out:
            continue
        wire = wire_name(name)
        if wire in taken:
            wire = wire_name(name, distinct=True)
        out[name] = wire
        taken.add(wire)
    return out
