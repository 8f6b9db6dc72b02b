"""Named MCP servers: `llm_magic.mcp(...)`, the `mcpServers` JSON format, one server per name.

The registry is what makes "one session per server per kernel" hold for users: re-running a
cell that calls `llm_magic.mcp(...)` with the same settings gets the same server (and session)
back, and `%llm_mcp` / `--mcp NAME` find servers here by name. A server never replaces another
silently: a default name that is taken gets a suffix, an explicit one says what it replaced.
"""

from __future__ import annotations

import os
import re
import shlex
import warnings
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, Unpack
from urllib.parse import urlparse

from .mcp_config import Expander, Prompt, read_env_file, split_args
from .mcp_host import require_sdk
from .mcp_results import MCPError
from .mcp_servers import MCPServer
from .mcp_session import State
from .mcp_settings import MCPServerKwargs
from .tools import Tool

__all__ = ["from_config", "mcp", "named_tools", "require_sdk", "servers"]

servers: dict[str, MCPServer] = {}  # by name: one session per server per kernel

# Commands that run a package: the server's name is the package's, not the launcher's.
LAUNCHERS = {"npx", "uvx", "pipx", "bunx", "pnpx", "pnpm", "npm", "uv", "docker", "podman", "deno"}
LAUNCHER_WORDS = {"run", "exec", "dlx", "x", "tool", "-y", "--yes", "-i", "--rm", "-q"}
NAME_AFFIXES = ("mcp-server-", "server-", "mcp-", "-mcp-server", "-server", "-mcp")
GENERIC_HOSTS = {"mcp", "api", "www", "app", "server", "localhost"}


def mcp(
    target: str | Sequence[str] | None = None,
    *,
    name: str | None = None,
    **settings: Unpack[MCPServerKwargs],
) -> MCPServer:
    """An MCP server for `tools=[...]`: a command line (stdio) or an `http(s)://` URL.

    `target` is a URL, a command line string, or an argv list. `name` prefixes its tools
    (`name_tool`); by default the package's, script's or host's name. The other keywords are
    its settings (`MCPServerKwargs`): `env`, `cwd` and `headers` go to the server;
    `approve=True` (or some of its tool names) asks before its tools run. `timeout` bounds
    each call (seconds); `startup_timeout` its start (30 s). `tools` offers only those of its
    tools. `optional=True` lets a run go on without it when it cannot start. `ask(server,
    message, schema)` answers what the server asks the user mid-call (a dict of the schema's
    fields, or None to decline; without it, llm_magic declines and the model is told what was
    asked). The same name and settings give back the same server, so re-running a cell reuses
    its session; other settings under a name replace the old server (with a warning).
    """
    return register(build(target, name=name, **settings), explicit=name is not None)


def build(
    target: str | Sequence[str] | None = None,
    *,
    name: str | None = None,
    **settings: Unpack[MCPServerKwargs],
) -> MCPServer:
    """An `MCPServer` from `mcp()`'s arguments, not registered yet."""
    require_sdk()
    if isinstance(target, str) and urlparse(target).scheme in ("http", "https"):
        settings["url"] = target
    elif isinstance(target, str):
        settings["command"] = shlex.split(target)
    elif target is not None:
        settings["command"] = list(target)
    command, url = settings.get("command"), settings.get("url")
    return MCPServer(name or default_name(command, url), **settings)


def register(server: MCPServer, explicit: bool = True) -> MCPServer:
    """Keep `server` under its name, or give back the equal one already there.

    A default name that is taken by another server gets a suffix (`time_2`); an explicit name
    replaces the old server, closed, with a warning that says so.
    """
    old = servers.get(server.name)
    if old is not None and old.state != "closed" and old.same_as(server):
        return old
    if old is not None and old.state != "closed" and not explicit:
        for suffix in range(2, 100):
            candidate = f"{server.name}_{suffix}"
            other = servers.get(candidate)
            if other is None or other.state == "closed" or other.same_as(server):
                server.name = candidate
                return register(server, explicit=True)
    if old is not None:
        if old.state != "closed":
            warnings.warn(
                f"MCP server {server.name!r} replaces the one of that name ({old.where}), "
                "which is closed now",
                stacklevel=4,
            )
        old.close()
    servers[server.name] = server
    return server


def named_tools(specs: Sequence[str]) -> list[Any]:
    """Tool sources for `"server:tool"` and `"server:*"` (all its tools), in order of servers."""
    wanted: dict[str, set[str] | None] = {}
    for spec in specs:
        name, _, tool = spec.partition(":")
        if name not in servers:
            known = ", ".join(servers) or "none yet (llm_magic.mcp(...) or %llm_mcp add)"
            raise MCPError(f"{spec!r}: no MCP server named {name!r}; the servers: {known}")
        if tool in ("*", ""):
            wanted[name] = None
        elif name not in wanted or wanted[name] is not None:
            wanted[name] = {*(wanted.get(name) or set()), tool}
    return [
        servers[name] if names is None else ServerTools(servers[name], names)
        for name, names in wanted.items()
    ]


class ServerTools:
    """Some of one server's tools (`"server:tool"` in `tools=[...]` or `--tools`): a tool
    source of its own, sharing the server's session."""

    def __init__(self, server: MCPServer, names: Collection[str]) -> None:
        self.server, self.names = server, sorted(set(names))

    def __repr__(self) -> str:
        return f"<MCP tools {', '.join(self.names)} of {self.server.name!r}>"

    @property
    def name(self) -> str:
        return self.server.name

    @property
    def state(self) -> State:
        return self.server.state

    @property
    def optional(self) -> bool:
        return self.server.optional

    async def list_tools(self) -> list[Tool]:
        await self.server.list_tools()
        self.server.check_names(self.names)
        return self.server.tools(self.names)


def from_config(
    source: str | os.PathLike[str] | Mapping[str, Any], prompt: Prompt | None = None
) -> list[MCPServer]:
    """Servers from the `mcpServers` JSON of Claude Desktop, Cursor and Claude Code (or VS
    Code's `servers`), their placeholders expanded (see mcp_config).

    Each entry is `{"command": ..., "args": [...], "env": {...}, "envFile": ..., "cwd": ...}`
    (stdio) or `{"url": ..., "headers": {...}}` (streamable HTTP; `"type": "sse"` is not
    supported); `"disabled": true` entries are skipped. A path is read as JSON. All or nothing:
    one bad entry registers none. `prompt(id, description, password)` answers `${input:id}`.
    """
    import json

    base: Path | None = None
    if isinstance(source, Mapping):
        data: Any = source
    else:
        base = Path(os.fspath(source)).expanduser().resolve().parent
        try:
            with open(source, encoding="utf-8") as fh:
                data = json.load(fh)
        except (OSError, ValueError) as exc:
            raise MCPError(f"cannot read MCP servers from {os.fspath(source)!r}: {exc}") from None
    entries = data.get("mcpServers", data.get("servers")) if isinstance(data, Mapping) else None
    if not isinstance(entries, Mapping):
        raise MCPError('no "mcpServers" (or "servers") object in that configuration')
    expander = Expander(data.get("inputs"), prompt)
    built = [
        _from_entry(str(name), entry, expander, base)
        for name, entry in entries.items()
        if not (isinstance(entry, Mapping) and entry.get("disabled"))
    ]
    return [register(server) for server in built]


def _from_entry(name: str, entry: Any, expander: Expander, base: Path | None) -> MCPServer:
    if not isinstance(entry, Mapping):
        raise MCPError(f"MCP server {name!r}: its entry must be an object")
    kind = entry.get("type") or ("stdio" if "command" in entry else "http")
    extra = read_env_file(entry["envFile"], base, name) if entry.get("envFile") else {}

    def expand(value: Any, where: str) -> str:
        return expander.expand(value, name, where, extra)

    def expand_map(key: str) -> dict[str, str]:
        given = entry.get(key) or {}
        if not isinstance(given, Mapping):
            raise MCPError(f"MCP server {name!r}: its {key} must be an object")
        return {str(k): expand(v, f"{key} ({k})") for k, v in given.items()}

    if kind in ("http", "streamable-http", "streamableHttp") and "url" in entry:
        return build(expand(entry["url"], "url"), name=name, headers=expand_map("headers"))
    if kind == "stdio" and "command" in entry:
        command = [expand(entry["command"], "command")]
        if "args" not in entry and " " in command[0] and not os.path.exists(command[0]):
            command = shlex.split(command[0])  # "command": "uvx mcp-server-time"
        args = [expand(a, "args") for a in split_args(entry.get("args"), name)]
        env = {**extra, **expand_map("env")}
        cwd = expand(entry["cwd"], "cwd") if entry.get("cwd") else None
        return build([*command, *args], name=name, env=env, cwd=cwd)
    if kind == "sse" or str(entry.get("url", "")).rstrip("/").endswith("/sse"):
        raise MCPError(
            f"MCP server {name!r}: unsupported entry (type 'sse', the old HTTP+SSE transport); "
            "llm_magic speaks streamable HTTP: most servers serve it at .../mcp "
            '(give {"type": "http", "url": ".../mcp"})'
        )
    raise MCPError(
        f"MCP server {name!r}: unsupported entry (type {kind!r}); use command/args/env for "
        "stdio or url/headers for streamable HTTP"
    )


def default_name(command: Sequence[str] | None, url: str | None) -> str:
    """A server's name from its package, script or host: `npx -y @scope/server-filesystem /d`
    is `filesystem`, `uvx mcp-server-time --local-timezone UTC` is `time`, `python
    tools/weather.py` is `weather`, `https://mcp.deepwiki.com/mcp` is `deepwiki`."""
    base = _host_name(url) if url is not None else _command_name(list(command or []))
    for affix in (*NAME_AFFIXES, *(a.replace("-", "_") for a in NAME_AFFIXES)):
        if base.startswith(affix) and len(base) > len(affix):
            base = base[len(affix) :]
        elif base.endswith(affix) and len(base) > len(affix):
            base = base[: -len(affix)]
    return re.sub(r"[^A-Za-z0-9_-]", "_", base)[:30] or "mcp"


def _command_name(command: list[str]) -> str:
    if not command:
        return "mcp"
    program = os.path.basename(command[0])
    rest = command[1:]
    if program.startswith("python") or program in ("node", "deno", "bun"):
        if rest[:1] == ["-m"] and len(rest) > 1:
            return rest[1].split(".")[0]
        scripts = [a for a in rest if not a.startswith("-")]
        return os.path.splitext(os.path.basename(scripts[0]))[0] if scripts else program
    if program in LAUNCHERS:
        words = [a for a in rest if not a.startswith("-") and a not in LAUNCHER_WORDS]
        if words:
            package = words[0].rsplit("/", 1)[-1]  # @scope/name, ghcr.io/org/name
            return re.split(r"(?<=.)[@:=]", package)[0]  # name@1.2, image:tag, pkg==1
    return os.path.splitext(program)[0]


def _host_name(url: str) -> str:
    parts = urlparse(url)
    host = parts.hostname or "mcp"
    if host.replace(".", "").isdigit() or host in ("localhost", "::1"):
        return f"local_{parts.port}" if parts.port else "local"
    labels = [x for x in host.split(".")[:-1] if x not in GENERIC_HOSTS] or host.split(".")
    return labels[-1]
