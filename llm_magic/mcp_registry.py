"""Named MCP servers: `llm_magic.mcp(...)`, the `mcpServers` JSON format, one server per name.

The registry is what makes "one session per server per kernel" hold for users: re-running a
cell that calls `llm_magic.mcp(...)` with the same settings gets the same server (and session)
back, and `%llm_mcp` / `--mcp NAME` find servers here by name.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Collection, Mapping, Sequence
from typing import Any
from urllib.parse import urlparse

from .mcp_results import MCPError
from .mcp_servers import PIP_COMMAND, MCPServer

__all__ = ["from_config", "mcp", "servers"]

servers: dict[str, MCPServer] = {}  # by name: one session per server per kernel


def mcp(
    target: str | Sequence[str] | None = None,
    *,
    name: str | None = None,
    command: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    url: str | None = None,
    headers: Mapping[str, str] | None = None,
    approve: bool | Collection[str] = False,
    timeout: float | None = None,
    startup_timeout: float = 30.0,
) -> MCPServer:
    """An MCP server for `tools=[...]`: a command line (stdio) or an `http(s)://` URL.

    `target` is a URL, a command line string, or an argv list. `name` prefixes its tools
    (`name_tool`); by default the script's or host's name. `approve=True` (or some of its tool
    names) asks before its tools run. `timeout` bounds each call (seconds). The same name and
    settings give back the same server, so re-running a cell reuses its session; different
    settings under a name close the old server.
    """
    _require_sdk()
    if isinstance(target, str) and urlparse(target).scheme in ("http", "https"):
        url = target
    elif isinstance(target, str):
        command = shlex.split(target)
    elif target is not None:
        command = list(target)
    name = name or _default_name(command, url)
    server = MCPServer(
        name,
        command=command,
        env=env,
        cwd=cwd,
        url=url,
        headers=headers,
        approve=approve,
        timeout=timeout,
        startup_timeout=startup_timeout,
    )
    old = servers.get(name)
    if old is not None and old.state != "closed" and old.same_as(server):
        return old
    if old is not None:
        old.close()
    servers[name] = server
    return server


def from_config(source: str | os.PathLike[str] | Mapping[str, Any]) -> list[MCPServer]:
    """Servers from the `mcpServers` JSON of Claude Desktop and Cursor (or VS Code's `servers`).

    Each entry is `{"command": ..., "args": [...], "env": {...}}` (stdio) or
    `{"url": ..., "headers": {...}}` (streamable HTTP; `"type": "sse"` is not supported);
    `"disabled": true` entries are skipped. A path is read as JSON.
    """
    import json

    if isinstance(source, Mapping):
        data: Any = source
    else:
        try:
            with open(source, encoding="utf-8") as fh:
                data = json.load(fh)
        except (OSError, ValueError) as exc:
            raise MCPError(f"cannot read MCP servers from {os.fspath(source)!r}: {exc}") from None
    entries = data.get("mcpServers", data.get("servers")) if isinstance(data, Mapping) else None
    if not isinstance(entries, Mapping):
        raise MCPError('no "mcpServers" (or "servers") object in that configuration')
    return [
        _from_entry(str(name), entry)
        for name, entry in entries.items()
        if not (isinstance(entry, Mapping) and entry.get("disabled"))
    ]


def _from_entry(name: str, entry: Any) -> MCPServer:
    if not isinstance(entry, Mapping):
        raise MCPError(f"MCP server {name!r}: its entry must be an object")
    kind = entry.get("type") or ("stdio" if "command" in entry else "http")
    if kind in ("http", "streamable-http", "streamableHttp") and "url" in entry:
        return mcp(entry["url"], name=name, headers=entry.get("headers"))
    if kind == "stdio" and "command" in entry:
        args = entry.get("args") or []
        command = [str(entry["command"]), *(str(a) for a in args)]
        return mcp(command, name=name, env=entry.get("env"), cwd=entry.get("cwd"))
    raise MCPError(
        f"MCP server {name!r}: unsupported entry (type {kind!r}); use command/args/env for "
        "stdio or url/headers for streamable HTTP"
    )


def _default_name(command: Sequence[str] | None, url: str | None) -> str:
    if url is not None:
        base = (urlparse(url).hostname or "mcp").split(".")[0]
    else:
        parts = [p for p in (command or []) if not p.startswith("-")]
        base = os.path.splitext(os.path.basename(parts[-1] if parts else "mcp"))[0]
    return "".join(c if c.isalnum() or c in "_-" else "_" for c in base)[:30] or "mcp"


def _require_sdk() -> None:
    try:
        import mcp as _sdk  # noqa: F401
    except ImportError:
        raise MCPError(f"MCP servers need the official SDK: {PIP_COMMAND}") from None
