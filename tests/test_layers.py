"""The core does not import the notebook stack (IPython, ipywidgets)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CORE = [
    "llm_magic",
    "llm_magic.chain",
    "llm_magic.tools",
    "llm_magic.schema",
    "llm_magic.docstrings",
    "llm_magic.events",
    "llm_magic.messages",
    "llm_magic.models",
    "llm_magic.http",
    "llm_magic.sse",
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
