"""OpenAI Chat Completions (`POST /v1/chat/completions`) loopback server.

`strict=True` is the stricter OpenAI-compatible persona (llama.cpp / llama-cpp-python style). On top
of every normal check it rejects, with a 400 and a recorded failure:

* an assistant message with `"content": null` (omitting `content` is fine);
* the `parallel_tool_calls` field, whatever its value;
* the `stream_options` field, whatever its value.

Missing ids (`tool_calls[].id`, `tool_call_id`) are rejected in both modes, as OpenAI does.
`whole_calls=True` streams each tool call whole in one delta (Ollama style).
"""

from __future__ import annotations

import re
import time

from llm_magic import catalog

from .base import LoopbackServer, ResolvedCall, dumps, token
from .media_rules import check_media, parse_data_url
from .schema_rules import (
    STRICT_LIMITS,
    arrays_without_items,
    missing_refs,
    strict_sizes,
    undocumented_formats,
    walk,
)
from .script import Reply, split_args, split_text

NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
# Models that reject `max_tokens` (openai-python `types/chat/completion_create_params.py`:
# "max_tokens ... is now deprecated in favor of `max_completion_tokens`, and is not compatible
# with o-series models"; gpt-5 models answer the same 400).
REASONING_RE = re.compile(r"^(o\d|gpt-5)")
FUNCTION_KEYS = {"name", "description", "parameters", "strict"}
# The request's top-level fields (openai-python src/openai/types/chat/completion_create_params.py,
# openai 3.3.1, read 2026-12-07); any other is a 400 "Unrecognized request argument supplied".
BODY_KEYS = {
    "messages", "model", "audio", "frequency_penalty", "function_call", "functions",
    "logit_bias", "logprobs", "max_completion_tokens", "max_tokens", "metadata", "modalities",
    "moderation", "n", "parallel_tool_calls", "prediction", "presence_penalty",
    "prompt_cache_key", "prompt_cache_options", "prompt_cache_retention", "reasoning_effort",
    "response_format", "safety_identifier", "seed", "service_tier", "stop", "store", "stream",
    "stream_options", "temperature", "tool_choice", "tools", "top_logprobs", "top_p", "user",
    "verbosity", "web_search_options",
}  # fmt: skip
# openai-python src/openai/types/shared/reasoning_effort.py (read 2026-12-07).
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
ROLES = {"system", "developer", "user", "assistant", "tool"}
_ERRORS = {  # status -> (type, code)
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}
_MESSAGES = {
    429: "Rate limit reached for gpt-4.1 on requests per min (RPM): Limit 3, Used 3, Requested 1. "
    "Please try again in 20s.",
    500: "The server had an error while processing your request. Sorry about that!",
    503: "The engine is currently overloaded, please try again later",
}


def _content_ok(content) -> bool:
    if isinstance(content, str):
        return True
    return isinstance(content, list) and all(
        isinstance(p, dict) and isinstance(p.get("type"), str) for p in content
    )


class OpenAIServer(LoopbackServer):
    provider = "openai"
    base_path = "/v1"
    default_model = "gpt-4.1"

    def __init__(self, script=None, *, strict=False, api_key="sk-test-123", whole_calls=False):
        super().__init__(script, strict=strict, api_key=api_key)
        self.whole_calls = whole_calls

    # GET /v1/models: `{"object": "list", "data": [{"id", "object": "model", "created",
    # "owned_by"}]}` (openai-python src/openai/types/model.py; resources/models.py, read
    # 2026-12-07). An unknown model is a 404 `model_not_found` whose message names it
    # (platform.openai.com/docs/guides/error-codes, read 2026-12-07).
    models_path = "/v1/models"

    def render_models(self, ids):
        return {
            "object": "list",
            "data": [{"id": m, "object": "model", "created": 0, "owned_by": "openai"} for m in ids],
        }

    def not_found(self, model):
        return self.error(
            404, f"The model `{model}` does not exist or you do not have access to it."
        )

    def route(self, method, path, query):
        return (False, "") if method == "POST" and path == "/v1/chat/completions" else None

    def call_id(self):
        return "call_" + token(24)

    def default_message(self, status):
        return _MESSAGES.get(status) or super().default_message(status)

    def error_body(self, status, message, code, reply):
        typ, dcode = _ERRORS.get(
            status, ("server_error", None) if status >= 500 else ("invalid_request_error", None)
        )
        return {"error": {"message": message, "type": typ, "param": None, "code": code or dcode}}

    def check_auth(self, rec):
        auth = rec.headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            return (
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                None,
            )
        key = auth[7:]
        if key != self.api_key:
            masked = (
                key[:6] + "*" * (len(key) - 10) + key[-4:] if len(key) > 10 else key[:3] + "***"
            )
            return (
                401,
                f"Incorrect API key provided: {masked}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                "invalid_api_key",
            )
        return None

    # ---- output cap ----------------------------------------------------------------------------
    # `max_completion_tokens`: "An upper bound for the number of tokens that can be generated for
    # a completion, including visible output tokens and reasoning tokens" (openai-python
    # src/openai/types/chat/completion_create_params.py); a reply cut there has finish_reason
    # "length": "the maximum number of tokens specified in the request was reached"
    # (src/openai/types/chat/chat_completion.py); read 2026-12-07.
    cap_finish_reason = "length"

    def output_cap(self, body):
        cap = body.get("max_completion_tokens", body.get("max_tokens"))
        return cap if isinstance(cap, int) else None

    @staticmethod
    def _check_cap(b, key, p):
        """A cap is a whole number of at least 1: `Optional[int]` in openai-python
        completion_create_params.py (read 2026-12-07); the API answers 0 with "integer below
        minimum value"."""
        if key not in b or b[key] is None:
            return
        value = b[key]
        if isinstance(value, bool) or not isinstance(value, int):
            p.append(f"Invalid type for '{key}': expected an integer, but got {value!r} instead.")
        elif value < 1:
            p.append(
                f"Invalid '{key}': integer below minimum value. Expected a value >= 1, "
                f"but got {value} instead."
            )

    # ---- request checks ----------------------------------------------------------------------
    def check_request(self, rec):
        b, p = rec.body, []
        if not isinstance(b.get("model"), str) or not b["model"]:
            p.append("Missing required parameter: 'model'.")
        tools = b.get("tools")
        names = self._check_tools(tools, p) if tools is not None else set()
        if "parallel_tool_calls" in b and not tools:
            p.append(
                "Invalid value for 'parallel_tool_calls': 'parallel_tool_calls' is only "
                "allowed when 'tools' are specified."
            )
        if "max_tokens" in b and REASONING_RE.match(str(b.get("model"))):
            p.append(
                "Unsupported parameter: 'max_tokens' is not supported with this model. "
                "Use 'max_completion_tokens' instead."
            )
        self._check_model_fields(b, p)
        for key in ("max_completion_tokens", "max_tokens"):
            self._check_cap(b, key, p)
        if "stream_options" in b and b.get("stream") is not True:
            p.append("The 'stream_options' parameter is only allowed when 'stream' is enabled.")
        self._check_tool_choice(b.get("tool_choice", None), tools, names, p)
        if "response_format" in b:
            self._check_response_format(b["response_format"], p)
        if self.strict:
            for key in ("parallel_tool_calls", "stream_options"):
                if key in b:
                    p.append(f"[strict] unsupported field '{key}'")
        msgs = b.get("messages")
        if not isinstance(msgs, list) or not msgs:
            p.append("Missing required parameter: 'messages'.")
        else:
            self._check_messages(msgs, p)
            self._check_parts(rec, msgs, p)
        return p

    @staticmethod
    def _check_model_fields(b, p):
        """Fields by model. Reasoning models (catalog: `fixed_sampling`) take temperature and
        top_p at their default of 1 only, and only they take `reasoning_effort`
        (platform.openai.com/docs/guides/reasoning, "Unsupported parameters"; openai-python
        src/openai/types/chat/completion_create_params.py `reasoning_effort`: "for reasoning
        models", read 2026-12-07); an unknown field is a 400 (BODY_KEYS)."""
        p += [f"Unrecognized request argument supplied: {k}" for k in b if k not in BODY_KEYS]
        info = catalog.lookup("openai", str(b.get("model")))
        if info is not None and info.fixed_sampling:
            p += [
                f"Unsupported value: '{k}' does not support {b[k]!r} with this model. Only the "
                "default (1) value is supported."
                for k in ("temperature", "top_p")
                if k in b and b[k] != 1
            ]
        effort = b.get("reasoning_effort")
        if effort is not None and (info is None or not info.reasoning):
            p.append("Unsupported parameter: 'reasoning_effort' is not supported with this model.")
        elif effort is not None and effort not in EFFORTS:
            p.append(
                f"Invalid value: '{effort}'. Supported values are: "
                + ", ".join(f"'{e}'" for e in EFFORTS)
                + "."
            )

    def _check_tools(self, tools, p) -> set[str]:
        names = set()
        if not isinstance(tools, list):
            p.append("Invalid type for 'tools': expected an array.")
            return names
        for j, t in enumerate(tools):
            f = t.get("function") if isinstance(t, dict) else None
            if not isinstance(t, dict) or t.get("type") != "function" or not isinstance(f, dict):
                p.append(
                    f"tools[{j}]: expected {{'type': 'function', 'function': {{name, "
                    f"description, parameters}}}}, got {t!r:.120}"
                )
                continue
            if not isinstance(f.get("name"), str) or not NAME_RE.match(f["name"]):
                p.append(
                    f"Invalid 'tools[{j}].function.name': string does not match pattern "
                    "'^[a-zA-Z0-9_-]{1,64}$'."
                )
            else:
                names.add(f["name"])
            if "description" in f and not isinstance(f["description"], str):
                p.append(f"Invalid type for 'tools[{j}].function.description': expected a string.")
            params = f.get("parameters")
            if params is not None and not (
                isinstance(params, dict) and params.get("type") == "object"
            ):
                p.append(
                    f"Invalid schema for function '{f.get('name')}': schema must be a JSON "
                    "Schema of 'type: \"object\"'."
                )
            if isinstance(params, dict):
                self._check_schema(str(f.get("name")), params, p)
            for extra in set(f) - FUNCTION_KEYS:
                p.append(f"Unrecognized request argument supplied: tools[{j}].function.{extra}")
        return names

    @staticmethod
    def _check_schema(name, params, p):
        """Function parameters are validated as JSON Schema: every array needs `items`, every
        `$ref` must resolve (https://platform.openai.com/docs/guides/structured-outputs
        #supported-schemas; the API's 400 reads "array schema missing items")."""
        for path in arrays_without_items(params):
            where = ", ".join(repr(x) for x in path)
            p.append(
                f"Invalid schema for function '{name}': In context=({where}), array schema "
                "missing items."
            )
        for ref in missing_refs(params):
            p.append(
                f"Invalid schema for function '{name}': In context=(), reference to component "
                f"'{ref}' which was not found in the schema."
            )

    def _check_response_format(self, fmt, p):
        """`response_format` is `{"type": "text"}`, `{"type": "json_object"}` or
        `{"type": "json_schema", "json_schema": {"name", "description"?, "schema"?, "strict"?}}`
        (platform.openai.com/docs/api-reference/chat/create#chat-create-response_format;
        openai-python `types/shared_params/response_format_json_schema.py`: `name` is required,
        a-z A-Z 0-9 _ -, at most 64). With `strict: true` the schema must be a closed object
        whose every property is required (platform.openai.com/docs/guides/structured-outputs
        #supported-schemas: "all fields must be required", "additionalProperties: false must
        always be set"); the API's 400s read as below."""
        kind = fmt.get("type") if isinstance(fmt, dict) else None
        if kind not in ("text", "json_object", "json_schema"):
            p.append(
                f"Invalid value: {kind!r}. Supported values are: 'json_object', 'json_schema', "
                "and 'text'."
            )
            return
        spec = fmt.get("json_schema")
        if kind != "json_schema":
            return
        if not isinstance(spec, dict):
            p.append("Missing required parameter: 'response_format.json_schema'.")
            return
        for extra in set(spec) - {"name", "description", "schema", "strict"}:
            p.append(f"Unrecognized request argument supplied: response_format.json_schema.{extra}")
        name = spec.get("name")
        if not isinstance(name, str) or not NAME_RE.match(name):
            p.append(
                "Invalid 'response_format.json_schema.name': string does not match pattern "
                "'^[a-zA-Z0-9_-]{1,64}$'."
            )
        schema = spec.get("schema")
        if schema is not None and not isinstance(schema, dict):
            p.append("Invalid type for 'response_format.json_schema.schema': expected an object.")
        elif spec.get("strict") is True and isinstance(schema, dict):
            self._check_strict(str(name), schema, p)

    @staticmethod
    def _check_strict(name, schema, p):
        where = f"Invalid schema for response_format '{name}': In context=("
        if schema.get("type") != "object":
            p.append(
                f"{where}), schema must be a JSON Schema of 'type: \"object\"', got "
                f"'type: \"{schema.get('type')}\"'."
            )
        for path, node in walk(schema):
            ctx = where + ", ".join(repr(x) for x in path) + ")"
            props = node.get("properties")
            if node.get("type") == "object" and node.get("additionalProperties") is not False:
                p.append(
                    f"{ctx}, 'additionalProperties' is required to be supplied and to be false."
                )
            if isinstance(props, dict):
                missing = [k for k in props if k not in (node.get("required") or [])]
                if missing:
                    p.append(
                        f"{ctx}, 'required' is required to be supplied and to be an array "
                        f"including every key in properties. Missing '{missing[0]}'."
                    )
            for key in ("oneOf", "patternProperties", "prefixItems"):
                if key in node:
                    p.append(f"{ctx}, '{key}' is not permitted.")
        for path in arrays_without_items(schema):
            ctx = where + ", ".join(repr(x) for x in path) + ")"
            p.append(f"{ctx}, array schema missing items.")
        # Only the documented string formats, and within the size limits (tests/servers/
        # schema_rules.py: STRICT_FORMATS, STRICT_LIMITS and their source).
        for path, fmt in undocumented_formats(schema):
            ctx = where + ", ".join(repr(x) for x in path) + ")"
            p.append(f"{ctx}, '{fmt}' is not a valid format.")
        sizes = strict_sizes(schema)
        for what, limit in STRICT_LIMITS.items():
            if sizes[what] > limit:
                p.append(f"{where}), the schema has {sizes[what]} {what}; at most {limit}.")
        if sizes["large enum characters"] > 15_000:
            p.append(f"{where}), an enum of over 250 values has over 15000 characters.")

    def _check_tool_choice(self, choice, tools, names, p):
        if choice is None:
            return
        if choice != "none" and not tools:
            p.append(
                "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' "
                "are specified."
            )
        if isinstance(choice, str):
            if choice not in ("none", "auto", "required"):
                p.append(f"Invalid value for 'tool_choice': '{choice}'.")
        elif isinstance(choice, dict) and choice.get("type") == "function":
            name = (choice.get("function") or {}).get("name")
            if names and str(name) not in names:
                p.append(f"Invalid value for 'tool_choice': no function named '{name}' in tools.")
        elif not (isinstance(choice, dict) and choice.get("type") in ("allowed_tools", "custom")):
            p.append(f"Invalid value for 'tool_choice': {choice!r:.80}.")

    def _check_messages(self, msgs, p):
        group: set[str] = set()  # ids of the assistant turn being answered
        open_ids: list[str] = []  # of those, not answered yet
        for i, m in enumerate(msgs):
            role = m.get("role") if isinstance(m, dict) else None
            if role not in ROLES:
                p.append(f"Invalid value for 'messages[{i}].role': {role!r}.")
                continue
            if role == "tool":
                tid = m.get("tool_call_id")
                if not isinstance(tid, str) or not tid:
                    p.append(f"Missing required parameter: 'messages[{i}].tool_call_id'.")
                elif not group:
                    p.append(
                        "Invalid parameter: messages with role 'tool' must be a response to a "
                        "preceeding message with 'tool_calls'."
                    )
                elif tid not in group:
                    p.append(
                        f"Invalid parameter: 'tool_call_id' of '{tid}' not found in "
                        "'tool_calls' of previous message."
                    )
                elif tid not in open_ids:
                    p.append(f"messages[{i}]: duplicate tool message for tool_call_id '{tid}'.")
                else:
                    open_ids.remove(tid)
                if not _content_ok(m.get("content")):
                    p.append(
                        f"Invalid type for 'messages[{i}].content': expected one of a string "
                        "or array of objects, but got " + type(m.get("content")).__name__
                    )
                continue
            self._dangling(open_ids, p)
            group, open_ids = set(), []
            calls = m.get("tool_calls") if role == "assistant" else None
            if calls:
                open_ids = self._check_calls(i, calls, p)
                group = set(open_ids)
            content = m.get("content")
            if role == "assistant" and "content" in m and content is None and self.strict:
                p.append(
                    f"[strict] messages[{i}]: assistant 'content' must not be null "
                    '(send "" or omit it)'
                )
            elif content is None and not calls:
                p.append(f"Invalid value for 'messages[{i}].content': expected a string, got null.")
            elif content is not None and not _content_ok(content):
                p.append(f"Invalid type for 'messages[{i}].content'.")
        self._dangling(open_ids, p)

    # Content parts by role (openai-python src/openai/types/chat/, read 2026-12-07): a user
    # message takes `text`, `image_url` {image_url: {url, detail}} (chat_completion_content_part_
    # image_param.py: "Either a URL of the image or the base64 encoded image data"), `input_audio`
    # and `file` parts (chat_completion_content_part_param.py); a tool message takes `text` parts
    # only (chat_completion_tool_message_param.py), and so do system and developer messages; an
    # assistant message `text` and `refusal`. A Responses part (`input_image`) is refused.
    PARTS = {
        "user": ("text", "image_url", "input_audio", "file"),
        "assistant": ("text", "refusal"),
    }

    def _check_parts(self, rec, msgs, p):
        for i, m in enumerate(x for x in msgs if isinstance(x, dict)):
            content = m.get("content")
            if not isinstance(content, list):
                continue
            allowed = self.PARTS.get(m.get("role"), ("text",))
            for j, part in enumerate(content):
                where = f"messages[{i}].content[{j}]"
                kind = part.get("type") if isinstance(part, dict) else None
                if kind not in allowed:
                    p.append(
                        f"Invalid value: {kind!r}. Supported values are: "
                        f"{', '.join(repr(a) for a in allowed)} (at '{where}.type')."
                    )
                elif kind == "image_url":
                    image = part.get("image_url")
                    url = image.get("url") if isinstance(image, dict) else None
                    if not isinstance(url, str):
                        p.append(f"Invalid type for '{where}.image_url': expected an object.")
                    elif url.startswith("data:"):
                        mime, data = parse_data_url(url) or (None, None)
                        check_media(rec, f"{where}.image_url.url", mime, data, p, documents=False)

    def _check_calls(self, i, calls, p) -> list[str]:
        ids = []
        if not isinstance(calls, list):
            p.append(f"Invalid type for 'messages[{i}].tool_calls': expected an array.")
            return ids
        for k, c in enumerate(calls):
            where = f"messages[{i}].tool_calls[{k}]"
            c = c if isinstance(c, dict) else {}
            if not isinstance(c.get("id"), str) or not c["id"]:
                p.append(f"Missing required parameter: '{where}.id'.")
            else:
                ids.append(c["id"])
            f = c.get("function")
            if c.get("type") != "function" or not isinstance(f, dict):
                p.append(
                    f"Invalid value for '{where}': expected type 'function' and a "
                    "'function' object."
                )
                continue
            if not isinstance(f.get("name"), str):
                p.append(f"Missing required parameter: '{where}.function.name'.")
            if not isinstance(f.get("arguments"), str):
                p.append(f"Invalid type for '{where}.function.arguments': expected a string.")
        return ids

    @staticmethod
    def _dangling(open_ids, p):
        if open_ids:
            p.append(
                "An assistant message with 'tool_calls' must be followed by tool messages "
                "responding to each 'tool_call_id'. The following tool_call_ids did not have "
                "response messages: " + ", ".join(open_ids)
            )

    # ---- rendering ---------------------------------------------------------------------------
    def _finish(self, reply: Reply, calls, rec) -> str:
        if reply.finish_reason:
            return reply.finish_reason
        named = isinstance(rec.body.get("tool_choice"), dict)
        return "tool_calls" if calls and not named else "stop"

    @staticmethod
    def _call(c: ResolvedCall, index=None, args=None) -> dict:
        out = {} if index is None else {"index": index}
        if c.id is not None:
            out["id"] = c.id
        out["type"] = "function"
        out["function"] = {"name": c.name, "arguments": c.text if args is None else args}
        return out

    @staticmethod
    def _usage(reply: Reply) -> dict:
        i, o = reply.usage
        return {
            "prompt_tokens": i,
            "completion_tokens": o,
            "total_tokens": i + o,
            # platform.openai.com/docs/api-reference/chat/object: usage.*_details are parts
            # of prompt_tokens / completion_tokens
            "prompt_tokens_details": {"cached_tokens": reply.cached, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": reply.reasoning,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def _envelope(self, rec, obj: str) -> dict:
        return {
            "id": "chatcmpl-" + token(29),
            "object": obj,
            "created": int(time.time()),
            "model": rec.body.get("model"),
            "service_tier": "default",
            "system_fingerprint": "fp_loopback",
        }

    def render_json(self, reply, calls, rec):
        msg = {
            "role": "assistant",
            "content": reply.text or None,
            "refusal": reply.refusal,  # openai-python `types/chat/chat_completion_message.py`
            "annotations": [],
        }
        if calls:
            msg["tool_calls"] = [self._call(c) for c in calls]
        out = self._envelope(rec, "chat.completion")
        out["choices"] = [
            {
                "index": 0,
                "message": msg,
                "logprobs": None,
                "finish_reason": self._finish(reply, calls, rec),
            }
        ]
        out["usage"] = self._usage(reply)
        return out

    def render_events(self, reply, calls, rec):
        usage = (rec.body.get("stream_options") or {}).get("include_usage") is True
        head = dumps(self._envelope(rec, "chat.completion.chunk"))[:-1] + b","  # shared fields
        tail = b',"usage":null}\n\n' if usage else b"}\n\n"

        def chunk(delta, finish=None):
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            return b"data: " + head + b'"choices":[' + dumps(choice) + b"]" + tail

        events = [
            chunk({"role": "assistant", "content": "" if reply.text else None, "refusal": None})
        ]
        events += [chunk({"content": t}) for t in split_text(reply.text, reply.text_chunks)]
        # `delta.refusal` (openai-python `types/chat/chat_completion_chunk.py` ChoiceDelta)
        events += [chunk({"refusal": t}) for t in split_text(reply.refusal or "")]
        for n, c in enumerate(calls):
            if self.whole_calls:
                events.append(chunk({"tool_calls": [self._call(c, n)]}))
                continue
            events.append(chunk({"tool_calls": [self._call(c, n, "")]}))
            events += [
                chunk({"tool_calls": [{"index": n, "function": {"arguments": a}}]})
                for a in split_args(c.text)
            ]
        events.append(chunk({}, self._finish(reply, calls, rec)))
        if usage:
            events.append(
                b"data: " + head + b'"choices":[],"usage":' + dumps(self._usage(reply)) + b"}\n\n"
            )
        events.append(b"data: [DONE]\n\n")
        return events, "text/event-stream; charset=utf-8"

    def stream_error_event(self, message, reply):
        body = self.error_body(500, message, reply.error_code, reply)
        return b"data: " + dumps(body) + b"\n\n"
