"""Requests in flight per event loop are bounded by `limits.max_connections`.

Over real loopback HTTP, against a server that counts the requests it is serving at once. The
transport given here has a pool far bigger than the bound, so what keeps the count down is
llm_magic's own queue, not httpcore's pool.
"""

from __future__ import annotations

import asyncio
import threading

import httpx2
import pytest

import llm_magic
from llm_magic import events as ev
from tests.servers import OpenAIServer, Reply

KEY = "sk-test-123"


class CountingServer(OpenAIServer):
    """Counts the requests being served at once (a stream: until its last byte is written)."""

    def __init__(self) -> None:
        super().__init__(api_key=KEY)
        self.now = 0
        self.most = 0
        self._count = threading.Lock()

    def _dispatch(self, h):  # type: ignore[no-untyped-def]
        with self._count:
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            super()._dispatch(h)
        finally:
            with self._count:
                self.now -= 1


@pytest.fixture
def server():
    s = CountingServer().start()
    try:
        yield s
    finally:
        s.close()


def _model(server: CountingServer, bound: int | None, **options):  # type: ignore[no-untyped-def]
    big_pool = httpx2.AsyncHTTPTransport(limits=httpx2.Limits(max_connections=200))
    return llm_magic.get_async_model(
        "openai-chat:gpt-4o-mini",
        base_url=server.base_url,
        api_key=KEY,
        transport=big_pool,
        limits=httpx2.Limits(max_connections=bound, max_keepalive_connections=bound),
        **options,
    )


async def test_requests_in_flight_never_exceed_max_connections(server: CountingServer) -> None:
    server.push(*[Reply(text=f"answer {i}", delay=0.05) for i in range(24)])
    async with _model(server, 4) as model:
        results = await asyncio.gather(*(model.chain(f"q{i}", stream=False) for i in range(24)))
    assert sorted(r.text for r in results) == sorted(f"answer {i}" for i in range(24))
    assert server.most == 4  # bounded, and the bound is used


async def test_a_stream_holds_its_slot_until_it_is_closed(server: CountingServer) -> None:
    server.push(*[Reply(text="a b c d e f", chunk_delay=0.02) for _ in range(9)])
    async with _model(server, 3) as model:
        results = await asyncio.gather(*(model.chain("q", stream=True) for _ in range(9)))
    assert all(r.text == "a b c d e f" for r in results)
    assert server.most == 3


async def test_retries_errors_and_cancelled_streams_free_their_slots(
    server: CountingServer,
) -> None:
    """With one slot, a retried 503, a refused 400 and a stream cancelled mid-way each give the
    slot back: the chains after them still run (a leaked slot would hang them)."""
    server.push(Reply(status=503), Reply(text="after a retry"))
    server.push(Reply(status=400, error_message="bad request"))
    server.push(Reply(text=" ".join(["word"] * 200), chunk_delay=0.01))
    server.push(Reply(text="still served"))
    retry = llm_magic.RetryPolicy(max_retries=2, base_delay=0.01)
    async with _model(server, 1, retry=retry) as model:
        first = await model.chain("q", stream=False)
        assert first.text == "after a retry"
        with pytest.raises(llm_magic.ProviderError):
            await model.chain("q", stream=False)
        run = model.chain("q", stream=True)
        async for event in run:
            if isinstance(event, ev.TextDelta):
                run.cancel()
        assert run.status == "cancelled"
        last = await asyncio.wait_for(model.chain("q", stream=False), timeout=30)
    assert last.text == "still served"
    # (not `server.most == 1`: the server writes the cancelled stream's next chunk, and only then
    # sees the closed socket, while the next request is already being served)


async def test_max_connections_none_lifts_the_bound(server: CountingServer) -> None:
    server.push(*[Reply(text="ok", delay=0.3) for _ in range(12)])
    async with _model(server, None) as model:
        await asyncio.gather(*(model.chain("q", stream=False) for _ in range(12)))
    assert server.most > 4
