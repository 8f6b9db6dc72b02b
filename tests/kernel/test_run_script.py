"""notebooks/run.py, the README's first command, in a real kernel: it runs the kernel over IPC,
so the newcomer sees no "Kernel is running over TCP without encryption" warning."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tests.kernel_harness import kernel_env

pytestmark = pytest.mark.kernel
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(sys.platform == "win32", reason="IPC transport: Unix sockets")
def test_the_runner_starts_its_kernel_over_ipc_and_warns_of_nothing(tmp_path: Path) -> None:
    cells = [
        "from ipykernel import get_connection_info",
        "print(get_connection_info(unpack=True)['transport'])",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    path = tmp_path / "tiny.ipynb"
    nbformat.write(nb, path)
    done = subprocess.run(
        [sys.executable, str(ROOT / "notebooks" / "run.py"), str(path)],
        capture_output=True,
        text=True,
        timeout=180,
        env=kernel_env({}),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "without encryption" not in done.stderr + done.stdout, done.stderr
    assert f"executed {path}" in done.stdout
    executed = nbformat.read(tmp_path / "tiny.executed.ipynb", as_version=4)
    assert executed.cells[1].outputs[0]["text"] == "ipc\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.executed.ipynb", "tiny.ipynb"]
