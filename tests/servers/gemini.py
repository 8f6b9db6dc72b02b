"""Gemini (`/v1beta/models/{model}:generateContent` and `:streamGenerateContent?alt=sse`) server.

Also routes `/v1/...`. Auth: `x-goog-api-key` or `?key=`; a wrong key is a 400 `API_KEY_INVALID`,
a missing one a 403. Input may be camelCase or snake_case; output is camelCase.
`ids=False` behaves like Gemini 2 (no `functionCall.id` unless a Call sets one); `retry_header=True`
also sends `Retry-After` (by default a 429's delay is only in the body's `RetryInfo`);
`wrap_errors=True` wraps error bodies in a one-element array. Without `alt=sse`,
`streamGenerateContent` answers with one JSON array sent piece by piece, as Gemini does.
"""

from __future__ import annotations

import itertools
import json
import re

from llm_magic import catalog

from .base import LoopbackServer, dumps, token
from .media_rules import check_media
from .schema_rules import empty_enum_values, missing_refs, not_an_object
from .script import split_text

PATH_RE = re.compile(r"^/(v1beta|v1)/models/([^/:]+):(generateContent|streamGenerateContent)$")
NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_.:-]{0,127}$")
SCHEMA_KEYS = {
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "items",
    "minItems",
    "maxItems",
    "properties",
    "required",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "example",
    "anyOf",
    "propertyOrdering",
    "default",
    "minimum",
    "maximum",
}
TYPES = {"STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT", "NULL"}
BODY_KEYS = {
    "model",
    "contents",
    "tools",
    "toolConfig",
    "systemInstruction",
    "generationConfig",
    "safetySettings",
    "cachedContent",
    "labels",
}
TOOL_KINDS = {
    "functionDeclarations",
    "googleSearch",
    "googleSearchRetrieval",
    "codeExecution",
    "urlContext",
    "fileSearch",
    "googleMaps",
    "computerUse",
}
DECL_KEYS = {
    "name",
    "description",
    "parameters",
    "parametersJsonSchema",
    "response",
    "responseJsonSchema",
    "behavior",
}
_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_MESSAGES = {
    429: "You exceeded your current quota, please check your plan and billing details.",
    500: "An internal error has occurred. Please retry or report in "
    "https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
}
SKIP_SIGNATURE = "skip_thought_signature_validator"


def camel(key: str) -> str:
    return re.sub(r"_([a-z])", lambda m: m.group(1).upper(), key)


def g(d: dict, key: str, default=None):
    """Read a proto-JSON field by its camelCase name, accepting the snake_case spelling too."""
    if key in d:
        return d[key]
    return d.get(re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), key), default)


def _unknown(key, where) -> str:
    return f"Invalid JSON payload received. Unknown name \"{key}\" at '{where}': Cannot find field."


class GeminiServer(LoopbackServer):
    provider = "gemini"
    base_path = "/v1beta"
    default_model = "gemini-3-flash"
    retry_after_header = False

    def __init__(
        self,
        script=None,
        *,
        strict=False,
        api_key="sk-test-123",
        ids=True,
        retry_header=False,
        wrap_errors=False,
    ):
        super().__init__(script, strict=strict, api_key=api_key)
        self.ids, self.wrap_errors = ids, wrap_errors
        self.retry_after_header = retry_header
        self.signatures: dict = {}  # call key -> thoughtSignature issued on that functionCall part
        self.other_signatures: dict = {}  # first call key -> signature issued on another part
        self._n = itertools.count(4162774)

    # GET /v1beta/models: `{"models": [{"name": "models/ID", "supportedGenerationMethods"}],
    # "nextPageToken"}`; an unknown model is a 404 NOT_FOUND "models/ID is not found for API
    # version v1beta, or is not supported for generateContent. Call ListModels ..."
    # (ai.google.dev/api/models#method:-models.list, read 2026-12-07).
    models_path = "/v1beta/models"

    def render_models(self, ids):
        methods = ["generateContent", "countTokens"]
        return {
            "models": [{"name": f"models/{m}", "supportedGenerationMethods": methods} for m in ids]
        }

    def requested_model(self, rec, routed):
        return routed[1]

    def not_found(self, model):
        return self.error(
            404,
            f"models/{model} is not found for API version v1beta, or is not supported for "
            "generateContent. Call ListModels to see the list of available models and their "
            "supported methods.",
        )

    def route(self, method, path, query):
        m = PATH_RE.match(path)
        if m is None or method != "POST":
            return None
        return m.group(3) == "streamGenerateContent", m.group(2)

    def is_stream(self, routed_stream, body):
        return routed_stream

    def call_id(self):
        if not self.ids:
            return None
        return f"call_{next(self._n)}"

    def default_message(self, status):
        return _MESSAGES.get(status) or super().default_message(status)

    def error_body(self, status, message, code, reply):
        err = {
            "code": status,
            "message": message,
            "status": _STATUS.get(status, "INTERNAL" if status >= 500 else "INVALID_ARGUMENT"),
        }
        details = []
        if code == "API_KEY_INVALID":
            details.append(
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                }
            )
        elif code:
            err["status"] = code
        if status == 429:
            details.append(
                {
                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [
                        {
                            "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_"
                            "requests",
                            "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                            "quotaValue": "20",
                        }
                    ],
                }
            )
            if reply is not None and reply.retry_after is not None:
                details.append(
                    {
                        "@type": "type.googleapis.com/google.rpc.RetryInfo",
                        "retryDelay": f"{reply.retry_after:g}s",
                    }
                )
        if details:
            err["details"] = details
        return [{"error": err}] if self.wrap_errors else {"error": err}

    def check_auth(self, rec):
        key = rec.headers.get("x-goog-api-key", rec.query.get("key"))
        if key is None:
            return (
                403,
                "Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API Key or other form of API consumer identity to call "
                "this API.",
                None,
            )
        if key != self.api_key:
            return 400, "API key not valid. Please pass a valid API key.", "API_KEY_INVALID"
        return None

    # ---- output cap ----------------------------------------------------------------------------
    # GenerationConfig.maxOutputTokens: "The maximum number of tokens to include in a response
    # candidate"; a candidate cut there has finishReason MAX_TOKENS: "The maximum number of tokens
    # as specified in the request was reached" (ai.google.dev/api/generate-content
    # #generationconfig and #FinishReason, read 2026-12-07). The server counts thoughts
    # (thoughtsTokenCount, billed as output) against the cap like the text.
    cap_finish_reason = "MAX_TOKENS"

    def output_cap(self, body):
        config = g(body, "generationConfig")
        cap = g(config, "maxOutputTokens") if isinstance(config, dict) else None
        return cap if isinstance(cap, int) else None

    @staticmethod
    def _check_cap(config, p):
        """maxOutputTokens is an integer (int32 in the GenerationConfig reference above), at
        least 1."""
        cap = g(config, "maxOutputTokens") if isinstance(config, dict) else None
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
            p.append(
                f"* GenerateContentRequest.generation_config.max_output_tokens: must be a "
                f"positive integer, got {cap!r}"
            )

    # ---- request checks ----------------------------------------------------------------------
    def check_request(self, rec):
        b, p = rec.body, []
        p += [_unknown(k, "") for k in b if camel(k) not in BODY_KEYS]
        tools = b.get("tools")
        if tools is not None:
            self._check_tools(tools, p)
        si = g(b, "systemInstruction")
        if si is not None and not (isinstance(si, dict) and isinstance(si.get("parts"), list)):
            p.append("systemInstruction: expected a Content object with 'parts'")
        self._check_thinking(
            self._model(rec), g(g(b, "generationConfig") or {}, "thinkingConfig"), p
        )
        self._check_cap(g(b, "generationConfig"), p)
        contents = b.get("contents")
        if not isinstance(contents, list) or not contents:
            p.append("* GenerateContentRequest.contents: contents is not specified")
        else:
            self._check_contents(contents, p)
            self._check_media(rec, contents, self._model(rec), p)
        return p

    # Inline media (google-genai google/genai/types.py, read 2026-12-07): a `Part.inline_data`
    # is a `Blob` {mime_type, data: base64 bytes}; a `FunctionResponse.parts` item is a
    # `FunctionResponsePart` holding `inline_data`, a `FunctionResponseBlob` {mime_type, data}
    # (its `file_data` "is not supported in Gemini API"). Media inside a function response is a
    # Gemini 3 feature (ai.google.dev/gemini-api/docs/function-calling#multimodal, read
    # 2026-12-07): an older model's request with `parts` there is refused.
    def _check_media(self, rec, contents, model, p):
        newer = re.match(r"gemini-(\d+)", model or "")
        gemini3 = newer is not None and int(newer.group(1)) >= 3
        for i, c in enumerate(x for x in contents if isinstance(x, dict)):
            for j, part in enumerate(x for x in c.get("parts") or [] if isinstance(x, dict)):
                where = f"contents[{i}].parts[{j}]"
                if g(part, "inlineData") is not None:
                    self._check_blob(rec, f"{where}.inlineData", g(part, "inlineData"), p)
                fr = g(part, "functionResponse")
                extra = g(fr, "parts") if isinstance(fr, dict) else None
                if extra is None:
                    continue
                if not gemini3:
                    p.append(f"{where}.functionResponse.parts: not supported for model {model}")
                for k, item in enumerate(extra if isinstance(extra, list) else [extra]):
                    at = f"{where}.functionResponse.parts[{k}]"
                    blob = g(item, "inlineData") if isinstance(item, dict) else None
                    if blob is None:
                        p.append(f"{at}: expected inlineData (fileData is not supported)")
                    else:
                        self._check_blob(rec, f"{at}.inlineData", blob, p)

    @staticmethod
    def _check_blob(rec, where, blob, p):
        if not isinstance(blob, dict):
            p.append(f"{where}: expected a Blob object")
            return
        mime, data = g(blob, "mimeType"), blob.get("data")
        check_media(rec, where, mime, data, p, documents=True)

    @staticmethod
    def _check_thinking(model, config, p):
        """`thinkingConfig` (ai.google.dev/gemini-api/docs/thinking, read 2026-12-07): Gemini 3
        takes `thinkingLevel`, Gemini 2.5 `thinkingBudget`; one of them, never both, and the
        level on a 2.5 model is a 400 (catalog: thinking "level" or "gemini-budget")."""
        if not isinstance(config, dict):
            return
        level, budget = g(config, "thinkingLevel"), g(config, "thinkingBudget")
        info = catalog.lookup("gemini", model)
        if level is not None and budget is not None:
            p.append("You can only set only one of thinking budget and thinking level.")
        elif level is not None and info is not None and info.thinking != "level":
            p.append("Thinking level is not supported for this model.")
        elif level is not None and str(level).lower() not in ("minimal", "low", "medium", "high"):
            p.append(f"thinking_config.thinking_level: Invalid value {level!r}")

    def _check_tools(self, tools, p):
        for j, t in enumerate(tools if isinstance(tools, list) else [tools]):
            if not isinstance(t, dict):
                p.append(f"tools[{j}]: expected a Tool object")
                continue
            p += [_unknown(k, f"tools[{j}]") for k in t if camel(k) not in TOOL_KINDS]
            for k, d in enumerate(g(t, "functionDeclarations") or []):
                where = f"tools[{j}].function_declarations[{k}]"
                if not isinstance(d, dict):
                    p.append(f"{where}: expected a FunctionDeclaration object")
                    continue
                p += [_unknown(x, where) for x in d if camel(x) not in DECL_KEYS]
                if not isinstance(d.get("name"), str) or not NAME_RE.match(d["name"]):
                    p.append(
                        f"* {where}.name: Invalid function name. Must start with a letter or "
                        "an underscore. Must be a-z, A-Z, 0-9, or contain underscores, dots, "
                        "colons and dashes, with a maximum length of 128."
                    )
                params, pjs = g(d, "parameters"), g(d, "parametersJsonSchema")
                if params is not None and pjs is not None:
                    p.append(f"{where}: only one of parameters and parametersJsonSchema may be set")
                for key, schema in (("parameters", params), ("parameters_json_schema", pjs)):
                    if schema is not None and not_an_object(schema):
                        p.append(f"* GenerateContentRequest.{where}.{key}: must describe an object")
                if params is not None:
                    self._check_schema(params, where + ".parameters", p)
                if isinstance(pjs, dict):
                    self._check_json_schema(pjs, where + ".parameters_json_schema", p)

    def _check_schema(self, s, where, p):
        if not isinstance(s, dict):
            p.append(f"{where}: expected a Schema object")
            return
        p += [_unknown(k, where) for k in s if camel(k) not in SCHEMA_KEYS]
        typ = s.get("type")
        if typ is not None and (not isinstance(typ, str) or typ.upper() not in TYPES):
            p.append(f"{where}.type: Invalid value {typ!r} (one of {sorted(TYPES)})")
        enum = s.get("enum")
        if enum is not None and not (
            isinstance(enum, list) and all(isinstance(e, str) for e in enum)
        ):
            p.append(f"{where}.enum: enum values must be strings")
        # Schema (https://ai.google.dev/api/caching#Schema): an OBJECT lists its `properties`
        # and enum values are non-empty strings; the API's 400s read as below.
        for n, e in enumerate(enum if isinstance(enum, list) else ()):
            if e == "":
                p.append(f"* GenerateContentRequest.{where}.enum[{n}]: cannot be empty")
        if isinstance(typ, str) and typ.upper() == "OBJECT" and not s.get("properties"):
            p.append(
                f"* GenerateContentRequest.{where}.properties: should be non-empty for OBJECT type"
            )
        props = s.get("properties")
        for name, sub in props.items() if isinstance(props, dict) else ():
            self._check_schema(sub, f"{where}.properties[{name}]", p)
        if "items" in s:
            self._check_schema(s["items"], where + ".items", p)
        for n, sub in enumerate(g(s, "anyOf") or []):
            self._check_schema(sub, f"{where}.any_of[{n}]", p)

    @staticmethod
    def _check_json_schema(schema, where, p):
        """`parametersJsonSchema` (FunctionDeclaration, https://ai.google.dev/api/caching
        #FunctionDeclaration) takes JSON Schema with `$defs`/`$ref`; a reference must resolve
        and enum values must be non-empty, as in `parameters`."""
        for ref in missing_refs(schema):
            p.append(f"* GenerateContentRequest.{where}: unresolved reference {ref!r}")
        for path in empty_enum_values(schema):
            p.append(f"* GenerateContentRequest.{where}.{'.'.join(path)}.enum: cannot be empty")

    def _check_contents(self, contents, p):
        pending = None  # functionCall dicts of the previous model turn, awaiting responses
        for i, c in enumerate(contents):
            role = c.get("role", "user") if isinstance(c, dict) else None
            parts = c.get("parts") if isinstance(c, dict) else None
            if role not in ("user", "model", "function"):
                p.append(f"contents[{i}].role: Please use a valid role: user, model.")
                continue
            if not isinstance(parts, list) or not parts:
                p.append(
                    f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be"
                    " empty."
                )
                parts = []
            parts = [x for x in parts if isinstance(x, dict)]
            calls = [g(x, "functionCall") for x in parts if g(x, "functionCall") is not None]
            responses = [
                g(x, "functionResponse") for x in parts if g(x, "functionResponse") is not None
            ]
            if role == "model":
                if pending:
                    self._dangling(i - 1, p)
                self._check_signatures(i, parts, p)
                pending = calls or None
                continue
            if responses and not pending:
                p.append(
                    f"contents[{i}]: functionResponse parts without a preceding functionCall turn"
                )
            elif pending:
                if len(responses) != len(pending):
                    p.append(
                        "Please ensure that the number of function response parts is equal to "
                        "the number of function call parts of the function call turn."
                    )
                self._match(i, pending, responses, p)
            pending = None
        if pending:
            self._dangling(len(contents) - 1, p)

    @staticmethod
    def _dangling(i, p):
        p.append(
            f"contents[{i}]: a functionCall turn must be followed by a user turn with one "
            "functionResponse per functionCall"
        )

    def _match(self, i, calls, responses, p):
        call_ids = [c.get("id") for c in calls if isinstance(c, dict)]
        resp_ids = [r.get("id") for r in responses if isinstance(r, dict)]
        for r in responses:
            if not isinstance(r, dict) or not isinstance(r.get("response"), dict):
                p.append(f"contents[{i}]: functionResponse.response must be a JSON object")
        for cid in call_ids:
            if cid and cid not in resp_ids:
                p.append(
                    f"contents[{i}]: functionResponse.id does not match functionCall.id "
                    f"({cid} has no response)"
                )
        known = {str(cid) for cid in call_ids if cid}
        for rid in resp_ids:
            if rid and str(rid) not in known:
                p.append(f"contents[{i}]: functionResponse.id {rid!r} matches no functionCall.id")
        if not known:
            names = [c.get("name") for c in calls if isinstance(c, dict)]
            got = [r.get("name") for r in responses if isinstance(r, dict)]
            if len(got) == len(names) and got != names:
                p.append(
                    f"contents[{i}]: functionResponse names {got} do not follow the "
                    f"functionCall order {names}"
                )

    def _check_signatures(self, i, parts, p):
        """Gemini 3 (https://ai.google.dev/gemini-api/docs/thought-signatures): every signature
        it issued comes back on the part it came on; for a function-calling turn a missing one
        is a 400. A signature issued on another part of a call turn (a trailing empty text part,
        a thought part) must be in the echoed content as well."""
        calls = [g(x, "functionCall") for x in parts if isinstance(g(x, "functionCall"), dict)]
        if calls:
            first = calls[0]
            issued = self.other_signatures.get(
                self._key(first.get("id"), first.get("name"), first.get("args"))
            )
            echoed = {g(x, "thoughtSignature") for x in parts if "functionCall" not in x}
            if issued is not None and issued not in echoed and SKIP_SIGNATURE not in echoed:
                p.append(
                    f"contents[{i}]: Function call is missing a thought_signature: the "
                    "signature issued on a non-call part of this turn was not sent back"
                )
        for j, part in enumerate(parts):
            fc = g(part, "functionCall")
            if not isinstance(fc, dict):
                continue
            want = self.signatures.get(self._key(fc.get("id"), fc.get("name"), fc.get("args")))
            got = g(part, "thoughtSignature")
            if want is None or got in (want, SKIP_SIGNATURE):
                continue
            p.append(
                f"contents[{i}].parts[{j}]: "
                + (
                    "Function call is missing a thought_signature in functionCall parts."
                    if got is None
                    else "thought_signature does not match the one issued"
                )
            )

    # ---- rendering ---------------------------------------------------------------------------
    @staticmethod
    def _key(cid, name, args):
        return str(cid) if cid else (str(name), json.dumps(args or {}, sort_keys=True, default=str))

    def remember(self, reply, calls):
        first = next((c for c in calls if isinstance(c.obj, dict)), None)
        if reply.thought_signature and first is not None:
            key = self._key(first.id, first.name, first.obj)
            table = self.signatures if reply.signature_on == "call" else self.other_signatures
            table[key] = reply.thought_signature

    def _call_parts(self, reply, calls):
        parts = []
        for c in calls:
            if not isinstance(c.obj, dict):
                continue  # unparsable arguments: Gemini drops the call (MALFORMED_FUNCTION_CALL)
            fc = {"id": c.id} if c.id else {}
            fc["name"] = c.name
            if c.obj:
                fc["args"] = c.obj  # absent when there are no arguments, as Gemini does
            part = {"functionCall": fc}
            if reply.thought_signature and not parts and reply.signature_on == "call":
                part["thoughtSignature"] = reply.thought_signature
            parts.append(part)
        return parts

    def _finish(self, reply, calls, parts):
        if reply.finish_reason:
            return reply.finish_reason
        return "MALFORMED_FUNCTION_CALL" if len(parts) < len(calls) else "STOP"

    def _chunk(self, reply, model, rid, parts, finish=None):
        cand = {"content": {"parts": parts, "role": "model"}, "index": 0}
        i, o = reply.usage
        usage = {"promptTokenCount": i, "totalTokenCount": i}
        if finish:
            cand["finishReason"] = finish
            if reply.finish_message:
                cand["finishMessage"] = reply.finish_message
            # ai.google.dev/api/generate-content#UsageMetadata: cachedContentTokenCount is part
            # of promptTokenCount; thoughtsTokenCount is not part of candidatesTokenCount
            usage = {
                "promptTokenCount": i,
                "candidatesTokenCount": o - reply.reasoning,
                "totalTokenCount": i + o,
                **({"cachedContentTokenCount": reply.cached} if reply.cached else {}),
                **({"thoughtsTokenCount": reply.reasoning} if reply.reasoning else {}),
                "promptTokensDetails": [{"modality": "TEXT", "tokenCount": i}],
            }
        return {
            "candidates": [cand],
            "usageMetadata": usage,
            "modelVersion": model,
            "responseId": rid,
        }

    def _model(self, rec):
        return self.route("POST", rec.path.split("?")[0], {})[1]

    @staticmethod
    def _signature_groups(reply, call_parts):
        """The non-call parts that carry a signature (before, after) the others."""
        sig = reply.thought_signature
        if not sig or not call_parts or reply.signature_on == "call":
            return [], []
        if reply.signature_on == "thought":
            return [[{"text": "Planning the call.", "thought": True, "thoughtSignature": sig}]], []
        return [], [[{"text": "", "thoughtSignature": sig}]]

    def render_json(self, reply, calls, rec):
        parts = [{"text": reply.text}] if reply.text else []
        call_parts = self._call_parts(reply, calls)
        if reply.thought_signature and parts and not call_parts:
            parts[-1]["thoughtSignature"] = reply.thought_signature
        before, after = self._signature_groups(reply, call_parts)
        parts = [*(g[0] for g in before), *parts, *call_parts, *(g[0] for g in after)]
        return self._chunk(
            reply, self._model(rec), token(23), parts, self._finish(reply, calls, call_parts)
        )

    def render_events(self, reply, calls, rec):
        model, rid = self._model(rec), token(23)
        groups = [[{"text": t}] for t in split_text(reply.text, reply.text_chunks)]
        call_parts = self._call_parts(reply, calls)
        if reply.thought_signature and groups and not call_parts:
            groups[-1][0]["thoughtSignature"] = reply.thought_signature
        groups += [[part] for part in call_parts]
        before, after = self._signature_groups(reply, call_parts)
        groups = [*before, *groups, *after]
        if not groups:
            groups = [[{"text": ""}]]
        finish = self._finish(reply, calls, call_parts)
        chunks = [
            self._chunk(reply, model, rid, parts, finish if n == len(groups) - 1 else None)
            for n, parts in enumerate(groups)
        ]
        if rec.query.get("alt") == "sse":
            return [b"data: " + dumps(c) + b"\r\n\r\n" for c in chunks], "text/event-stream"
        events = [(b"[" if n == 0 else b",\r\n") + dumps(c) for n, c in enumerate(chunks)]
        return [*events, b"]"], "application/json; charset=UTF-8"

    def stream_error_event(self, message, reply):
        return (
            b"data: "
            + dumps({"error": {"code": 500, "message": message, "status": "INTERNAL"}})
            + b"\r\n\r\n"
        )
