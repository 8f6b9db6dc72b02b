"""Loopback HTTP servers speaking the OpenAI (Chat Completions, Responses), Anthropic and Gemini wire
formats, scripted per test.

from tests.servers import OpenAIServer, Reply, Call
with OpenAIServer([Reply(calls=[Call("add", {"a": 1})]), Reply(text="2")]) as server:
    ...  # point a client at server.base_url; inspect server.requests / server.failures
# leaving the block (or close(), or a fixture's teardown) fails if server.failures is not empty;
# a test that provokes failures on purpose consumes them with server.take_failures()
"""

from .anthropic import AnthropicServer
from .base import LoopbackServer, RecordedRequest
from .gemini import GeminiServer
from .openai import OpenAIServer
from .openai_responses import OpenAIResponsesServer
from .script import Call, Reply

KINDS = ("openai", "anthropic", "gemini", "openai-strict", "openai-responses")


def make_server(kind: str, script=None, **kwargs) -> LoopbackServer:
    """An unstarted server for one of KINDS ("openai-strict" = OpenAIServer(strict=True),
    "openai-responses" = OpenAIResponsesServer, OpenAI's Responses API)."""
    if kind == "openai-strict":
        return OpenAIServer(script, strict=True, **kwargs)
    servers = {
        "openai": OpenAIServer,
        "anthropic": AnthropicServer,
        "gemini": GeminiServer,
        "openai-responses": OpenAIResponsesServer,
    }
    return servers[kind](script, **kwargs)


__all__ = [
    "KINDS",
    "AnthropicServer",
    "Call",
    "GeminiServer",
    "LoopbackServer",
    "OpenAIResponsesServer",
    "OpenAIServer",
    "RecordedRequest",
    "Reply",
    "make_server",
]
