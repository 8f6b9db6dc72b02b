"""Self-check of the loopback provider servers (tests/servers/), driven with plain httpx2."""

import json
import sys
from pathlib import Path

import httpx2
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # make `tests.servers` importable
from tests.servers import Call, OpenAIServer, Reply, fixtures

openai_server, anthropic_server = fixtures.openai_server, fixtures.anthropic_server
gemini_server, provider_server = fixtures.gemini_server, fixtures.provider_server

USER = "Weather in Paris and Rome?"
TWO_CALLS = [Call("get_weather", {"city": "Paris"}), Call("get_weather", {"city": "Rome"})]
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def build(server, history=None, *, stream=False, key=None, headers=None, **extra):
    """(url, body, headers) of a request in the server's wire format; `history` is native."""
    key, p = key or server.api_key, server.provider
    if p == "openai":
        url, hdrs = server.base_url + "/chat/completions", {"Authorization": f"Bearer {key}"}
        body = {
            "model": "gpt-4.1",
            "messages": history or [{"role": "user", "content": USER}],
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": "get_weather",
                        "description": "Weather",
                        "parameters": SCHEMA,
                    },
                }
            ],
        }
        if stream:
            body["stream"] = True
            if not server.strict:
                body["stream_options"] = {"include_usage": True}
    elif p == "openai-responses":
        url, hdrs = server.base_url + "/responses", {"Authorization": f"Bearer {key}"}
        tool = {"name": "get_weather", "description": "Weather", "parameters": SCHEMA}
        body = {
            "model": "gpt-4.1",
            "input": history or [{"role": "user", "content": USER}],
            "tools": [{"type": "function", **tool, "strict": False}],
            "stream": stream,
        }
    elif p == "anthropic":
        url = server.base_url + "/v1/messages"
        hdrs = {"x-api-key": key, "anthropic-version": "2023-06-01"}
        body = {
            "model": "claude-sonnet-4-6",
            "max_tokens": 1024,
            "stream": stream,
            "messages": history or [{"role": "user", "content": USER}],
            "tools": [{"name": "get_weather", "description": "W", "input_schema": SCHEMA}],
        }
    else:
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        url = f"{server.base_url}/models/gemini-3-flash:{method}"
        hdrs = {"x-goog-api-key": key}
        body = {
            "contents": history or [{"role": "user", "parts": [{"text": USER}]}],
            "tools": [
                {
                    "functionDeclarations": [
                        {"name": "get_weather", "description": "W", "parameters": SCHEMA}
                    ]
                }
            ],
        }
    body.update(extra)
    for k, v in (headers or {}).items():  # a None value removes a default header
        hdrs.pop(k) if v is None else hdrs.__setitem__(k, v)
    return url, body, hdrs


def post(server, history=None, *, stream=False, **kw):
    """Send one request; (status, JSON body) or, for a 200 stream, (200, decoded SSE events)."""
    url, body, hdrs = build(server, history, stream=stream, **kw)
    if not stream:
        r = httpx2.post(url, json=body, headers=hdrs)
        return r.status_code, r.json()
    events = []
    with httpx2.stream("POST", url, json=body, headers=hdrs) as r:
        if r.status_code != 200:
            r.read()
            return r.status_code, r.json()
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("data:") and line[5:].strip() != "[DONE]":
                events.append(json.loads(line[5:]))
            elif line == "data: [DONE]" or line.startswith("event:"):
                events.append(line)
    return r.status_code, events


def parse(provider, stream, out):
    """(text, [(id, name, args)], finish) from a JSON body or a list of decoded SSE events."""
    text, calls, finish, args = "", [], None, {}
    if provider == "openai":
        for ch in (
            out
            if stream
            else [{"choices": [{"delta": out["choices"][0]["message"], **out["choices"][0]}]}]
        ):
            for c in ch.get("choices", []) if isinstance(ch, dict) else []:
                d, finish = c["delta"], c.get("finish_reason") or finish
                text += d.get("content") or ""
                for tc in d.get("tool_calls") or []:
                    i = tc.get("index", len(calls))
                    if i == len(calls):
                        calls.append([tc["id"], tc["function"]["name"], ""])
                    calls[i][2] += tc["function"]["arguments"]
        return text, [(i, n, json.loads(a)) for i, n, a in calls], finish
    if provider == "openai-responses":
        return parse_responses(stream, out)
    if provider == "anthropic":
        if not stream:
            text = "".join(b["text"] for b in out["content"] if b["type"] == "text")
            calls = [
                (b["id"], b["name"], b["input"]) for b in out["content"] if b["type"] == "tool_use"
            ]
            return text, calls, out["stop_reason"]
        for ev in (e for e in out if isinstance(e, dict)):
            if ev["type"] == "content_block_start" and ev["content_block"]["type"] == "tool_use":
                calls.append((ev["content_block"]["id"], ev["content_block"]["name"], ev["index"]))
            elif ev["type"] == "content_block_delta" and ev["delta"]["type"] == "text_delta":
                text += ev["delta"]["text"]
            elif ev["type"] == "content_block_delta" and ev["delta"]["type"] == "input_json_delta":
                args[ev["index"]] = args.get(ev["index"], "") + ev["delta"]["partial_json"]
            elif ev["type"] == "message_delta":
                finish = ev["delta"]["stop_reason"]
        assert out[-1] == {"type": "message_stop"} and "event: ping" in out
        return text, [(i, n, json.loads(args[x])) for i, n, x in calls], finish
    for ch in out if stream else [out]:
        cand = ch["candidates"][0]
        finish = cand.get("finishReason", finish)
        for part in cand["content"]["parts"]:
            text += part.get("text", "")
            if "functionCall" in part:
                fc = part["functionCall"]
                calls.append((fc.get("id"), fc["name"], fc.get("args", {})))
    return text, calls, finish


def parse_responses(stream, out):
    """`parse` for the Responses API: the items of the final Response (the whole body, or the
    `response.completed` event), the text also from the stream's deltas."""
    events = [e for e in out if isinstance(e, dict)] if stream else []
    if stream:
        assert [e["sequence_number"] for e in events] == list(range(len(events)))
        out = events[-1]["response"]
    text = "".join(
        part["text"]
        for item in out["output"]
        if item["type"] == "message"
        for part in item["content"]
        if part["type"] == "output_text"
    )
    if stream:
        deltas = [e["delta"] for e in events if e["type"] == "response.output_text.delta"]
        assert "".join(deltas) == text
    calls = [
        (item["call_id"], item["name"], json.loads(item["arguments"]))
        for item in out["output"]
        if item["type"] == "function_call"
    ]
    return text, calls, out["status"]


def results_history(provider, calls):
    """The follow-up history: user, the assistant's calls echoed, one result per call."""
    if provider == "openai":
        tcs = [
            {"id": i, "type": "function", "function": {"name": n, "arguments": json.dumps(a)}}
            for i, n, a in calls
        ]
        return [
            {"role": "user", "content": USER},
            {"role": "assistant", "content": "", "tool_calls": tcs},
            *({"role": "tool", "tool_call_id": i, "content": "18C"} for i, _, _ in calls),
        ]
    if provider == "openai-responses":
        return [
            {"role": "user", "content": USER},
            *(
                {"type": "function_call", "call_id": i, "name": n, "arguments": json.dumps(a)}
                for i, n, a in calls
            ),
            *({"type": "function_call_output", "call_id": i, "output": "18C"} for i, _, _ in calls),
        ]
    if provider == "anthropic":
        uses = [{"type": "tool_use", "id": i, "name": n, "input": a} for i, n, a in calls]
        return [
            {"role": "user", "content": USER},
            {"role": "assistant", "content": uses},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": i, "content": "18C"} for i, _, _ in calls
                ],
            },
        ]
    return [
        {"role": "user", "parts": [{"text": USER}]},
        {
            "role": "model",
            "parts": [{"functionCall": {"id": i, "name": n, "args": a}} for i, n, a in calls],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"id": i, "name": n, "response": {"output": "18C"}}}
                for i, n, _ in calls
            ],
        },
    ]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_text_then_two_calls_then_results(provider_server, stream):
    s, p = provider_server, provider_server.provider
    s.push(
        Reply(text="Hello loopback world"),
        Reply(text="Checking.", calls=TWO_CALLS),
        Reply(text="Both 18C."),
    )
    status, out = post(s, stream=stream)
    assert status == 200 and parse(p, stream, out)[0] == "Hello loopback world"
    status, out = post(s, stream=stream)
    text, calls, finish = parse(p, stream, out)
    assert text == "Checking." and [(n, a) for _, n, a in calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_weather", {"city": "Rome"}),
    ]
    finishes = {"anthropic": "tool_use", "gemini": "STOP", "openai-responses": "completed"}
    assert finish == finishes.get(p, "tool_calls")
    assert all(i for i, _, _ in calls) and len({i for i, _, _ in calls}) == 2
    if stream:  # OpenAI/Anthropic split each call's arguments; Gemini sends calls whole
        pieces = [e for e in out if "'arguments'" in str(e) or "partial_json" in str(e)]
        assert len(pieces) >= 6 if p != "gemini" else "functionCall" in str(out[-1])
    if stream and p == "openai" and not s.strict:
        assert out[-2]["choices"] == [] and out[-2]["usage"]["total_tokens"] == 15
        assert out[-1] == "data: [DONE]"
    status, out = post(s, results_history(p, calls), stream=stream)
    assert status == 200 and parse(p, stream, out)[0] == "Both 18C." and not s.failures
    assert [r.stream for r in s.requests] == [stream] * 3


FAULTS = [
    ("openai", 429),
    ("openai", 500),
    ("openai", 503),
    ("anthropic", 429),
    ("anthropic", 500),
    ("anthropic", 529),
    ("gemini", 429),
    ("gemini", 503),
]


@pytest.mark.parametrize("provider,status", FAULTS)
def test_error_faults(request, provider, status):
    s = request.getfixturevalue(f"{provider}_server")
    s.push(Reply(status=status, retry_after=2, retry_after_ms=1500, error_message="slow down"))
    url, body, headers = build(s)
    r = httpx2.post(url, json=body, headers=headers)
    assert r.status_code == status and r.headers["retry-after-ms"] == "1500"
    body = r.json()
    if provider == "openai":
        assert body["error"]["message"] == "slow down" and r.headers["retry-after"] == "2"
        assert body["error"]["type"] == ("requests" if status == 429 else "server_error")
    elif provider == "anthropic":
        assert body["type"] == "error" and body["error"]["message"] == "slow down"
        assert (
            body["error"]["type"]
            == {429: "rate_limit_error", 500: "api_error", 529: "overloaded_error"}[status]
        )
    else:
        err = body["error"]
        assert err["code"] == status and "retry-after" not in r.headers
        assert err["status"] == {429: "RESOURCE_EXHAUSTED", 503: "UNAVAILABLE"}[status]
        if status == 429:
            assert err["details"][-1]["retryDelay"] == "2s"


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_cut_response_is_incomplete(provider_server, stream):
    provider_server.push(Reply(text="one two three four five", cut_after=2 if stream else 20))
    url, body, headers = build(provider_server, stream=stream)
    seen = []
    with pytest.raises(httpx2.RemoteProtocolError):
        with httpx2.stream("POST", url, json=body, headers=headers) as r:
            assert r.status_code == 200
            for line in r.iter_lines():
                seen += [line] if line.startswith("data:") else []
    assert len(seen) == (2 if stream else 0)


def test_checks_catch_dangling_call_and_wrong_id(provider_server):
    s, p = provider_server, provider_server.provider
    calls = [
        ("call_1", "get_weather", {"city": "Paris"}),
        ("call_2", "get_weather", {"city": "Rome"}),
    ]
    history = results_history(p, calls)
    # dangling: call_2 never answered (a plain user turn comes next); then a result for "call_9"
    if p == "openai":
        dangling, history[3]["tool_call_id"] = [*history[:3], history[0]], "call_9"
    elif p == "openai-responses":
        dangling, history[4]["call_id"] = [*history[:4], history[0]], "call_9"
    elif p == "anthropic":
        dangling, history[2]["content"][1]["tool_use_id"] = [*history[:2], history[0]], "call_9"
    else:
        dangling = [*history[:2], history[0]]
        history[2]["parts"][1]["functionResponse"]["id"] = "call_9"
    for bad in (dangling, history):
        status, body = post(s, bad)
        assert status == 400 and "error" in body and "call_2" in " ".join(s.take_failures())
    assert s.pending == 0 and len(s.requests) == 2


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_wrong_key(request, provider):
    s = request.getfixturevalue(f"{provider}_server")
    status, body = post(s, key="sk-wrong-000")
    if provider == "openai":
        assert status == 401 and body["error"]["code"] == "invalid_api_key"
    elif provider == "anthropic":
        assert status == 401 and body["error"]["type"] == "authentication_error"
    else:
        assert status == 400 and body["error"]["status"] == "INVALID_ARGUMENT"
        assert body["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    assert not s.failures and not s.pending


def test_anthropic_2026_version_bearer_and_thinking_echo(anthropic_server):
    s = anthropic_server
    new = {
        "anthropic-version": "2026-10-21",
        "Authorization": f"Bearer {s.api_key}",
        "x-api-key": None,
    }
    s.push(Reply(thinking="Two cities.", calls=TWO_CALLS[:1]), Reply(text="ok"))
    status, out = post(s, headers=new, temperature=0.2)
    assert status == 400 and "temperature" in s.take_failures()[0]
    status, out = post(s, headers=new)
    assert status == 200 and out["content"][0]["type"] == "thinking"
    history = results_history("anthropic", parse("anthropic", False, out)[1])
    history[1]["content"].insert(0, {**out["content"][0], "thinking": "Edited."})
    assert post(s, history)[0] == 400 and s.take_failures()
    history[1]["content"][0] = out["content"][0]
    assert post(s, history)[0] == 200


def test_gemini_thought_signature_must_come_back(gemini_server):
    s = gemini_server
    s.push(Reply(calls=TWO_CALLS, thought_signature="c2lnLTE="), Reply(text="ok"))
    out = post(s)[1]
    parts = out["candidates"][0]["content"]["parts"]
    assert parts[0]["thoughtSignature"] == "c2lnLTE=" and "thoughtSignature" not in parts[1]
    history = results_history("gemini", parse("gemini", False, out)[1])
    assert post(s, history)[0] == 400 and "thought_signature" in s.take_failures()[0]
    history[1]["parts"] = parts
    assert post(s, history)[0] == 200


def test_strict_openai_and_exhausted_script():
    with OpenAIServer(strict=True) as s:
        calls = [("call_1", "get_weather", {"city": "Paris"})]
        history = results_history("openai", calls)
        history[1]["content"] = None
        assert post(s, history, parallel_tool_calls=True)[0] == 400
        assert len(s.take_failures()) == 2
        status, _ = post(s)
        assert status == 500 and "exhausted" in s.take_failures()[0]


def test_a_request_cut_by_the_client_is_not_a_malformed_request() -> None:
    """A run cancelled while its request is being sent hangs up mid-body: a real server sees a
    dropped connection, not a request, so the loopback server must not fail the test over it."""
    import socket

    from tests.servers import OpenAIServer

    with OpenAIServer() as server:
        host, port = server.base_url.split("//")[1].split("/")[0].split(":")
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(
                b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"mod'
            )
            sock.shutdown(socket.SHUT_WR)
            sock.recv(1)  # the server closes without an answer
        assert server.requests == [] and server.failures == []


@pytest.mark.parametrize("stream", [False, True])
def test_a_reply_can_be_written_from_the_request_it_answers(provider_server, stream):
    """`Reply(answer=...)`: a scripted model that answers from what the request carries."""
    s, p = provider_server, provider_server.provider
    s.push(Reply(answer=lambda body: f"I read {len(json.dumps(body))} characters."))
    status, out = post(s, stream=stream)
    assert status == 200
    assert parse(p, stream, out)[0] == f"I read {len(json.dumps(s.requests[0].body))} characters."
