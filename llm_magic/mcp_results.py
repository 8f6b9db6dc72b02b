"""What an MCP tool call gives back, for the model and for the user; names and argument checks.

An MCP `CallToolResult` holds content blocks (text, images, audio, embedded resources, resource
links) and, optionally, structured content. The model gets one text and the images (as images
where its API takes them: llm_magic.media); the user keeps everything: `MCPResult.raw` is the SDK's object,
`.images` the decoded images, `.structured` the structured content, and the notebook shows
text and images together (`_repr_mimebundle_`). `is_error` results become `MCPToolError`, which
the chain sends back to the model as a tool error.

Content types: https://modelcontextprotocol.io/specification/2025-06-18/server/tools#tool-result
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import LLMMagicError, ToolArgumentsError

MAX_HTML_IMAGE_BYTES = 200_000  # bigger images show through their own mimetype, not inline HTML


class MCPError(LLMMagicError):
    """An MCP server could not be reached, started, or died; the message says which and why."""


class MCPToolError(LLMMagicError):
    """The server ran the tool and reported an error (`isError`); `.result` is what it sent."""

    def __init__(self, message: str, result: MCPResult) -> None:
        super().__init__(message)
        self.result = result


@dataclass(eq=False)
class MCPResult:
    """One MCP tool result: the text the model gets, and the real content for the user."""

    server: str
    tool: str
    raw: Any  # mcp.types.CallToolResult (mcp 2: snake_case fields)
    text: str = ""
    images: list[tuple[str, bytes]] = field(default_factory=list)  # (mime type, bytes)
    structured: Any = None

    def __llm_output__(self) -> str:
        """What the model gets (see `tools.serialize_result`)."""
        if self.text:
            return self.text
        if self.structured is not None:
            return json.dumps(self.structured, ensure_ascii=False)
        return "(no content)"

    def __str__(self) -> str:
        return self.__llm_output__()

    def __repr__(self) -> str:
        extra = f", {len(self.images)} image(s)" if self.images else ""
        return f"<MCPResult {self.server}/{self.tool}{extra}: {self.__llm_output__()[:200]!r}>"

    def _repr_mimebundle_(self, **_: Any) -> dict[str, Any]:
        bundle: dict[str, Any] = {"text/plain": self.__llm_output__()}
        parts = [f"<pre>{html.escape(self.__llm_output__())}</pre>"]
        for mime, data in self.images:
            bundle.setdefault(mime, data if mime != "image/svg+xml" else data.decode())
            if len(data) <= MAX_HTML_IMAGE_BYTES and mime != "image/svg+xml":
                b64 = base64.b64encode(data).decode()
                parts.append(f'<img src="data:{mime};base64,{b64}"/>')
        if self.images:
            bundle["text/html"] = "".join(parts)
        return bundle


def to_result(server: str, tool: str, raw: Any) -> MCPResult:
    """An `MCPResult` from the SDK's `CallToolResult`; raises `MCPToolError` on `isError`."""
    texts: list[str] = []
    images: list[tuple[str, bytes]] = []
    for block in raw.content:
        kind = getattr(block, "type", "")
        if kind == "text":
            texts.append(block.text)
        elif kind == "image":
            data = _decode(block.data)
            images.append((block.mime_type, data))
            texts.append(f"[image {block.mime_type}, {len(data)} bytes]")
        elif kind == "audio":
            texts.append(f"[audio {block.mime_type}, {len(_decode(block.data))} bytes]")
        elif kind == "resource":
            texts.append(_resource_text(block.resource))
        elif kind == "resource_link":
            texts.append(f"[resource {block.uri}" + (f": {block.name}]" if block.name else "]"))
    result = MCPResult(server, tool, raw, "\n".join(texts), images, raw.structured_content)
    if raw.is_error:
        raise MCPToolError(result.text or "the tool reported an error", result)
    return result


def _decode(data: str) -> bytes:
    try:
        return base64.b64decode(data, validate=False)
    except ValueError:
        return b""


def _resource_text(resource: Any) -> str:
    text = getattr(resource, "text", None)
    if isinstance(text, str):
        return text
    mime = getattr(resource, "mime_type", None) or "binary"
    return f"[resource {resource.uri} ({mime})]"


def argument_checker(schema: dict[str, Any]) -> Callable[[dict[str, Any]], None] | None:
    """A check of the model's arguments against a tool's input schema (JSON Schema).

    The SDK depends on `jsonschema`; a schema it cannot compile is left to the server to judge.
    """
    try:
        from jsonschema import validators
        from jsonschema.exceptions import SchemaError

        cls = validators.validator_for(schema)
        cls.check_schema(schema)
        validator = cls(schema)
    except (ImportError, SchemaError):
        return None

    def check(arguments: dict[str, Any]) -> None:
        errors = sorted(validator.iter_errors(arguments), key=lambda e: list(e.path))
        if errors:
            first = errors[0]
            where = "/".join(str(p) for p in first.path)
            prefix = f"argument {where!r}: " if where else ""
            raise ToolArgumentsError(prefix + first.message)

    return check
