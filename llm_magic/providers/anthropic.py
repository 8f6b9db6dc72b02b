"""Anthropic Messages (`POST /v1/messages`).

One neutral assistant message becomes one assistant turn of content blocks (thinking blocks
first and unchanged, then text, then `tool_use`); the results of a turn and any user text that
follows become ONE user turn, `tool_result` blocks first. Ids are sanitised to the pattern
Anthropic accepts, with the same mapping on both sides of a call.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import catalog
from .._sse import SSEEvent
from ..errors import ConfigError, ProviderError, RefusalError
from ..media import Media
from ..messages import Message, ModelRequest, ModelTurn, ToolCall, Usage
from ._fields import THINKING_BUDGETS, drop_refused_sampling
from ._wire_cache import WireCache, cached
from .base import (
    Accumulator,
    Provider,
    arguments_object,
    capped_tokens,
    expect,
    merge_user_messages,
    new_call_id,
)

PROVIDER = "anthropic"
VERSIONS = ("2023-06-01", "2026-10-21")
SAMPLING_OPTIONS = ("temperature", "top_p", "top_k")  # a 400 under 2026-10-21
THINKING_KEY = "anthropic_thinking"  # provider_data key of the turn's thinking blocks
DEFAULT_MAX_TOKENS = 4096
MIN_THINKING_BUDGET = 1024  # thinking.budget_tokens' minimum (see `fit_thinking`)
_ID_OK = re.compile(r"^[a-zA-Z0-9_-]+$")
_ID_BAD = re.compile(r"[^a-zA-Z0-9_-]")


class AnthropicMessagesAdapter(Provider):
    name = api_vendor = "anthropic"
    documents = True
    default_base_url = "https://api.anthropic.com"
    models_path = "/v1/models"

    def __init__(self, model: str, *, api_version: str = "2026-10-21", **kwargs: Any) -> None:
        if api_version not in VERSIONS:
            raise ConfigError(
                f"unknown anthropic api_version {api_version!r}; use one of {', '.join(VERSIONS)}"
            )
        self.api_version = api_version
        self.info = catalog.lookup("anthropic", model)
        super().__init__(model, **kwargs)

    def auth_headers(self, api_key: str | None) -> dict[str, str]:
        headers = {"anthropic-version": self.api_version}
        if api_key:
            if self.api_version == "2023-06-01":
                headers["x-api-key"] = api_key
            else:
                headers["authorization"] = f"Bearer {api_key}"
        return headers

    def path(self, request: ModelRequest, stream: bool) -> str:
        return "/v1/messages"

    def accumulator(self) -> Accumulator:
        return StreamAccumulator()

    def parse(self, data: Any) -> ModelTurn:
        return parse_message(data)

    # ---- request ---------------------------------------------------------------------------
    def build_body(self, request: ModelRequest) -> dict[str, Any]:
        options = {**self.options, **request.options}
        self.thinking_fields(options, request.thinking)
        user_limit = int(options.pop("max_tokens", None) or DEFAULT_MAX_TOKENS)
        max_tokens = capped_tokens(user_limit, request.max_output_tokens)
        body: dict[str, Any] = {"model": self.model, "max_tokens": max_tokens}
        if "thinking" in options:
            options["thinking"] = fit_thinking(options["thinking"], max_tokens)
        system = "\n\n".join(
            t
            for t in [request.system, *(m.text for m in request.messages if m.role == "system")]
            if t
        )
        if system:
            body["system"] = system
        if request.tools:
            body["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": t.parameters}
                for t in request.tools
            ]
            if request.tool_choice:
                body["tool_choice"] = tool_choice(request.tool_choice)
        body["messages"] = wire_messages(request.messages, self.wire_cache)
        if request.stream:
            body["stream"] = True
        if "stop" in options:
            stop = options.pop("stop")
            options["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
        if self.api_version == "2026-10-21":
            dropped = [k for k in SAMPLING_OPTIONS if k in options]
            for k in dropped:
                del options[k]
            if dropped:
                self.warn_once(
                    "sampling-version",
                    f"anthropic api_version 2026-10-21 does not accept {', '.join(dropped)}; "
                    "the option was left out (pass api_version='2023-06-01' to use it)",
                )
        drop_refused_sampling(self, options)
        body.update(options)
        return body

    def thinking_fields(self, options: dict[str, Any], level: str | None) -> None:
        """The run's thinking level in this model's fields, into `options` (a raw `thinking`
        field the caller gave wins). Adaptive-only models (catalog) take `thinking: {type:
        adaptive}` with `output_config.effort` and refuse `enabled`/`budget_tokens`, so a raw
        `enabled` is sent as adaptive (said once); the others take a `budget_tokens` below
        `max_tokens`, which is raised above it when it is not."""
        adaptive = self.info is not None and self.info.thinking == "adaptive"
        raw = options.get("thinking")
        if adaptive and isinstance(raw, Mapping) and raw.get("type") == "enabled":
            options["thinking"] = {"type": "adaptive"}
            self.warn_once(
                "thinking-adaptive",
                f"{self.model} takes adaptive thinking only; thinking type 'enabled' "
                "(budget_tokens) was sent as {'type': 'adaptive'}",
            )
        if level is None or "thinking" in options:
            return
        if level == "off":
            options["thinking"] = {"type": "disabled"}
        elif adaptive:
            options["thinking"] = {"type": "adaptive"}
            config = options.get("output_config")
            options["output_config"] = {
                **(config if isinstance(config, Mapping) else {}),
                "effort": level,
            }
        else:
            budget = THINKING_BUDGETS[level]  # type: ignore[index]
            options["thinking"] = {"type": "enabled", "budget_tokens": budget}
            if int(options.get("max_tokens") or DEFAULT_MAX_TOKENS) <= budget:
                options["max_tokens"] = budget + DEFAULT_MAX_TOKENS


# ---- request building (pure functions) ------------------------------------------------------
def fit_thinking(thinking: Any, max_tokens: int) -> Any:
    """Extended thinking that fits in `max_tokens`, which a budget may have lowered.

    `budget_tokens` "Must be >=1024 and less than `max_tokens`" (anthropic-sdk-python
    src/anthropic/types/thinking_config_enabled_param.py, read 2026-12-07): a budget above the
    turn's cap is lowered to fit it, and a cap too small for the minimum thinking budget turns
    thinking off for that turn rather than have the API refuse it.
    """
    if not isinstance(thinking, Mapping) or thinking.get("type") != "enabled":
        return thinking
    budget = thinking.get("budget_tokens")
    if not isinstance(budget, int) or budget < max_tokens:
        return thinking
    if max_tokens - 1 < MIN_THINKING_BUDGET:
        return {"type": "disabled"}
    return {**thinking, "budget_tokens": max_tokens - 1}


def tool_choice(choice: str) -> dict[str, Any]:
    if choice == "auto":
        return {"type": "auto"}
    if choice == "required":
        return {"type": "any"}
    if choice == "none":
        return {"type": "none"}
    return {"type": "tool", "name": choice}


def sanitize_id(call_id: str) -> str:
    """The id itself when Anthropic accepts it, else a deterministic valid one (same input, same
    output; distinct inputs stay distinct thanks to a short hash of the original)."""
    if _ID_OK.match(call_id):
        return call_id
    digest = hashlib.sha256(call_id.encode()).hexdigest()[:8]
    return f"{_ID_BAD.sub('_', call_id)}_{digest}"


def wire_messages(messages: list[Message], cache: WireCache | None = None) -> list[dict[str, Any]]:
    """Neutral messages as Anthropic turns; system messages go to the top-level `system`."""
    out: list[dict[str, Any]] = []
    for group in merge_user_messages([m for m in messages if m.role != "system"]):
        if group[0].role == "assistant":
            blocks = cached(cache, group[0], "anthropic-assistant", _assistant_blocks)
            out.append({"role": "assistant", "content": blocks})
        else:
            out.append({"role": "user", "content": _user_blocks(group, cache)})
    return out


def _assistant_blocks(msg: Message) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = list(msg.provider_data.get(THINKING_KEY) or ())
    if msg.text:
        blocks.append({"type": "text", "text": msg.text})
    blocks += [
        {
            "type": "tool_use",
            "id": sanitize_id(c.id),
            "name": c.name,
            "input": arguments_object(c.arguments),
        }
        for c in msg.tool_calls
    ]
    return blocks or [{"type": "text", "text": "(empty)"}]


def _user_blocks(group: list[Message], cache: WireCache | None) -> list[dict[str, Any]]:
    """Every tool_result of the group first, then the user blocks (a prompt's images and
    documents before its text, as Anthropic's vision guide advises)."""
    results: list[dict[str, Any]] = []
    texts: list[dict[str, Any]] = []
    for msg in group:
        results += cached(cache, msg, "anthropic-results", _result_blocks)
        if msg.role == "user" and msg.media:  # encoded once per message, not once per turn
            texts += cached(cache, msg, "anthropic-media", lambda m: [*map(media_block, m.media)])
        if msg.role == "user" and msg.text:
            texts.append({"type": "text", "text": msg.text})
    return results + texts or [{"type": "text", "text": "(empty)"}]


def _result_blocks(msg: Message) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for r in msg.tool_results:
        content: str | list[dict[str, Any]] = r.content or "(empty)"
        if r.media:  # the result's text, then its images
            content = [{"type": "text", "text": content}, *map(media_block, r.media)]
        block: dict[str, Any] = {
            "type": "tool_result",
            "tool_use_id": sanitize_id(r.call_id),
            "content": content,
        }
        if r.is_error:
            block["is_error"] = True
        blocks.append(block)
    return blocks


def media_block(media: Media) -> dict[str, Any]:
    """An `image` block (anthropic-sdk-python `types/image_block_param.py`, a
    `base64_image_source_param.py` source) or a PDF `document` block (`document_block_param.py`,
    `base64_pdf_source_param.py`)."""
    kind = "image" if media.is_image else "document"
    return {
        "type": kind,
        "source": {"type": "base64", "media_type": media.mime, "data": media.base64()},
    }


# ---- response parsing ------------------------------------------------------------------------
def _usage(raw: dict[str, Any] | None, into: Usage | None = None) -> Usage:
    """Input = input_tokens + both cache fields; values are totals, so they overwrite."""
    usage = into or Usage()
    if not raw:
        return usage
    if any(k in raw for k in ("input_tokens", "cache_creation_input_tokens")):
        usage.input_tokens = sum(
            raw.get(k) or 0
            for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
        )
    if raw.get("output_tokens") is not None:
        usage.output_tokens = raw["output_tokens"]
    if "cache_read_input_tokens" in raw:
        usage.cache_read_tokens = raw["cache_read_input_tokens"] or 0
    if "cache_creation_input_tokens" in raw:
        usage.cache_write_tokens = raw["cache_creation_input_tokens"] or 0
    return usage


def _args_text(value: Any) -> str:
    return json.dumps(value if value is not None else {}, ensure_ascii=False)


def parse_message(data: Any) -> ModelTurn:
    data = expect(data, dict, "the response", "anthropic")
    if data.get("type") == "error":
        err = data.get("error") or {}
        raise ProviderError(f"{err.get('message', err)} [{err.get('type')}]", provider="anthropic")
    if "content" not in data:
        raise ProviderError(f"malformed response: no content: {str(data)[:200]}", provider=PROVIDER)
    text: list[str] = []
    calls: list[ToolCall] = []
    thinking: list[dict[str, Any]] = []
    for i, block in enumerate(expect(data.get("content") or [], list, "content", "anthropic")):
        kind = expect(block, dict, f"content[{i}]", "anthropic").get("type")
        if kind == "text":
            text.append(block.get("text") or "")
        elif kind == "tool_use":
            calls.append(
                ToolCall(
                    block.get("id") or new_call_id(),
                    block.get("name", ""),
                    _args_text(block.get("input")),
                )
            )
        elif kind in ("thinking", "redacted_thinking"):
            thinking.append(block)
    turn = ModelTurn("".join(text), calls, _usage(data.get("usage")), data.get("stop_reason"))
    _raise_if_refused(turn)
    if thinking:
        turn.provider_data[THINKING_KEY] = thinking
    return turn


@dataclass
class _Block:
    """One content block being streamed: its start event and the deltas so far."""

    start: dict[str, Any]
    text: list[str] = field(default_factory=list)
    json: list[str] = field(default_factory=list)
    thinking: list[str] = field(default_factory=list)
    signature: list[str] = field(default_factory=list)


def _raise_if_refused(turn: ModelTurn) -> None:
    """`stop_reason: "refusal"` (streaming classifiers stopped the answer): the run must not
    end as if the (partial) text were the answer (anthropic-sdk-python `types/stop_reason.py`)."""
    if turn.finish_reason == "refusal":
        said = f" after writing: {turn.text[:200]}" if turn.text else " (no text)"
        raise RefusalError(f"stop_reason refusal{said}", provider="anthropic")


class StreamAccumulator(Accumulator):
    """Builds a ModelTurn from Messages SSE events; blocks are keyed by their `index`."""

    provider = "anthropic"
    end_marker = "its message_stop event"

    def __init__(self) -> None:
        super().__init__()
        self.blocks: dict[int, _Block] = {}
        self.parts: list[str] = []  # text deltas in arrival order
        self.usage = Usage()
        self.stop_reason: str | None = None

    def text(self) -> str:
        return "".join(self.parts)

    def skip(self, event: SSEEvent) -> bool:
        return self.done or event.event == "ping" or super().skip(event)

    def take(self, event: str, payload: Any) -> str:
        return self.add(event, expect(payload, dict, f"the {event!r} event", "anthropic"))

    def add(self, event: str, data: dict[str, Any]) -> str:
        """Take one event; return the text it adds (for `on_text`)."""
        kind = data.get("type") or event
        if kind == "message_start":
            _usage((data.get("message") or {}).get("usage"), self.usage)
        elif kind == "content_block_start":
            block = _Block(dict(expect(data.get("content_block"), dict, "content_block", PROVIDER)))
            self.blocks[int(data.get("index", len(self.blocks)))] = block
            if block.start.get("type") == "text" and block.start.get("text"):
                return self._text(block, block.start["text"])
        elif kind == "content_block_delta":
            slot = self.blocks.get(int(data.get("index", -1)))
            if slot is None:
                raise ProviderError(
                    f"content_block_delta for unknown block {data.get('index')!r}",
                    provider="anthropic",
                )
            delta = data.get("delta") or {}
            dtype = delta.get("type")
            if dtype == "text_delta":
                return self._text(slot, delta.get("text") or "")
            if dtype == "input_json_delta":
                slot.json.append(delta.get("partial_json") or "")
            elif dtype == "thinking_delta":
                slot.thinking.append(delta.get("thinking") or "")
            elif dtype == "signature_delta":
                slot.signature.append(delta.get("signature") or "")
        elif kind == "message_delta":
            self.stop_reason = (data.get("delta") or {}).get("stop_reason") or self.stop_reason
            _usage(data.get("usage"), self.usage)
        elif kind == "message_stop":
            self.done = True
        elif kind == "error":
            err = data.get("error") or {}
            raise ProviderError(
                f"error in stream: {err.get('message', err)} [{err.get('type')}]",
                provider="anthropic",
            )
        return ""  # ping, content_block_stop and unknown events

    def _text(self, slot: _Block, text: str) -> str:
        if text:
            slot.text.append(text)
            self.parts.append(text)
        return text

    def turn(self) -> ModelTurn:
        text: list[str] = []
        calls: list[ToolCall] = []
        thinking: list[dict[str, Any]] = []
        for _, slot in sorted(self.blocks.items()):
            block = slot.start
            kind = block.get("type")
            if kind == "text":
                text.append("".join(slot.text))
            elif kind == "tool_use":
                raw = "".join(slot.json)
                try:  # the same text as the non-streaming parse when the JSON is whole
                    arguments = _args_text(json.loads(raw)) if raw.strip() else "{}"
                except ValueError:
                    arguments = raw  # truncated (max_tokens): the chain reports it to the model
                calls.append(
                    ToolCall(block.get("id") or new_call_id(), block.get("name", ""), arguments)
                )
            elif kind == "thinking":
                thinking.append(
                    {
                        "type": "thinking",
                        "thinking": (block.get("thinking") or "") + "".join(slot.thinking),
                        "signature": (block.get("signature") or "") + "".join(slot.signature),
                    }
                )
            elif kind == "redacted_thinking":
                thinking.append(block)
        turn = ModelTurn("".join(text), calls, self.usage, self.stop_reason)
        _raise_if_refused(turn)
        if not self.blocks and self.stop_reason is None:
            raise ProviderError(
                "the stream carried no content and no stop_reason", provider=PROVIDER
            )
        if thinking:
            turn.provider_data[THINKING_KEY] = thinking
        return turn
