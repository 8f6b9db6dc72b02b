"""A real MCP server (the official SDK's FastMCP) with the tools the MCP tests need.

    python tests/mcp_servers/demo.py stdio
    python tests/mcp_servers/demo.py http PORT      # streamable HTTP on 127.0.0.1:PORT/mcp

What the SDK does with each tool (mcp 1.x source):
- an exception raised by a tool becomes a result with `isError: true` and the exception's text
  (mcp/server/lowlevel/server.py, `call_tool` handler: `except Exception as e:
  return self._make_error_result(str(e))`);
- `notifications/cancelled` for a request in flight cancels that request's handler
  (mcp/shared/session.py, `_receive_loop`: `CancelledNotification` -> `_in_flight[id].cancel()`),
  which `slow` records in the file named by MCP_TEST_MARKER;
- a return annotated `dict[str, float]` is structured content plus its JSON as text
  (mcp/server/fastmcp/utilities/func_metadata.py, `_try_create_model_and_schema`: `dict[str, T]`).

The process carries the marker `llm-magic-mcp-test` in its argv so tests can find leftovers.
"""

from __future__ import annotations

import os
import sys

import anyio
from mcp.server.fastmcp import FastMCP, Image

MARKER_ENV = "MCP_TEST_MARKER"
MODE = sys.argv[1] if len(sys.argv) > 1 else "stdio"
PORT = int(sys.argv[2]) if MODE == "http" else 8000
server = FastMCP("demo", host="127.0.0.1", port=PORT)

# a 1x1 red PNG
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c4944415478"
    "9c63f8cfc000000301010018dd8db00000000049454e44ae426082"
)


def _mark(text: str) -> None:
    path = os.environ.get(MARKER_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(text + "\n")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    _mark(f"add {a} {b}")
    return a + b


@server.tool()
def stats(values: list[float]) -> dict[str, float]:
    """Count, sum and mean of some numbers."""
    return {"count": len(values), "sum": sum(values), "mean": sum(values) / len(values)}


@server.tool()
def fail(message: str) -> str:
    """Always fails with the given message."""
    raise ValueError(f"failed on purpose: {message}")


@server.tool()
async def slow(seconds: float) -> str:
    """Sleep, then say so; records a cancellation in the marker file."""
    _mark(f"slow started {os.getpid()}")
    try:
        await anyio.sleep(seconds)
    except anyio.get_cancelled_exc_class():
        _mark("slow cancelled")
        raise
    return f"slept {seconds} s"


@server.tool()
def crash() -> str:
    """Ends the server process abruptly (a crash)."""
    print("demo server: crashing on purpose", file=sys.stderr, flush=True)
    os._exit(3)


@server.tool()
def red_pixel() -> Image:
    """A tiny PNG image."""
    return Image(data=PNG, format="png")


@server.tool()
def pid() -> int:
    """The server's process id."""
    return os.getpid()


if __name__ == "__main__":
    _mark(f"started {os.getpid()} {MODE}")
    server.run("streamable-http" if MODE == "http" else "stdio")
