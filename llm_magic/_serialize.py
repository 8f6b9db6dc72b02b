"""What the model gets for a tool's result: text, cut to a length, never the object itself.

str as is; JSON where the value allows it (dataclasses, pydantic models, enums, sets, dates,
NumPy scalars and arrays, pandas frames); `repr` as the last resort. Long lists and frames are
cut while they are serialised, so a big result costs what the model is shown, not its size.
The user keeps the real object in the call's record.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from typing import Any

DEFAULT_MAX_RESULT_CHARS = 20_000


def serialize_result(value: Any, max_chars: int = DEFAULT_MAX_RESULT_CHARS) -> tuple[str, bool]:
    """The text the model gets for a result, and whether it was truncated.

    str as is; JSON where the value allows it (dataclasses, pydantic models, enums, sets,
    dates, NumPy scalars and arrays included); `repr` as the last resort. The user keeps the
    real object in the call's record; only this text goes to the model.

    Long lists and pandas frames are cut while serialising (`_json_head`): only enough of them
    to fill `max_chars` is encoded, so a big result costs what the model is shown, not its size.
    """
    own = getattr(value, "__llm_output__", None)  # results that know their text (MCP results)
    if isinstance(value, str):
        return _cut(value, max_chars)
    if callable(own) and not isinstance(value, type):
        return _cut(str(own()), max_chars)
    if value is None:
        return "null", False
    head = _json_head(value, max_chars)
    if head is not None:
        return head
    try:
        text = json.dumps(_jsonify(value), ensure_ascii=False, default=_json_fallback)
    except (TypeError, ValueError):
        text = repr(value)
    return _cut(text, max_chars)


def _cut(text: str, max_chars: int) -> tuple[str, bool]:
    if len(text) <= max_chars:
        return text, False
    omitted = len(text) - max_chars
    return text[:max_chars] + f"\n[... {omitted} more characters not shown]", True


_HEAD_START = 64  # items (rows) encoded first; past this a long sequence is encoded by prefixes


def _json_head(value: Any, max_chars: int) -> tuple[str, bool] | None:
    """JSON for a long list/tuple or a pandas frame/series, encoding only a prefix of its items
    when that already fills `max_chars`; None for anything else (or what JSON refuses).

    The JSON of the first k items of a list (a frame's records) is the whole JSON's prefix up to
    its closing bracket, so once it is longer than `max_chars` its first `max_chars` characters
    are exactly what cutting the whole would give. A frame goes as `to_json(orient="records")`'s
    own text, not through `json.loads` and `json.dumps` again.
    """
    if isinstance(value, list | tuple):
        if len(value) <= _HEAD_START:
            return None

        def encode(k: int) -> str:
            return json.dumps(list(value[:k]), ensure_ascii=False, default=_json_fallback)

    elif _is_pandas(value):
        size = getattr(value, "size", 0)
        if isinstance(size, int) and size > _MAX_ELEMENTS:
            return None  # the summarising repr (see _not_too_big)

        def encode(k: int) -> str:
            part = value.iloc[:k] if k < len(value) else value
            text: str = part.to_json(orient="records", date_format="iso", force_ascii=False)
            return text

    else:
        return None
    total = len(value)
    try:
        k = min(total, _HEAD_START)
        text = encode(k)
        while len(text) <= max_chars and k < total:
            # enough items for max_chars at the size seen so far, with a margin; at least double
            k = min(total, max(2 * k, int(k * 1.2 * max_chars / max(len(text), 1)) + 1))
            text = encode(k)
    except (TypeError, ValueError):
        return None  # the general path decides (JSON of the rest, or the repr)
    if k == total:
        return _cut(text, max_chars)
    unit = "rows" if _is_pandas(value) else "items"
    note = f"\n[... cut at {max_chars} characters; {total} {unit} in all, not all shown]"
    return text[:max_chars] + note, True


def _is_pandas(value: Any) -> bool:
    return (
        not isinstance(value, type)
        and callable(getattr(value, "to_json", None))
        and callable(getattr(value, "to_dict", None))
        and hasattr(value, "iloc")
    )


def _jsonify(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    dump = getattr(value, "model_dump", None)
    if callable(dump) and not isinstance(value, type):
        return dump(mode="json")
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict) and hasattr(value, "to_json"):  # pandas objects
        _not_too_big(value)
        return json.loads(value.to_json(orient="records", date_format="iso"))
    return value


_MAX_ELEMENTS = 10_000  # past this, JSON would be cut anyway: the summarising repr says more


def _not_too_big(value: Any) -> None:
    """Arrays and frames too big to send whole go as their (summarised) repr, quickly: a full
    `.tolist()` of 5 million floats takes seconds and hundreds of MB before it is cut."""
    size = getattr(value, "size", None)
    if isinstance(size, int) and size > _MAX_ELEMENTS:
        raise _NotJSON(f"{type(value).__name__} of {size} elements")


class _NotJSON(TypeError):
    pass


def _json_fallback(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    iso = getattr(value, "isoformat", None)
    if callable(iso):
        return iso()
    converted = _jsonify(value)
    if converted is not value:
        return converted
    for method in ("tolist", "item"):  # NumPy scalars and arrays (and tensors), without numpy
        convert = getattr(value, method, None)
        if callable(convert):
            _not_too_big(value)
            return convert()
    raise _NotJSON(type(value).__name__)
