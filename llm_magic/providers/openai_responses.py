"""OpenAI Responses (`POST /v1/responses`): the default for OpenAI's own API.

OpenAI recommends it for tool use with reasoning models, some models answer only there (catalog
`apis == ("responses",)`), and only there is a reasoning model's reasoning carried from one tool
round to the next. We keep no state at OpenAI (`store: false`): the reasoning items come back
with their `encrypted_content` (`include: ["reasoning.encrypted_content"]`), are kept on the
turn's `provider_data` and are sent back unchanged, before that turn's function calls, in the
next request's `input` (platform.openai.com/docs/guides/reasoning#keeping-reasoning-items-in-
context; openai-python `src/openai/types/responses/response_reasoning_item_param.py`).

Auth, tool names, schemas and refusals are the Chat adapter's (`OpenAIChatAdapter`); only the body,
the item list and the event stream differ.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import catalog
from .._sse import SSEEvent
from ..errors import ProviderError
from ..media import Media
from ..messages import Message, ModelRequest, ModelTurn, ToolCall, ToolResult, Usage
from ._portable import openai_schema, tool_schema
from .base import Accumulator, expect, new_call_id
from .openai import (
    OpenAIChatAdapter,
    json_schema_spec,
    raise_if_refused,
    reasoning_effort,
    valid_json,
)

PROVIDER = "openai"
REASONING_KEY = "openai_reasoning"  # provider_data key of the turn's reasoning items
# `incomplete_details.reason` (openai-python `types/responses/response.py` IncompleteDetails)
# in the neutral words the Chat adapter reports.
_INCOMPLETE = {"max_output_tokens": "length", "content_filter": "content_filter"}


class OpenAIResponsesAdapter(OpenAIChatAdapter):
    """One OpenAI model over the Responses API (see the module docstring)."""

    name = "openai"
    documents = True

    def path(self, request: ModelRequest, stream: bool) -> str:
        return "/responses"

    def accumulator(self) -> Accumulator:
        return ResponsesAccumulator()

    def parse(self, data: Any) -> ModelTurn:
        return parse_response(data)

    def build_body(self, request: ModelRequest) -> dict[str, Any]:
        """The request (openai-python `types/responses/response_create_params.py`). Fields
        that depend on the model (reasoning effort, an output cap) go through `body.update`
        at the end, so a new option is one line."""
        body: dict[str, Any] = {
            "model": self.wire_model,
            "input": self.wire_input(request),
            "stream": request.stream,
            "store": False,  # nothing kept at OpenAI: the reasoning travels in `input`
        }
        if self.reasons():
            body["include"] = ["reasoning.encrypted_content"]
        if request.system:
            body["instructions"] = request.system
        if request.tools:
            body["tools"] = [
                {
                    "type": "function",
                    "name": t.name,
                    "description": t.description,
                    "parameters": tool_schema(t, "openai", openai_schema),
                    # Responses makes functions strict unless told; our schemas are not
                    # all strict-shaped, and arguments are validated here either way
                    "strict": False,
                }
                for t in request.tools
            ]
            if request.tool_choice:
                body["tool_choice"] = tool_choice(request.tool_choice)
        if request.output is not None:
            spec = json_schema_spec(request.output)
            body["text"] = {"format": {"type": "json_schema", **spec}}
            self.warn_past_strict_limits(request.output, spec)
        effort = reasoning_effort(self, request.thinking)
        if effort is not None:
            body["reasoning"] = {"effort": effort}
        body.update(self.request_options(request, "max_output_tokens"))
        return body

    def reasons(self) -> bool:
        """Whether the catalog knows this model (or its family) as a reasoning model: only those
        return reasoning items worth carrying."""
        info = catalog.lookup("openai", self.wire_model)
        return info is not None and info.reasoning

    def wire_input(self, request: ModelRequest) -> list[dict[str, Any]]:
        return self.wire_cache.encode_all(request.messages, "openai-responses", input_items)


# ---- request building (pure functions) ------------------------------------------------------
def tool_choice(choice: str) -> Any:
    """A mode as it is; a tool name as `{"type": "function", "name"}` (openai-python
    `types/responses/tool_choice_function_param.py`)."""
    if choice in ("auto", "none", "required"):
        return choice
    return {"type": "function", "name": choice}


def input_items(msg: Message) -> list[dict[str, Any]]:
    """One neutral message as Responses input items (openai-python
    `types/responses/response_input_param.py`): an assistant turn is its reasoning items
    (unchanged), its text, then its function calls; a tool turn is one output per call."""
    if msg.role == "tool":
        return [
            {"type": "function_call_output", "call_id": r.call_id, "output": _output(r)}
            for r in msg.tool_results
        ]
    if msg.role != "assistant":
        if msg.media:  # images and files first, then the text
            parts = [*map(input_part, msg.media), *([_text(msg.text)] if msg.text else [])]
            return [{"type": "message", "role": msg.role, "content": parts}]
        return [{"type": "message", "role": msg.role, "content": msg.text}]
    items: list[dict[str, Any]] = list(msg.provider_data.get(REASONING_KEY) or ())
    if msg.text or not msg.tool_calls:
        items.append({"type": "message", "role": "assistant", "content": msg.text})
    items += [
        {
            "type": "function_call",
            "call_id": c.id,
            "name": c.name,
            "arguments": valid_json(c.arguments),
        }
        for c in msg.tool_calls
    ]
    return items


def _output(result: ToolResult) -> str | list[dict[str, Any]]:
    """A call's output: its text, or its text and images as a list of input parts."""
    text = result.content or "(empty)"
    if not result.media:
        return text
    return [_text(text), *map(input_part, result.media)]


def _text(text: str) -> dict[str, Any]:
    return {"type": "input_text", "text": text}


def input_part(media: Media) -> dict[str, Any]:
    """An `input_image` with a data URL (openai-python
    `types/responses/response_input_image_content_param.py`) or a PDF `input_file` with its
    data URL and a file name (`response_input_file_content_param.py`); the same parts go in a
    message's content and in a `function_call_output`'s `output` list
    (`response_function_call_output_item_list_param.py`)."""
    if media.is_image:
        return {"type": "input_image", "image_url": media.data_uri()}
    return {
        "type": "input_file",
        "filename": media.name or "document.pdf",
        "file_data": media.data_uri(),
    }


# ---- response parsing ------------------------------------------------------------------------
def usage_of(raw: Any) -> Usage:
    """`usage` (openai-python `types/responses/response_usage.py`): the details are parts of
    the totals, as in the neutral Usage."""
    if not isinstance(raw, dict):
        return Usage()
    inp = raw.get("input_tokens_details") or {}
    out = raw.get("output_tokens_details") or {}
    return Usage(
        raw.get("input_tokens") or 0,
        raw.get("output_tokens") or 0,
        cache_read_tokens=inp.get("cached_tokens") or 0,
        cache_write_tokens=inp.get("cache_write_tokens") or 0,
        reasoning_tokens=out.get("reasoning_tokens") or 0,
    )


def finish_reason(response: dict[str, Any], calls: list[ToolCall]) -> str | None:
    """The neutral finish reason of a Response object's `status` and `incomplete_details`."""
    status = response.get("status")
    if status == "incomplete":
        reason = (response.get("incomplete_details") or {}).get("reason")
        return _INCOMPLETE.get(str(reason), str(reason or "incomplete"))
    if status == "completed":
        return "tool_calls" if calls else "stop"
    return str(status) if status else None


def failure(response: Any) -> str:
    """The message of a failed Response object (`error: {code, message}`)."""
    err = (response or {}).get("error") if isinstance(response, dict) else None
    if not isinstance(err, dict):
        return "the response failed"
    code = err.get("code")
    return f"{err.get('message') or 'the response failed'}" + (f" [{code}]" if code else "")


def turn_of(items: list[Any], usage: Usage, response: dict[str, Any]) -> ModelTurn:
    """The turn of a list of output items, whether parsed whole or assembled from a stream."""
    text: list[str] = []
    refusal: list[str] = []
    calls: list[ToolCall] = []
    reasoning: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        kind = expect(item, dict, f"output[{i}]", PROVIDER).get("type")
        if kind == "message":
            for part in expect(item.get("content") or [], list, "message content", PROVIDER):
                if part.get("type") == "output_text":
                    text.append(part.get("text") or "")
                elif part.get("type") == "refusal":
                    refusal.append(part.get("refusal") or "")
        elif kind == "function_call":
            calls.append(
                ToolCall(
                    item.get("call_id") or new_call_id(),
                    item.get("name") or "",
                    item.get("arguments") or "{}",
                )
            )
        elif kind == "reasoning":
            reasoning.append(item)
    said = "".join(text)
    raise_if_refused("".join(refusal), said, calls)
    reason = finish_reason(response, calls)
    if not said and not calls and reason not in ("stop", "tool_calls"):
        raise ProviderError(
            f"the model returned no content ({reason or 'no status'})", provider=PROVIDER
        )
    turn = ModelTurn(said, calls, usage, reason)
    if reasoning:
        turn.provider_data[REASONING_KEY] = reasoning
    return turn


def parse_response(data: Any) -> ModelTurn:
    """A whole Response object (openai-python `types/responses/response.py`)."""
    data = expect(data, dict, "the response", provider=PROVIDER)
    if data.get("status") == "failed" or data.get("error"):
        raise ProviderError(failure(data), provider=PROVIDER)
    if "output" not in data:
        raise ProviderError(f"malformed response: no output: {str(data)[:200]}", provider=PROVIDER)
    items = expect(data.get("output") or [], list, "output", provider=PROVIDER)
    return turn_of(items, usage_of(data.get("usage")), data)


@dataclass
class _Item:
    """One output item being streamed: what `output_item.added` said, and the deltas so far."""

    item: dict[str, Any]
    text: list[str] = field(default_factory=list)
    refusal: list[str] = field(default_factory=list)
    arguments: list[str] = field(default_factory=list)
    done: bool = False

    def whole(self) -> dict[str, Any]:
        """The item as `output_item.done` gives it, or as the deltas made it when none came."""
        if self.done:
            return self.item
        kind = self.item.get("type")
        if kind == "message":
            parts = [{"type": "output_text", "text": "".join(self.text)}]
            if self.refusal:
                parts.append({"type": "refusal", "refusal": "".join(self.refusal)})
            return {**self.item, "content": parts}
        if kind == "function_call":
            return {**self.item, "arguments": "".join(self.arguments) or self.item.get("arguments")}
        return self.item


class ResponsesAccumulator(Accumulator):
    """Builds a ModelTurn from Responses stream events (openai-python
    `types/responses/response_stream_event.py`), items keyed by `output_index`."""

    provider = PROVIDER
    end_marker = "its response.completed event"

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[int, _Item] = {}
        self.parts: list[str] = []
        self.response: dict[str, Any] = {}

    def skip(self, event: SSEEvent) -> bool:
        return self.done or super().skip(event)

    def text(self) -> str:
        return "".join(self.parts)

    def take(self, event: str, payload: Any) -> str:
        data = expect(payload, dict, f"the {event or 'data'!r} event", provider=PROVIDER)
        kind = data.get("type") or event
        if kind == "response.output_text.delta":
            delta = str(data.get("delta") or "")
            self._slot(data).text.append(delta)
            self.parts.append(delta)
            return delta
        if kind == "response.function_call_arguments.delta":
            self._slot(data).arguments.append(str(data.get("delta") or ""))
        elif kind == "response.function_call_arguments.done":
            slot = self._slot(data)
            slot.arguments[:] = [str(data.get("arguments") or "")]
        elif kind == "response.refusal.delta":
            self._slot(data).refusal.append(str(data.get("delta") or ""))
        elif kind == "response.output_item.added":
            item = expect(data.get("item"), dict, "item", provider=PROVIDER)
            self.items[int(data.get("output_index", len(self.items)))] = _Item(dict(item))
        elif kind == "response.output_item.done":
            item = expect(data.get("item"), dict, "item", provider=PROVIDER)
            slot = self.items.setdefault(int(data.get("output_index", len(self.items))), _Item({}))
            slot.item, slot.done = dict(item), True
        elif kind in ("response.completed", "response.incomplete"):
            self.response = expect(data.get("response") or {}, dict, "response", provider=PROVIDER)
            self.done = True
        elif kind == "response.failed":
            raise ProviderError(
                f"error in stream: {failure(data.get('response'))}", provider=PROVIDER
            )
        elif kind == "error":  # types/responses/response_error_event.py: code, message, param
            code = data.get("code")
            message = str(data.get("message") or "error event")
            raise ProviderError(
                f"error in stream: {message}" + (f" [{code}]" if code else ""),
                provider=PROVIDER,
            )
        return ""

    def _slot(self, data: dict[str, Any]) -> _Item:
        index = int(data.get("output_index", -1))
        slot = self.items.get(index)
        if slot is None:
            raise ProviderError(
                f"{data.get('type')} for unknown output item {index}", provider=PROVIDER
            )
        return slot

    def turn(self) -> ModelTurn:
        items = [slot.whole() for _, slot in sorted(self.items.items())]
        if not items:  # no item events (a proxy that forwards only the end): the final output
            items = expect(self.response.get("output") or [], list, "output", provider=PROVIDER)
        return turn_of(items, usage_of(self.response.get("usage")), self.response)
