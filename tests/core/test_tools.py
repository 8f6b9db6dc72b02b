"""Tools from functions: schema from hints and docstrings, validation, pairing, results."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import enum
import functools
import json
from typing import Annotated, Any, Literal, NotRequired, Optional, TypedDict, Union

import pydantic
import pytest

from llm_magic import Tool, ToolDefinitionError, async_tool_is, tool
from llm_magic.errors import ToolArgumentsError
from llm_magic.tools import serialize_result, to_tools

# ---- shapes used by several tests --------------------------------------------------------------


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Address(TypedDict):
    city: str
    zip: NotRequired[Annotated[str, "postal code"]]


@dataclasses.dataclass
class Point:
    x: float
    y: float = 0.0
    label: Annotated[str, "what the point marks"] = ""


class Person(pydantic.BaseModel):
    name: str
    age: int = pydantic.Field(description="age in years")
    home: Point | None = None


def props(fn: Any) -> dict[str, Any]:
    return Tool.from_function(fn).schema["properties"]


# ---- kinds of callables ------------------------------------------------------------------------


def plain(a: int, b: str = "x") -> str:
    """A plain function."""
    return f"{a}{b}"


async def coro(a: int) -> int:
    """An async function."""
    await asyncio.sleep(0)
    return a * 2


class Counter:
    def __init__(self) -> None:
        self.n = 0

    def bump(self, by: int = 1) -> int:
        """Bump the counter."""
        self.n += by
        return self.n

    async def abump(self, by: int) -> int:
        self.n += by
        return self.n


class Adder:
    """Adds a fixed amount."""

    def __init__(self, k: int) -> None:
        self.k = k

    def __call__(self, x: int) -> int:
        return x + self.k


class AsyncAdder:
    async def __call__(self, x: int) -> int:
        return x + 1


def power(base: float, exp: int, mod: int | None = None) -> float:
    """Raise base to exp."""
    return base**exp


async def test_plain_function() -> None:
    t = Tool.from_function(plain)
    assert t.name == "plain" and t.description == "A plain function."
    assert t.schema == {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "string", "default": "x"}},
        "required": ["a"],
        "additionalProperties": False,
    }
    assert t.sync_impl is plain and t.async_impl is None
    assert t.implementation() == "sync"
    assert await t.call({"a": 1}) == "1x"
    assert t(2, "y") == "2y"  # still callable plainly


async def test_async_function() -> None:
    t = Tool.from_function(coro)
    assert t.async_impl is coro and t.sync_impl is None
    assert t.implementation() == t.implementation(prefer_sync=True) == "async"
    assert await t.call({"a": 4}) == 8


async def test_bound_methods() -> None:
    c = Counter()
    t = Tool.from_function(c.bump)
    assert t.name == "bump" and "self" not in t.schema["properties"]
    assert t.schema["required"] == []
    assert await t.call({"by": 3}) == 3 and c.n == 3
    ta = Tool.from_function(c.abump)
    assert ta.async_impl is not None and await ta.call({"by": 2}) == 5


async def test_partial() -> None:
    t = Tool.from_function(functools.partial(power, 2.0))
    assert t.name == "power" and t.description == "Raise base to exp."
    assert list(t.schema["properties"]) == ["exp", "mod"] and t.schema["required"] == ["exp"]
    assert await t.call(t.parameters.validate({"exp": "3"})) == 8.0
    kw = Tool.from_function(functools.partial(power, exp=2), name="square")
    assert kw.name == "square" and kw.schema["properties"]["exp"]["default"] == 2
    assert await kw.call({"base": 3}) == 9.0
    ta = Tool.from_function(functools.partial(coro, 5), name="ten")
    assert ta.async_impl is not None and await ta.call({}) == 10


async def test_callable_objects() -> None:
    t = Tool.from_function(Adder(10))
    assert t.name == "Adder" and t.description == "Adds a fixed amount."
    assert t.schema["properties"] == {"x": {"type": "integer"}}
    assert await t.call({"x": 1}) == 11
    ta = Tool.from_function(AsyncAdder())
    assert ta.async_impl is not None and await ta.call({"x": 1}) == 2


async def test_lambda() -> None:
    t = Tool.from_function(lambda x, y=2: x * y)
    assert t.name == "lambda_tool"
    assert t.schema["properties"] == {"x": {}, "y": {"type": "integer", "default": 2}}
    assert await t.call(t.parameters.validate({"x": 3})) == 6
    named = Tool.from_function(lambda: "hi", name="greet", description="Say hi.")
    assert (named.name, named.description) == ("greet", "Say hi.")


def test_not_callable_and_bad_name() -> None:
    with pytest.raises(ToolDefinitionError, match="not callable"):
        Tool.from_function(42)  # type: ignore[arg-type]
    with pytest.raises(ToolDefinitionError, match="identifier"):
        Tool.from_function(plain, name="two words")


# ---- schema from hints -------------------------------------------------------------------------


def test_scalars_and_none() -> None:
    def f(s: str, i: int, x: float, b: bool, n: None) -> None: ...

    assert props(f) == {
        "s": {"type": "string"},
        "i": {"type": "integer"},
        "x": {"type": "number"},
        "b": {"type": "boolean"},
        "n": {"type": "null"},
    }


def test_containers() -> None:
    def f(
        xs: list[int],
        pair: tuple[str, int],
        many: tuple[float, ...],
        table: dict[str, list[str]],
        anything: list,
    ) -> None: ...

    p = props(f)
    assert p["xs"] == {"type": "array", "items": {"type": "integer"}}
    assert p["pair"] == {
        "type": "array",
        "prefixItems": [{"type": "string"}, {"type": "integer"}],
        "minItems": 2,
        "maxItems": 2,
    }
    assert p["many"] == {"type": "array", "items": {"type": "number"}}
    assert p["table"] == {
        "type": "object",
        "additionalProperties": {"type": "array", "items": {"type": "string"}},
    }
    assert p["anything"] == {"type": "array", "items": {}}
    t = Tool.from_function(f)
    kw = t.parameters.validate(
        {"xs": ["1", 2], "pair": ["a", "2"], "many": [1, 2.5], "table": {}, "anything": [1, "a"]}
    )
    assert kw == {
        "xs": [1, 2],
        "pair": ("a", 2),
        "many": (1.0, 2.5),
        "table": {},
        "anything": [1, "a"],
    }
    assert isinstance(kw["pair"], tuple) and isinstance(kw["many"], tuple)


def test_optional_union_literal_enum() -> None:
    def f(
        a: Optional[int],  # noqa: UP045 (the old spelling must work too)
        b: Union[int, str],  # noqa: UP007
        c: float | None = None,
        mode: Literal["fast", "slow"] = "fast",
        color: Color = Color.RED,
        level: Level = Level.LOW,
    ) -> None: ...

    p = props(f)
    assert p["a"] == {"anyOf": [{"type": "integer"}, {"type": "null"}]}
    assert p["b"] == {"anyOf": [{"type": "integer"}, {"type": "string"}]}
    assert p["c"] == {"anyOf": [{"type": "number"}, {"type": "null"}], "default": None}
    assert p["mode"] == {"enum": ["fast", "slow"], "type": "string", "default": "fast"}
    assert p["color"] == {"enum": ["red", "green"], "type": "string", "default": "red"}
    assert p["level"] == {"enum": [1, 2], "type": "integer", "default": 1}
    v = Tool.from_function(f).parameters.validate
    assert v({"a": None, "b": "3"}) == {"a": None, "b": "3"}  # a str stays a str in int | str
    assert v({"a": "4", "b": 3})["a"] == 4
    out = v({"a": 1, "b": 1, "color": "green", "level": "2", "mode": "slow"})
    assert out["color"] is Color.GREEN and out["level"] is Level.HIGH and out["mode"] == "slow"
    with pytest.raises(ToolArgumentsError, match=r"'mode'.*one of 'fast', 'slow'"):
        v({"a": 1, "b": 1, "mode": "medium"})
    with pytest.raises(ToolArgumentsError, match="'color'"):
        v({"a": 1, "b": 1, "color": "RED"})


def test_typeddict() -> None:
    def f(addr: Address) -> None: ...

    schema = props(f)["addr"]
    assert schema["type"] == "object" and schema["required"] == ["city"]
    assert schema["properties"]["zip"] == {"type": "string", "description": "postal code"}
    v = Tool.from_function(f).parameters.validate
    assert v({"addr": {"city": "Paris"}}) == {"addr": {"city": "Paris"}}
    with pytest.raises(ToolArgumentsError, match=r"'addr'.*missing.*'city'"):
        v({"addr": {"zip": "75001"}})


def test_dataclass() -> None:
    def f(p: Point, pts: list[Point] | None = None) -> None: ...

    schema = props(f)["p"]
    assert schema["type"] == "object" and schema["required"] == ["x"]
    assert schema["properties"]["label"]["description"] == "what the point marks"
    out = Tool.from_function(f).parameters.validate({"p": {"x": "1.5"}, "pts": [{"x": 1, "y": 2}]})
    assert out["p"] == Point(1.5) and out["pts"] == [Point(1.0, 2.0)]
    with pytest.raises(ToolArgumentsError, match=r"argument 'pts\[0\]\.y'"):
        Tool.from_function(f).parameters.validate({"p": {"x": 1}, "pts": [{"x": 1, "y": "up"}]})


def test_pydantic_model() -> None:
    def f(person: Person) -> str:
        return person.name

    schema = props(f)["person"]
    assert schema["type"] == "object" and "$defs" not in json.dumps(schema)
    assert "$ref" not in json.dumps(schema)
    assert schema["properties"]["age"]["description"] == "age in years"
    out = Tool.from_function(f).parameters.validate(
        {"person": {"name": "Ada", "age": "36", "home": {"x": 1}}}
    )
    assert out["person"] == Person(name="Ada", age=36, home=Point(1.0))
    with pytest.raises(ToolArgumentsError, match=r"'person.age'"):
        Tool.from_function(f).parameters.validate({"person": {"name": "Ada", "age": "old"}})


def test_annotated_descriptions_survive() -> None:
    def f(
        city: Annotated[str, "the city to look up"],
        days: Annotated[int, "how many days ahead"] = 1,
        tags: list[Annotated[str, "a tag"]] | None = None,
    ) -> None:
        """Forecast.

        Args:
            city: docstring text loses to Annotated.
            tags: labels.
        """

    p = props(f)
    assert p["city"] == {"type": "string", "description": "the city to look up"}
    assert p["days"] == {"type": "integer", "description": "how many days ahead", "default": 1}
    assert p["tags"]["description"] == "labels."
    assert p["tags"]["anyOf"][0]["items"] == {"type": "string", "description": "a tag"}


def test_defaults() -> None:
    def f(a: int = 3, b: str = "s", c: bool = False, d: list[int] | None = None, e=2.5) -> None: ...

    p = props(f)
    assert [p[k].get("default") for k in "abcde"] == [3, "s", False, None, 2.5]
    assert p["e"]["type"] == "number"  # no hint: the type of the default
    assert Tool.from_function(f).schema["required"] == []
    sentinel = object()

    def g(x: Any = sentinel) -> None: ...

    assert "default" not in props(g)["x"]  # not JSON: not shown, still optional


def test_var_args_never_in_schema() -> None:
    def f(a: int, *args: int, key: str = "k", **kwargs: Any) -> None: ...

    t = Tool.from_function(f)
    assert list(t.schema["properties"]) == ["a", "key"]
    with pytest.raises(ToolArgumentsError, match=r"unknown argument.*'args'"):
        t.parameters.validate({"a": 1, "args": [1]})


def test_unsupported_hint_names_the_parameter() -> None:
    def f(ok: int, bad: complex) -> None: ...

    with pytest.raises(ToolDefinitionError, match=r"'f'.*parameter 'bad'.*complex"):
        Tool.from_function(f)

    def g(m: dict[int, str]) -> None: ...

    with pytest.raises(ToolDefinitionError, match=r"parameter 'm'.*keys must be str"):
        Tool.from_function(g)

    with pytest.raises(ToolDefinitionError, match="parameter 'bad'"):

        @tool
        def h(bad: set[complex]) -> None: ...


def test_positional_only_is_an_error() -> None:
    def f(a: int, /) -> None: ...

    with pytest.raises(ToolDefinitionError, match="'a' is positional-only"):
        Tool.from_function(f)


def test_duplicate_names() -> None:
    def lookup(q: str) -> str:
        return q

    other = Tool.from_function(plain, name="lookup")
    with pytest.raises(ToolDefinitionError, match="two tools are named 'lookup'"):
        to_tools([lookup, other])
    assert [t.name for t in to_tools([lookup, Tool.from_function(plain)])] == ["lookup", "plain"]


# ---- docstrings --------------------------------------------------------------------------------


def google(city: str, days: int = 1) -> None:
    """Get the forecast.

    More detail here.

    Args:
        city: The city name,
            for example Paris.
        days (int): How many days.

    Returns:
        A forecast.
    """


def numpy_style(city: str, days: int = 1) -> None:
    """Get the forecast.

    Parameters
    ----------
    city : str
        The city name,
        for example Paris.
    days : int, optional
        How many days.

    Returns
    -------
    str
    """


def rest(city: str, days: int = 1) -> None:
    """Get the forecast.

    :param city: The city name,
        for example Paris.
    :param int days: How many days.
    :returns: A forecast.
    """


@pytest.mark.parametrize("fn", [google, numpy_style, rest], ids=["google", "numpy", "rest"])
def test_docstring_styles(fn: Any) -> None:
    t = Tool.from_function(fn)
    assert t.description.startswith("Get the forecast.")
    assert "Returns" not in t.description and ":param" not in t.description
    p = t.schema["properties"]
    assert p["city"]["description"] == "The city name, for example Paris."
    assert p["days"]["description"] == "How many days."


# ---- @tool and @async_tool_is ------------------------------------------------------------------


def test_tool_decorator_marks_and_keeps_the_function() -> None:
    @tool(requires_approval=True, timeout=5)
    def shout(text: str) -> str:
        """Shout."""
        return text.upper()

    assert shout("a") == "A"  # unchanged function
    t = Tool.from_function(shout)
    assert t.options.requires_approval and t.options.timeout == 5
    assert Tool.from_function(shout, name="yell").name == "yell"

    @tool
    def bare(x: int) -> int:
        return x

    assert Tool.from_function(bare).description == "Call bare."


async def test_async_tool_is_pairs() -> None:
    ran: list[str] = []

    async def fetch_async(url: str, retries: int = 1) -> str:
        ran.append("async")
        return "a:" + url

    @async_tool_is(fetch_async)
    def fetch(url: str, retries: int = 1) -> str:
        """Fetch a URL."""
        ran.append("sync")
        return "s:" + url

    t = Tool.from_function(fetch)
    assert t.sync_impl is fetch and t.async_impl is fetch_async
    assert t.description == "Fetch a URL."
    assert t.implementation() == "async" and t.implementation(prefer_sync=True) == "sync"
    assert await t.call({"url": "u"}) == "a:u"
    assert await t.call({"url": "u"}, prefer_sync=True) == "s:u"
    assert ran == ["async", "sync"]
    assert fetch("plain") == "s:plain"


def test_async_tool_is_keeps_tool_options_in_either_order() -> None:
    async def a(x: int) -> int:
        return x

    @async_tool_is(a)
    @tool(requires_approval=True)
    def s1(x: int) -> int:
        return x

    @tool(requires_approval=True)
    @async_tool_is(a)
    def s2(x: int) -> int:
        return x

    for fn in (s1, s2):
        t = Tool.from_function(fn)
        assert t.async_impl is a and t.sync_impl is fn and t.options.requires_approval


def test_async_tool_is_incompatible_signatures_fail_at_decoration() -> None:
    async def a(x: int, y: int) -> int:
        return x

    with pytest.raises(ToolDefinitionError, match="same parameters"):

        @async_tool_is(a)
        def s(x: int) -> int:
            return x

    async def b(x: str) -> str:
        return x

    with pytest.raises(ToolDefinitionError, match="parameter 'x'"):

        @async_tool_is(b)
        def s2(x: int) -> int:
            return x

    async def c(x: int = 2) -> int:
        return x

    with pytest.raises(ToolDefinitionError, match="defaults"):

        @async_tool_is(c)
        def s3(x: int = 1) -> int:
            return x

    def not_async(x: int) -> int:
        return x

    with pytest.raises(ToolDefinitionError, match="needs an async function"):
        async_tool_is(not_async)

    with pytest.raises(ToolDefinitionError, match="goes on the sync implementation"):

        @async_tool_is(c)
        async def s4(x: int = 2) -> int:
            return x


# ---- validation and coercion -------------------------------------------------------------------


def test_coercions_a_careful_user_expects() -> None:
    def f(n: int, x: float, flag: bool, s: str) -> None: ...

    v = Tool.from_function(f).parameters.validate
    assert v({"n": "3", "x": "2.5", "flag": "true", "s": 7}) == {
        "n": 3,
        "x": 2.5,
        "flag": True,
        "s": "7",
    }
    assert v({"n": 4.0, "x": 1, "flag": False, "s": "a"})["n"] == 4
    cases = [
        ({"n": "three"}, "argument 'n': expected an integer, got 'three'"),
        ({"n": 2.5}, "argument 'n': expected an integer"),
        ({"n": True}, "argument 'n': expected an integer"),  # a bool is not an int
        ({"x": "abc"}, "argument 'x': expected a number"),
        ({"flag": "yes"}, "argument 'flag': expected true or false"),
        ({"flag": 1}, "argument 'flag'"),
        ({"s": None}, "argument 's': expected a string"),
        ({"s": ["a"]}, "argument 's'"),
    ]
    good = {"n": 1, "x": 1.0, "flag": True, "s": "a"}
    for bad, message in cases:
        with pytest.raises(ToolArgumentsError) as err:
            v({**good, **bad})
        assert message in str(err.value)


def test_missing_unknown_and_non_object_arguments() -> None:
    v = Tool.from_function(power).parameters.validate
    with pytest.raises(ToolArgumentsError, match=r"missing required argument\(s\) 'exp'"):
        v({"base": 2})
    with pytest.raises(ToolArgumentsError, match=r"unknown argument\(s\) 'power'.*base, exp, mod"):
        v({"base": 2, "exp": 1, "power": 3})
    with pytest.raises(ToolArgumentsError, match="must be a JSON object"):
        v([2, 3])
    assert Tool.from_function(lambda: 1, name="none").parameters.validate(None) == {}


# ---- results for the model ---------------------------------------------------------------------


@dataclasses.dataclass
class Reading:
    city: str
    at: dt.datetime
    tags: set[str]


class Opaque:
    def __repr__(self) -> str:
        return "<Opaque thing>"


def test_serialize_result() -> None:
    assert serialize_result("plain text, not JSON") == ("plain text, not JSON", False)
    assert serialize_result(None) == ("null", False)
    assert serialize_result({"a": [1, 2.5, True, None]}) == ('{"a": [1, 2.5, true, null]}', False)
    assert serialize_result((1, "é")) == ('[1, "é"]', False)
    assert serialize_result(Point(1, 2)) == ('{"x": 1, "y": 2, "label": ""}', False)
    assert json.loads(serialize_result(Person(name="Ada", age=36))[0]) == {
        "name": "Ada",
        "age": 36,
        "home": None,
    }
    assert sorted(json.loads(serialize_result({3, 1, 2})[0])) == [1, 2, 3]
    when = dt.datetime(2024, 5, 1, 12, 30)
    assert serialize_result(when) == ('"2024-05-01T12:30:00"', False)
    assert serialize_result(dt.date(2024, 5, 1)) == ('"2024-05-01"', False)
    assert serialize_result(Color.GREEN) == ('"green"', False)
    nested = json.loads(serialize_result({"r": Reading("Paris", when, {"x"})})[0])
    assert nested == {"r": {"city": "Paris", "at": "2024-05-01T12:30:00", "tags": ["x"]}}
    assert serialize_result(Opaque()) == ("<Opaque thing>", False)
    assert serialize_result([Opaque()]) == ("[<Opaque thing>]", False)
    assert serialize_result({(1, 2): "tuple key"})[0] == "{(1, 2): 'tuple key'}"


def test_serialize_result_truncates() -> None:
    text, truncated = serialize_result("x" * 50, max_chars=20)
    assert truncated and text.startswith("x" * 20) and "30 more characters" in text
    assert serialize_result("x" * 20, max_chars=20) == ("x" * 20, False)
    text, truncated = serialize_result(list(range(1000)), max_chars=100)
    assert truncated and text.startswith("[0, 1, 2")


class _Spy:
    """Records whether JSON encoding ever reached it (through `isoformat`, the fallback)."""

    encoded = 0

    def isoformat(self) -> str:
        _Spy.encoded += 1
        return "spy"


def test_long_list_is_cut_while_serialising() -> None:
    """Only the prefix the model is shown is encoded; the text is the whole JSON's first
    max_chars characters, then a note that says how many items there are in all."""
    _Spy.encoded = 0
    value = list(range(50_000)) + [_Spy() for _ in range(10)]
    text, truncated = serialize_result(value, max_chars=1000)
    assert truncated and _Spy.encoded == 0  # the tail was never encoded
    shown, note = text.split("\n", 1)
    assert shown == json.dumps(list(range(50_000)))[:1000]
    assert note == "[... cut at 1000 characters; 50010 items in all, not all shown]"
    assert serialize_result(tuple(range(2000)), max_chars=30)[0].startswith("[0, 1, 2, 3")
    # long but fits: the whole JSON, not cut
    assert serialize_result(list(range(500)), max_chars=10**6) == (
        json.dumps(list(range(500))),
        False,
    )
    # a long list JSON cannot encode still goes as its repr, as a short one does
    text, truncated = serialize_result([Opaque()] * 100, max_chars=10**6)
    assert text == repr([Opaque()] * 100) and not truncated


def test_dataframe_is_cut_while_serialising() -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({f"c{i}": [j * 0.5 + i for j in range(1000)] for i in range(10)})
    whole = frame.to_json(orient="records", date_format="iso", force_ascii=False)
    text, truncated = serialize_result(frame, max_chars=2000)
    shown, note = text.split("\n", 1)
    assert truncated and shown == whole[:2000]
    assert note == "[... cut at 2000 characters; 1000 rows in all, not all shown]"
    # a frame that fits is the records' valid JSON, dates in ISO form, text unescaped
    small = pd.DataFrame({"city": ["Zürich", "Paris"], "at": pd.to_datetime(["2024-05-01"] * 2)})
    text, truncated = serialize_result(small)
    assert not truncated and json.loads(text) == [
        {"city": "Zürich", "at": "2024-05-01T00:00:00.000"},
        {"city": "Paris", "at": "2024-05-01T00:00:00.000"},
    ]
    assert json.loads(serialize_result(frame["c1"].head(3))[0]) == [1.0, 1.5, 2.0]
    # what to_json refuses (duplicate column names) still gets the repr
    twice = pd.DataFrame([[1, 2]], columns=["a", "a"])
    assert serialize_result(twice) == (repr(twice), False)


@dataclasses.dataclass
class Place:
    """A class a tool's hint names (a string hint, as `from __future__ import annotations` makes)."""

    x: int


def _uses_place(where: Place, count: int = 1, note: str | None = None) -> None:
    """Go somewhere."""


def test_string_hints_read_like_get_type_hints_and_find_a_redefined_class(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import typing

    from llm_magic.schema import _type_hints

    for fn in (_uses_place, Place.__init__, test_defaults, lambda a, b=2: None):
        assert _type_hints(fn) == typing.get_type_hints(fn, include_extras=True), fn
    first = Tool.from_function(_uses_place).schema

    @dataclasses.dataclass
    class Redefined:  # a later cell defines the class again, under the same name
        y: str

    monkeypatch.setitem(globals(), "Place", Redefined)
    assert _type_hints(_uses_place)["where"] is Redefined
    again = Tool.from_function(_uses_place).schema  # read anew, not from a cache
    assert again != first and "y" in json.dumps(again) and '"x"' not in json.dumps(again)


def test_a_hint_naming_nothing_still_says_which_tool() -> None:
    def broken(x: Missing) -> None:  # type: ignore[name-defined]  # noqa: F821
        """Uses a name defined nowhere."""

    with pytest.raises(ToolDefinitionError, match="broken"):
        Tool.from_function(broken)


def test_a_tools_spec_is_made_once_and_anew_after_a_change() -> None:
    t = Tool.from_function(_uses_place)
    spec = t.spec()
    assert t.spec() is spec  # a run sends it every turn
    t.description = "Go elsewhere."
    assert t.spec() is not spec and t.spec().description == "Go elsewhere."
    assert dataclasses.replace(spec, name="go").wire == {}  # a copy keeps no wire form


def test_a_plain_functions_parameters_are_kept_and_follow_its_code() -> None:
    def f(x: int) -> int:
        """Add."""
        return x

    def g(y: str, z: int = 2) -> str:
        """Join."""
        return y

    assert Tool.from_function(f).parameters is Tool.from_function(f).parameters  # kept
    # what %autoreload does to a function whose source changed: its code and defaults replaced
    f.__code__, f.__defaults__, f.__annotations__ = g.__code__, g.__defaults__, g.__annotations__
    f.__doc__ = "Join.\n\nArgs:\n    y: the text"
    again = Tool.from_function(f)
    assert set(again.schema["properties"]) == {"y", "z"}
    assert again.schema["properties"]["y"] == {"type": "string", "description": "the text"}
    assert again.spec().parameters == again.schema


def test_a_default_whose_equality_is_odd_does_not_break_reading_the_tool_again() -> None:
    class Odd:
        def __eq__(self, other: object) -> bool:
            raise ValueError("ambiguous")  # as a numpy array's truth value is

        __hash__ = object.__hash__

    def f(x: int, odd=Odd()) -> int:  # type: ignore[no-untyped-def]
        """Use it."""
        return x

    first = Tool.from_function(f)
    f.__defaults__ = (Odd(),)
    assert Tool.from_function(f).schema == first.schema
