"""A priced model on each loopback server: the model ids the genai-prices table knows, sent to
our test servers (the adapters place prices by provider name, whatever the URL)."""

from __future__ import annotations

from typing import Any

import llm_magic
from llm_magic import RetryPolicy
from tests.servers import LoopbackServer

MODEL_IDS = {
    "openai": "openai-chat:gpt-4.1",
    "anthropic": "anthropic:claude-sonnet-4-6",
    "gemini": "gemini:gemini-3.5-flash",
    "openai-responses": "openai:gpt-4.1",
}
PRICE_IDS = {
    "openai": "openai",
    "anthropic": "anthropic",
    "gemini": "google",
    "openai-responses": "openai",
}
FAST_RETRY = RetryPolicy(max_retries=2, base_delay=0.01, max_delay=0.05)


def model_for(server: LoopbackServer, **kwargs: Any) -> llm_magic.AsyncModel:
    return llm_magic.get_async_model(
        MODEL_IDS[server.provider],
        base_url=server.base_url,
        api_key=server.api_key,
        retry=FAST_RETRY,
        **kwargs,
    )


def sync_model_for(server: LoopbackServer) -> llm_magic.Model:
    return llm_magic.get_model(
        MODEL_IDS[server.provider],
        base_url=server.base_url,
        api_key=server.api_key,
        retry=FAST_RETRY,
    )


def tool_results(server: LoopbackServer, i: int = -1) -> list[str]:
    """The tool results request i sent, in order, whatever the wire format."""
    body = server.requests[i].body
    out: list[str] = []
    if server.provider == "openai":
        out += [m["content"] for m in body["messages"] if m["role"] == "tool"]
    elif server.provider == "openai-responses":
        out += [i["output"] for i in body["input"] if i.get("type") == "function_call_output"]
    elif server.provider == "anthropic":
        for m in body["messages"]:
            for block in m["content"] if isinstance(m["content"], list) else []:
                if block.get("type") == "tool_result":
                    content = block.get("content")
                    if isinstance(content, list):
                        content = "".join(c.get("text", "") for c in content)
                    out.append(content)
    else:
        for c in body["contents"]:
            for part in c.get("parts", []):
                if "functionResponse" in part:
                    out.append(str(part["functionResponse"]["response"]))
    return out


def user_texts(server: LoopbackServer, i: int = -1) -> list[str]:
    """The plain user texts of request i, in order."""
    body = server.requests[i].body
    out: list[str] = []
    for m in body.get("messages") or body.get("contents") or body.get("input") or []:
        if m.get("role") != "user":
            continue
        content = m.get("content", m.get("parts"))
        if isinstance(content, str):
            out.append(content)
            continue
        out += [b["text"] for b in content or [] if isinstance(b, dict) and "text" in b]
    return out
