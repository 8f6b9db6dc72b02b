"""Type hints to JSON schema, and JSON values back to Python values, with one tree of converters.

Each hint becomes a `Converter` that knows both its schema (what the model is told) and how to
turn what the model sent into the Python value the function expects. Keeping both in one object
means the schema and the validation can never disagree. Longer than 500 lines because every
converter keeps its schema and its coercion side by side, which is the point of the module.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import enum
import functools
import pathlib
import re
import types
import typing
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, Union, get_args, get_origin

from ._schema_refs import hoist_defs, inline_refs, refs
from .errors import ToolArgumentsError, ToolDefinitionError

_INT_RE = re.compile(r"^[+-]?\d+$")
_NUMBER_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_NO_DEFAULT = object()


class Invalid(Exception):
    """A value does not fit; `path` says where (e.g. `items[2].city`)."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.path = path

    def at(self, part: str) -> Invalid:
        sep = "" if not self.path or self.path.startswith("[") else "."
        return Invalid(self.message, f"{part}{sep}{self.path}" if self.path else part)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Converter:
    """Schema plus coercion for one type."""

    schema: dict[str, Any]

    def convert(self, value: Any, strict: bool = False) -> Any:
        raise NotImplementedError


class AnyConv(Converter):
    def __init__(self) -> None:
        self.schema = {}

    def convert(self, value: Any, strict: bool = False) -> Any:
        return value


class StrConv(Converter):
    def __init__(self, fmt: str | None = None, factory: Callable[[str], Any] | None = None) -> None:
        self.schema = {"type": "string"}
        if fmt:
            self.schema["format"] = fmt
        self.factory = factory

    def convert(self, value: Any, strict: bool = False) -> Any:
        if isinstance(value, str):
            text = value
        elif not strict and isinstance(value, int | float) and not isinstance(value, bool):
            text = str(value)
        else:
            raise Invalid(f"expected a string, got {_show(value)}")
        if self.factory is None:
            return text
        try:
            return self.factory(text)
        except ValueError as exc:
            raise Invalid(f"expected {self.schema.get('format', 'a string')}: {exc}") from None


class IntConv(Converter):
    def __init__(self) -> None:
        self.schema = {"type": "integer"}

    def convert(self, value: Any, strict: bool = False) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if not strict:
            if isinstance(value, float) and value.is_integer():
                return int(value)
            if isinstance(value, str) and _INT_RE.match(value.strip()):
                return _parse_int(value.strip())
        raise Invalid(f"expected an integer, got {_show(value)}")


def _parse_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:  # past Python's limit on digits (sys.get_int_max_str_digits)
        raise Invalid(f"integer too long ({len(text)} characters)") from None


class FloatConv(Converter):
    def __init__(self) -> None:
        self.schema = {"type": "number"}

    def convert(self, value: Any, strict: bool = False) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if not strict and isinstance(value, str) and _NUMBER_RE.match(value.strip()):
            return float(value.strip())
        raise Invalid(f"expected a number, got {_show(value)}")


class BoolConv(Converter):
    def __init__(self) -> None:
        self.schema = {"type": "boolean"}

    def convert(self, value: Any, strict: bool = False) -> Any:
        if isinstance(value, bool):
            return value
        if not strict and isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise Invalid(f"expected true or false, got {_show(value)}")


class NoneConv(Converter):
    def __init__(self) -> None:
        self.schema = {"type": "null"}

    def convert(self, value: Any, strict: bool = False) -> Any:
        if value is None:
            return None
        raise Invalid(f"expected null, got {_show(value)}")


class ListConv(Converter):
    def __init__(self, item: Converter, factory: Callable[[list[Any]], Any] = list) -> None:
        self.item = item
        self.factory = factory
        self.schema = {"type": "array", "items": item.schema}

    def convert(self, value: Any, strict: bool = False) -> Any:
        if not isinstance(value, list):
            raise Invalid(f"expected an array, got {_show(value)}")
        out = []
        for i, v in enumerate(value):
            try:
                out.append(self.item.convert(v, strict))
            except Invalid as exc:
                raise exc.at(f"[{i}]") from None
        return self.factory(out)


class TupleConv(Converter):
    def __init__(self, items: list[Converter]) -> None:
        self.items = items
        self.schema = {
            "type": "array",
            "prefixItems": [c.schema for c in items],
            "minItems": len(items),
            "maxItems": len(items),
        }

    def convert(self, value: Any, strict: bool = False) -> Any:
        if not isinstance(value, list) or len(value) != len(self.items):
            raise Invalid(f"expected an array of {len(self.items)} items, got {_show(value)}")
        out = []
        for i, (conv, v) in enumerate(zip(self.items, value, strict=True)):
            try:
                out.append(conv.convert(v, strict))
            except Invalid as exc:
                raise exc.at(f"[{i}]") from None
        return tuple(out)


class DictConv(Converter):
    def __init__(self, value_conv: Converter) -> None:
        self.value_conv = value_conv
        self.schema = {"type": "object", "additionalProperties": value_conv.schema}

    def convert(self, value: Any, strict: bool = False) -> Any:
        if not isinstance(value, dict):
            raise Invalid(f"expected an object, got {_show(value)}")
        out = {}
        for k, v in value.items():
            try:
                out[k] = self.value_conv.convert(v, strict)
            except Invalid as exc:
                raise exc.at(str(k)) from None
        return out


class UnionConv(Converter):
    """Tries each option strictly first, then with coercion, so `int | str` keeps "3" a str."""

    def __init__(self, options: list[Converter]) -> None:
        self.options = options
        non_null = [o for o in options if not isinstance(o, NoneConv)]
        self.optional_of = non_null[0] if len(non_null) == 1 and len(options) == 2 else None
        if self.optional_of is not None:
            self.schema = {"anyOf": [self.optional_of.schema, {"type": "null"}]}
        else:
            self.schema = {"anyOf": [o.schema for o in options]}

    def convert(self, value: Any, strict: bool = False) -> Any:
        if self.optional_of is not None and value is not None:
            return self.optional_of.convert(value, strict)  # its own, more precise, message
        for mode in (True, False) if not strict else (True,):
            for opt in self.options:
                try:
                    return opt.convert(value, mode)
                except Invalid:
                    continue
        expected = " or ".join(_describe(o.schema) for o in self.options)
        raise Invalid(f"expected {expected}, got {_show(value)}")


class LiteralConv(Converter):
    def __init__(self, values: Sequence[Any], factory: Callable[[Any], Any] | None = None) -> None:
        self.values = list(values)
        self.factory = factory
        self.schema = {"enum": self.values}
        kinds = {type(v) for v in self.values}
        if kinds == {str}:
            self.schema["type"] = "string"
        elif kinds <= {int} and kinds:
            self.schema["type"] = "integer"

    def convert(self, value: Any, strict: bool = False) -> Any:
        candidates = [value]
        if not strict and isinstance(value, str):
            stripped = value.strip()
            if _INT_RE.match(stripped):
                candidates.append(int(stripped))
            candidates.append(stripped)
        for cand in candidates:
            for allowed in self.values:
                if cand == allowed and type(cand) is type(allowed):
                    return self.factory(allowed) if self.factory else allowed
        raise Invalid(f"expected one of {', '.join(map(repr, self.values))}, got {_show(value)}")


class ObjectConv(Converter):
    """A TypedDict or dataclass: named fields, some required."""

    def __init__(
        self,
        fields: dict[str, Converter],
        required: set[str],
        factory: Callable[..., Any],
        descriptions: Mapping[str, str] | None = None,
        title: str | None = None,
    ) -> None:
        self.fields = fields
        self.required = required
        self.factory = factory
        props = {}
        for name, conv in fields.items():
            prop = dict(conv.schema)
            if descriptions and descriptions.get(name):
                prop["description"] = descriptions[name]
            props[name] = prop
        self.schema = {
            "type": "object",
            "properties": props,
            "required": [n for n in fields if n in required],
            "additionalProperties": False,
        }
        if title:
            self.schema["title"] = title

    def convert(self, value: Any, strict: bool = False) -> Any:
        if not isinstance(value, dict):
            raise Invalid(f"expected an object, got {_show(value)}")
        fields = convert_fields(self.fields, self.required, value, strict)
        try:
            return self.factory(**fields)
        except Exception as exc:  # a dataclass's __post_init__ rejecting the value, typically
            raise Invalid(f"{type(exc).__name__}: {exc}") from None


class PydanticConv(Converter):
    def __init__(self, model: Any) -> None:
        self.model = model
        self.schema = inline_refs(model.model_json_schema())

    def convert(self, value: Any, strict: bool = False) -> Any:
        import pydantic

        try:
            return self.model.model_validate(value, strict=strict or None)
        except pydantic.ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first.get("loc", ()))
            raise Invalid(first.get("msg", str(exc)), loc) from None


def convert_fields(
    fields: Mapping[str, Converter], required: set[str], value: Mapping[str, Any], strict: bool
) -> dict[str, Any]:
    """Convert an object's fields; the messages name every missing and unknown key."""
    unknown = [k for k in value if k not in fields]
    if unknown:
        known = ", ".join(fields) or "no arguments"
        raise Invalid(f"unknown argument(s) {', '.join(map(repr, unknown))}; expected: {known}")
    missing = [k for k in fields if k in required and k not in value]
    if missing:
        raise Invalid(f"missing required argument(s) {', '.join(map(repr, missing))}")
    out = {}
    for k, v in value.items():
        try:
            out[k] = fields[k].convert(v, strict)
        except Invalid as exc:
            raise exc.at(k) from None
    return out


def _describe(schema: dict[str, Any]) -> str:
    if "enum" in schema:
        return "one of " + ", ".join(map(repr, schema["enum"]))
    return str(schema.get("type", "a value"))


def _is_typeddict(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, dict) and hasattr(tp, "__required_keys__")


def _is_pydantic(tp: Any) -> bool:
    if not isinstance(tp, type):
        return False
    try:
        import pydantic
    except ImportError:
        return False
    return issubclass(tp, pydantic.BaseModel)


_SCALARS: dict[Any, Callable[[], Converter]] = {
    str: StrConv,
    int: IntConv,
    float: FloatConv,
    bool: BoolConv,
    type(None): NoneConv,
    None: NoneConv,
    Any: AnyConv,
    dt.datetime: lambda: StrConv("date-time", dt.datetime.fromisoformat),
    dt.date: lambda: StrConv("date", dt.date.fromisoformat),
    pathlib.Path: lambda: StrConv("path", pathlib.Path),
}


_Seen = Mapping[Any, list[Converter]]  # the classes being built, each with its slot


def converter_for(hint: Any, _seen: _Seen | None = None) -> Converter:
    """Build the converter of a type hint; raises TypeError for hints it cannot express."""
    _seen = _seen or {}
    if hint in _SCALARS:
        return _SCALARS[hint]()
    origin, args = get_origin(hint), get_args(hint)
    if origin in (typing.Required, typing.NotRequired):  # TypedDict keys, read with extras
        return converter_for(args[0], _seen)
    if origin is typing.Annotated:
        conv = converter_for(args[0], _seen)
        text = next((a for a in args[1:] if isinstance(a, str)), None)
        return _Described(conv, text) if text else conv
    if origin in (Union, types.UnionType):
        return UnionConv([converter_for(a, _seen) for a in args])
    if origin is Literal:
        return LiteralConv(args)
    if origin in (list, Sequence, typing.Sequence, set, frozenset) or hint in (list, set):
        item = converter_for(args[0], _seen) if args else AnyConv()
        factory: Callable[[list[Any]], Any] = set if origin in (set,) or hint is set else list
        if origin is frozenset:
            factory = frozenset
        return ListConv(item, factory)
    if origin is tuple or hint is tuple:
        if not args or (len(args) == 2 and args[1] is Ellipsis):
            return ListConv(converter_for(args[0], _seen) if args else AnyConv(), tuple)
        return TupleConv([converter_for(a, _seen) for a in args])
    if origin in (dict, Mapping, typing.Mapping) or hint is dict:
        if args and args[0] is not str:
            raise TypeError(f"dict keys must be str (JSON object keys), not {args[0]!r}")
        return DictConv(converter_for(args[1], _seen) if args else AnyConv())
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return LiteralConv([m.value for m in hint], hint)
    if hint in _seen:
        return _RefConv(hint.__name__, _seen[hint])
    if _is_typeddict(hint) or (dataclasses.is_dataclass(hint) and isinstance(hint, type)):
        slot: list[Converter] = []
        conv = _object_converter(hint, {**_seen, hint: slot})
        slot.append(conv)
        return _defined_if_recursive(conv, hint.__name__)
    if _is_pydantic(hint):
        return PydanticConv(hint)
    raise TypeError(f"type {hint!r} cannot be expressed as JSON schema")


def _object_converter(hint: Any, seen: _Seen) -> ObjectConv:
    """The converter of a TypedDict or a dataclass, its fields built with `seen`."""
    if _is_typeddict(hint):
        hints = _class_hints(hint)
        fields = {k: converter_for(v, seen) for k, v in hints.items()}
        # Required/NotRequired read from the hints too: with string annotations (PEP 563)
        # Python 3.11 computes __required_keys__ without seeing them.
        required = {
            k
            for k, v in hints.items()
            if get_origin(v) is typing.Required
            or (k in hint.__required_keys__ and get_origin(v) is not typing.NotRequired)
        }
        return ObjectConv(fields, required, dict, title=hint.__name__)
    hints = _class_hints(hint)
    fields, required = {}, set()
    for f in dataclasses.fields(hint):
        if not f.init:
            continue
        fields[f.name] = converter_for(hints.get(f.name, Any), seen)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            required.add(f.name)
    return ObjectConv(fields, required, hint, title=hint.__name__)


class _RefConv(Converter):
    """A class inside its own fields (a recursive dataclass or TypedDict): a `$ref` to its
    definition, converted by the class's converter once that is built (`slot`)."""

    def __init__(self, name: str, slot: list[Converter]) -> None:
        self.schema = {"$ref": f"#/$defs/{name}"}
        self.slot = slot

    def convert(self, value: Any, strict: bool = False) -> Any:
        return self.slot[0].convert(value, strict)


def _defined_if_recursive(conv: ObjectConv, name: str) -> ObjectConv:
    """A class that refers to itself also carries its schema in `$defs`, where its `$ref`s
    point (moved to the document's root by `hoist_defs`, as pydantic's own are)."""
    if name in refs(conv.schema):
        conv.schema = {**conv.schema, "$defs": {name: dict(conv.schema)}}
    return conv


_LOCAL_NAMES = (
    "type hints are looked up in the module, so a class defined inside a function cannot be "
    "named in them (nor refer to itself); define it at module level"
)


def _class_hints(cls: type) -> dict[str, Any]:
    """A class's field hints; a name they use that cannot be resolved is a TypeError that says
    what to do (typically a class defined inside a function that refers to itself)."""
    try:
        return typing.get_type_hints(cls, include_extras=True)
    except NameError as exc:
        raise TypeError(
            f"the fields of {cls.__name__!r} refer to a name that cannot be resolved ({exc}): "
            + _LOCAL_NAMES
        ) from None


class _Described(Converter):
    """A converter with a description from `Annotated[T, "text"]`."""

    def __init__(self, inner: Converter, description: str) -> None:
        self.inner = inner
        self.description = description
        self.schema = {**inner.schema, "description": description}

    def convert(self, value: Any, strict: bool = False) -> Any:
        return self.inner.convert(value, strict)


@dataclasses.dataclass
class Parameters:
    """The converted signature of a tool: one converter per parameter."""

    fields: dict[str, Converter]
    required: set[str]
    defaults: dict[str, Any]
    descriptions: dict[str, str]

    @property
    def schema(self) -> dict[str, Any]:
        """A fresh tree on every read: converters share sub-schemas (one item schema in several
        places), so a caller editing what it got must never change another tool's schema."""
        props = {}
        for name, conv in self.fields.items():
            prop = copy.deepcopy(conv.schema)
            if name in self.descriptions and "description" not in prop:
                prop["description"] = self.descriptions[name]
            if name in self.defaults and _jsonable(self.defaults[name]):
                prop["default"] = _json_default(self.defaults[name])
            props[name] = prop
        return hoist_defs(
            {
                "type": "object",
                "properties": props,
                "required": [n for n in self.fields if n in self.required],
                "additionalProperties": False,
            }
        )

    def validate(self, arguments: Any) -> dict[str, Any]:
        """Turn the model's arguments into keyword arguments, or raise ToolArgumentsError."""
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            raise ToolArgumentsError(f"arguments must be a JSON object, got {_show(arguments)}")
        try:
            return convert_fields(self.fields, self.required, arguments, strict=False)
        except Invalid as exc:
            where = f"argument {exc.path!r}: " if exc.path else ""
            raise ToolArgumentsError(where + exc.message) from None
        except Exception as exc:  # a converter's own code (an enum, a factory) rejected it
            raise ToolArgumentsError(f"{type(exc).__name__}: {exc}") from None


def _jsonable(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool | enum.Enum)


def _json_default(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


def _type_hints(fn: Any) -> dict[str, Any]:
    """`typing.get_type_hints(fn, include_extras=True)`, cheaper for the usual tool: a plain
    function whose hints are classes, or strings that evaluate to classes (`from __future__
    import annotations`). Those strings are evaluated on every call, in the function's globals
    as `get_type_hints` does, so a class redefined in a later cell is the one found; only their
    compiled code is kept (compiling was most of the cost). Anything else (a generic, a string
    that fails or is not a class) is left to `get_type_hints`, errors included."""
    annotations = getattr(fn, "__annotations__", None)
    if not isinstance(annotations, dict) or hasattr(fn, "__wrapped__"):
        return typing.get_type_hints(fn, include_extras=True)
    namespace = getattr(fn, "__globals__", None)
    hints: dict[str, Any] = {}
    for name, value in annotations.items():
        if isinstance(value, str) and namespace is not None:
            try:
                value = eval(_compiled(value), namespace)  # as get_type_hints evaluates it
            except Exception:
                return typing.get_type_hints(fn, include_extras=True)
        if value is None:
            value = type(None)
        elif not isinstance(value, type) or isinstance(value, types.GenericAlias):
            return typing.get_type_hints(fn, include_extras=True)
        hints[name] = value
    return hints


@functools.lru_cache(maxsize=1024)
def _compiled(annotation: str) -> types.CodeType:
    return compile(annotation, "<string>", "eval")  # as typing.ForwardRef compiles it


def parameters_from_signature(
    fn: Callable[..., Any], descriptions: Mapping[str, str], tool_name: str
) -> Parameters:
    """Read a callable's signature and hints (with `Annotated` extras) into `Parameters`."""
    import inspect

    remembered = _remembered(fn, descriptions)
    if remembered is not None:
        return remembered
    sig = inspect.signature(fn)
    target = getattr(fn, "func", fn)  # functools.partial
    if not (inspect.isfunction(target) or inspect.ismethod(target)):
        target = type(target).__call__
    try:
        hints = _type_hints(target)
    except NameError as exc:
        raise ToolDefinitionError(
            f"tool {tool_name!r}: cannot read type hints ({exc}): {_LOCAL_NAMES}"
        ) from None
    except Exception as exc:
        raise ToolDefinitionError(f"tool {tool_name!r}: cannot read type hints: {exc}") from None
    fields: dict[str, Converter] = {}
    required: set[str] = set()
    defaults: dict[str, Any] = {}
    for name, param in sig.parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue  # never leaked into the schema
        if param.kind is param.POSITIONAL_ONLY:
            raise ToolDefinitionError(
                f"tool {tool_name!r}: parameter {name!r} is positional-only; "
                "the model passes arguments by name"
            )
        hint = hints.get(name, Any)
        if hint is Any and param.default is not param.empty and param.default is not None:
            hint = type(param.default) if type(param.default) in _SCALARS else Any
        try:
            fields[name] = converter_for(hint)
        except TypeError as exc:
            raise ToolDefinitionError(
                f"tool {tool_name!r}: parameter {name!r} has an unsupported type hint: {exc}"
            ) from None
        if param.default is param.empty:
            required.add(name)
        else:
            defaults[name] = param.default
    params = Parameters(fields, required, defaults, dict(descriptions))
    if inspect.isfunction(fn) and all(_plain_hint(hints.get(name)) for name in fields):
        _PLAIN[fn] = (_plain_key(fn, descriptions), hints, params)
    return params


# A plain function's parameters whose hints are all scalars (str, int, float, bool, None, Any,
# the date and path types): a tool is read from its function on every run, and what a scalar
# converts to never changes, so they are kept while the function lives and stay while its code,
# defaults, annotations and docstring do and its hints evaluate to the very same classes (read
# again each time: a name bound to something else in a later cell is found). A hint naming
# any other class (a dataclass, a model, an enum) is read anew every run: the class may have been
# redefined or reloaded in place.
_PLAIN: weakref.WeakKeyDictionary[Callable[..., Any], tuple[Any, dict[str, Any], Parameters]]
_PLAIN = weakref.WeakKeyDictionary()


def _plain_hint(hint: Any) -> bool:
    try:
        return hint is None or hint in _SCALARS
    except TypeError:  # an unhashable hint
        return False


def _plain_key(fn: Any, descriptions: Mapping[str, str]) -> tuple[Any, ...]:
    """What the parameters are read from: objects compared by identity (a default's own `==`
    may be anything), then the annotations and descriptions, compared by value."""
    return (
        (
            fn.__code__,
            fn.__defaults__,
            fn.__kwdefaults__,
            getattr(fn, "__signature__", None),
            getattr(fn, "__wrapped__", None),
        ),
        tuple(fn.__annotations__.items()),
        tuple(descriptions.items()),
    )


def _same_key(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    try:
        return all(x is y for x, y in zip(a[0], b[0], strict=True)) and a[1:] == b[1:]
    except Exception:  # an annotation whose `==` fails: read again
        return False


def _remembered(fn: Any, descriptions: Mapping[str, str]) -> Parameters | None:
    """The parameters `_PLAIN` keeps for `fn`, if they still hold (see `_PLAIN`)."""
    found = _PLAIN.get(fn) if isinstance(fn, types.FunctionType) else None
    if found is None:
        return None
    key, hints, params = found
    if not _same_key(key, _plain_key(fn, descriptions)):
        return None
    try:
        now = _type_hints(fn)
    except Exception:  # read again the long way, which says what is wrong
        return None
    if now.keys() != hints.keys() or any(now[k] is not v for k, v in hints.items()):
        return None
    return params
