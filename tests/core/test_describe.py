"""The describers of values behind the notebook tools and `--context`: what a model learns of a
DataFrame, an array or any object, within bounds that say when they cut, and which variables it
may see at all. Plain Python: real pandas and numpy values, no kernel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from llm_magic import describe as D

ROOT = Path(__file__).resolve().parents[2]


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {"city": ["Paris", "Rome", "Oslo", "Lima"], "temp_c": [21.5, 25.0, 9.25, 18.0]}
    )


def test_a_frame_is_described_by_shape_dtypes_head_and_summary():
    text = D.describe(frame())
    assert text.startswith("pandas.DataFrame: 4 rows × 2 columns")
    dtypes = text.split("dtypes:\n", 1)[1].split("\n\n", 1)[0]
    assert "temp_c" in dtypes and "float64" in dtypes
    head = text.split("head(5):\n", 1)[1].split("\n\n", 1)[0]
    assert "Oslo" in head and "9.25" in head
    summary = text.split("describe():\n", 1)[1]
    assert "mean" in summary and "18.4375" in summary  # (21.5 + 25 + 9.25 + 18) / 4


def test_a_series_and_an_array_get_their_own_summaries():
    series = D.describe(frame()["temp_c"])
    assert series.startswith("pandas.Series 'temp_c': 4 values, dtype float64")
    assert "max" in series and "25.0" in series
    array = D.describe(np.arange(12, dtype="float32").reshape(3, 4))
    assert array.startswith("numpy.ndarray: shape (3, 4), dtype float32")
    assert "min 0, max 11, mean 5.5" in array


def test_an_empty_or_text_array_has_no_statistics():
    assert "mean" not in D.describe(np.array([], dtype=float))
    assert "mean" not in D.describe(np.array(["a", "b"]))


def test_other_objects_get_a_bounded_repr_a_docstring_and_a_signature():
    class Scaler:
        """Scales numbers by a factor."""

        def __call__(self, x: float, factor: float = 2.0) -> float:
            return x * factor

    text = D.describe(Scaler())
    assert "Scales numbers by a factor." in text
    assert "signature: (x: float, factor: float = 2.0) -> float" in text

    def area(width: float, height: float) -> float:
        """Width times height."""
        return width * height

    assert D.describe(area).startswith("function ")
    assert "area(width: float, height: float) -> float" in D.describe(area)
    big = D.describe(list(range(100_000)))
    assert len(big) < 400 and "..." in big  # reprlib cut it while making it
    assert "docstring" not in D.describe(3)  # int's own docstring tells nothing of the value


def test_every_description_is_bounded_and_says_it_was_cut():
    wide = pd.DataFrame({f"column_{i}": range(50) for i in range(60)})
    text = D.describe(wide, limit=500)
    assert text.startswith("pandas.DataFrame: 50 rows × 60 columns")
    cut = text[500:]
    assert cut.startswith("\n[... ") and cut.endswith("more characters not shown]")
    assert D.describe(frame(), limit=10_000) == D.describe(frame(), limit=20_000)


def test_a_broken_value_is_described_without_raising():
    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no repr today")

    assert "test_describe.Broken: <Broken instance at 0x" in D.describe(Broken())

    class FakeFrame:  # looks like a frame, breaks when asked
        shape = (2, 2)
        dtypes = columns = pd.Series([1])

        def head(self, n: int) -> None:
            raise ValueError("corrupt")

    text = D.describe(FakeFrame())
    assert text.startswith("(could not describe it as a table: ValueError: corrupt)\n")
    assert "test_describe.FakeFrame: <" in text


def test_listing_rows_name_type_size_shape_and_its_cut():
    rows = D.listing([("df", frame()), ("arr", np.zeros((2, 3))), ("n", 5), ("names", ["a"])])
    lines = rows.splitlines()
    assert lines[0].split() == ["name", "type", "size", "shape"]
    assert lines[1].split() == ["df", "pandas.DataFrame", "8", "(4,", "2)"]
    assert lines[2].split() == ["arr", "numpy.ndarray", "6", "(2,", "3)"]
    assert lines[3].split() == ["n", "int"]
    assert lines[4].split() == ["names", "list", "1"]
    many = D.listing([(f"v{i}", i) for i in range(30)], limit=10)
    assert many.splitlines()[-1] == "[cut: 20 more variables not listed]"
    assert len(many.splitlines()) == 12  # header, 10 rows, the cut
    assert D.listing([]).startswith("no variables")


def test_hidden_modules_and_private_values_are_not_shown():
    class Credentials:
        __llm_private__ = True

    class Proxy:  # answers every attribute: only a real True marks it private
        def __getattr__(self, name: str) -> object:
            return "yes"

    class Exploding:
        def __getattr__(self, name: str) -> object:
            raise RuntimeError(name)

    namespace = {
        "df": frame(),
        "_scratch": 1,
        "os": os,
        "In": [],
        "token": "abc",
        "creds": Credentials(),
        "proxy": Proxy(),
        "boom": Exploding(),
        "mod": types.ModuleType("m"),
    }
    names = [n for n, _ in D.shown(namespace, hidden={"In"}, private={"token"})]
    assert names == ["df", "proxy", "boom"]


def test_api_keys_from_the_environment_never_leave(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-very-secret-1234")
    text = D.describe({"key": "sk-ant-very-secret-1234"})
    assert "sk-ant-very-secret-1234" not in text and "***" in text
    assert "sk-ant-very-secret-1234" not in D.listing([("sk-ant-very-secret-1234", 1)])


def test_context_block_describes_each_named_variable():
    block = D.context_block([("df", frame()), ("n", 3)])
    assert block.splitlines()[0] == "Variables of the user's Python session, described:"
    assert "## df\npandas.DataFrame: 4 rows × 2 columns" in block
    assert "## n\nint: 3" in block


@pytest.mark.parametrize("module", ["llm_magic.describe", "llm_magic.kernel_tools"])
def test_the_describers_import_neither_pandas_nor_numpy(module):
    probe = (
        f"import importlib, json, sys; importlib.import_module({module!r}); "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('pandas', 'numpy', 'IPython'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == []
