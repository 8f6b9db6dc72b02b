"""The package's import graph, read from the source with `ast`: every import counts, at module
level or inside a function, except those under `if TYPE_CHECKING:` (never run). An import
from a package (`from . import NotebookError`) is an edge to that package's `__init__`."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = "llm_magic"
ROOT = Path(__file__).resolve().parents[1]


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package (packages by `__init__`)."""
    found = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imported_names(module: str, path: Path) -> Iterator[str]:
    """The absolute names `module` imports (a `from X import y` gives `X.y`), skipping
    `TYPE_CHECKING` blocks."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in _run_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(package, node.level, node.module)
            yield from (f"{base}.{alias.name}" for alias in node.names)


def _run_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node but those only a type checker reaches."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _absolute(package: str, level: int, module: str | None) -> str:
    if not level:
        return module or ""
    parts = package.split(".")
    base = parts[: len(parts) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (a name that is not a module counts as its
    nearest enclosing module: `llm_magic.notebook.NotebookError` is `llm_magic.notebook`)."""
    mods = modules(root)
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for module, path in mods.items():
        for name in imported_names(module, path):
            while name and name not in mods:
                name = name.rpartition(".")[0]
            if name and name != module:
                edges[module].add(name)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def borrowed_imports(root: Path = ROOT, dirs: tuple[str, ...] = (PACKAGE,)) -> list[str]:
    """`from M import name` in the files under `dirs` where module M imports `name` itself and
    neither defines it nor lists it in its `__all__`: a name reached through a module that does
    not own it. A package's `__init__` is a public surface and may re-export."""
    mods = modules(root)
    borrowed = {m: _borrowed_names(p) for m, p in mods.items() if p.name != "__init__.py"}
    found = []
    for path in sorted(p for d in dirs for p in (root / d).rglob("*.py")):
        package = ".".join(path.relative_to(root).parts[:-1])  # its own, for an `__init__`
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = _absolute(package, node.level, node.module)
                found += [
                    f"{path.relative_to(root)}:{node.lineno}: {a.name} from {base}"
                    for a in node.names
                    if a.name in borrowed.get(base, ())
                ]
    return found


def _borrowed_names(path: Path) -> set[str]:
    """The names a module imports at its top level (in `if`/`try` blocks too) but neither
    defines nor lists in `__all__`."""
    own: set[str] = set()
    imported: set[str] = set()
    stack = list(ast.parse(path.read_text()).body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If | ast.Try):
            stack += [n for n in ast.iter_child_nodes(node) if isinstance(n, ast.stmt)]
            stack += [n for h in getattr(node, "handlers", []) for n in h.body]
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            own.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
            own |= names
            if "__all__" in names and node.value is not None:
                own.update(ast.literal_eval(node.value))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            imported.update((a.asname or a.name).split(".")[0] for a in node.names)
    return imported - own
