"""One HTTP stack: llm_magic's transport is httpx2, the stack genai-prices (our own dependency),
openai-python 3, anthropic 2 and mcp 2 use, so a notebook does not load httpx and httpcore beside
it. And an httpx object handed to llm_magic is refused with a line that names the httpx2 one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx2
import pytest

import llm_magic
from tests.servers import OpenAIServer

ROOT = Path(__file__).resolve().parents[2]
STACKS = ("httpx", "httpcore", "httpx2", "httpcore2")

# A first priced chain (a tool turn, then the answer; the price table loads after the first
# turn) in a fresh interpreter that imports nothing but llm_magic and the loopback server.
_PRICED_CHAIN = textwrap.dedent(
    """
    import asyncio, json, sys
    import llm_magic
    from tests.servers import Call, OpenAIServer, Reply

    def add_one(x: int) -> int:
        "Add one."
        return x + 1

    server = OpenAIServer(api_key="sk-test-123").start()
    server.push(Reply(calls=[Call("add_one", {"x": 41})], usage=(100, 5)), Reply(text="42"))
    result = asyncio.run(llm_magic.chain(
        "hi", model="openai-chat:gpt-4.1", base_url=server.base_url, api_key="sk-test-123",
        tools=[add_one]))
    server.close()
    stacks = sorted(m for m in ("httpx", "httpcore", "httpx2", "httpcore2") if m in sys.modules)
    print(json.dumps({"stacks": stacks, "text": result.text, "cost": str(result.cost),
                      "prices": "genai_prices" in sys.modules}))
    """
)


def _run_fresh(code: str) -> str:
    """What `code` prints in a fresh interpreter that finds this checkout first."""
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()[-1]


def test_a_first_priced_chain_loads_httpx2_only() -> None:
    seen = json.loads(_run_fresh(_PRICED_CHAIN))
    assert seen["text"] == "42"
    assert seen["prices"] and seen["cost"] not in ("None", "0")  # the run was priced
    assert seen["stacks"] == ["httpcore2", "httpx2"]


def test_import_llm_magic_loads_httpx2_and_no_httpx() -> None:
    code = f"import json, sys, llm_magic; print(json.dumps([m for m in {STACKS!r} if m in sys.modules]))"
    loaded = json.loads(_run_fresh(code))
    assert "httpx2" in loaded  # httpcore2 comes with the first request
    assert not {"httpx", "httpcore"} & set(loaded)


@pytest.fixture
def server() -> OpenAIServer:
    s = OpenAIServer(api_key="sk-test-123").start()
    yield s  # type: ignore[misc]
    s.close()


def test_httpx_limits_are_refused_naming_httpx2(server: OpenAIServer) -> None:
    httpx = pytest.importorskip("httpx")
    with pytest.raises(TypeError, match=r"limits must be an httpx2\.Limits .* got httpx\.Limits"):
        llm_magic.get_async_model(
            "openai-chat:gpt-4.1",
            base_url=server.base_url,
            api_key="sk-test-123",
            limits=httpx.Limits(max_connections=8),
        )


def test_an_httpx_transport_is_refused_naming_httpx2(server: OpenAIServer) -> None:
    """An httpx transport would raise httpx's exceptions, which escape retries and scrubbing."""
    httpx = pytest.importorskip("httpx")
    with pytest.raises(TypeError, match=r"transport must be an httpx2\.AsyncBaseTransport"):
        llm_magic.get_async_model(
            "openai-chat:gpt-4.1",
            base_url=server.base_url,
            api_key="sk-test-123",
            transport=httpx.AsyncHTTPTransport(),
        )
    assert server.requests == []


async def test_an_httpx2_transport_and_limits_are_used(server: OpenAIServer) -> None:
    server.push("over the given transport")
    async with llm_magic.get_async_model(
        "openai-chat:gpt-4.1",
        base_url=server.base_url,
        api_key="sk-test-123",
        transport=httpx2.AsyncHTTPTransport(),
        limits=httpx2.Limits(max_connections=2, max_keepalive_connections=2),
    ) as model:
        reply = await model.prompt("hi")
    assert reply.text == "over the given transport"
    assert len(server.requests) == 1


def test_the_key_is_not_in_the_type_error(server: OpenAIServer) -> None:
    with pytest.raises(TypeError) as caught:
        llm_magic.get_async_model(
            "openai-chat:gpt-4.1",
            base_url=server.base_url,
            api_key="sk-secret-key-9876",
            limits={"max_connections": 8},
        )
    assert "sk-secret-key-9876" not in str(caught.value)
    assert "got builtins.dict" in str(caught.value)
