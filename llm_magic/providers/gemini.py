"""Google Gemini `generateContent` / `streamGenerateContent?alt=sse` (v1beta).

Call ids: Gemini 3 sends `functionCall.id` and wants it back on the call and on its
`functionResponse`; older models send none, so an id is made up client-side and never sent
(results are matched by name and order). A `thoughtSignature` stays on the exact part it came
on. Streaming has no terminator: a stream that ends without any `finishReason` was cut.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Literal
from urllib.parse import quote

from .. import catalog
from ..errors import ProviderError, ToolDefinitionError
from ..media import Media
from ..messages import (
    Message,
    ModelRequest,
    ModelTurn,
    ToolCall,
    ToolResult,
    ToolSpec,
    Usage,
)
from ._fields import THINKING_BUDGETS
from ._portable import gemini_json_schema, tool_schema
from ._schema import translate_schema
from ._wire_cache import WireCache, cached
from .base import Accumulator as BaseAccumulator
from .base import (
    Provider,
    arguments_object,
    capped_tokens,
    expect,
    images_follow,
    merge_user_messages,
    new_call_id,
)

SchemaFormat = Literal["auto", "parameters", "json_schema"]
ID_KEY = "gemini_id"  # ToolCall.provider_data: the id Gemini issued (echoed back)
SIGNATURE_KEY = "gemini_thought_signature"  # ToolCall.provider_data: the part's thoughtSignature
TEXT_SIGNATURE_KEY = "gemini_text_signature"  # ModelTurn.provider_data: signature on text
PARTS_KEY = "gemini_parts"  # ModelTurn.provider_data: the model's parts as received (echoed)
ORIGIN_KEY = "gemini"  # ToolCall.provider_data: the call came from Gemini
SKIP_SIGNATURE = "skip_thought_signature_validator"  # documented value for foreign histories
BLOCKED = {
    "SAFETY",
    "RECITATION",
    "BLOCKLIST",
    "PROHIBITED_CONTENT",
    "SPII",
    "IMAGE_SAFETY",
    "LANGUAGE",
    "OTHER",
    "IMAGE_PROHIBITED_CONTENT",
    "IMAGE_RECITATION",
    "IMAGE_OTHER",
}
NORMAL_FINISH = {None, "STOP", "MAX_TOKENS", "FINISH_REASON_UNSPECIFIED"}
_OPTION_NAMES = {"max_tokens": "maxOutputTokens", "stop": "stopSequences"}
_TOP_LEVEL = {"safetySettings", "cachedContent", "labels"}


class GeminiGenerateContentAdapter(Provider):
    name = api_vendor = "gemini"
    documents = True
    default_base_url = "https://generativelanguage.googleapis.com/v1beta"

    def __init__(self, model: str, *, schema_format: SchemaFormat = "auto", **kwargs: Any) -> None:
        """`schema_format`: "parameters" sends every tool schema translated to Gemini's subset
        (ToolDefinitionError when it cannot be); "json_schema" sends `parametersJsonSchema`;
        "auto" translates and falls back to `parametersJsonSchema` for a tool that cannot be."""
        if schema_format not in ("auto", "parameters", "json_schema"):
            raise ValueError(
                f"schema_format must be auto, parameters or json_schema, not {schema_format!r}"
            )
        self.schema_format = schema_format
        super().__init__(model.removeprefix("models/"), **kwargs)
        self.info = catalog.lookup("gemini", self.model)

    def auth_headers(self, api_key: str | None) -> dict[str, str]:
        return {"x-goog-api-key": api_key} if api_key else {}

    def streams(self, request: ModelRequest, body: dict[str, Any]) -> bool:
        return request.stream

    def model_ids(self, data: Any) -> list[str]:
        """`{"models": [{"name": "models/ID", "supportedGenerationMethods"}]}`: those that
        generate content."""
        return sorted(
            str(m["name"]).removeprefix("models/")
            for m in data["models"]
            if "generateContent" in (m.get("supportedGenerationMethods") or ())
        )

    def path(self, request: ModelRequest, stream: bool) -> str:
        model = quote(self.model, safe="-._~")
        if stream:
            return f"/models/{model}:streamGenerateContent?alt=sse"
        return f"/models/{model}:generateContent"

    def accumulator(self) -> BaseAccumulator:
        return Accumulator()

    def parse(self, data: Any) -> ModelTurn:
        acc = Accumulator()
        acc.add(data)
        return acc.turn()

    # ---- request ---------------------------------------------------------------------------
    def build_body(self, request: ModelRequest) -> dict[str, Any]:
        system = "\n\n".join(
            t
            for t in [request.system, *(m.text for m in request.messages if m.role == "system")]
            if t
        )
        body: dict[str, Any] = {}
        if system:
            body["systemInstruction"] = {"parts": [{"text": system}]}
        body["contents"] = wire_contents(
            request.messages, self.wire_cache, media_in_responses=media_in_responses(self.model)
        )
        if request.tools:
            body["tools"] = [{"functionDeclarations": [self.declaration(t) for t in request.tools]}]
            if request.tool_choice:
                body["toolConfig"] = {"functionCallingConfig": tool_config(request.tool_choice)}
        generation: dict[str, Any] = {}
        for key, value in {**self.options, **request.options}.items():
            name = _OPTION_NAMES.get(key) or _camel(key)
            if name == "stopSequences" and isinstance(value, str):
                value = [value]
            if name in _TOP_LEVEL:
                body[name] = value
            elif name == "generationConfig" and isinstance(value, dict):
                generation.update(value)
            else:
                generation[name] = value
        thinking = self.thinking_config(request.thinking)
        if thinking:  # the caller's own thinkingConfig keys win
            generation["thinkingConfig"] = {**thinking, **generation.get("thinkingConfig", {})}
        limit = capped_tokens(generation.get("maxOutputTokens"), request.max_output_tokens)
        if limit is not None:
            generation["maxOutputTokens"] = limit
        if generation:
            body["generationConfig"] = generation
        return body

    def thinking_config(self, level: str | None) -> dict[str, Any]:
        """The run's thinking level as this model's `thinkingConfig`
        (ai.google.dev/gemini-api/docs/thinking): Gemini 3 takes a `thinkingLevel` and cannot
        stop thinking ("off" asks for "low", said once); Gemini 2.5 a `thinkingBudget` in
        tokens (0: off)."""
        kind = self.info.thinking if self.info is not None else None
        if level is None or kind is None:
            return {}
        if kind == "gemini-budget":
            return {"thinkingBudget": THINKING_BUDGETS[level]}  # type: ignore[index]
        if level == "off":
            self.warn_once(
                "thinking-off",
                f"{self.model} always thinks; thinking='off' was sent as thinkingLevel 'low'",
            )
            level = "low"
        return {"thinkingLevel": level}

    def declaration(self, tool: ToolSpec) -> dict[str, Any]:
        decl: dict[str, Any] = {"name": tool.name, "description": tool.description}
        schema = tool.parameters or {}
        if not schema.get("properties") and not schema.get("$ref"):
            return decl  # no arguments: Gemini rejects an OBJECT without properties here
        if self.schema_format == "json_schema":
            decl["parametersJsonSchema"] = tool_schema(tool, "gemini", gemini_json_schema)
            return decl
        try:
            decl["parameters"] = tool_schema(
                tool, "gemini-parameters", lambda s: translate_schema(s, tool.name)
            )
        except ToolDefinitionError:
            if self.schema_format == "parameters":
                raise
            decl["parametersJsonSchema"] = tool_schema(tool, "gemini", gemini_json_schema)
        return decl


# ---- request building (pure functions) ------------------------------------------------------
def tool_config(choice: str) -> dict[str, Any]:
    if choice in ("auto", "none", "required"):
        return {"mode": {"auto": "AUTO", "none": "NONE", "required": "ANY"}[choice]}
    return {"mode": "ANY", "allowedFunctionNames": [choice]}


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(w[:1].upper() + w[1:] for w in rest)


def media_in_responses(model: str) -> bool:
    """Whether the model takes images inside a `functionResponse` (`parts`): Gemini 3 and
    later (ai.google.dev/gemini-api/docs/function-calling#multimodal, read 2026-12-07); an
    older one gets them after the responses, in the same user turn."""
    match = re.match(r"gemini-(\d+)", model)
    return match is not None and int(match.group(1)) >= 3


def wire_contents(
    messages: list[Message], cache: WireCache | None = None, *, media_in_responses: bool = True
) -> list[dict[str, Any]]:
    """Neutral messages as Gemini contents (system messages go to systemInstruction)."""
    calls = {c.id: c for m in messages if m.role == "assistant" for c in m.tool_calls}
    contents: list[dict[str, Any]] = []
    previous: Message | None = None
    for group in merge_user_messages([m for m in messages if m.role != "system"]):
        if group[0].role == "assistant":
            previous = group[0]
            parts = cached(cache, previous, "gemini-model", _model_parts)
            if parts:
                contents.append({"role": "model", "parts": parts})
            continue
        parts = _user_parts(group, calls, previous, cache, media_in_responses)
        if parts:
            contents.append({"role": "user", "parts": parts})
    return contents


def _model_parts(msg: Message) -> list[dict[str, Any]]:
    """The parts Gemini sent, when the message is still what it sent (Gemini 3 checks every
    `thoughtSignature` it issued, on whichever part it came: a call, a trailing empty text part
    or a thought part); else parts built from the message, around the signed parts Gemini sent
    that carry no answer (an edited re-run changes a call's arguments, and the turn's
    signature, on a thought part before the call, must still come back)."""
    raw = msg.provider_data.get(PARTS_KEY)
    if raw is not None and _same_turn(raw, msg):
        return [dict(p) for p in raw]
    before, after = _signed_extras(raw or [])
    return before + _built_parts(msg) + after


def _signed_extras(
    raw: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The parts of `raw` that carry a signature and no answer (thought parts, empty text),
    as (before the first call, after it)."""
    first_call = next((i for i, p in enumerate(raw) if "functionCall" in p), len(raw))
    signed = [
        (i, dict(p))
        for i, p in enumerate(raw)
        if p.get("thoughtSignature")
        and "functionCall" not in p
        and (p.get("thought") or not p.get("text"))
    ]
    return [p for i, p in signed if i < first_call], [p for i, p in signed if i > first_call]


def _built_parts(msg: Message) -> list[dict[str, Any]]:
    """The message's text and calls as parts (their own signatures kept)."""
    parts: list[dict[str, Any]] = []
    if msg.text:
        part: dict[str, Any] = {"text": msg.text}
        if msg.provider_data.get(TEXT_SIGNATURE_KEY):
            part["thoughtSignature"] = msg.provider_data[TEXT_SIGNATURE_KEY]
        parts.append(part)
    foreign = not any(c.provider_data.get(ORIGIN_KEY) for c in msg.tool_calls)
    for i, call in enumerate(msg.tool_calls):
        fc: dict[str, Any] = {}
        if call.provider_data.get(ID_KEY):
            fc["id"] = call.provider_data[ID_KEY]
        fc["name"] = call.name
        fc["args"] = arguments_object(call.arguments)
        part = {"functionCall": fc}
        if call.provider_data.get(SIGNATURE_KEY):
            part["thoughtSignature"] = call.provider_data[SIGNATURE_KEY]
        elif foreign and i == 0:  # calls made by another provider: Gemini 3 wants a signature
            part["thoughtSignature"] = SKIP_SIGNATURE
        parts.append(part)
    return parts


def _same_turn(raw: list[dict[str, Any]], msg: Message) -> bool:
    text = "".join(p.get("text") or "" for p in raw if "text" in p and not p.get("thought"))
    calls = [p["functionCall"] for p in raw if "functionCall" in p]
    return text == msg.text and [(c.get("name"), c.get("args") or {}) for c in calls] == [
        (c.name, arguments_object(c.arguments)) for c in msg.tool_calls
    ]


def _user_parts(
    group: list[Message],
    calls: dict[str, ToolCall],
    previous: Message | None,
    cache: WireCache | None,
    media_inside: bool = True,
) -> list[dict[str, Any]]:
    """The turn's function responses in the calls' order; the images of results where the
    model takes none inside a response (each group after a text naming its call); then the
    user's own parts (a prompt's images and documents before its text)."""

    def responses(msg: Message) -> list[tuple[str, dict[str, Any]]]:
        return [
            (r.call_id, _function_response(r, calls.get(r.call_id), media_inside))
            for r in msg.tool_results
        ]

    kind = "gemini-responses" if media_inside else "gemini-responses-text"
    answered = [pair for m in group for pair in cached(cache, m, kind, responses)]
    order = {c.id: i for i, c in enumerate(previous.tool_calls)} if previous else {}
    answered.sort(key=lambda pair: order.get(pair[0], len(order)))  # the calls' order
    parts: list[dict[str, Any]] = [part for _, part in answered]
    if not media_inside:
        for r in sorted(
            (r for m in group for r in m.tool_results if r.media),
            key=lambda r: order.get(r.call_id, len(order)),
        ):
            parts += [{"text": images_follow(r)}, *map(inline_part, r.media)]
    for m in group:
        if m.role != "user":
            continue
        if m.media:  # encoded once per message, not once per turn
            parts += cached(cache, m, "gemini-media", lambda m: [*map(inline_part, m.media)])
        parts += [{"text": m.text}] if m.text else []
    return parts


def inline_part(media: Media) -> dict[str, Any]:
    """A part of inline bytes (google-genai `types.py` `Part.inline_data`, a `Blob` of
    `mime_type` and base64 `data`; camelCase on the REST wire)."""
    return {"inlineData": {"mimeType": media.mime, "data": media.base64()}}


def _function_response(
    result: ToolResult, call: ToolCall | None, media_inside: bool = True
) -> dict[str, Any]:
    """A `functionResponse`; a result's images go in its `parts` (google-genai `types.py`
    `FunctionResponse.parts`, each a `FunctionResponsePart` whose `inline_data` is a
    `FunctionResponseBlob` of `mime_type` and `data`) when the model takes them there."""
    fr: dict[str, Any] = {}
    if call is not None and call.provider_data.get(ID_KEY):
        fr["id"] = call.provider_data[ID_KEY]
    fr["name"] = result.name or (call.name if call else "")
    if result.is_error:
        fr["response"] = {"error": result.content}
    else:
        fr["response"] = {"output": _result_value(result.content)}  # the documented key
    if result.media and media_inside:
        fr["parts"] = [inline_part(m) for m in result.media]
    return {"functionResponse": fr}


def _result_value(content: str) -> Any:
    """The result as JSON when it is JSON (NaN/Infinity are not), else the text itself."""

    def reject(name: str) -> Any:
        raise ValueError(name)

    try:
        value = json.loads(content, parse_constant=reject)
    except ValueError:
        return content
    if isinstance(value, float) and not math.isfinite(value):
        return content
    return value


# ---- response parsing ------------------------------------------------------------------------
class Accumulator(BaseAccumulator):
    """Builds a ModelTurn from GenerateContentResponse chunks (a whole response is one chunk).

    Gemini streams have no terminator: the stream is whole once a chunk carried a finishReason
    (or the prompt was blocked)."""

    provider = "gemini"
    end_marker = "a chunk with a finishReason"

    def __init__(self) -> None:
        super().__init__()
        self.raw: list[dict[str, Any]] = []  # the parts as received, plain text merged
        self.candidates_seen = False
        self.parts: list[str] = []
        self.calls: list[ToolCall] = []
        self.usage = Usage()
        self.finish_reason: str | None = None
        self.finish_message: str | None = None
        self.block_reason: str | None = None
        self.block_message: str | None = None
        self.text_signature: str | None = None

    def text(self) -> str:
        return "".join(self.parts)

    def take(self, event: str, payload: Any) -> str:
        delta = self.add(payload)
        self.done = self.finish_reason is not None or self.block_reason is not None
        return delta

    def add(self, chunk: Any) -> str:
        """Take one chunk; return the text it adds."""
        if isinstance(chunk, list):  # a non-SSE array, or an error wrapped in [ ]
            return "".join(self.add(c) for c in chunk)
        if not isinstance(chunk, dict):
            raise ProviderError(
                f"malformed response: a chunk should be an object, got {str(chunk)[:200]}",
                provider="gemini",
            )
        if "error" in chunk:
            err = chunk["error"]
            message = err.get("message", str(err)) if isinstance(err, dict) else str(err)
            status = err.get("status") if isinstance(err, dict) else None
            raise ProviderError(
                f"error in stream: {message}" + (f" [{status}]" if status else ""),
                provider="gemini",
            )
        usage = chunk.get("usageMetadata")
        if usage:
            self.usage = Usage(
                usage.get("promptTokenCount") or 0,
                (usage.get("candidatesTokenCount") or 0) + (usage.get("thoughtsTokenCount") or 0),
                cache_read_tokens=usage.get("cachedContentTokenCount") or 0,
                reasoning_tokens=usage.get("thoughtsTokenCount") or 0,
            )
        feedback = chunk.get("promptFeedback") or {}
        if feedback.get("blockReason"):
            self.block_reason = feedback["blockReason"]
            self.block_message = feedback.get("blockReasonMessage")
        delta = ""
        for cand in expect(chunk.get("candidates") or [], list, "candidates", "gemini")[:1]:
            cand = expect(cand, dict, "candidates[0]", "gemini")
            self.candidates_seen = True
            if cand.get("finishReason"):
                self.finish_reason = cand["finishReason"]
                self.finish_message = cand.get("finishMessage")
            content = expect(cand.get("content") or {}, dict, "candidates[0].content", "gemini")
            for part in expect(content.get("parts") or [], list, "content.parts", "gemini"):
                part = expect(part, dict, "a part", "gemini")
                self._keep(part)
                delta += self._part(part)
        return delta

    def _keep(self, part: dict[str, Any]) -> None:
        """Record the part for the echo; consecutive plain text parts become one."""
        plain = set(part) == {"text"}
        last = self.raw[-1] if self.raw else None
        if plain and last is not None and set(last) == {"text"}:
            last["text"] += part["text"]
        elif plain or part.get("thoughtSignature") or "functionCall" in part:
            self.raw.append(dict(part))  # thought summaries without a signature are not echoed

    def _part(self, part: dict[str, Any]) -> str:
        fc = part.get("functionCall")
        if fc is not None:
            data: dict[str, Any] = {ORIGIN_KEY: True}
            if fc.get("id"):
                data[ID_KEY] = fc["id"]
            if part.get("thoughtSignature"):
                data[SIGNATURE_KEY] = part["thoughtSignature"]
            args = json.dumps(fc.get("args") or {}, ensure_ascii=False)
            self.calls.append(
                ToolCall(fc.get("id") or new_call_id(), fc.get("name", ""), args, data)
            )
            return ""
        if part.get("thought"):  # a thought summary: not answer text (echoed via PARTS_KEY)
            return ""
        text = part.get("text")
        if not isinstance(text, str):
            return ""
        if part.get("thoughtSignature"):
            self.text_signature = part["thoughtSignature"]
        self.parts.append(text)
        return text

    def turn(self) -> ModelTurn:
        if not self.calls and not self.text():  # a stream may carry only empty text parts
            self._raise_if_empty()
        turn = ModelTurn(self.text(), self.calls, self.usage, self.finish_reason)
        if self.text_signature:
            turn.provider_data[TEXT_SIGNATURE_KEY] = self.text_signature
        if any("thoughtSignature" in p for p in self.raw):
            turn.provider_data[PARTS_KEY] = [p for p in self.raw if p != {"text": ""}]
        return turn

    def _raise_if_empty(self) -> None:
        if not self.candidates_seen and not self.block_reason:
            raise ProviderError(
                "malformed response: no candidates and no promptFeedback", provider="gemini"
            )
        if self.block_reason:
            extra = f": {self.block_message}" if self.block_message else ""
            raise ProviderError(
                f"the prompt was blocked (promptFeedback.blockReason {self.block_reason}{extra})",
                provider="gemini",
            )
        reason = self.finish_reason
        extra = f": {self.finish_message}" if self.finish_message else ""
        if reason in BLOCKED:
            raise ProviderError(
                f"the response was blocked (finishReason {reason}{extra})", provider="gemini"
            )
        if reason not in NORMAL_FINISH:
            raise ProviderError(
                f"the model returned no content (finishReason {reason}{extra})", provider="gemini"
            )
