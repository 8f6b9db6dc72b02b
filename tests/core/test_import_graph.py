"""No import cycle in the package: each module can be read, tested and changed on its own, and
importing one never half-imports another. Each name is imported from the module that owns it,
so a module can stop importing a name it no longer uses without breaking another."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.import_graph import borrowed_imports, cycles, graph


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


def test_each_name_is_imported_from_the_module_that_owns_it() -> None:
    found = borrowed_imports(dirs=("llm_magic", "tests", "bench"))
    assert not found, "imported through a module that only imports them:\n" + "\n".join(found)


def test_a_name_borrowed_from_a_module_is_found_and_a_declared_one_is_not(tmp_path: Path) -> None:
    """A module's own definitions, its `__all__` and a package's `__init__` may be imported
    from; a name the module itself only imports may not (so the test above can fail)."""
    root = _package(
        tmp_path,
        {
            "__init__.py": "from .records import Record\n",
            "records.py": "class Record: ...\n",
            "events.py": "from .records import Record\nclass Event: ...\n",
            "tools.py": "from ._impl import helper\n__all__ = ['helper']\n",
            "_impl.py": "def helper(): ...\n",
            "user.py": (
                "from .events import Event, Record\n"
                "from .tools import helper\n"
                "from . import Record as R\n"
                "def f():\n    from .events import Record\n"
            ),
        },
    )
    assert borrowed_imports(root) == [
        "llm_magic/user.py:1: Record from llm_magic.events",
        "llm_magic/user.py:5: Record from llm_magic.events",
    ]
