"""Separate environments for the real third-party MCP servers the tests run.

Real servers pin their own SDK (mcp-server-time needs mcp>=2.3; a legacy server needs mcp<2), so
each lives in its own venv, never in llm_magic's environment: the way the README tells users to
run servers (uvx, pipx, npx). The npm servers are installed once into a local node_modules so a
test does not wait on a download.

    python tests/mcp_servers/envs.py          # create what is missing (.ci/run does this)

Tests find them here and skip, naming the command above, when one is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(
    os.environ.get(
        "LLM_MAGIC_MCP_TEST_ENVS", Path(__file__).resolve().parents[2] / ".mcp-test-envs"
    )
)
SETUP = f"{sys.executable} tests/mcp_servers/envs.py"

# name -> pip requirements of its own venv
VENVS = {
    "mcp1": ["mcp>=1.30,<2"],  # a legacy (initialize handshake) SDK, for our demo server
    "time": ["mcp-server-time>=2026.10"],  # the official time server, on mcp 2
}
NPM = [
    "@modelcontextprotocol/server-everything@2026.8.31",
    "@modelcontextprotocol/server-filesystem@2026.8.31",
]


def venv_python(name: str) -> Path | None:
    """The Python of the named venv, if it was set up."""
    python = ROOT / name / "bin" / "python"
    return python if (ROOT / name / ".ready").exists() and python.exists() else None


def venv_script(name: str, script: str) -> Path | None:
    path = ROOT / name / "bin" / script
    return path if venv_python(name) and path.exists() else None


def npm_bin(command: str) -> Path | None:
    """A command the npm packages installed (e.g. `mcp-server-everything`), if node is here."""
    path = ROOT / "node" / "node_modules" / ".bin" / command
    return path if path.exists() and shutil.which("node") else None


def setup() -> None:
    for name, requirements in VENVS.items():
        target = ROOT / name
        if venv_python(name):
            continue
        venv.create(target, with_pip=True, clear=True)
        pip = [str(target / "bin" / "python"), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, *requirements], check=True)
        (target / ".ready").touch()
    if shutil.which("npm"):
        node = ROOT / "node"
        node.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(node), *NPM], check=True
        )


if __name__ == "__main__":
    setup()
    print(f"MCP test environments ready in {ROOT}")
