"""Every Python snippet in the README and docs/ runs as written as far as its own text goes: it
parses (top-level await allowed, as in a notebook cell), and what it takes from llm_magic it
imports in the same snippet (`llm_magic.chain` needs `import llm_magic`, a bare `tool` needs
`from llm_magic import tool`). Names defined by the reader's own earlier cells (`get_weather`)
are the snippet's context, not checked here."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import llm_magic

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def snippets() -> list[tuple[str, str]]:
    out = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in BLOCK.finditer(text):
            line = text[: match.start()].count("\n") + 2
            out.append((f"{page.relative_to(ROOT)}:{line}", match.group(1)))
    return out


def parse(source: str) -> ast.Module:
    # a notebook cell: IPython magics are not Python; top-level await is
    lines = ["" if line.lstrip().startswith("%") else line for line in source.splitlines()]
    tree = compile(
        "\n".join(lines), "<snippet>", "exec", ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    )
    assert isinstance(tree, ast.Module)
    return tree


@pytest.mark.parametrize(("where", "source"), snippets(), ids=[w for w, _ in snippets()])
def test_a_snippet_imports_what_it_uses_of_llm_magic(where: str, source: str) -> None:
    tree = parse(source)
    bound = {
        alias.asname or alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    bound |= {
        node.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)
    }
    bound |= {
        n.name
        for n in ast.walk(tree)
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    }
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    public = set(llm_magic.__all__)
    missing = sorted(name for name in used - bound if name == "llm_magic" or name in public)
    assert not missing, f"{where} uses {', '.join(missing)} without importing it"


def test_the_check_finds_a_missing_import() -> None:
    tree = parse('result = await llm_magic.chain("hi")')
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    assert "llm_magic" in used
    with pytest.raises(AssertionError, match="uses llm_magic without importing it"):
        test_a_snippet_imports_what_it_uses_of_llm_magic("x.md:1", 'await llm_magic.chain("hi")')
    with pytest.raises(AssertionError, match="uses tool without importing it"):
        test_a_snippet_imports_what_it_uses_of_llm_magic("x.md:1", "@tool\ndef f(): ...")
