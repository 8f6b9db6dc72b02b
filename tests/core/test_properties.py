"""Property-based tests: schema generation + argument validation, and the SSE decoder."""

from __future__ import annotations

import dataclasses
import enum
import itertools
import json
import math
from collections.abc import Callable
from typing import Any, Literal, Optional, TypedDict, Union

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_magic import Tool
from llm_magic._sse import SSEDecoder, SSEEvent
from llm_magic.errors import ToolArgumentsError

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class Shade(enum.Enum):
    DARK = "dark"
    LIGHT = "light"


class Size(enum.IntEnum):
    S = 1
    M = 2


@dataclasses.dataclass
class Pt:
    x: float
    y: int = 0


class Box(TypedDict):
    w: int
    label: str


# ---- type hints paired with values that fit them -------------------------------------------------


@dataclasses.dataclass
class Spec:
    """A type hint, values fitting it as (wire JSON, expected Python value), the JSON kinds that
    could possibly be accepted (coercions included), and whether the expected value is exact
    (not exact under a Union, where an earlier option may take the value first)."""

    hint: Any
    values: st.SearchStrategy[tuple[Any, Any]]
    kinds: frozenset[str]
    exact: bool = True

    def __repr__(self) -> str:
        return f"Spec({self.hint!r})"


NUMBERISH = frozenset({"int", "float", "str"})
finite = st.floats(allow_nan=False, allow_infinity=False)


def _same(v: Any) -> tuple[Any, Any]:
    return v, v


LEAVES = [
    Spec(str, st.text(max_size=8).map(_same), NUMBERISH),
    Spec(int, st.integers().map(_same), NUMBERISH),
    Spec(
        float,
        st.one_of(finite.map(_same), st.integers(-(2**53), 2**53).map(lambda i: (i, float(i)))),
        NUMBERISH,
    ),
    Spec(bool, st.booleans().map(_same), frozenset({"bool", "str"})),
    Spec(type(None), st.just((None, None)), frozenset({"null"})),
    Spec(Shade, st.sampled_from(Shade).map(lambda m: (m.value, m)), NUMBERISH),
    Spec(Size, st.sampled_from(Size).map(lambda m: (m.value, m)), NUMBERISH),
    Spec(
        Pt,
        st.builds(lambda x, y: ({"x": x, "y": y}, Pt(float(x), y)), finite, st.integers()),
        frozenset({"dict"}),
    ),
    Spec(
        Box,
        st.builds(
            lambda w, s: ({"w": w, "label": s}, {"w": w, "label": s}), st.integers(), st.text()
        ),
        frozenset({"dict"}),
    ),
]

literal_specs = st.lists(
    st.one_of(st.text(max_size=4), st.integers(-3, 3)), min_size=1, max_size=4, unique=True
).map(
    lambda vals: Spec(Literal.__getitem__(tuple(vals)), st.sampled_from(vals).map(_same), NUMBERISH)
)


def _extend(inner: st.SearchStrategy[Spec]) -> st.SearchStrategy[Spec]:
    def list_of(s: Spec) -> Spec:
        values = st.lists(s.values, max_size=4).map(
            lambda xs: ([w for w, _ in xs], [e for _, e in xs])
        )
        return Spec(list[s.hint], values, frozenset({"list"}), s.exact)

    def tuple_of(a: Spec, b: Spec) -> Spec:
        values = st.tuples(a.values, b.values).map(
            lambda p: ([p[0][0], p[1][0]], (p[0][1], p[1][1]))
        )
        return Spec(tuple[a.hint, b.hint], values, frozenset({"list"}), a.exact and b.exact)

    def var_tuple_of(s: Spec) -> Spec:
        values = st.lists(s.values, max_size=3).map(
            lambda xs: ([w for w, _ in xs], tuple(e for _, e in xs))
        )
        return Spec(tuple[s.hint, ...], values, frozenset({"list"}), s.exact)

    def dict_of(s: Spec) -> Spec:
        values = st.dictionaries(st.text(max_size=5), s.values, max_size=3).map(
            lambda d: ({k: w for k, (w, _) in d.items()}, {k: e for k, (_, e) in d.items()})
        )
        return Spec(dict[str, s.hint], values, frozenset({"dict"}), s.exact)

    def optional_of(s: Spec) -> Spec:
        values = st.one_of(st.just((None, None)), s.values)
        return Spec(Optional[s.hint], values, s.kinds | {"null"}, s.exact)  # noqa: UP045

    def union_of(a: Spec, b: Spec) -> Spec:
        return Spec(Union[a.hint, b.hint], st.one_of(a.values, b.values), a.kinds | b.kinds, False)  # noqa: UP007

    return st.one_of(
        inner.map(list_of),
        st.builds(tuple_of, inner, inner),
        inner.map(var_tuple_of),
        inner.map(dict_of),
        inner.map(optional_of),
        st.builds(union_of, inner, inner),
    )


specs = st.recursive(st.one_of(st.sampled_from(LEAVES), literal_specs), _extend, max_leaves=6)

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), finite, st.text(max_size=6)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)


def kind(v: Any) -> str:
    if v is None:
        return "null"
    return {bool: "bool", int: "int", float: "float", str: "str", list: "list", dict: "dict"}[
        type(v)
    ]


def tool_for(hint: Any) -> Tool:
    def fn(x):  # type: ignore[no-untyped-def]
        return x

    fn.__annotations__ = {"x": hint}
    return Tool.from_function(fn, name="probe")


def wire(v: Any) -> Any:
    """A Python value as the model would send it back (tuples as arrays, enums as values...)."""
    if isinstance(v, enum.Enum):
        return v.value
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return wire(dataclasses.asdict(v))
    if isinstance(v, list | tuple):
        return [wire(x) for x in v]
    if isinstance(v, dict):
        return {k: wire(x) for k, x in v.items()}
    return v


def same_json(a: Any, b: Any) -> bool:
    """Equal as JSON, numbers by value (an int the schema calls a number may come back a float)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def exactly(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(exactly(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(exactly(a[k], b[k]) for k in a)
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


@SETTINGS
@given(st.data())
def test_fitting_values_validate_and_convert_back(data: st.DataObject) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    spec = data.draw(specs, label="spec")
    tool = tool_for(spec.hint)
    schema = tool.schema
    jsonschema.Draft202012Validator.check_schema(schema)
    raw, expected = data.draw(spec.values, label="value")
    sent = json.loads(json.dumps({"x": raw}))  # through the wire, as the model's arguments
    jsonschema.Draft202012Validator(schema).validate(sent)  # the schema agrees the value fits
    got = tool.parameters.validate(sent)["x"]
    assert same_json(wire(got), sent["x"]), (got, sent)
    if spec.exact:
        assert exactly(got, expected), (got, expected)


@SETTINGS
@given(st.data())
def test_mismatched_values_are_rejected_with_a_message(data: st.DataObject) -> None:
    spec = data.draw(specs, label="spec")
    tool = tool_for(spec.hint)
    bad = data.draw(json_values.filter(lambda v: kind(v) not in spec.kinds), label="bad")
    with pytest.raises(ToolArgumentsError) as err:
        tool.parameters.validate({"x": bad})
    assert "'x'" in str(err.value)


@SETTINGS
@given(st.data())
def test_any_json_either_validates_or_is_a_tool_arguments_error(data: st.DataObject) -> None:
    spec = data.draw(specs, label="spec")
    tool = tool_for(spec.hint)
    args = data.draw(
        st.one_of(
            st.fixed_dictionaries({"x": json_values}),
            st.dictionaries(st.text(max_size=3), json_values, max_size=3),
            json_values,
        ),
        label="args",
    )
    try:
        tool.parameters.validate(args)
    except ToolArgumentsError as exc:
        assert str(exc)


# ---- the SSE decoder at arbitrary chunk boundaries ------------------------------------------------

line_text = st.text(
    alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=["Cs"]), max_size=12
)
sse_events = st.lists(
    st.tuples(
        st.one_of(st.none(), st.text(alphabet="abcdefgh_", min_size=1, max_size=6)),
        st.lists(line_text, min_size=1, max_size=3),
        st.booleans(),  # a comment line before the event
    ),
    min_size=1,
    max_size=5,
)


@st.composite
def sse_streams(draw: Callable[..., Any]) -> tuple[bytes, list[SSEEvent]]:
    events = draw(sse_events)
    uniform_cr = draw(st.booleans())
    ends = st.just("\r") if uniform_cr else st.sampled_from(["\n", "\r\n"])
    text, expected = "", []
    for name, lines, comment in events:
        if comment:
            text += ": keep-alive" + draw(ends)
        if name is not None:
            text += f"event: {name}" + draw(ends)
        for line in lines:
            text += (
                "data:" if line and not line.startswith(" ") and draw(st.booleans()) else "data: "
            )
            text += line + draw(ends)
        text += draw(ends)  # the blank line that ends the event
        expected.append(SSEEvent(name or "message", "\n".join(lines)))
    return text.encode(), expected


def decode(chunks: list[bytes]) -> list[SSEEvent]:
    """As the HTTP layer does: bytes fed to the decoder, which decodes them incrementally."""
    decoder, out = SSEDecoder(), []
    for chunk in chunks:
        out += decoder.feed_bytes(chunk)
    return out + decoder.flush()


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted({c % (len(data) + 1) for c in cuts}), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@SETTINGS
@given(sse_streams(), st.lists(st.integers(min_value=0), max_size=30))
def test_sse_chunk_boundaries_do_not_matter(stream: Any, cuts: list[int]) -> None:
    data, expected = stream
    assert decode([data]) == expected
    assert decode(split(data, cuts)) == expected
    assert decode([data[i : i + 1] for i in range(len(data))]) == expected  # byte by byte


@SETTINGS
@given(sse_streams())
def test_sse_crlf_split_and_empty_chunks(stream: Any) -> None:
    data, expected = stream
    text = data.decode()
    parts = text.split("\r\n")
    pieces: list[str] = []  # every \r\n split across two chunks, with an empty chunk between
    for i, part in enumerate(parts):
        pieces += [part + "\r", "", "\n"] if i < len(parts) - 1 else [part]
    assert "".join(pieces) == text
    decoder = SSEDecoder()
    got = [e for p in pieces for e in decoder.feed(p)] + decoder.flush()
    assert got == expected


def test_sse_trailing_event_without_blank_line() -> None:
    decoder = SSEDecoder()
    assert decoder.feed("data: a\n\ndata: b") == [SSEEvent("message", "a")]
    assert decoder.flush() == [SSEEvent("message", "b")]
