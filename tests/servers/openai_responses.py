"""OpenAI Responses (`POST /v1/responses`) loopback server.

Same auth, error bodies and tool-call ids as the Chat Completions server (`OpenAIServer`), the
Responses request rules and the Responses renderings on top. Each rule cites where it comes from
(openai-python 3.3.1 `src/openai/types/responses/...`, or the API reference at
platform.openai.com/docs/api-reference/responses), read 2026-12-07; the messages are the API's
own 400s.

A reasoning model (llm_magic.catalog: `reasoning`) answers with a reasoning item before its
output, carrying `encrypted_content` when the request asked for it with
`include: ["reasoning.encrypted_content"]`; the server remembers what it issued and refuses a
reasoning item sent back with content it never issued, or without any when `store` is false.
`Reply.finish_reason` "max_output_tokens" / "content_filter" makes the response incomplete,
"failed" makes it fail (`response.failed`).
"""

from __future__ import annotations

import functools
import itertools
import time

from llm_magic import catalog

from .base import ResolvedCall, dumps, signature, token
from .media_rules import check_media, parse_data_url
from .openai import NAME_RE, OpenAIServer
from .script import Reply, split_args, split_text

# Top-level fields of `response_create_params.py` (ResponseCreateParamsBase and the stream
# variants): anything else is "Unknown parameter".
FIELDS = {
    "background",
    "context_management",
    "conversation",
    "include",
    "input",
    "instructions",
    "max_output_tokens",
    "max_tool_calls",
    "metadata",
    "model",
    "moderation",
    "parallel_tool_calls",
    "previous_response_id",
    "prompt",
    "prompt_cache_key",
    "prompt_cache_options",
    "prompt_cache_retention",
    "reasoning",
    "safety_identifier",
    "service_tier",
    "store",
    "stream",
    "stream_options",
    "temperature",
    "text",
    "tool_choice",
    "tools",
    "top_logprobs",
    "top_p",
    "truncation",
    "user",
}
# Chat Completions fields with their Responses home (API reference, "Migrate to the Responses
# API": messages -> input, max_tokens / max_completion_tokens -> max_output_tokens,
# response_format -> text.format).
MOVED = {
    "messages": "input",
    "max_tokens": "max_output_tokens",
    "max_completion_tokens": "max_output_tokens",
    "response_format": "text.format",
}
# `function_tool_param.py` FunctionToolParam
FUNCTION_KEYS = {
    "type",
    "name",
    "parameters",
    "strict",
    "description",
    "allowed_callers",
    "defer_loading",
    "output_schema",
}
# `response_includable.py`
INCLUDABLE = {
    "file_search_call.results",
    "web_search_call.results",
    "web_search_call.action.sources",
    "message.input_image.image_url",
    "computer_call_output.output.image_url",
    "code_interpreter_call.outputs",
    "reasoning.encrypted_content",
    "message.output_text.logprobs",
}
# `easy_input_message_param.py`: role user | assistant | system | developer
ROLES = {"user", "assistant", "system", "developer"}
_INCOMPLETE = ("max_output_tokens", "content_filter")


EFFORTS = {None, "none", "minimal", "low", "medium", "high", "xhigh", "max"}


class OpenAIResponsesServer(OpenAIServer):
    provider = "openai-responses"

    def __init__(self, script=None, *, api_key="sk-test-123"):
        super().__init__(script, api_key=api_key)
        self.issued: set[str] = set()  # encrypted_content of the reasoning items served
        self._seqs: dict[int, itertools.count] = {}  # per reply: its stream's sequence numbers

    def route(self, method, path, query):
        return (False, "") if method == "POST" and path == "/v1/responses" else None

    # ---- output cap ----------------------------------------------------------------------------
    # `max_output_tokens`: "An upper bound for the number of tokens that can be generated for a
    # response, including visible output tokens and reasoning tokens" (openai-python
    # src/openai/types/responses/response_create_params.py); a response cut there is status
    # "incomplete" with incomplete_details.reason "max_output_tokens" (src/openai/types/
    # responses/response.py); read 2026-12-07.
    cap_finish_reason = "max_output_tokens"

    def output_cap(self, body):
        cap = body.get("max_output_tokens")
        return cap if isinstance(cap, int) else None

    # ---- request checks ----------------------------------------------------------------------
    def check_request(self, rec):
        b, p = rec.body, []
        if not isinstance(b.get("model"), str) or not b["model"]:
            p.append("Missing required parameter: 'model'.")
        for key in b:
            if key in MOVED:
                p.append(
                    f"Unsupported parameter: '{key}'. In the Responses API, this parameter has "
                    f"moved to '{MOVED[key]}'."
                )
            elif key not in FIELDS:
                p.append(f"Unknown parameter: '{key}'.")
        self._check_sampling(b, p)
        for value in b.get("include") or []:
            if value not in INCLUDABLE:
                p.append(f"Invalid value: '{value}'. Supported values are: {sorted(INCLUDABLE)}.")
        tools = b.get("tools")
        names = self._check_flat_tools(tools, p) if tools is not None else set()
        self._check_choice(b.get("tool_choice"), tools, names, p)
        if "text" in b:
            self._check_text(b["text"], p)
        items = b.get("input")
        if isinstance(items, str):
            return p
        if not isinstance(items, list) or not items:
            p.append("Missing required parameter: 'input'.")
        else:
            self._check_input(items, b.get("store") is False, p)
            self._check_media(rec, items, p)
        return p

    # Content parts: a message's `content` list (response_input_message_content_list_param.py)
    # and a `function_call_output`'s `output` list (response_function_call_output_item_list_param
    # .py) take `input_text` {text}, `input_image` {image_url: a URL or a base64 data URL, or
    # file_id; detail} (response_input_image_content_param.py) and `input_file` {file_data with
    # filename, file_id or file_url} (response_input_file_content_param.py); openai-python,
    # read 2026-12-07. A Chat Completions part (`image_url` as an object, `type: image_url`) is
    # refused, as the API refuses an unknown part type.
    PART_TYPES = ("input_text", "input_image", "input_file")

    def _check_media(self, rec, items, p):
        for i, item in enumerate(i for i in items if isinstance(i, dict)):
            kind = item.get("type", "message")
            parts = item.get("content") if kind == "message" else item.get("output")
            if kind not in ("message", "function_call_output") or not isinstance(parts, list):
                continue
            field = "content" if kind == "message" else "output"
            for j, part in enumerate(parts):
                self._check_part(rec, f"input[{i}].{field}[{j}]", part, item.get("role"), p)

    def _check_part(self, rec, where, part, role, p):
        kind = part.get("type") if isinstance(part, dict) else None
        allowed = self.PART_TYPES if role != "assistant" else ("output_text", "refusal")
        if kind not in allowed:
            p.append(
                f"Invalid value: {kind!r}. Supported values are: {', '.join(allowed)} "
                f"(at '{where}.type')."
            )
        elif kind == "input_text" and not isinstance(part.get("text"), str):
            p.append(f"Missing required parameter: '{where}.text'.")
        elif kind == "input_image":
            url = part.get("image_url")
            if not isinstance(url, str) and part.get("file_id") is None:
                p.append(f"Invalid type for '{where}.image_url': expected a string.")
            elif isinstance(url, str) and url.startswith("data:"):
                mime, data = parse_data_url(url) or (None, None)
                check_media(rec, f"{where}.image_url", mime, data, p, documents=False)
        elif kind == "input_file":
            data = part.get("file_data")
            if data is None and part.get("file_id") is None and part.get("file_url") is None:
                p.append(f"Missing required parameter: '{where}.file_data' (or file_id, file_url).")
            elif data is not None:
                if not isinstance(part.get("filename"), str):
                    p.append(f"Missing required parameter: '{where}.filename'.")
                mime, b64 = parse_data_url(data) or (None, None)
                check_media(rec, f"{where}.file_data", mime, b64, p, documents=True)

    def _check_sampling(self, b, p):
        """Reasoning models take only the default `temperature` / `top_p` (1): the API answers
        "Unsupported parameter: 'temperature' is not supported with this model." (the reasoning
        guide, platform.openai.com/docs/guides/reasoning; catalog `reasoning`)."""
        info = catalog.lookup("openai", str(b.get("model")))
        effort = (b.get("reasoning") or {}).get("effort")
        if effort is not None and (info is None or not info.reasoning):
            # "Unsupported parameter: 'reasoning.effort' is not supported with this model."
            p.append("Unsupported parameter: 'reasoning.effort' is not supported with this model.")
        elif effort not in EFFORTS:
            # `reasoning.effort` takes ReasoningEffort's values (openai-python
            # src/openai/types/shared/reasoning_effort.py, read 2026-12-07)
            p.append(
                f"Invalid value: '{effort}'. Supported values are: {sorted(EFFORTS - {None})}."
            )
        if info is None or not info.reasoning:
            return
        for key in ("temperature", "top_p"):
            if b.get(key) not in (None, 1, 1.0):
                p.append(f"Unsupported parameter: '{key}' is not supported with this model.")

    def _check_flat_tools(self, tools, p) -> set[str]:
        """Function tools are flat, `{"type": "function", "name", "parameters", "strict", ...}`
        (`function_tool_param.py`: name, parameters and strict are Required); the Chat form's
        `function: {...}` nesting is a 400 "Missing required parameter: 'tools[0].name'."."""
        names = set()
        if not isinstance(tools, list):
            p.append("Invalid type for 'tools': expected an array.")
            return names
        for j, t in enumerate(tools):
            if not isinstance(t, dict) or t.get("type") != "function":
                p.append(f"Invalid value for 'tools[{j}].type': expected 'function'.")
                continue
            for key in ("name", "parameters", "strict"):
                if key not in t:
                    p.append(f"Missing required parameter: 'tools[{j}].{key}'.")
            for extra in set(t) - FUNCTION_KEYS:
                p.append(f"Unknown parameter: 'tools[{j}].{extra}'.")
            name = t.get("name")
            if not isinstance(name, str) or not NAME_RE.match(name):
                if "name" in t:
                    p.append(
                        f"Invalid 'tools[{j}].name': string does not match pattern "
                        "'^[a-zA-Z0-9_-]{1,64}$'."
                    )
                continue
            names.add(name)
            params = t.get("parameters")
            if isinstance(params, dict):
                if params.get("type") != "object":
                    p.append(
                        f"Invalid schema for function '{name}': schema must be a JSON Schema "
                        "of 'type: \"object\"'."
                    )
                self._check_schema(name, params, p)
                if t.get("strict") is True:
                    self._check_strict(name, params, p)
        return names

    @staticmethod
    def _check_choice(choice, tools, names, p):
        """`tool_choice`: a mode, or `{"type": "function", "name"}` naming a declared tool
        (`tool_choice_function_param.py`); the Chat form `{"function": {"name"}}` is refused."""
        if choice is None or choice in ("none", "auto", "required"):
            return
        if isinstance(choice, dict) and choice.get("type") == "function":
            if set(choice) != {"type", "name"}:
                p.append(f"Invalid value for 'tool_choice': {choice!r:.80}.")
            elif str(choice["name"]) not in names:
                p.append(f"Tool choice '{choice['name']}' not found in 'tools' parameter.")
            return
        p.append(f"Invalid value for 'tool_choice': {choice!r:.80}.")

    def _check_text(self, text, p):
        """`text.format` (`response_format_text_json_schema_config_param.py`): `{"type":
        "json_schema", "name", "schema", "strict"?, "description"?}`, `name` and `schema`
        Required, the schema's root an object; strict schemas closed and fully required
        (platform.openai.com/docs/guides/structured-outputs#supported-schemas)."""
        fmt = text.get("format") if isinstance(text, dict) else None
        kind = fmt.get("type") if isinstance(fmt, dict) else None
        if kind in ("text", "json_object"):
            return
        if kind != "json_schema":
            p.append(
                f"Invalid value: {kind!r}. Supported values are: 'json_object', "
                "'json_schema', and 'text'."
            )
            return
        for extra in set(fmt) - {"type", "name", "schema", "strict", "description"}:
            p.append(f"Unknown parameter: 'text.format.{extra}'.")
        name, schema = fmt.get("name"), fmt.get("schema")
        if not isinstance(name, str) or not NAME_RE.match(name):
            p.append("Missing required parameter: 'text.format.name'.")
        if not isinstance(schema, dict):
            p.append("Missing required parameter: 'text.format.schema'.")
        elif schema.get("type") != "object":
            p.append(
                f"Invalid schema for response_format '{name}': In context=(), schema must be a "
                f"JSON Schema of 'type: \"object\"', got 'type: \"{schema.get('type')}\"'."
            )
        elif fmt.get("strict") is True:
            self._check_strict(str(name), schema, p)

    def _check_input(self, items, store_off, p):
        """The input items (`response_input_param.py`): every `function_call_output` answers a
        `function_call` before it ("No tool call found for function call output with call_id
        ..."), every `function_call` is answered before new input ("No tool output found for
        function call ..."), and a reasoning item comes back with the `encrypted_content` this
        server issued: with `store: false` nothing is kept server-side, so one without it is
        "Item with id ... not found" (`response_reasoning_item_param.py`: "especially important
        when `store` is `false`")."""
        called: set[str] = set()
        open_ids: list[str] = []
        for i, item in enumerate(items):
            kind = item.get("type", "message") if isinstance(item, dict) else None
            if kind == "function_call_output":
                cid = item.get("call_id")
                if cid not in called:
                    p.append(f"No tool call found for function call output with call_id {cid}.")
                elif cid in open_ids:
                    open_ids.remove(cid)
                if not isinstance(item.get("output"), (str, list)):
                    p.append(f"Missing required parameter: 'input[{i}].output'.")
                continue
            if open_ids and kind != "function_call":  # a turn's calls come together
                self._dangling(open_ids, p)
                open_ids = []
            if kind == "function_call":
                for key in ("call_id", "name", "arguments"):
                    if not isinstance(item.get(key), str):
                        p.append(f"Missing required parameter: 'input[{i}].{key}'.")
                called.add(item.get("call_id"))
                open_ids.append(item.get("call_id"))
            elif kind == "reasoning":
                self._check_reasoning(i, item, store_off, p)
            elif kind == "message":
                if item.get("role") not in ROLES:
                    p.append(
                        f"Invalid value: '{item.get('role')}'. Supported values are: "
                        "'assistant', 'system', 'developer', and 'user'."
                    )
                if not isinstance(item.get("content"), (str, list)):
                    p.append(f"Missing required parameter: 'input[{i}].content'.")
            else:
                p.append(f"Invalid value for 'input[{i}].type': {kind!r}.")
        if open_ids:
            self._dangling(open_ids, p)

    @staticmethod
    def _dangling(open_ids, p):
        p.extend(f"No tool output found for function call {cid}." for cid in open_ids)

    def _check_reasoning(self, i, item, store_off, p):
        rid = item.get("id")
        if not isinstance(rid, str) or not isinstance(item.get("summary"), list):
            p.append(f"Missing required parameter: 'input[{i}].id' / 'input[{i}].summary'.")
        content = item.get("encrypted_content")
        if content is None and store_off:
            p.append(
                f"Item with id '{rid}' not found. Items are not persisted when `store` is set "
                "to false. Try again with `store` set to true, or remove this item from your "
                "input."
            )
        elif content is not None and content not in self.issued:
            p.append(f"The encrypted content for item {rid} could not be verified.")

    # ---- rendering ---------------------------------------------------------------------------
    def _items(self, reply: Reply, calls: list[ResolvedCall], rec) -> list[dict]:
        """The output items of one reply, whole: reasoning, message, function calls."""
        items = []
        info = catalog.lookup("openai", str(rec.body.get("model")))
        if info is not None and info.reasoning:
            item = {"id": "rs_" + token(40), "type": "reasoning", "summary": []}
            if "reasoning.encrypted_content" in (rec.body.get("include") or []):
                item["encrypted_content"] = signature(reply.text)
                with self._lock:
                    self.issued.add(item["encrypted_content"])
            items.append(item)
        if reply.text or reply.refusal or not calls:
            part = (
                {"type": "refusal", "refusal": reply.refusal}
                if reply.refusal
                else {"type": "output_text", "text": reply.text, "annotations": [], "logprobs": []}
            )
            items.append(
                {
                    "id": "msg_" + token(40),
                    "type": "message",
                    "status": "completed",
                    "role": "assistant",
                    "content": [part],
                }
            )
        for c in calls:
            items.append(
                {
                    "id": "fc_" + token(40),
                    "type": "function_call",
                    "status": "completed",
                    "call_id": c.id,
                    "name": c.name,
                    "arguments": c.text,
                }
            )
        return items

    @staticmethod
    def _usage(reply: Reply) -> dict:
        """`response_usage.py`: the details are parts of input_tokens / output_tokens."""
        i, o = reply.usage
        return {
            "input_tokens": i,
            "input_tokens_details": {"cached_tokens": reply.cached},
            "output_tokens": o,
            "output_tokens_details": {"reasoning_tokens": reply.reasoning},
            "total_tokens": i + o,
        }

    def _response(self, reply, rec, output, status=None) -> dict:
        """A Response object (`types/responses/response.py`)."""
        b = rec.body
        done = status is None
        if status is None:
            status = "completed"
            if reply.finish_reason in _INCOMPLETE:
                status = "incomplete"
            elif reply.finish_reason == "failed":
                status = "failed"
        return {
            "id": "resp_" + token(40),
            "object": "response",
            "created_at": int(time.time()),
            "status": status,
            "error": (
                {
                    "code": reply.error_code or "server_error",
                    "message": reply.error_message or "The model failed to respond.",
                }
                if status == "failed"
                else None
            ),
            "incomplete_details": (
                {"reason": reply.finish_reason} if status == "incomplete" else None
            ),
            "instructions": b.get("instructions"),
            "max_output_tokens": b.get("max_output_tokens"),
            "model": b.get("model"),
            "output": output,
            "parallel_tool_calls": b.get("parallel_tool_calls", True),
            "previous_response_id": None,
            "store": b.get("store", True),
            "temperature": b.get("temperature", 1.0),
            "text": b.get("text") or {"format": {"type": "text"}},
            "tool_choice": b.get("tool_choice", "auto"),
            "tools": b.get("tools") or [],
            "top_p": b.get("top_p", 1.0),
            "truncation": "disabled",
            "usage": self._usage(reply) if done else None,
        }

    def render_json(self, reply, calls, rec):
        return self._response(reply, rec, self._items(reply, calls, rec))

    def _event(self, reply: Reply, kind: str, **fields) -> bytes:
        """One SSE frame: `event:` the type, `data:` the event with its `sequence_number`
        (`response_stream_event.py`: every event carries one, counted from 0 per stream)."""
        seq = next(self._seqs.setdefault(id(reply), itertools.count()))
        data = {"type": kind, **fields, "sequence_number": seq}
        return b"event: " + kind.encode() + b"\ndata: " + dumps(data) + b"\n\n"

    def render_events(self, reply, calls, rec):
        """The documented sequence: created, in_progress, each item (added, its deltas, done),
        then completed / incomplete / failed with the whole Response."""
        items = self._items(reply, calls, rec)
        self._seqs[id(reply)] = itertools.count()  # a fresh count, even for a reused id
        ev = functools.partial(self._event, reply)
        start = self._response(reply, rec, [], "in_progress")
        events = [
            ev("response.created", response=start),
            ev("response.in_progress", response=start),
        ]
        for n, item in enumerate(items):
            events += self._item_events(n, item, reply)
        final = self._response(reply, rec, items)
        end = {"completed": "response.completed", "incomplete": "response.incomplete"}
        events.append(ev(end.get(final["status"], "response.failed"), response=final))
        return events, "text/event-stream; charset=utf-8"

    def _item_events(self, n, item, reply) -> list[bytes]:
        ev, kind = functools.partial(self._event, reply), item["type"]
        base = {"output_index": n, "item_id": item["id"]}
        if kind == "reasoning":  # encrypted_content may be incomplete until output_item.done
            added = {k: v for k, v in item.items() if k != "encrypted_content"}
            return [
                ev("response.output_item.added", output_index=n, item=added),
                ev("response.output_item.done", output_index=n, item=item),
            ]
        if kind == "function_call":
            out = [
                ev(
                    "response.output_item.added",
                    output_index=n,
                    item={**item, "status": "in_progress", "arguments": ""},
                )
            ]
            out += [
                ev("response.function_call_arguments.delta", **base, delta=a)
                for a in split_args(item["arguments"])
            ]
            out.append(
                ev(
                    "response.function_call_arguments.done",
                    **base,
                    name=item["name"],
                    arguments=item["arguments"],
                )
            )
            return [*out, ev("response.output_item.done", output_index=n, item=item)]
        part = item["content"][0]
        where = {**base, "content_index": 0}
        out = [
            ev(
                "response.output_item.added",
                output_index=n,
                item={**item, "status": "in_progress", "content": []},
            ),
        ]
        if part["type"] == "refusal":
            out.append(
                ev("response.content_part.added", **where, part={"type": "refusal", "refusal": ""})
            )
            out += [
                ev("response.refusal.delta", **where, delta=t) for t in split_text(part["refusal"])
            ]
            out.append(ev("response.refusal.done", **where, refusal=part["refusal"]))
        else:
            empty = {**part, "text": ""}
            out.append(ev("response.content_part.added", **where, part=empty))
            out += [
                ev("response.output_text.delta", **where, delta=t, logprobs=[])
                for t in split_text(part["text"], reply.text_chunks)
            ]
            out.append(ev("response.output_text.done", **where, text=part["text"], logprobs=[]))
        out.append(ev("response.content_part.done", **where, part=part))
        return [*out, ev("response.output_item.done", output_index=n, item=item)]

    def stream_error_event(self, message, reply):
        """`response_error_event.py`: `{"type": "error", "code", "message", "param"}`."""
        return self._event(
            reply, "error", code=reply.error_code or "server_error", message=message, param=None
        )
