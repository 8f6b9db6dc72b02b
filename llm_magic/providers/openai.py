"""OpenAI Chat Completions, and every OpenAI-compatible server by base URL.

`OpenAICompat` holds the switches for servers that differ from OpenAI (llama.cpp, Ollama,
vLLM, LM Studio); the adapter reads them in one place each, so the chain never knows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..errors import ProviderError, StreamError
from ..messages import Message, ModelRequest, ModelTurn, ToolCall, Usage
from .base import Provider, TextCallback, arguments_object, new_call_id


@dataclass
class OpenAICompat:
    """How a server departs from OpenAI's own API."""

    content_string: bool = False  # assistant `content` must be "" rather than null
    stream_with_tools: bool = True  # False: tool turns are sent non-streaming
    stream_usage: bool = True  # send stream_options.include_usage
    parallel_tool_calls: bool | None = None  # value to send; None omits the field
    model_without_tools: str | None = None  # another served model for turns without tools
    max_tokens_field: str | None = None  # e.g. "max_tokens" for servers that want it


OPENAI = OpenAICompat()
COMPATIBLE = OpenAICompat(content_string=True, stream_usage=False)


class OpenAIProvider(Provider):
    name = "openai"
    default_base_url = "https://api.openai.com/v1"

    def __init__(self, model: str, *, compat: OpenAICompat | None = None, **kwargs: Any) -> None:
        self.compat = compat or OPENAI
        self.wire_model = model  # the name sent on the wire (the local model serves aliases)
        super().__init__(model, **kwargs)

    def auth_headers(self, api_key: str | None) -> dict[str, str]:
        return {"authorization": f"Bearer {api_key}"} if api_key else {}

    async def send(self, request: ModelRequest, on_text: TextCallback | None = None) -> ModelTurn:
        body = self.build_body(request)
        if body["stream"]:
            return await self._stream(body, on_text)
        turn = parse_completion(await self.http.post_json("/chat/completions", body))
        if on_text and turn.text:
            on_text(turn.text)
        return turn

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
                        "parameters": t.parameters,
                    },
                }
                for t in request.tools
            ]
            if request.tool_choice:
                body["tool_choice"] = _tool_choice(request.tool_choice)
            if compat.parallel_tool_calls is not None:
                body["parallel_tool_calls"] = compat.parallel_tool_calls
        options = {**self.options, **request.options}
        if compat.max_tokens_field and "max_tokens" in options:
            options[compat.max_tokens_field] = options.pop("max_tokens")
        body.update(options)
        return body

    def wire_messages(self, request: ModelRequest) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if request.system:
            out.append({"role": "system", "content": request.system})
        for msg in request.messages:
            out.extend(self._wire(msg))
        return out

    def _wire(self, msg: Message) -> list[dict[str, Any]]:
        if msg.role == "tool":
            return [
                {"role": "tool", "tool_call_id": r.call_id, "content": r.content or "(empty)"}
                for r in msg.tool_results
            ]
        if msg.role != "assistant" or not msg.tool_calls:
            return [{"role": msg.role, "content": msg.text}]
        content: str | None = msg.text or ("" if self.compat.content_string else None)
        calls = [
            {
                "id": c.id,
                "type": "function",
                # echo valid JSON (Ollama rejects what it cannot parse)
                "function": {"name": c.name, "arguments": _valid_json(c.arguments)},
            }
            for c in msg.tool_calls
        ]
        return [{"role": "assistant", "content": content, "tool_calls": calls}]

    async def _stream(self, body: dict[str, Any], on_text: TextCallback | None) -> ModelTurn:
        acc = _StreamAccumulator()
        done = False
        async with self.http.stream("/chat/completions", body) as events:
            try:
                async for event in events:
                    data = event.data
                    if done:
                        continue  # read to the end so the connection goes back to the pool
                    if data.startswith("[DONE]"):
                        done = True
                        continue
                    chunk = json.loads(data)
                    if "error" in chunk:
                        err = chunk["error"]
                        message = (
                            err.get("message", str(err)) if isinstance(err, dict) else str(err)
                        )
                        raise ProviderError(f"error in stream: {message}", provider=self.name)
                    delta_text = acc.add(chunk)
                    if delta_text and on_text:
                        on_text(delta_text)
            except StreamError as exc:
                exc.partial_text = "".join(acc.text)
                raise
        if not done:
            raise StreamError(
                "the stream ended before its [DONE] marker",
                provider=self.name,
                partial_text="".join(acc.text),
            )
        return acc.turn()


def _tool_choice(choice: str) -> Any:
    if choice in ("auto", "none", "required"):
        return choice
    return {"type": "function", "function": {"name": choice}}


def _valid_json(raw: str) -> str:
    try:
        json.loads(raw)
        return raw
    except ValueError:
        return json.dumps(arguments_object(raw))


def parse_completion(data: dict[str, Any]) -> ModelTurn:
    choices = data.get("choices") or []
    if not choices:
        raise ProviderError(f"response has no choices: {str(data)[:200]}", provider="openai")
    choice = choices[0]
    message = choice.get("message") or {}
    calls = [
        ToolCall(
            id=c.get("id") or new_call_id(),
            name=(c.get("function") or {}).get("name", ""),
            arguments=(c.get("function") or {}).get("arguments") or "{}",
        )
        for c in message.get("tool_calls") or []
    ]
    return ModelTurn(
        text=message.get("content") or "",
        tool_calls=calls,
        usage=_usage(data.get("usage")),
        finish_reason=choice.get("finish_reason"),
    )


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


class _StreamAccumulator:
    """Assembles text and tool calls from chunks; calls keyed by index, ids and names set once."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.calls: dict[int, dict[str, Any]] = {}
        self.usage = Usage()
        self.finish_reason: str | None = None

    def add(self, chunk: dict[str, Any]) -> str:
        if chunk.get("usage"):
            self.usage = _usage(chunk["usage"])
        delta_text = ""
        for choice in chunk.get("choices") or ():
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
            delta = choice.get("delta") or {}
            content = delta.get("content")
            if content:
                self.text.append(content)
                delta_text += content
            for tc in delta.get("tool_calls") or ():
                self._add_call(tc)
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
        return ModelTurn("".join(self.text), calls, self.usage, self.finish_reason)
