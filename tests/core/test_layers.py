"""The core does not import the notebook stack (IPython, ipywidgets)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CORE = [
    "llm_magic",
    "llm_magic.chain",
    "llm_magic.tools",
    "llm_magic.schema",
    "llm_magic.docstrings",
    "llm_magic.events",
    "llm_magic.messages",
    "llm_magic.models",
    "llm_magic._http",
    "llm_magic._sse",
    "llm_magic.errors",
    "llm_magic._loop",
    "llm_magic.registry",
    "llm_magic.providers.openai",
]

PROBE = """
import importlib, json, sys
for name in {modules!r}:
    importlib.import_module(name)
model = __import__("llm_magic").get_async_model("openai-chat:x", base_url="http://127.0.0.1:9", api_key="k")
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("IPython", "ipywidgets",
      "ipykernel", "traitlets", "matplotlib", "pandas"))))
"""


def test_core_imports_no_notebook_stack() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(modules=CORE)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


NOTEBOOK_STACK = ("IPython", "ipywidgets", "ipykernel", "anywidget", "traitlets")


def test_no_core_module_imports_the_notebook_stack_even_in_a_function() -> None:
    """What the probe above cannot see: an import inside a function runs only when called.
    Only `%load_ext` (the package's `load_ipython_extension`) reaches the notebook layer."""
    from tests.import_graph import PACKAGE, imported_names, modules

    wrong = []
    for module, path in modules().items():
        if module.startswith(f"{PACKAGE}.notebook"):
            continue
        for name in imported_names(module, path):
            top = name.split(".")[0]
            to_notebook = name.startswith(f"{PACKAGE}.notebook")
            if top in NOTEBOOK_STACK or (to_notebook and module != PACKAGE):
                wrong.append(f"{module} imports {name}")
    assert wrong == []


def test_the_core_reaches_the_notebook_only_to_load_it() -> None:
    """The package `__init__` imports the notebook layer for `%load_ext` / `%unload_ext`
    only: nothing else of the notebook, so `import llm_magic` stays light."""
    from tests.import_graph import PACKAGE, graph

    reached = {m for m in graph()[PACKAGE] if m.startswith(f"{PACKAGE}.notebook")}
    assert reached == {f"{PACKAGE}.notebook.magics"}
