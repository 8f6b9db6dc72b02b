"""What every provider adapter implements, and the pieces they share."""

from __future__ import annotations

import json
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import httpx

from ..http import HTTPSession, RetryPolicy
from ..messages import Message, ModelRequest, ModelTurn

TextCallback = Callable[[str], None]


class Provider(ABC):
    """One model at one provider. `turn()` is the whole contract the chain relies on; an adapter
    implements `send()`, the wire exchange behind it."""

    name = "provider"
    default_base_url = ""
    default_max_steps = 10  # rounds of tool calls before the run must answer

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        limits: httpx.Limits | None = None,
        options: dict[str, Any] | None = None,
    ) -> None:
        self.model = model
        self._api_key = api_key
        self.base_url = (base_url or self.default_base_url).rstrip("/")
        self.options = dict(options or {})
        self.http = HTTPSession(
            self.name,
            self.base_url,
            self.auth_headers(api_key),
            secret=api_key,
            retry=retry,
            timeout=httpx.Timeout(timeout or 600.0, connect=10.0),
            transport=transport,
            limits=limits,
        )

    def __repr__(self) -> str:  # never shows the key
        return f"<{type(self).__name__} model={self.model!r} base_url={self.base_url!r}>"

    @abstractmethod
    def auth_headers(self, api_key: str | None) -> dict[str, str]: ...

    async def turn(self, request: ModelRequest, on_text: TextCallback | None = None) -> ModelTurn:
        """Send one request; call `on_text` with each text delta when streaming.

        Every ProviderError raised on the way has the key scrubbed: the provider's own text (an
        error event in a stream, an error object in a 200 body) may quote it.
        """
        with self.http.redacting():
            return await self.send(request, on_text)

    @abstractmethod
    async def send(self, request: ModelRequest, on_text: TextCallback | None = None) -> ModelTurn:
        """The wire exchange of one turn (see `turn`)."""

    async def aclose(self) -> None:
        await self.http.aclose()


def new_call_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]


def merge_user_messages(messages: list[Message]) -> list[list[Message]]:
    """Group consecutive messages that go into one wire turn (tool results + user text)."""
    groups: list[list[Message]] = []
    for msg in messages:
        wire_role = "user" if msg.role in ("user", "tool") else msg.role
        if groups and groups[-1][0].role in ("user", "tool") and wire_role == "user":
            groups[-1].append(msg)
        else:
            groups.append([msg])
    return groups


def arguments_object(raw: str) -> dict[str, Any]:
    """Arguments as an object for providers that want one; invalid JSON becomes {}."""
    try:
        value = json.loads(raw) if raw.strip() else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
