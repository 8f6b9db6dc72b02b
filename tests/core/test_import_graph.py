"""No import cycle in the package: each module can be read, tested and changed on its own, and
importing one never half-imports another."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.import_graph import cycles, graph


def test_the_package_has_no_import_cycle() -> None:
    edges = graph()
    found = cycles(edges)
    described = [
        "\n".join(f"  {m} -> {sorted(edges[m] & set(group))}" for m in group) for group in found
    ]
    assert not found, "import cycles:\n" + "\n\n".join(described)


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / "llm_magic" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return tmp_path


def test_the_graph_counts_function_level_and_package_imports(tmp_path: Path) -> None:
    """A cycle through a function-level import or through a package's `__init__` is found,
    so the test above can fail."""
    root = _package(
        tmp_path,
        {
            "__init__.py": "from .a import f\n",
            "a.py": "def f():\n    from . import sub\n",
            "sub/__init__.py": "from ..b import g\n",
            "b.py": "from .sub import thing\n",
        },
    )
    assert cycles(graph(root)) == [["llm_magic.b", "llm_magic.sub"]]


def test_the_graph_skips_type_checking_imports(tmp_path: Path) -> None:
    """`if TYPE_CHECKING:` imports never run, so they make no cycle."""
    root = _package(
        tmp_path,
        {
            "__init__.py": "",
            "a.py": "from .b import B\n",
            "b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import A\n",
        },
    )
    assert graph(root)["llm_magic.b"] == set()
    assert cycles(graph(root)) == []
