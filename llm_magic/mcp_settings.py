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
from typing import Any

from .mcp_config import redact_url, scrub, url_secrets
from .mcp_results import MCPError

# What a server asks the user during a call (MCP elicitation; on 2026-07-28 an
# `InputRequiredResult` the SDK answers by retrying): (server, message, schema) -> the answer's
# fields, or None to decline. The default declines, so a call never waits on nobody.
AskUser = Callable[[str, str, dict[str, Any]], "Awaitable[dict[str, Any] | None] | None"]


class MCPServerSettings:
    """How to start or reach one MCP server, and the rules its tools run under."""

    def __init__(
        self,
        name: str,
        *,
        command: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        url: str | None = None,
        headers: Mapping[str, str] | None = None,
        approve: bool | Collection[str] = False,
        timeout: float | None = None,
        startup_timeout: float = 30.0,
        tools: Collection[str] | None = None,
        optional: bool = False,
        ask: AskUser | None = None,
    ) -> None:
        if (command is None) == (url is None):
            raise MCPError("an MCP server needs either a command (stdio) or a url (HTTP)")
        if command is not None and not list(command):
            raise MCPError(f"MCP server {name!r}: the command is empty")
        self.name = name
        self.command = list(command) if command is not None else None
        self._env = dict(env or {})  # may hold a token: never shown, only its names
        self.cwd = cwd
        self._url = url  # may hold `?api_key=...`: shown through `where` only, redacted
        self._headers = dict(headers or {})  # may hold a token: never shown
        self.approve = approve
        self.timeout = timeout
        self.startup_timeout = startup_timeout
        self.only = sorted(tools) if tools is not None else None  # a subset of its tools
        self.optional = optional  # a run goes on without it when it cannot start
        self.ask = ask

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
