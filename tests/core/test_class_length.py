"""No class in the package is longer than a reader can hold: past about 350 lines a class has
taken on a second job, which belongs in a module of its own."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

from tests.import_graph import modules

MAX_LINES = 350


def class_lengths(root: Path | None = None) -> dict[str, int]:
    """`module.Class` -> its lines (decorators to last line), for every class, nested too."""
    found = modules() if root is None else modules(root)
    lengths = {}
    for module, path in found.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                lengths[f"{module}.{node.name}"] = (node.end_lineno or node.lineno) - first + 1
    return lengths


def test_no_class_is_longer_than_350_lines() -> None:
    lengths = class_lengths()
    longest = sorted(lengths.items(), key=lambda item: -item[1])
    too_long = [f"{name}: {lines} lines" for name, lines in longest if lines > MAX_LINES]
    assert not too_long, "split by job: " + ", ".join(too_long)


def test_the_length_counts_a_class_from_its_decorators_to_its_end(tmp_path: Path) -> None:
    """A class one line too long is found, so the test above can fail."""
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES - 1))
    path = tmp_path / "llm_magic" / "big.py"
    path.parent.mkdir()
    (tmp_path / "llm_magic" / "__init__.py").write_text("")
    path.write_text(
        textwrap.dedent("@dataclass\nclass Big:\n") + body + "\n\nclass Small:\n    pass\n"
    )
    lengths = class_lengths(tmp_path)
    assert lengths == {"llm_magic.big.Big": MAX_LINES + 1, "llm_magic.big.Small": 2}
