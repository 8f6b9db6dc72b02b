"""The MCP server configs people copy from their editors, read as those editors read them.

Claude Desktop, Cursor, VS Code and Claude Code write `mcpServers` (VS Code: `servers`) entries
with placeholders: `${env:X}` (VS Code, Cursor), `${X}` and `${X:-default}` (Claude Code), and
VS Code's `${input:id}`, a value the user types once (its `inputs` entry says what to ask and
whether it is a password). They also give `envFile` (a dotenv file for the server's environment)
and sometimes `args` as one string. Sent as literal text, a placeholder is a 401 at first use;
so they are expanded here, before anything starts, and a missing variable is an error that names
it. Expanded values may be secrets: they reach the server's environment or headers and nothing
else (reprs, listings and errors show names only; `redact_url` hides query values).

Sources (read 2026-12-07): VS Code, "MCP configuration reference" (code.visualstudio.com/docs/
copilot/reference/mcp-configuration: `servers`, `inputs`, `envFile`, `${input:}`, `${env:}`);
Claude Code, "Environment variable expansion in .mcp.json" (docs.anthropic.com/en/docs/claude-code/
mcp: `${VAR}`, `${VAR:-default}` in command, args, env, url, headers); Cursor, "Model Context
Protocol" (docs.cursor.com/context/mcp: `${env:NAME}`, `envFile`).
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urlparse, urlunparse

from .mcp_results import MCPError

__all__ = ["Expander", "read_env_file", "redact_url", "scrub"]

# ${env:NAME}, ${input:id}, ${NAME}, ${NAME:-default}
PLACEHOLDER = re.compile(r"\$\{(?:(env|input):)?([A-Za-z_][A-Za-z0-9_.-]*)(?::-([^}]*))?\}")
SECRET_MASK = "***"

# What asks the user for an `${input:id}`: (id, description, password) -> the value.
Prompt = Callable[[str, str, bool], str]

_answers: dict[str, str] = {}  # ${input:id} answers of this process: asked once, kept in memory


def terminal_prompt(input_id: str, description: str, password: bool) -> str:
    """Ask in the terminal (or a notebook's stdin box): `getpass` for a password, never echoed."""
    question = f"{description or input_id}: "
    import getpass  # a password prompt is rare: not imported with every MCP config

    return getpass.getpass(question) if password else input(question)


class Expander:
    """Expands the placeholders of one config: environment, `envFile` values, `inputs`."""

    def __init__(
        self,
        inputs: list[Any] | None = None,
        prompt: Prompt | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.inputs = {str(i.get("id")): i for i in inputs or [] if isinstance(i, Mapping)}
        self.prompt = prompt or terminal_prompt
        self.environ = dict(os.environ if environ is None else environ)
        self.secrets: list[str] = []  # every value that came from a placeholder or an input

    def expand(self, value: Any, server: str, where: str, extra: Mapping[str, str] = {}) -> str:
        """`value` with its placeholders replaced; `where` names the field in errors."""
        if not isinstance(value, str):
            return str(value)

        def replace(match: re.Match[str]) -> str:
            kind, name, default = match.groups()
            found = self._input(name) if kind == "input" else self._variable(name, extra)
            if found is None:
                found = default
            if found is None:
                raise MCPError(
                    f"MCP server {server!r}: {match.group(0)} in its {where} is not set "
                    f"(set the environment variable {name}, or give a default: ${{{name}:-...}})"
                )
            if found:
                self.secrets.append(found)
            return found

        return PLACEHOLDER.sub(replace, value)

    def _variable(self, name: str, extra: Mapping[str, str]) -> str | None:
        if name in extra:
            return extra[name]
        if name in self.environ:
            return self.environ[name]
        return os.getcwd() if name in ("workspaceFolder", "cwd") else None

    def _input(self, input_id: str) -> str | None:
        if input_id not in _answers:
            spec = self.inputs.get(input_id, {})
            description = str(spec.get("description") or input_id)
            _answers[input_id] = self.prompt(input_id, description, bool(spec.get("password")))
        return _answers[input_id]


def read_env_file(path: str | os.PathLike[str], base: Path | None, server: str) -> dict[str, str]:
    """A dotenv file (`KEY=VALUE`, `export KEY=VALUE`, quotes, `#` comments) as a mapping."""
    full = Path(os.path.expanduser(os.fspath(path)))
    if not full.is_absolute() and base is not None:
        full = base / full
    try:
        text = full.read_text(encoding="utf-8")
    except OSError as exc:
        raise MCPError(
            f"MCP server {server!r}: cannot read its envFile {os.fspath(full)!r}: {exc.strerror}"
        ) from None
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        if not sep:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[key.strip()] = value
    return values


def split_args(args: Any, server: str) -> list[str]:
    """`args` as a list: a string is one shell line (`"--local-timezone UTC"`), not characters."""
    if args is None:
        return []
    if isinstance(args, str):
        try:
            return shlex.split(args)
        except ValueError as exc:
            raise MCPError(f"MCP server {server!r}: its args {args!r}: {exc}") from None
    if isinstance(args, list | tuple):
        return [str(a) for a in args]
    raise MCPError(f"MCP server {server!r}: args must be a list of strings or one string")


def redact_url(url: str) -> str:
    """`url` with every query value and any password hidden (`?api_key=***`)."""
    parts = urlparse(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{SECRET_MASK}@{netloc.rpartition('@')[2]}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, SECRET_MASK) for k, _ in pairs], safe="*")
    return urlunparse(parts._replace(netloc=netloc, query=query))


def url_secrets(url: str) -> list[str]:
    """The values `redact_url` hides (for `scrub`)."""
    parts = urlparse(url)
    found = [v for _, v in parse_qsl(parts.query, keep_blank_values=True) if v]
    if parts.password:
        found.append(parts.password)
    return found


def scrub(text: str, secrets: list[str]) -> str:
    """`text` with each secret value (3+ characters) replaced by ***, longest first."""
    return scrubber(secrets)(text)


def scrubber(secrets: list[str]) -> Callable[[str], str]:
    """`scrub` with these secrets, their URL-quoted forms found once for many texts."""
    forms = {form for s in secrets if len(s) >= 3 for form in (s, quote(s, safe=""), quote_plus(s))}
    ordered = sorted(forms, key=len, reverse=True)

    def clean(text: str) -> str:
        for secret in ordered:
            if secret in text:
                text = text.replace(secret, SECRET_MASK)
        return text

    return clean
