"""Plain Python usage works, or fails with a sentence: a run under `asyncio.run`, a wrong
`continue_`, a run cancelled before it starts (which must not start an MCP server)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

import llm_magic
from llm_magic.tools import Tool
from tests.servers import OpenAIServer, Reply


def model_for(server: OpenAIServer) -> llm_magic.AsyncModel:
    return llm_magic.get_async_model(
        "openai-chat:gpt-test", base_url=server.base_url, api_key=server.api_key
    )


class SlowSource:
    """A tool source (an MCP server's stand-in, no I/O) that records being asked."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.listed = 0

    async def list_tools(self) -> list[Tool]:
        self.listed += 1
        await asyncio.sleep(self.delay)
        return []


def test_asyncio_run_takes_a_chain_run() -> None:
    with OpenAIServer([Reply(text="hello")]) as server:

        async def answer() -> str:
            async with model_for(server) as model:
                return (await model.chain("hi")).text

        result = asyncio.run(model_for(server).chain("hi"))
        assert result.text == "hello" and result.status == "done"
        server.push(Reply(text="again"))
        assert asyncio.run(answer()) == "again"


def test_run_until_complete_takes_a_chain_run() -> None:
    with OpenAIServer([Reply(text="hello")]) as server:
        loop = asyncio.new_event_loop()
        try:
            assert loop.run_until_complete(model_for(server).chain("hi")).text == "hello"
        finally:
            loop.close()


@pytest.mark.parametrize("wrong", [False, True, "previous", 0])
async def test_continue_takes_a_result_or_says_what_it_takes(wrong: Any) -> None:
    with pytest.raises(TypeError, match=r"continue_ takes the result to go on from"):
        await llm_magic.chain("hi", continue_=wrong, model="openai-chat:gpt-test", api_key="k")


async def test_a_run_cancelled_before_it_starts_lists_no_tool_source() -> None:
    source = SlowSource()
    with OpenAIServer() as server:
        async with model_for(server) as model:
            run = model.chain("hi", tools=[source])
            run.cancel()
            result = await run
        assert server.requests == []
    assert result.status == "cancelled" and source.listed == 0
    assert [type(e).__name__ for e in run.events][:1] == ["RunStarted"]


async def test_the_runs_timeout_covers_starting_its_tool_sources() -> None:
    source = SlowSource(delay=30)
    with OpenAIServer() as server:
        async with model_for(server) as model:
            started = time.monotonic()
            result = await model.chain("hi", tools=[source], timeout=0.3)
        assert server.requests == []
    assert result.status == "timeout" and source.listed == 1
    assert time.monotonic() - started < 10
