"""What an MCP server is, apart from its session: how to reach it and what its tools may do.

A command line (stdio) or a URL (streamable HTTP), with the environment, headers and working
folder it gets; which of its tools ask for approval, time limits, a subset of its tools, whether
a run may go on without it, and who answers its questions. The environment, headers and URL
query may hold tokens: they go to the server and nowhere else (`where` names them, `scrub`
removes their values from any text shown). `MCPServer` (mcp_servers) is these settings plus a
session, as httpx's `Client` is its `BaseClient` settings plus a transport.
"""

from __future__ import annotations

import shlex
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import Any, TypedDict, Unpack

from .mcp_config import redact_url, scrub, url_secrets
from .mcp_results import MCPError

# What a server asks the user during a call (MCP elicitation; on 2026-07-28 an
# `InputRequiredResult` the SDK answers by retrying): (server, message, schema) -> the answer's
# fields, or None to decline. The default declines, so a call never waits on nobody.
AskUser = Callable[[str, str, dict[str, Any]], "Awaitable[dict[str, Any] | None] | None"]


class MCPServerKwargs(TypedDict, total=False):
    """A server's settings as keyword arguments, declared once for `MCPServerSettings(name,
    **settings)` and `llm_magic.mcp(target, **settings)` (PEP 692, as `ChainKwargs` for runs):
    a misspelt or mistyped setting fails `mypy --strict` in user code."""

    command: Sequence[str] | None  # the argv of a stdio server
    env: Mapping[str, str] | None  # its environment (values may be secrets)
    cwd: str | None  # its working folder
    url: str | None  # a streamable HTTP server's URL
    headers: Mapping[str, str] | None  # sent with each HTTP request (values may be secrets)
    approve: bool | Collection[str]  # True, or some tool names: ask before they run (False)
    timeout: float | None  # seconds per call (None: no limit)
    startup_timeout: float  # seconds to start and list its tools (STARTUP_TIMEOUT)
    tools: Collection[str] | None  # offer only these of its tools (None: all)
    optional: bool  # a run goes on without it when it cannot start (False)
    ask: AskUser | None  # answers what it asks the user mid-call (None: declined)


STARTUP_TIMEOUT = 30.0
SETTING_NAMES = frozenset(MCPServerKwargs.__annotations__)


class MCPServerSettings:
    """How to start or reach one MCP server, and the rules its tools run under."""

    def __init__(self, name: str, **settings: Unpack[MCPServerKwargs]) -> None:
        unknown = sorted(set(settings) - SETTING_NAMES)
        if unknown:
            raise TypeError(
                f"MCP server {name!r}: unknown setting {', '.join(unknown)}; the settings: "
                + ", ".join(MCPServerKwargs.__annotations__)
            )
        command, url = settings.get("command"), settings.get("url")
        if (command is None) == (url is None):
            raise MCPError("an MCP server needs either a command (stdio) or a url (HTTP)")
        if command is not None and not list(command):
            raise MCPError(f"MCP server {name!r}: the command is empty")
        tools = settings.get("tools")
        self.name = name
        self.command = list(command) if command is not None else None
        self._env = dict(settings.get("env") or {})  # may hold a token: only its names shown
        self.cwd = settings.get("cwd")
        self._url = url  # may hold `?api_key=...`: shown through `where` only, redacted
        self._headers = dict(settings.get("headers") or {})  # may hold a token: never shown
        self.approve = settings.get("approve", False)
        self.timeout = settings.get("timeout")
        self.startup_timeout = settings.get("startup_timeout", STARTUP_TIMEOUT)
        self.only = sorted(tools) if tools is not None else None  # a subset of its tools
        self.optional = settings.get("optional", False)
        self.ask = settings.get("ask")

    @property
    def env(self) -> dict[str, str]:
        """The environment given to a stdio server (a copy: values may be secrets)."""
        return dict(self._env)

    @property
    def url(self) -> str | None:
        return self._url

    @property
    def transport(self) -> str:
        return "stdio" if self.command is not None else "http"

    @property
    def where(self) -> str:
        """The command line or URL, for people: no header, environment or query value shown."""
        if self.command is not None:
            names = f" (env: {', '.join(self._env)})" if self._env else ""
            return shlex.join(self.command) + names
        names = f" (headers: {', '.join(self._headers)})" if self._headers else ""
        return f"{redact_url(self._url or '')}{names}"

    def same_as(self, other: MCPServerSettings) -> bool:
        keys = ("command", "_env", "cwd", "_url", "_headers", "approve", "timeout", "only")
        return all(getattr(self, k) == getattr(other, k) for k in keys)

    def needs_approval(self, tool: str) -> bool:
        approve = self.approve
        return approve is True or (not isinstance(approve, bool) and tool in approve)

    def secrets(self) -> list[str]:
        """The values of its headers, environment and URL query that may be secrets: what
        errors and the run log must never show."""
        tokens = [v for v in self._env.values() if len(v) >= 8]  # not `1` or `UTC`
        secrets = [*self._headers.values(), *tokens, *url_secrets(self._url or "")]
        for value in self._headers.values():  # `Bearer TOKEN`: the token alone too
            secrets.extend(value.split()[1:])
        return secrets

    def scrub(self, text: str) -> str:
        """`text` without any of its `secrets()` (errors quote URLs and servers echo their
        environment on stderr)."""
        return scrub(text, self.secrets())
