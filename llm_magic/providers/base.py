"""What every provider adapter implements, and the transport every one of them shares.

`Provider.send` is one template: build the body, post it, and either parse the JSON response or
feed the SSE events to an `Accumulator`. The template owns what used to be repeated per adapter:
partial text kept on a cut stream, a missing end marker, error events inside a stream, and
malformed data (invalid JSON, the wrong shape) turned into a ProviderError that says what was
wrong. An adapter supplies its body builder, its accumulator and its non-stream parser.
"""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, TypeVar

import httpx2

from .._http import HTTPSession, RetryPolicy
from .._sse import SSEEvent
from ..catalog import ModelInfo
from ..errors import LLMMagicError, ModelNotFoundError, ProviderError, StreamError
from ..messages import FINAL_TURN_INSTRUCTION, Message, ModelRequest, ModelTurn, ToolResult
from ._names import WireNames
from ._wire_cache import WireCache

TextCallback = Callable[[str], None]
T = TypeVar("T")
# What a malformed payload raises inside an adapter's parsing code (a None where an object was
# expected, a list index, a number where a string was): reported as a ProviderError instead.
_SHAPE_ERRORS = (AttributeError, TypeError, KeyError, IndexError, ValueError)
# `json.loads` of a str without its wrapper's checks per call (the same decoder it uses).
_decode = json.JSONDecoder().decode


class Accumulator(ABC):
    """Builds one ModelTurn from the events of one streamed response.

    `feed` is the one entry point: it skips keep-alives, decodes the JSON, raises on an error
    event and hands the payload to `take`. `done` says whether the stream's end marker arrived.
    """

    provider = "provider"
    end_marker = "its end marker"

    def __init__(self) -> None:
        self.done = False

    def feed(self, event: SSEEvent) -> str:
        """Take one SSE event; return the text it adds (for `on_text`)."""
        if self.skip(event):
            return ""
        try:  # once per token: the error's wording is built only when there is one
            payload = _decode(event.data)
        except ValueError:
            payload = decode_json(event.data, self.provider, f"{event.event or 'data'} event")
        if type(payload) is not dict or "error" in payload:  # `error` only for what may be one
            message = self.error(payload)
            if message is not None:
                raise ProviderError(f"error in stream: {message}", provider=self.provider)
        return self.take(event.event, payload)

    def skip(self, event: SSEEvent) -> bool:
        """Events that carry nothing (keep-alives); an adapter adds its own (OpenAI's [DONE])."""
        data = event.data
        return not data or data.isspace()  # `not data.strip()`, without a copy per event

    def error(self, payload: Any) -> str | None:
        """The message of an error payload (`{"error": {...}}`, maybe wrapped in a list)."""
        if isinstance(payload, list) and payload:
            payload = payload[0]
        if not isinstance(payload, dict) or "error" not in payload:
            return None
        err = payload["error"]
        if not isinstance(err, dict):
            return str(err)[:300]
        message = str(err.get("message") or json.dumps(err)[:300])
        kind = err.get("type") or err.get("status")
        return f"{message} [{kind}]" if kind else message

    @abstractmethod
    def take(self, event: str, payload: Any) -> str:
        """Add one decoded payload; return its text delta."""

    @abstractmethod
    def text(self) -> str:
        """The text so far (kept as `partial_text` when the stream is cut)."""

    @abstractmethod
    def turn(self) -> ModelTurn:
        """The complete turn, once the stream has ended."""


class Provider(ABC):
    """One model at one provider. `turn()` is the whole contract the chain relies on."""

    # The route the run goes by, as the model id's prefix names it (llm_magic.registry.ROUTES):
    # the API and the vendor ("openai" over Responses, "openai-chat", "ollama"...); what a
    # result's `provider` says.
    name = "provider"
    # The vendor whose API the adapter speaks: "openai" for both of OpenAI's APIs and every
    # compatible server. Errors are labelled with it, retries follow its SDK's caps, and the
    # catalog and the price table know OpenAI's models by it.
    api_vendor = "provider"
    default_base_url = ""
    default_max_steps = 10  # rounds of tool calls before the run must answer
    # Takes `ModelRequest.output` (a typed answer's schema) as its own structured output, beside
    # tools; False: the chain asks for the typed answer through the final tool (llm_magic.answers).
    native_output = False
    # The API's list of models (a GET relative to the base URL), named in "model not found"
    models_path = "/models"
    # The catalog's entry for the model: which request fields it takes (None: no rules known).
    info: ModelInfo | None = None
    # Takes images (in tool results or prompts); False: each becomes a line saying it was left out.
    vision = True
    # Takes PDF documents in a prompt (Anthropic, Gemini, OpenAI Responses); else a clear error.
    documents = False

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        transport: httpx2.AsyncBaseTransport | None = None,
        limits: httpx2.Limits | None = None,
        options: dict[str, Any] | None = None,
        name: str | None = None,
    ) -> None:
        self.name = name or self.name  # the route's: Chat Completions serves several
        self.model = model
        self.model_id = model  # the resolved `prefix:model` (set by the registry): one id shown
        self._api_key = api_key
        self.base_url = (base_url or self.default_base_url).rstrip("/")
        self.options = dict(options or {})
        self._warned: set[str] = set()  # the warnings this provider gave (`warn_once`)
        self.wire_cache = WireCache()  # messages' wire forms, so continuations encode only news
        self.http = HTTPSession(
            self.api_vendor,
            self.base_url,
            self.auth_headers(api_key),
            secret=api_key,
            retry=retry,
            timeout=httpx2.Timeout(timeout or 600.0, connect=10.0),
            transport=transport,
            limits=limits,
        )

    def __repr__(self) -> str:  # never shows the key
        return f"<{type(self).__name__} model={self.model!r} base_url={self.base_url!r}>"

    @abstractmethod
    def auth_headers(self, api_key: str | None) -> dict[str, str]: ...

    def warn_once(self, key: str, message: str) -> None:
        """Warn about a request field left out or changed, once per provider and `key`: the
        same options go into every turn of every run, and one warning says it."""
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(message, stacklevel=3)

    async def turn(self, request: ModelRequest, on_text: TextCallback | None = None) -> ModelTurn:
        """Send one request; call `on_text` with each text delta when streaming.

        Tool names are sent in a form every API accepts and mapped back on the way in. Every
        ProviderError raised on the way has the key scrubbed: the provider's own text (an
        error event in a stream, an error object in a 200 body) may quote it.
        """
        names = WireNames(request.tools)
        with self.http.redacting():
            try:
                turn = await self.send(
                    names.encode(self.final_form(request), self.wire_cache), on_text
                )
            except ProviderError as exc:
                if not _model_missing(exc, self.model):
                    raise
                raise await self.model_not_found(exc) from None
        return names.decode(turn)

    async def model_not_found(self, exc: ProviderError) -> ModelNotFoundError:
        """One line for a model the API does not serve: its own words, and the models the key
        can use where the list endpoint answers (a failure to list is not the error to show)."""
        try:
            available = self.model_ids(await self.http.get_json(self.models_path))
        except (LLMMagicError, *_SHAPE_ERRORS):
            available = []
        message = f"there is no model {self.model!r} for this key ({exc.provider_message})"
        if available:
            more = len(available) - MODELS_SHOWN
            message += "; models it can use: " + ", ".join(available[:MODELS_SHOWN])
            message += f" (and {more} more)" if more > 0 else ""
        error = ModelNotFoundError(
            message, provider=self.api_vendor, status=exc.status, request_id=exc.request_id
        )
        error.available = tuple(available)
        return error

    def model_ids(self, data: Any) -> list[str]:
        """The ids in the list endpoint's answer (`{"data": [{"id"}]}`: OpenAI, Anthropic)."""
        return sorted(str(m["id"]) for m in data["data"] if isinstance(m, dict) and m.get("id"))

    def final_form(self, request: ModelRequest) -> ModelRequest:
        """A `final` request ("answer now, no tools") in the form this provider understands:
        tools switched off by `tool_choice: none` and the instruction as the last user text
        (which the adapters merge into the turn of tool results)."""
        if not request.final:
            return request
        return dataclasses.replace(
            request,
            messages=[*request.messages, Message("user", FINAL_TURN_INSTRUCTION)],
            tool_choice="none" if request.tools else None,
            final=False,
        )

    # ---- the transport template ----------------------------------------------------------
    @abstractmethod
    def build_body(self, request: ModelRequest) -> dict[str, Any]:
        """The JSON body of one request."""

    @abstractmethod
    def path(self, request: ModelRequest, stream: bool) -> str:
        """The endpoint, relative to the base URL."""

    @abstractmethod
    def accumulator(self) -> Accumulator:
        """A fresh accumulator for one streamed response."""

    @abstractmethod
    def parse(self, data: Any) -> ModelTurn:
        """The turn in a whole (non-streamed) JSON response."""

    def streams(self, request: ModelRequest, body: dict[str, Any]) -> bool:
        return body.get("stream") is True

    async def send(self, request: ModelRequest, on_text: TextCallback | None = None) -> ModelTurn:
        """The wire exchange of one turn (see `turn`)."""
        body = self.build_body(request)
        stream = self.streams(request, body)
        path = self.path(request, stream)
        if stream:
            return await self._stream(path, body, on_text)
        data = await self.http.post_json(path, body)
        turn = self._checked(lambda: self.parse(data), "response", data)
        if on_text and turn.text:
            on_text(turn.text)
        return turn

    async def _stream(
        self, path: str, body: dict[str, Any], on_text: TextCallback | None
    ) -> ModelTurn:
        acc = self.accumulator()
        feed = acc.feed
        async with self.http.stream(path, body) as events:
            try:
                async for event in events:
                    try:  # `_checked`, written out: this runs once per token
                        delta = feed(event)
                    except _SHAPE_ERRORS as exc:
                        if isinstance(exc, ProviderError):
                            raise
                        raise self._shape_error(exc, "stream event", event.data) from None
                    if delta and on_text:
                        on_text(delta)
            except StreamError as exc:
                exc.partial_text = acc.text()
                raise
        if not acc.done:
            raise StreamError(
                f"the stream ended before {acc.end_marker}",
                provider=self.api_vendor,
                partial_text=acc.text(),
            )
        return self._checked(acc.turn, "stream", None)

    def _checked(self, step: Callable[[], T], what: str, data: Any) -> T:
        """Run a parsing step; a payload of the wrong shape becomes a ProviderError."""
        try:
            return step()
        except ProviderError:
            raise
        except _SHAPE_ERRORS as exc:
            raise self._shape_error(exc, what, data) from None

    def _shape_error(self, exc: Exception, what: str, data: Any) -> ProviderError:
        shown = "" if data is None else f": {_excerpt(data)}"
        return ProviderError(
            f"malformed {what} ({type(exc).__name__}: {exc}){shown}", provider=self.api_vendor
        )

    async def aclose(self) -> None:
        await self.http.aclose()


# ---- helpers the adapters share --------------------------------------------------------------
def decode_json(data: str, provider: str, what: str) -> Any:
    """The JSON in one event's data, or a ProviderError quoting what arrived instead."""
    try:
        return json.loads(data)
    except ValueError:
        raise ProviderError(
            f"malformed {what}: not JSON: {data[:200]!r}", provider=provider
        ) from None


_KIND_NAMES: dict[type, str] = {dict: "an object", list: "an array", str: "a string"}


def expect(value: Any, kind: type, what: str, provider: str) -> Any:
    """`value` when it is a `kind` (dict or list), else a ProviderError naming the field."""
    if not isinstance(value, kind):
        name = _KIND_NAMES.get(kind, kind.__name__)
        raise ProviderError(
            f"malformed response: {what} should be {name}, got {_excerpt(value)}",
            provider=provider,
        )
    return value


def _excerpt(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=repr)
    return repr(text[:200]) if isinstance(value, str) else text[:200]


MODELS_SHOWN = 20  # of a "model not found" error's list


def _model_missing(exc: ProviderError, model: str) -> bool:
    """Whether an error says the model does not exist (or not for this key): a 404 about a
    model (OpenAI `model_not_found`, Anthropic `not_found_error` "model: X", Gemini NOT_FOUND
    "models/X is not found"), or a 400 that names the model as unknown."""
    text = exc.provider_message.lower()
    if exc.status == 404:
        return "model" in text
    return exc.status == 400 and model.lower() in text and _NOT_FOUND.search(text) is not None


_NOT_FOUND = re.compile(r"not (found|exist|supported|available)|does not exist|unknown model")


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


def images_follow(result: ToolResult) -> str:
    """The text before a tool result's images where the API takes none in tool results (they
    follow in a user message): which call they belong to."""
    count = len(result.media)
    what = "image" if count == 1 else f"{count} images"
    verb = "follows" if count == 1 else "follow"
    return f"The {what} returned by the call {result.call_id} ({result.name}) {verb}."


def capped_tokens(user: Any, cap: int | None) -> Any:
    """The output-token limit to send: the user's own value, lowered to a budget's `cap`.

    The cap only ever lowers a limit (a budget must not let a turn write more than the user
    allowed); with no user value the cap alone, and with no cap the user's value unchanged.
    """
    if cap is None:
        return user
    return cap if user is None else min(int(user), cap)


def arguments_object(raw: str) -> dict[str, Any]:
    """Arguments as an object for providers that want one; invalid JSON becomes {}."""
    try:
        value = json.loads(raw) if raw.strip() else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
