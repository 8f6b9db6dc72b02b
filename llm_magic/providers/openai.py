"""OpenAI Chat Completions, and every OpenAI-compatible server by base URL.

`OpenAICompat` holds the switches for servers that differ from OpenAI (llama.cpp, Ollama,
vLLM, LM Studio); the adapter reads them in one place each, so the chain never knows.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass
from typing import Any

from .. import catalog
from .._sse import SSEEvent
from ..errors import ProviderError, RefusalError
from ..media import Media, MediaPolicy
from ..messages import Message, ModelRequest, ModelTurn, OutputSchema, ToolCall, Usage
from ._fields import drop_refused_sampling
from ._portable import openai_schema, openai_strict_schema, strict_limit, tool_schema
from .base import (
    Accumulator,
    Provider,
    arguments_object,
    capped_tokens,
    expect,
    images_follow,
    new_call_id,
)

PROVIDER = "openai"
# OpenAI model ids that answer text turns (not embeddings, audio, realtime, images)
_CHAT_MODEL = re.compile(r"^(gpt-|o\d|chatgpt-)(?!.*(audio|realtime|tts|transcribe|image))")


@dataclass
class OpenAICompat:
    """How a server departs from OpenAI's own API."""

    content_string: bool = False  # assistant `content` must be "" rather than null
    stream_with_tools: bool = True  # False: tool turns are sent non-streaming
    stream_usage: bool = True  # send stream_options.include_usage
    parallel_tool_calls: bool | None = None  # value to send; None omits the field
    model_without_tools: str | None = None  # another served model for turns without tools
    # OpenAI's current field for every model: o-series and gpt-5 reject the deprecated
    # `max_tokens` (openai-python `completion_create_params.py`: "max_tokens ... not compatible
    # with o-series models"); compatible servers (llama.cpp, Ollama, vLLM) read `max_tokens`.
    max_tokens_field: str = "max_completion_tokens"
    # A typed answer as `response_format` (Structured Outputs) rather than the final tool.
    # OpenAI's own API only: compatible servers differ in whether they take it beside `tools`
    # and in how much of a schema they enforce, and the embedded model needs its tool.
    native_output: bool = False
    # OpenAI's own API: the catalog's rules of each model apply (fixed sampling, reasoning
    # effort); compatible servers serve other models under their own names.
    catalog: bool = False


OPENAI = OpenAICompat(native_output=True, catalog=True)
COMPATIBLE = OpenAICompat(content_string=True, stream_usage=False, max_tokens_field="max_tokens")


class OpenAIChatAdapter(Provider):
    name = "openai-chat"
    api_vendor = "openai"
    default_base_url = "https://api.openai.com/v1"

    def __init__(self, model: str, *, compat: OpenAICompat | None = None, **kwargs: Any) -> None:
        self.compat = compat or OPENAI
        self.native_output = self.compat.native_output
        self.wire_model = model  # the name sent on the wire (the local model serves aliases)
        self.info = catalog.lookup("openai", model) if self.compat.catalog else None
        self._limits_checked: set[str] = set()  # typed answers whose strict limits were read
        super().__init__(model, **kwargs)

    def auth_headers(self, api_key: str | None) -> dict[str, str]:
        return {"authorization": f"Bearer {api_key}"} if api_key else {}

    def path(self, request: ModelRequest, stream: bool) -> str:
        return "/chat/completions"

    def model_ids(self, data: Any) -> list[str]:
        """OpenAI's own list holds embedding, audio and image models too: only chat models."""
        ids = super().model_ids(data)
        return [m for m in ids if _CHAT_MODEL.match(m)] if self.compat == OPENAI else ids

    def accumulator(self) -> Accumulator:
        return StreamAccumulator()

    def parse(self, data: Any) -> ModelTurn:
        return parse_completion(data)

    def build_body(self, request: ModelRequest) -> dict[str, Any]:
        compat = self.compat
        tools_on = bool(request.tools) and request.tool_choice != "none"
        model = self.wire_model
        if not tools_on and compat.model_without_tools:
            model = compat.model_without_tools
        body: dict[str, Any] = {"model": model, "messages": self.wire_messages(request)}
        stream = request.stream and (compat.stream_with_tools or not tools_on)
        body["stream"] = stream
        if stream and compat.stream_usage:
            body["stream_options"] = {"include_usage": True}
        if request.tools and (tools_on or not compat.model_without_tools):
            body["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": tool_schema(t, "openai", openai_schema),
                    },
                }
                for t in request.tools
            ]
            if request.tool_choice:
                body["tool_choice"] = _tool_choice(request.tool_choice)
            if compat.parallel_tool_calls is not None:
                body["parallel_tool_calls"] = compat.parallel_tool_calls
        if request.output is not None:
            body["response_format"] = response_format(request.output)
            self.warn_past_strict_limits(request.output, body["response_format"]["json_schema"])
        effort = reasoning_effort(self, request.thinking)
        if effort is not None:
            body["reasoning_effort"] = effort
        body.update(self.request_options(request, compat.max_tokens_field))
        return body

    def request_options(self, request: ModelRequest, max_tokens_field: str) -> dict[str, Any]:
        """The user's options for one request, `max_tokens` under the API's own field name
        (the deprecated Chat field, which reasoning models reject, is never sent to OpenAI) and
        lowered to a budget's cap (`ModelRequest.max_output_tokens`),
        without the sampling fields the model refuses (llm_magic.providers._fields)."""
        options = {**self.options, **request.options}
        if "max_tokens" in options:
            options[max_tokens_field] = options.pop("max_tokens")
        limit = capped_tokens(options.get(max_tokens_field), request.max_output_tokens)
        if limit is not None:  # a budget's cap, never above the user's own limit
            options[max_tokens_field] = limit
        drop_refused_sampling(self, options)
        return options

    def warn_past_strict_limits(self, output: OutputSchema, spec: dict[str, Any]) -> None:
        """Say once per answer type when its schema is too big for strict mode: it then goes
        `strict: false`, a guide the model may leave, and only the validation here holds."""
        if output.name in self._limits_checked:
            return
        self._limits_checked.add(output.name)
        past = strict_limit(spec["schema"])
        if past is not None:
            warnings.warn(
                f"the schema of {output.name} is past OpenAI's strict mode limits ({past}): it is "
                "sent with strict: false, and the answer is validated when it comes back",
                stacklevel=2,
            )

    def wire_messages(self, request: ModelRequest) -> list[dict[str, Any]]:
        out = self.wire_cache.encode_all(request.messages, "openai", self._wire)
        if request.system:
            return out.after({"role": "system", "content": request.system})
        return out

    def _wire(self, msg: Message) -> list[dict[str, Any]]:
        if msg.role == "tool":
            return self._results(msg)
        if msg.role != "assistant" or not msg.tool_calls:
            if msg.role == "user" and msg.media and self.vision:  # the images, then the text
                parts = [*map(self._part, msg.media), *([_text(msg.text)] if msg.text else [])]
                return [{"role": "user", "content": parts}]
            return [{"role": msg.role, "content": self._with_omitted(msg.text, msg.media)}]
        content: str | None = msg.text or ("" if self.compat.content_string else None)
        calls = [
            {
                "id": c.id,
                "type": "function",
                # echo valid JSON (Ollama rejects what it cannot parse)
                "function": {"name": c.name, "arguments": valid_json(c.arguments)},
            }
            for c in msg.tool_calls
        ]
        return [{"role": "assistant", "content": content, "tool_calls": calls}]

    def _results(self, msg: Message) -> list[dict[str, Any]]:
        """One `tool` message per result; a tool message takes text only (openai-python
        `types/chat/chat_completion_tool_message_param.py`), so the results' images follow in
        one user message, each group after a text naming its call."""
        out: list[dict[str, Any]] = []
        parts: list[dict[str, Any]] = []
        for r in msg.tool_results:
            text = r.content or "(empty)"
            if r.media and self.vision:
                parts += [_text(images_follow(r)), *map(self._part, r.media)]
            elif r.media:
                text = self._with_omitted(text, r.media)
            out.append({"role": "tool", "tool_call_id": r.call_id, "content": text})
        return out + ([{"role": "user", "content": parts}] if parts else [])

    def _part(self, media: Media) -> dict[str, Any]:
        """An image as an `image_url` part with a data URL (openai-python `types/chat/
        chat_completion_content_part_image_param.py`); a document, which Chat Completions
        takes none of here, as the line saying it was left out."""
        if media.is_image:
            return {"type": "image_url", "image_url": {"url": media.data_uri()}}
        return _text(MediaPolicy.of(self).omitted(media))

    def _with_omitted(self, text: str, media: tuple[Media, ...]) -> str:
        """The text, and a line for each item this model cannot take (no vision, documents)."""
        policy = MediaPolicy.of(self)
        return "\n".join([text, *(policy.omitted(m) for m in media)]) if media else text


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def reasoning_effort(provider: Provider, thinking: str | None) -> str | None:
    """The run's thinking level as an OpenAI reasoning model's `reasoning_effort` (openai-python
    `types/shared/reasoning_effort.py`); None: nothing to send. A reasoning model always
    reasons, and not every one takes `none` or `minimal`, so "off" asks for `low`; a model
    that does not reason gets nothing (both said once)."""
    info = provider.info
    if thinking is None:
        return None
    if info is None or info.thinking != "effort":
        if thinking != "off":
            provider.warn_once(
                "thinking",
                f"{provider.model} takes no reasoning effort; the thinking option was left out",
            )
        return None
    if thinking == "off":
        provider.warn_once(
            "thinking-off",
            f"{provider.model} always reasons; thinking='off' was sent as reasoning_effort 'low'",
        )
        return "low"
    return thinking


def response_format(output: OutputSchema) -> dict[str, Any]:
    """Structured Outputs on Chat Completions: `response_format: {"type": "json_schema",
    "json_schema": {"name", "schema", "strict"}}` (platform.openai.com/docs/api-reference/chat/
    create#chat-create-response_format; openai-python `types/shared_params/
    response_format_json_schema.py`). It goes together with `tools`: the model may call them
    first, and its final message's `content` is JSON matching the schema
    (platform.openai.com/docs/guides/structured-outputs, "function calling" vs "response_format");
    a refusal comes as `message.refusal` (#refusals), raised as a RefusalError by `parse`."""
    return {"type": "json_schema", "json_schema": json_schema_spec(output)}


def json_schema_spec(output: OutputSchema) -> dict[str, Any]:
    """`{"name", "schema", "strict"}` of a typed answer, as both OpenAI APIs take it (Chat nests
    it in `response_format.json_schema`, Responses flattens it into `text.format`)."""
    schema, strict = openai_strict_schema(output.schema)
    return {"name": output.name, "schema": schema, "strict": strict}


def _tool_choice(choice: str) -> Any:
    """Chat's `tool_choice`: a mode as it is, a tool name as `{"type": "function", ...}`."""
    if choice in ("auto", "none", "required"):
        return choice
    return {"type": "function", "function": {"name": choice}}


def valid_json(raw: str) -> str:
    """The arguments as they were when they parse, else the JSON of what could be read."""
    try:
        json.loads(raw)
        return raw
    except ValueError:
        return json.dumps(arguments_object(raw))


def parse_completion(data: Any) -> ModelTurn:
    data = expect(data, dict, "the response", PROVIDER)
    choices = expect(data.get("choices") or [], list, "choices", PROVIDER)
    if not choices:
        raise ProviderError(f"response has no choices: {str(data)[:200]}", provider=PROVIDER)
    choice = expect(choices[0], dict, "choices[0]", PROVIDER)
    message = expect(choice.get("message") or {}, dict, "choices[0].message", PROVIDER)
    calls = [
        ToolCall(
            id=c.get("id") or new_call_id(),
            name=(c.get("function") or {}).get("name", ""),
            arguments=(c.get("function") or {}).get("arguments") or "{}",
        )
        for c in expect(message.get("tool_calls") or [], list, "message.tool_calls", PROVIDER)
    ]
    text = message.get("content") or ""
    raise_if_refused(message.get("refusal"), text, calls)
    return ModelTurn(
        text=text,
        tool_calls=calls,
        usage=_usage(data.get("usage")),
        finish_reason=choice.get("finish_reason"),
    )


def raise_if_refused(refusal: Any, text: str, calls: list[ToolCall]) -> None:
    """A refusal (`message.refusal`, `delta.refusal`) ends the run as what it is, not as an
    empty answer (openai-python `types/chat/chat_completion_message.py`: `refusal`)."""
    if refusal and not text and not calls:
        raise RefusalError(str(refusal), provider=PROVIDER)


def _usage(raw: dict[str, Any] | None) -> Usage:
    if not raw:
        return Usage()
    prompt = raw.get("prompt_tokens_details") or {}
    completion = raw.get("completion_tokens_details") or {}
    return Usage(
        raw.get("prompt_tokens") or 0,
        raw.get("completion_tokens") or 0,
        cache_read_tokens=prompt.get("cached_tokens") or 0,
        cache_write_tokens=prompt.get("cache_write_tokens") or 0,
        reasoning_tokens=completion.get("reasoning_tokens") or 0,
    )


class StreamAccumulator(Accumulator):
    """Assembles text and tool calls from chunks; calls keyed by index, ids and names set once."""

    provider = PROVIDER
    end_marker = "its [DONE] marker"

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.refusal: list[str] = []
        self.calls: dict[int, dict[str, Any]] = {}
        self.usage = Usage()
        self.finish_reason: str | None = None
        self.choices_seen = False

    def skip(self, event: SSEEvent) -> bool:
        if self.done:
            return True  # read to the end so the connection goes back to the pool
        data = event.data
        if data.startswith("[DONE]"):  # the SDK's test: any data starting with [DONE]
            self.done = True
            return True
        return not data or data.isspace()  # `Accumulator.skip`, written out: once per token

    def text(self) -> str:
        return "".join(self.parts)

    def take(self, event: str, payload: Any) -> str:
        # once per token: `expect` is called only when a value has the wrong type
        chunk = payload
        if type(chunk) is not dict:
            expect(chunk, dict, "a stream chunk", PROVIDER)
        if chunk.get("usage"):
            self.usage = _usage(chunk["usage"])
        choices = chunk.get("choices") or []
        if type(choices) is not list:
            expect(choices, list, "choices", PROVIDER)
        delta_text = ""
        for i, choice in enumerate(choices):
            if type(choice) is not dict:
                expect(choice, dict, f"choices[{i}]", PROVIDER)
            self.choices_seen = True
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
            delta = choice.get("delta") or {}
            if type(delta) is not dict:
                expect(delta, dict, f"choices[{i}].delta", PROVIDER)
            content = delta.get("content")
            if content:
                self.parts.append(content)
                delta_text += content
            if delta.get("refusal"):
                self.refusal.append(delta["refusal"])
            calls = delta.get("tool_calls")
            if calls:
                for tc in expect(calls, list, "delta.tool_calls", PROVIDER):
                    self._add_call(expect(tc, dict, "a tool call delta", PROVIDER))
        return delta_text

    def _add_call(self, tc: dict[str, Any]) -> None:
        index = tc.get("index")
        if index is None:  # no index: a new call when an id appears, else the last one
            index = len(self.calls) if tc.get("id") or not self.calls else max(self.calls)
        slot = self.calls.setdefault(index, {"id": None, "name": "", "arguments": []})
        if tc.get("id") and not slot["id"]:
            slot["id"] = tc["id"]
        fn = tc.get("function") or {}
        if fn.get("name") and not slot["name"]:
            slot["name"] = fn["name"]
        if fn.get("arguments"):
            slot["arguments"].append(fn["arguments"])

    def turn(self) -> ModelTurn:
        calls = [
            ToolCall(s["id"] or new_call_id(), s["name"], "".join(s["arguments"]) or "{}")
            for _, s in sorted(self.calls.items())
        ]
        raise_if_refused("".join(self.refusal), self.text(), calls)
        if not self.choices_seen:
            raise ProviderError(
                "the stream carried no choices, only empty chunks", provider=PROVIDER
            )
        if not self.text() and not calls and self.finish_reason in (None, "content_filter"):
            reason = self.finish_reason or "no finish_reason"
            raise ProviderError(f"the model returned no content ({reason})", provider=PROVIDER)
        return ModelTurn(self.text(), calls, self.usage, self.finish_reason)
