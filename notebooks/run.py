"""Execute a notebook end to end in a real kernel and save the executed copy.

    python notebooks/run.py notebooks/quickstart.ipynb      # -> notebooks/quickstart.executed.ipynb

The model is whatever LLM_MAGIC_MODEL names; without it and without provider keys, the
embedded local model (Gemma 3 270M, started on demand) runs the chain offline. The summary at
the end counts the tool calls recorded in the saved timelines.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    args = parser.parse_args()
    output = args.output or args.notebook.with_suffix(".executed.ipynb")
    nb = nbformat.read(args.notebook, as_version=4)
    started = time.monotonic()
    client = NotebookClient(
        nb,
        timeout=args.timeout,
        kernel_name="python3",
        # without saved widget state, GitHub/nbviewer/nbconvert show the timeline's static HTML
        store_widget_state=False,
        resources={"metadata": {"path": str(args.notebook.parent)}},
    )
    # over IPC (Unix sockets in a private directory): a local kernel needs no TCP port, and
    # ipykernel then has no reason to warn that its TCP traffic is not encrypted
    client.km = client.create_kernel_manager()
    with tempfile.TemporaryDirectory(prefix="llm-magic-kernel-") as sockets:
        if sys.platform != "win32":
            client.km.transport = "ipc"
            client.km.ip = str(Path(sockets) / "kernel")  # absolute: the kernel runs elsewhere
        try:
            client.execute()
        finally:
            nbformat.write(nb, output)
    html = " ".join(
        str(out.get("data", {}).get("text/html", ""))
        for cell in nb.cells
        for out in cell.get("outputs", [])
    )
    calls = len(re.findall(r'<details class="llm-call"', html))
    print(f"executed {args.notebook} in {time.monotonic() - started:.1f} s -> {output}")
    print(f"tool calls shown in the saved timelines: {calls}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
