"""Anthropic Messages (`POST /v1/messages`) loopback server.

Auth: `x-api-key` or `Authorization: Bearer`. `anthropic-version` must be `2023-06-01` or
`2026-10-21`; under `2026-10-21`, `temperature`/`top_p`/`top_k` are a 400.
Thinking blocks the script emitted must come back unchanged (text and signature) as the first
block of the assistant message that carries that turn's tool_use blocks.
"""

from __future__ import annotations

import re

from llm_magic import catalog

from .base import LoopbackServer, dumps, signature, token
from .media_rules import check_media
from .schema_rules import missing_refs
from .script import split_args, split_text

VERSIONS = ("2023-06-01", "2026-10-21")
NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
ID_RE = re.compile(r"^[a-zA-Z0-9_-]+$")
TOOL_KEYS = {
    "name",
    "description",
    "input_schema",
    "cache_control",
    "strict",
    "input_examples",
    "defer_loading",
    "eager_input_streaming",
    "allowed_callers",
    "type",
}
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_MESSAGES = {
    429: "This request would exceed the rate limit for your organization of 50 requests "
    "per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits.",
    500: "Internal server error",
    529: "Overloaded",
}


def _sse(name: str, data: dict) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + dumps(data) + b"\n\n"


class AnthropicServer(LoopbackServer):
    provider = "anthropic"
    base_path = ""
    default_model = "claude-sonnet-4-6"
    terminal_events = 2  # message_delta, message_stop

    def __init__(self, script=None, *, strict=False, api_key="sk-test-123"):
        super().__init__(script, strict=strict, api_key=api_key)
        self.thinking_for: dict[str, dict] = {}  # tool_use id -> the thinking block issued with it
        self.signatures: dict[str, str] = {}  # issued signature -> thinking text

    # GET /v1/models: `{"data": [{"type": "model", "id", "display_name", "created_at"}],
    # "has_more", "first_id", "last_id"}` (anthropic-sdk-python src/anthropic/types/
    # model_info.py, resources/models.py, read 2026-12-07). An unknown model is a 404
    # `not_found_error` with the message "model: NAME" (docs.anthropic.com/en/api/errors).
    models_path = "/v1/models"

    def render_models(self, ids):
        data = [
            {"type": "model", "id": m, "display_name": m, "created_at": "2026-01-01T00:00:00Z"}
            for m in ids
        ]
        first, last = (ids[0], ids[-1]) if ids else (None, None)
        return {"data": data, "has_more": False, "first_id": first, "last_id": last}

    def not_found(self, model):
        return self.error(404, f"model: {model}", "not_found_error")

    def route(self, method, path, query):
        return (False, "") if method == "POST" and path == "/v1/messages" else None

    def call_id(self):
        return "toolu_01" + token(22)

    def resolve(self, call):
        c = super().resolve(call)
        c.id = c.id or self.call_id()  # Anthropic always sends ids
        return c

    def default_message(self, status):
        return _MESSAGES.get(status) or super().default_message(status)

    def error_body(self, status, message, code, reply):
        typ = code or _TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
        return {
            "type": "error",
            "error": {"type": typ, "message": message},
            "request_id": "req_011" + token(21),
        }

    def check_auth(self, rec):
        key = rec.headers.get("x-api-key")
        auth = rec.headers.get("authorization", "")
        if key is None and not auth.startswith("Bearer "):
            return 401, "x-api-key header is required", None
        if (key if key is not None else auth[7:]) != self.api_key:
            return 401, "invalid x-api-key", None
        return None

    # ---- output cap ----------------------------------------------------------------------------
    # `max_tokens`: "The maximum number of tokens to generate before stopping" (anthropic-sdk-python
    # src/anthropic/types/message_create_params.py); a reply cut there has stop_reason
    # "max_tokens": "we exceeded the requested `max_tokens` or the model's maximum"
    # (src/anthropic/types/message.py); read 2026-12-07.
    cap_finish_reason = "max_tokens"

    def output_cap(self, body):
        cap = body.get("max_tokens")
        return cap if isinstance(cap, int) else None

    @staticmethod
    def _check_thinking_budget(b, p):
        """`thinking.budget_tokens` "Must be >=1024 and less than `max_tokens`" (anthropic-sdk-python
        src/anthropic/types/thinking_config_enabled_param.py, read 2026-12-07)."""
        thinking = b.get("thinking")
        if not isinstance(thinking, dict) or thinking.get("type") != "enabled":
            return
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or budget < 1024:
            p.append(
                "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
            )
        elif isinstance(b.get("max_tokens"), int) and budget >= b["max_tokens"]:
            p.append("`max_tokens` must be greater than `thinking.budget_tokens`")

    # ---- request checks ----------------------------------------------------------------------
    def check_request(self, rec):
        b, h, p = rec.body, rec.headers, []
        version = h.get("anthropic-version")
        if version is None:
            p.append("anthropic-version: header is required")
        elif version not in VERSIONS:
            p.append(f"anthropic-version: invalid version '{version}'")
        elif version == "2026-10-21":
            p += [
                f"{k}: not supported with anthropic-version 2026-10-21"
                for k in ("temperature", "top_p", "top_k")
                if k in b
            ]
        if not isinstance(b.get("model"), str) or not b["model"]:
            p.append("model: Field required")
        self._check_thinking(b, p)
        if not isinstance(b.get("max_tokens"), int) or b["max_tokens"] < 1:
            p.append("max_tokens: Field required (a positive integer)")
        self._check_thinking_budget(b, p)
        tools = b.get("tools")
        names = self._check_tools(tools, p) if tools is not None else set()
        self._check_tool_choice(b, names, p)
        msgs = b.get("messages")
        if not isinstance(msgs, list) or not msgs:
            p.append("messages: Field required (a non-empty list)")
        elif self._check_messages(msgs, p) and not tools:
            p.append("Requests which include `tool_use` or `tool_result` blocks must define tools.")
        else:
            self._check_media(rec, msgs, p)
        return p

    # A tool_result's `content` is a string or a list of text, image, search_result, document
    # and tool_reference blocks (anthropic-sdk-python src/anthropic/types/
    # tool_result_block_param.py); an `image` block's source is `{type: base64, media_type:
    # image/jpeg|png|gif|webp, data}` (base64_image_source_param.py), a `document` block's
    # `{type: base64, media_type: application/pdf, data}` (document_block_param.py,
    # base64_pdf_source_param.py); images and documents are user content only (an assistant
    # turn holds text, thinking and tool_use: message_param.py), read 2026-12-07.
    RESULT_BLOCKS = ("text", "image", "search_result", "document", "tool_reference")

    def _check_media(self, rec, msgs, p):
        for i, m in enumerate(msgs):
            blocks = m.get("content") if isinstance(m.get("content"), list) else []
            for j, blk in enumerate(b for b in blocks if isinstance(b, dict)):
                where = f"messages.{i}.content.{j}"
                if blk.get("type") in ("image", "document"):
                    if m.get("role") != "user":
                        p.append(f"{where}: {blk['type']} blocks are only allowed in user turns")
                    self._check_source(rec, where, blk, p)
                elif blk.get("type") == "tool_result" and isinstance(blk.get("content"), list):
                    for k, part in enumerate(blk["content"]):
                        kind = part.get("type") if isinstance(part, dict) else None
                        if kind not in self.RESULT_BLOCKS:
                            p.append(
                                f"{where}.content.{k}: Input tag {kind!r} found using 'type' "
                                "does not match any of the expected tags: "
                                + ", ".join(repr(t) for t in self.RESULT_BLOCKS)
                            )
                        elif kind in ("image", "document"):
                            self._check_source(rec, f"{where}.content.{k}", part, p)

    @staticmethod
    def _check_source(rec, where, blk, p):
        source = blk.get("source")
        if not isinstance(source, dict) or source.get("type") != "base64":
            p.append(f"{where}.source: expected {{type: 'base64', media_type, data}}")
            return
        want_doc = blk["type"] == "document"
        if want_doc and source.get("media_type") != "application/pdf":
            p.append(f"{where}.source.media_type: Input should be 'application/pdf'")
            return
        if not want_doc and not str(source.get("media_type")).startswith("image/"):
            p.append(f"{where}.source.media_type: Input should be an image type")
            return
        check_media(
            rec, f"{where}.source", source.get("media_type"), source.get("data"), p, documents=True
        )

    @staticmethod
    def _check_thinking(b, p):
        """`thinking` is `enabled` with `budget_tokens` (at least 1024, below max_tokens),
        `adaptive` or `disabled`; `output_config.effort` is one of the SDK's levels
        (anthropic-sdk-python src/anthropic/types/thinking_config_enabled_param.py,
        thinking_config_adaptive_param.py, output_config_param.py, read 2026-12-07). Claude's
        adaptive-only models (catalog: Opus 4.7 on, the 5.x models) refuse `enabled` and
        `budget_tokens` (the SDK already warns for claude-opus-4-6:
        MODELS_TO_WARN_WITH_THINKING_ENABLED in src/anthropic/resources/messages/messages.py;
        docs.claude.com/en/docs/build-with-claude/adaptive-thinking) and sampling fields other
        than the default (docs.claude.com/en/docs/about-claude/models/whats-new-claude-4-7),
        read 2026-12-07."""
        thinking, info = b.get("thinking"), catalog.lookup("anthropic", str(b.get("model")))
        adaptive_only = info is not None and info.thinking == "adaptive"
        if thinking is not None:
            kind = thinking.get("type") if isinstance(thinking, dict) else None
            if kind not in ("enabled", "adaptive", "disabled"):
                p.append(
                    f"thinking: Input tag {kind!r} found using 'type' does not match any of the "
                    "expected tags: 'adaptive', 'disabled', 'enabled'"
                )
            elif kind == "enabled" and adaptive_only:
                p.append(
                    f"thinking.type.enabled: 'enabled' is not supported for model {b['model']}; "
                    "use thinking.type 'adaptive' with output_config.effort"
                )
            elif kind == "enabled":
                budget = thinking.get("budget_tokens")
                if not isinstance(budget, int) or budget < 1024:
                    p.append("thinking.enabled.budget_tokens: Input should be at least 1024")
                elif isinstance(b.get("max_tokens"), int) and budget >= b["max_tokens"]:
                    p.append("`max_tokens` must be greater than `thinking.budget_tokens`.")
            elif "budget_tokens" in thinking:
                p.append(f"thinking.{kind}.budget_tokens: Extra inputs are not permitted")
        if adaptive_only:
            p += [
                f"{k}: not supported for model {b['model']}; only the default is accepted"
                for k, default in (("temperature", 1), ("top_p", 1), ("top_k", None))
                if k in b and b[k] != default
            ]
        effort = (b.get("output_config") or {}).get("effort")
        if effort is not None and effort not in ("low", "medium", "high", "xhigh", "max"):
            p.append(
                f"output_config.effort: Input should be 'low', 'medium', 'high', 'xhigh' or "
                f"'max', got {effort!r}"
            )

    def _check_tools(self, tools, p) -> set[str]:
        names = set()
        for j, t in enumerate(tools if isinstance(tools, list) else [tools]):
            if not isinstance(t, dict):
                p.append(f"tools.{j}: Input should be an object")
                continue
            if t.get("type") not in (None, "custom"):
                if t["type"] == "function" or "function" in t:
                    p.append(
                        f"tools.{j}: OpenAI-style tool; expected {{name, description, "
                        "input_schema}"
                    )
                continue  # a server tool (web_search_20250305, ...)
            name = t.get("name")
            if not isinstance(name, str) or not NAME_RE.match(name):
                p.append(
                    f"tools.{j}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'"
                )
            names.add(name)
            schema = t.get("input_schema")
            if not isinstance(schema, dict) or schema.get("type") != "object":
                p.append(f"tools.{j}.custom.input_schema: must be a JSON schema with type 'object'")
            elif missing_refs(schema):
                # input_schema must be valid JSON Schema draft 2020-12
                # (https://docs.claude.com/en/docs/agents-and-tools/tool-use/implement-tool-use)
                p.append(
                    f"tools.{j}.custom.input_schema: JSON schema is invalid. It must match JSON "
                    "Schema draft 2020-12 (https://json-schema.org/draft/2020-12). Learn more "
                    "about tool use at https://docs.claude.com/en/docs/tool-use."
                )
            if "description" in t and not isinstance(t["description"], str):
                p.append(f"tools.{j}.custom.description: Input should be a valid string")
            p += [
                f"tools.{j}.custom.{k}: Extra inputs are not permitted" for k in set(t) - TOOL_KEYS
            ]
        return names

    def _check_tool_choice(self, b, names, p):
        choice = b.get("tool_choice")
        if choice is None:
            return
        kind = choice.get("type") if isinstance(choice, dict) else None
        if kind not in ("auto", "any", "tool", "none"):
            p.append(
                f"tool_choice: Input tag {kind!r} found using 'type' does not match any of "
                "the expected tags: 'auto', 'any', 'tool', 'none'"
            )
        elif kind == "tool" and str(choice.get("name")) not in names:
            p.append(f"tool_choice.name: no tool named {choice.get('name')!r}")
        thinking = b.get("thinking")
        if (
            kind in ("any", "tool")
            and isinstance(thinking, dict)
            and thinking.get("type") in ("enabled", "adaptive")
        ):
            p.append("Thinking may not be enabled when tool_choice forces tool use.")

    def _check_messages(self, msgs, p) -> bool:
        """Pairing, ordering and echo rules. Returns whether tool blocks appear at all."""
        prev_role, open_ids, has_tools = None, [], False
        for i, m in enumerate(msgs):
            role = m.get("role") if isinstance(m, dict) else None
            content = m.get("content") if isinstance(m, dict) else None
            if role not in ("user", "assistant"):
                p.append(f"messages.{i}.role: Input should be 'user' or 'assistant'")
                continue
            if i == 0 and role != "user":
                p.append('messages: first message must use the "user" role')
            if role == prev_role:
                p.append(
                    'messages: roles must alternate between "user" and "assistant", but '
                    f'found multiple "{role}" roles in a row'
                )
            blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
            last_assistant = role == "assistant" and i == len(msgs) - 1
            if not isinstance(blocks, list) or (not blocks and not last_assistant):
                p.append(
                    f"messages.{i}: all messages must have non-empty content except for the "
                    "optional final assistant message"
                )
                blocks = []
            for j, blk in enumerate(blocks):
                if not isinstance(blk, dict) or not isinstance(blk.get("type"), str):
                    p.append(f"messages.{i}.content.{j}: Input should be a content block object")
                elif blk["type"] == "text" and not (blk.get("text") or last_assistant):
                    p.append(f"messages.{i}.content.{j}: text content blocks must be non-empty")
            blocks = [blk for blk in blocks if isinstance(blk, dict)]
            if role == "user":
                has_tools |= self._check_results(i, blocks, open_ids, p)
                open_ids = []
            else:
                if open_ids:
                    self._dangling(i - 1, open_ids, p)
                open_ids = self._check_assistant(i, blocks, p)
                has_tools |= bool(open_ids)
            prev_role = role
        if open_ids:
            self._dangling(len(msgs) - 1, open_ids, p)
        return has_tools

    @staticmethod
    def _dangling(i, ids, p):
        p.append(
            f"messages.{i}: `tool_use` ids were found without `tool_result` blocks "
            f"immediately after: {', '.join(ids)}. Each `tool_use` block must have a "
            "corresponding `tool_result` block in the next message."
        )

    def _check_results(self, i, blocks, open_ids, p) -> bool:
        seen_other, answered = False, []
        for j, blk in enumerate(blocks):
            if blk["type"] != "tool_result":
                seen_other = True
                continue
            if seen_other:
                p.append(
                    f"messages.{i}.content.{j}: tool_result blocks must come first in the "
                    "user message, before any other content"
                )
            tid = blk.get("tool_use_id")
            if not isinstance(tid, str) or not ID_RE.match(tid):
                p.append(
                    f"messages.{i}.content.{j}.tool_use_id: String should match pattern "
                    "'^[a-zA-Z0-9_-]+$'"
                )
            elif tid not in open_ids:
                p.append(
                    f"messages.{i}.content.{j}: unexpected `tool_use_id` found in "
                    f"`tool_result` blocks: {tid}. Each `tool_result` block must have a "
                    "corresponding `tool_use` block in the previous message."
                )
            answered.append(tid)
            c = blk.get("content")
            if c is not None and not isinstance(c, (str, list)):
                p.append(f"messages.{i}.content.{j}.content: Input should be a string or a list")
        missing = [t for t in open_ids if t not in answered]
        if missing:
            self._dangling(i - 1, missing, p)
        return bool(answered)

    def _check_assistant(self, i, blocks, p) -> list[str]:
        ids = []
        for j, blk in enumerate(blocks):
            if blk["type"] == "tool_use":
                tid = blk.get("id")
                if not isinstance(tid, str) or not ID_RE.match(tid):
                    p.append(
                        f"messages.{i}.content.{j}.tool_use.id: String should match pattern "
                        "'^[a-zA-Z0-9_-]+$'"
                    )
                    tid = str(tid)
                if not isinstance(blk.get("input"), dict):
                    p.append(f"messages.{i}.content.{j}.tool_use.input: Input should be an object")
                ids.append(tid)
                want = self.thinking_for.get(tid)
                if want is not None and (not blocks or blocks[0] != want):
                    p.append(
                        f"messages.{i}.content.0: the `thinking` block issued with tool_use "
                        f"{tid} must be passed back unchanged as the first block"
                    )
            elif blk["type"] == "thinking":
                sig = blk.get("signature")
                if not isinstance(sig, str) or sig not in self.signatures:
                    p.append(f"messages.{i}.content.{j}: Invalid `signature` in `thinking` block")
                elif self.signatures[sig] != blk.get("thinking"):
                    p.append(f"messages.{i}.content.{j}: `thinking` block was modified")
        return ids

    # ---- rendering ---------------------------------------------------------------------------
    def remember(self, reply, calls):
        reply._thinking_block = None
        if reply.thinking is not None:
            sig = signature(reply.thinking)
            block = {"type": "thinking", "thinking": reply.thinking, "signature": sig}
            reply._thinking_block = block
            self.signatures[sig] = reply.thinking
            for c in calls:
                self.thinking_for[c.id] = block

    @staticmethod
    def _input(c):
        return c.obj if c.obj is not None else c.text  # invalid JSON: the raw string, as scripted

    def _stop(self, reply, calls):
        if reply.refusal is not None:  # anthropic-sdk-python `types/stop_reason.py`: "refusal"
            return "refusal"
        return reply.finish_reason or ("tool_use" if calls else "end_turn")

    def _message(self, reply, rec, content, stop, output_tokens):
        return {
            "id": "msg_01" + token(22),
            "type": "message",
            "role": "assistant",
            "model": rec.body.get("model"),
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {
                # docs.anthropic.com/en/api/messages (usage): input_tokens excludes the
                # tokens read from or written to the cache
                "input_tokens": reply.usage[0] - reply.cached,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": reply.cached,
                "output_tokens": output_tokens,
                "service_tier": "standard",
            },
        }

    def render_json(self, reply, calls, rec):
        content = [reply._thinking_block] if reply._thinking_block else []
        if reply.text:
            content.append({"type": "text", "text": reply.text})
        content += [
            {"type": "tool_use", "id": c.id, "name": c.name, "input": self._input(c)} for c in calls
        ]
        return self._message(reply, rec, content, self._stop(reply, calls), reply.usage[1])

    def render_events(self, reply, calls, rec):
        ev = [
            _sse(
                "message_start",
                {"type": "message_start", "message": self._message(reply, rec, [], None, 1)},
            )
        ]
        index = 0

        def block(start: dict, deltas: list[dict]):
            nonlocal index
            ev.append(
                _sse(
                    "content_block_start",
                    {"type": "content_block_start", "index": index, "content_block": start},
                )
            )
            if index == 0:
                ev.append(_sse("ping", {"type": "ping"}))
            ev.extend(
                _sse(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": index, "delta": d},
                )
                for d in deltas
            )
            ev.append(_sse("content_block_stop", {"type": "content_block_stop", "index": index}))
            index += 1

        if reply.thinking is not None:
            deltas = [{"type": "thinking_delta", "thinking": t} for t in split_text(reply.thinking)]
            sig = reply._thinking_block["signature"]
            block(
                {"type": "thinking", "thinking": "", "signature": ""},
                [*deltas, {"type": "signature_delta", "signature": sig}],
            )
        if reply.text:
            pieces = split_text(reply.text, reply.text_chunks)
            block({"type": "text", "text": ""}, [{"type": "text_delta", "text": t} for t in pieces])
        for c in calls:
            pieces = [""] if c.obj == {} else ["", *split_args(c.text)]  # no-arg tools: just ""
            block(
                {"type": "tool_use", "id": c.id, "name": c.name, "input": {}},
                [{"type": "input_json_delta", "partial_json": s} for s in pieces],
            )
        if index == 0:
            ev.append(_sse("ping", {"type": "ping"}))
        ev.append(
            _sse(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": self._stop(reply, calls), "stop_sequence": None},
                    "usage": {"output_tokens": reply.usage[1]},
                },
            )
        )
        ev.append(_sse("message_stop", {"type": "message_stop"}))
        return ev, "text/event-stream; charset=utf-8"

    def stream_error_event(self, message, reply):
        err = self.error_body(529, message, reply.error_code, reply)
        return _sse("error", {"type": "error", "error": err["error"]})
