"""`%llm_mcp`: declare MCP servers once per notebook; `%%llm_chain --mcp NAME` uses their tools.

Servers live in the core registry (`llm_magic.mcp_registry.servers`), so `llm_magic.mcp(...)`
from Python and `%llm_mcp add` name the same servers. Nothing starts here: a server starts on
its first use by a chain, and its session is shared by every later cell.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from typing import Any

from .errors import NotebookError, one_line

USAGE = """\
%llm_mcp                                  list the MCP servers, their state and their tools
%llm_mcp add NAME [options] -- COMMAND ARGS...   a server run as a command (stdio)
%llm_mcp add NAME [options] https://host/mcp     a server over streamable HTTP
%llm_mcp load FILE                        the servers of an mcpServers JSON file (Claude Desktop,
                                          Cursor; VS Code's "servers" too)
%llm_mcp remove NAME                      stop the server and forget it
%llm_mcp restart NAME                     stop it; the next chain starts it afresh

options of add:
  --approve              ask before any of its tools runs (or --approve tool1,tool2)
  --tools a,b            offer only these of its tools
  --timeout SECONDS      limit of each call
  --startup-timeout S    limit of its start (30 s)
  --cwd DIR              working directory of a stdio server
  --optional             a run goes on without it when it cannot start
  --env KEY=VALUE        environment of a stdio server (repeat it)
  --header KEY=VALUE     HTTP header, e.g. Authorization=Bearer ... (repeat it)

Then: %%llm_chain --mcp NAME[,NAME]   (tools are named NAME_tool)"""


def llm_mcp(line: str = "") -> None:
    """Declare, list and stop MCP servers (see `%llm_mcp help`)."""
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise NotebookError(f"%llm_mcp: {exc}") from None
    if not words:
        print(report())
        return
    action, rest = words[0], words[1:]
    if action in ("help", "-h", "--help"):
        print(USAGE)
    elif action == "add":
        server = _add(rest)
        print(f"MCP server {server.name!r} added ({server.where}); it starts on first use.")
    elif action == "load":
        _load(rest)
    elif action in ("remove", "restart"):
        _stop(action, rest)
    else:
        raise NotebookError(f"%llm_mcp: unknown action {action!r}\n{USAGE}")


def _registry() -> Any:
    try:
        from .. import mcp_registry

        mcp_registry.require_sdk()
    except Exception as exc:
        raise one_line(exc) from None
    return mcp_registry


def _add(words: list[str]) -> Any:
    if not words or words[0].startswith("-"):
        raise NotebookError("%llm_mcp add NAME -- COMMAND ARGS...  or  %llm_mcp add NAME URL")
    name, words = words[0], words[1:]
    options: dict[str, Any] = {"env": {}, "headers": {}}
    target: Any = None
    while words:
        word = words.pop(0)
        if word == "--":
            target = words
            break
        if word == "--approve":
            names = (
                words.pop(0)
                if words and not words[0].startswith("-") and "://" not in words[0]
                else None
            )
            options["approve"] = True if names is None else _names(names)
        elif word == "--optional":
            options["optional"] = True
        elif word == "--tools" and words:
            options["tools"] = _names(words.pop(0))
        elif word == "--cwd" and words:
            options["cwd"] = words.pop(0)
        elif word in ("--timeout", "--startup-timeout", "--env", "--header") and words:
            _option(options, word, words.pop(0))
        elif "://" in word and target is None:
            target = word
        else:
            raise NotebookError(f"%llm_mcp add: unexpected {word!r}\n{USAGE}")
    if not target:
        raise NotebookError("%llm_mcp add: give the command after -- or the server's URL")
    try:
        return _registry().mcp(target, name=name, **options)
    except Exception as exc:
        raise one_line(exc) from None


def _option(options: dict[str, Any], flag: str, value: str) -> None:
    if flag in ("--timeout", "--startup-timeout"):
        try:
            options[flag[2:].replace("-", "_")] = float(value)
        except ValueError:
            raise NotebookError(f"%llm_mcp add: {flag} takes seconds, not {value!r}") from None
        return
    key, sep, val = value.partition("=")
    if not sep or not key:
        raise NotebookError(f"%llm_mcp add: {flag} takes KEY=VALUE, not {value!r}")
    options["env" if flag == "--env" else "headers"][key] = val


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def _load(words: list[str]) -> None:
    if len(words) != 1:
        raise NotebookError("%llm_mcp load FILE  (a JSON file with an mcpServers object)")
    try:
        loaded = _registry().from_config(words[0])
    except Exception as exc:
        raise one_line(exc) from None
    names = ", ".join(s.name for s in loaded) or "none"
    print(f"MCP servers loaded from {words[0]}: {names}; each starts on first use.")


def _stop(action: str, words: list[str]) -> None:
    registry = _registry()
    if len(words) != 1:
        raise NotebookError(f"%llm_mcp {action} NAME")
    server = _lookup(words[0])
    if action == "remove":
        server.close()
        registry.servers.pop(server.name, None)
        print(f"MCP server {server.name!r} stopped and removed.")
    else:
        from ..mcp_host import on_host_sync

        on_host_sync(server.restart())
        print(f"MCP server {server.name!r} stopped; the next chain starts it afresh.")


def _lookup(name: str) -> Any:
    registry = _registry()
    server = registry.servers.get(name)
    if server is None:
        from .cell_options import close_names

        close = close_names(name, list(registry.servers))
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        known = ", ".join(registry.servers) or "none yet (%llm_mcp add NAME ...)"
        raise NotebookError(f"no MCP server named {name!r}{hint} The servers: {known}")
    return server


def named_servers(names: Iterable[Any] | str) -> list[Any]:
    """Servers for `--mcp a,b` (names) or `mcp=[...]` (names or servers)."""
    items = _names(names) if isinstance(names, str) else list(names)
    return [_lookup(item) if isinstance(item, str) else item for item in items]


def report() -> str:
    """What `%llm_mcp` prints: each server, its state, and its tools once it has started."""
    registry = _registry()
    if not registry.servers:
        return "no MCP servers yet\n" + USAGE
    lines = []
    for server in registry.servers.values():
        approve = server.approve
        asks = "all tools" if approve is True else ", ".join(approve) if approve else "no"
        lines.append(f"{server.name}  [{server.state}]  {server.transport}: {server.where}")
        lines.append(f"  approval: {asks}; restarts: {server.restarts}")
        if server.only is not None:
            lines.append(f"  offers only: {', '.join(server.only)}")
        if server.noise:
            lines.append(
                f"  {server.noise} line(s) on its stdout were not MCP messages (ignored; "
                "LLM_MAGIC_MCP_DEBUG=1 shows the SDK's detail)"
            )
        if server.asked:
            lines.append(f"  it asked: {server.asked[-1][:80]} (declined unless answered)")
        if server.error and server.state != "ready":
            lines.extend("  " + part for part in server.error.splitlines())
        tools = server.tools()
        if tools:
            for tool in tools:
                lines.append(f"  - {tool.name}: {tool.description.splitlines()[0][:80]}")
        elif server.state == "not started":
            lines.append("  (tools listed once it starts: on first use by a chain)")
    return "\n".join(lines)


def unload() -> None:
    """`%unload_ext`: stop every server that runs (their declarations stay for a reload)."""
    try:
        from ..mcp_session import close_all
    except ImportError:
        return
    close_all(final=False)
