"""A real MCP server (the official SDK's `MCPServer`) with the tools the MCP tests need.

    python tests/mcp_servers/demo.py stdio
    python tests/mcp_servers/demo.py http PORT      # streamable HTTP on 127.0.0.1:PORT/mcp

On mcp 2 (`mcp.server.mcpserver.MCPServer`) it is a 2026-07-28 server (answers `server/discover`).
Run by the Python of a venv with mcp 1.x (tests/mcp_servers/envs.py), the same tools run on
`mcp.server.fastmcp.FastMCP`: a legacy server (the `initialize` handshake only), so one file gives
both kinds of server.

What the SDK does with each tool (mcp 2.3 source, read 2026-12-07):
- a `ToolError` raised by a tool becomes a result with `isError: true` and its text; any other
  exception only says "Error executing tool NAME" (mcp/server/mcpserver/exceptions.py, ToolError
  and UnexpectedToolError);
- `notifications/cancelled` for a request in flight cancels that request's handler
  (docs/migration.md, "Cancellation now reaches the server"), which `slow` records in the file
  named by MCP_TEST_MARKER;
- a return annotated `dict[str, float]` is structured content plus its JSON as text
  (mcp/server/mcpserver/utilities/func_metadata.py: `dict[str, T]`);
- `confirm` asks the client a question through a `Resolve` parameter: on 2026-07-28 the SDK
  returns `InputRequiredResult` and the client answers by retrying (docs/migration.md,
  "Server-initiated sampling, elicitation, and roots raise NoBackChannelError").

The process carries the marker `llm-magic-mcp-test` in its argv so tests can find leftovers.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from typing import Any

import anyio

try:
    from mcp.server.mcpserver import Context, Image
    from mcp.server.mcpserver import MCPServer as Server
    from mcp.server.mcpserver.exceptions import ToolError

    LEGACY = False
except ImportError:  # mcp 1.x: the legacy kind of server
    from mcp.server.fastmcp import (
        Context,  # type: ignore[no-redef]
        Image,  # type: ignore[no-redef]
    )
    from mcp.server.fastmcp import FastMCP as Server  # type: ignore[no-redef]
    from mcp.server.fastmcp.exceptions import ToolError  # type: ignore[no-redef]

    LEGACY = True

MARKER_ENV = "MCP_TEST_MARKER"
MODE = sys.argv[1] if len(sys.argv) > 1 else "stdio"
PORT = int(sys.argv[2]) if MODE == "http" else 8000
server: Any = Server("demo", host="127.0.0.1", port=PORT) if LEGACY else Server("demo")

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
    raise ToolError(f"failed on purpose: {message}")


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


@server.tool(name="read.v2")
def read_dotted() -> str:
    """A tool whose name maps to the same wire name as `read_v2` (dots are not allowed there)."""
    return "dotted"


@server.tool(name="read_v2")
def read_plain() -> str:
    """The other tool of that wire name."""
    return "plain"


@server.tool()
async def grow(ctx: Context) -> str:
    """Adds the tool `extra` and announces it (`notifications/tools/list_changed`: on a
    2026-07-28 connection through `subscriptions/listen`, before it on the session)."""
    server.add_tool(lambda: "extra here", name="extra", description="Added by grow.")
    if LEGACY:
        await ctx.session.send_tool_list_changed()
    else:
        await ctx.notify_tools_changed()
    return "grown"


@server.tool()
def env_digest(name: str) -> str:
    """The SHA-256 of an environment variable's value: proves what the server got without
    showing it."""
    return hashlib.sha256(os.environ.get(name, "").encode()).hexdigest()


@server.tool()
def protocol() -> str:
    """Which SDK serves this process: 'legacy' (mcp 1.x) or 'current' (mcp 2)."""
    return "legacy" if LEGACY else "current"


if not LEGACY:
    from typing import Annotated

    from mcp.server.mcpserver import Elicit, Resolve
    from pydantic import BaseModel

    class Confirmation(BaseModel):
        confirm: bool

    async def _ask(action: str) -> Elicit[Confirmation]:
        return Elicit(f"Really {action}?", Confirmation)

    @server.tool()
    async def confirm(action: str, answer: Annotated[Confirmation, Resolve(_ask)]) -> str:
        """Asks the user to confirm an action, then says what they answered."""
        return f"{action}: {'yes' if answer.confirm else 'no'}"


def main() -> None:
    time.sleep(float(os.environ.get("DEMO_START_DELAY", "0")))  # a slow start, before serving
    _mark(f"started {os.getpid()} {MODE}")
    if MODE == "noisy":  # non-JSON lines on stdout before serving, like a chatty server
        for i in range(3):
            print(f"demo server: not JSON, line {i}", flush=True)
    if MODE != "http":
        server.run("stdio")
    elif LEGACY:
        server.run("streamable-http")
    else:
        server.run("streamable-http", host="127.0.0.1", port=PORT)


if __name__ == "__main__":
    main()
