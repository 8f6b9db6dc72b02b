"""Many chains at once: 1,000 concurrent chains on one loop, and the pool settings that keep the
connections alive under that load.

    python -m bench.scale [--chains 1000] [--rounds 5] [--defaults]

Why httpx's defaults churned. `httpx.Limits()` is 100 connections, 20 kept alive. httpcore 1.0's
pool (`AsyncConnectionPool._assign_requests_to_connections`) closes an idle connection when
`len([c.is_idle() for c in connections]) > max_keepalive_connections`: that list has one entry
per connection, idle or not, so as soon as the pool holds more than 20 connections, *every*
connection that finishes a response is closed and a new one opened for the next request (the
server sees about one connection per request). The same function walks every queued request
times every connection each time a response ends, so 1,000 requests queued on 100 connections
cost O(queue x pool) per response. Whether a round churns depends on the timing of the first
wave, hence rounds of 260 vs 19 chains/s with the defaults.

httpcore2 (under httpx2, read 2026-12-07) fixed both: it counts only idle connections not
reserved by a request, and stops its scan once no connection is free. httpx2's defaults are still
100 connections and 20 kept alive, so a burst above 20 still closes the idle surplus between
waves; the settings below remain what llm_magic ships, and the in-flight bound keeps requests
first come, first served. `--defaults` shows what the defaults cost on httpx2.

What does not churn, with the values in `POOL_LIMITS` and `IN_FLIGHT`:

* `max_keepalive_connections == max_connections`: the pool never holds more connections than it
  keeps alive, so the (mis)count above never closes one;
* at most `max_connections` requests in flight (a semaphore around each request, released when
  its response is closed): requests wait in the semaphore's FIFO, not in the pool's queue, so
  the pool's per-response walk stays O(pool).

`BoundedTransport` is that pair as an httpx2 transport, for bare httpx2 (the `bare_httpx` key). llm_magic bounds its
requests in flight itself (`llm_magic/_http.py`: a FIFO semaphore of `max_connections` per loop)
and gets the same `POOL_LIMITS` through `get_async_model(..., limits=...)`; its transport here is
a `BoundedTransport` with no bound of its own, which counts the requests in flight, so the
figure shows the bound holding (`most_in_flight` <= `IN_FLIGHT`) and both pay the same wrapper.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx2

from bench.contenders import Bare, Magic, Server, unlogged
from bench.measure import freeze, ratios, rotated, spread

# What this benchmark gives both contenders (llm_magic's default is 100 / 100, same shape).
POOL_MAX_CONNECTIONS = 64
POOL_LIMITS = httpx2.Limits(
    max_connections=POOL_MAX_CONNECTIONS,
    max_keepalive_connections=POOL_MAX_CONNECTIONS,  # == max_connections: never churns
    keepalive_expiry=5.0,
)
IN_FLIGHT = POOL_MAX_CONNECTIONS  # requests in flight per client; the rest wait their turn


class _ReleasingStream(httpx2.AsyncByteStream):
    """A response body that frees its in-flight slot once, when it is closed."""

    def __init__(self, inner: httpx2.AsyncByteStream, release: Callable[[], None]) -> None:
        self._inner = inner
        self._release: Callable[[], None] | None = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for part in self._inner:
            yield part

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            if self._release is not None:
                self._release, release = None, self._release
                release()


class BoundedTransport(httpx2.AsyncBaseTransport):
    """httpx2's transport with `limits`, and at most `in_flight` requests at once (None: no
    bound of its own). Either way it counts the requests in flight (`most_in_flight`: the most
    at once since the last `take_most()`), from the request sent to its response closed."""

    def __init__(
        self, limits: httpx2.Limits = POOL_LIMITS, in_flight: int | None = IN_FLIGHT
    ) -> None:
        self._inner = httpx2.AsyncHTTPTransport(limits=limits)
        self._slots = asyncio.Semaphore(in_flight) if in_flight else None
        self.in_flight = self.most_in_flight = 0

    def take_most(self) -> int:
        most, self.most_in_flight = self.most_in_flight, self.in_flight
        return most

    def _release(self) -> None:
        self.in_flight -= 1
        if self._slots is not None:
            self._slots.release()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if self._slots is not None:
            await self._slots.acquire()
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            response = await self._inner.handle_async_request(request)
        except BaseException:
            self._release()
            raise
        assert isinstance(response.stream, httpx2.AsyncByteStream)
        return httpx2.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_ReleasingStream(response.stream, self._release),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._inner.aclose()


async def _wave(chain: Callable[[bool], Awaitable[str]], n: int) -> tuple[float, float]:
    """n chains started at once on this loop: chains per second (wall) until the last ends,
    and chains per CPU second of this process."""
    t, c = time.perf_counter(), time.process_time()
    await asyncio.gather(*(chain(False) for _ in range(n)))
    return n / (time.perf_counter() - t), n / (time.process_time() - c)


async def bench_many(
    server: Server,
    chains: int,
    n_rounds: int,
    defaults: bool,
    log: Callable[[str], None] = lambda line: None,
) -> dict[str, Any]:
    """Chains/s of `chains` concurrent chains per contender per round, and connections opened.

    llm_magic runs twice: as shipped (its sync tool on a worker thread, 1,000 thread hand-offs
    a wave) and with the tool on the loop's thread, as bare httpx calls it. With `defaults`,
    bare httpx and llm_magic with httpx's default limits run too: slow and bimodal, which is
    the point, but they can take a minute a round.
    """
    # llm_magic bounds its requests in flight itself (llm_magic/_http.py, `limits`): its
    # transport here only counts them, it does not bound them; bare httpx's bounds and counts
    transports = {
        "bare_httpx": BoundedTransport(),
        "llm_magic": BoundedTransport(in_flight=None),
        "llm_magic_on_loop_tool": BoundedTransport(in_flight=None),
    }
    contenders: dict[str, Any] = {
        "bare_httpx": Bare(server, transport=transports["bare_httpx"]),
        "llm_magic": Magic(server, transport=transports["llm_magic"], limits=POOL_LIMITS),
        "llm_magic_on_loop_tool": Magic(
            server, on_loop=True, transport=transports["llm_magic_on_loop_tool"], limits=POOL_LIMITS
        ),
    }
    if defaults:
        contenders["bare_httpx_default_limits"] = Bare(server)
        contenders["llm_magic_default_limits"] = Magic(server)
    try:
        for c in contenders.values():  # warm-up: connections, imports, caches
            await _wave(c.chain, min(chains, 2 * POOL_MAX_CONNECTIONS))
        freeze()
        rates: dict[str, list[float]] = {name: [] for name in contenders}
        cpu_rates: dict[str, list[float]] = {name: [] for name in contenders}
        opened: dict[str, list[int]] = {name: [] for name in contenders}
        in_flight: dict[str, list[int]] = {name: [] for name in contenders}
        for r in range(n_rounds):
            for name in rotated(list(contenders), r):
                before = server.connections()
                if name in transports:
                    transports[name].take_most()
                rate, cpu_rate = await _wave(contenders[name].chain, chains)
                rates[name].append(rate)
                cpu_rates[name].append(cpu_rate)
                opened[name].append(server.connections() - before - 1)  # minus /stats itself
                if name in transports:
                    in_flight[name].append(transports[name].take_most())
                shown = f", {in_flight[name][-1]} in flight at most" if in_flight[name] else ""
                log(
                    f"round {r}: {name} {rate:.0f} chains/s ({cpu_rate:.0f} per CPU s), "
                    f"{opened[name][-1]} connections{shown}"
                )
    finally:
        for c in contenders.values():
            await c.aclose()
    best_bare, best_bare_cpu = max(rates["bare_httpx"]), max(cpu_rates["bare_httpx"])
    out: dict[str, Any] = {
        "chains": chains,
        "rounds": n_rounds,
        "limits": {
            "max_connections": POOL_LIMITS.max_connections,
            "max_keepalive_connections": POOL_LIMITS.max_keepalive_connections,
            "keepalive_expiry": POOL_LIMITS.keepalive_expiry,
            "in_flight": IN_FLIGHT,
        },
    }
    for name, values in rates.items():
        out[name] = {
            "chains_per_s": spread(values, 1),
            "ratio_to_bare": spread(ratios(values, rates["bare_httpx"])),
            "chains_per_cpu_s": spread(cpu_rates[name], 1),
            "cpu_ratio_to_bare": spread(ratios(cpu_rates[name], cpu_rates["bare_httpx"])),
            # the goal: every round at >= 0.9x bare httpx's *best* round
            "worst_round_to_best_bare": round(min(values) / best_bare, 3),
            "cpu_worst_round_to_best_bare": round(min(cpu_rates[name]) / best_bare_cpu, 3),
            # per round; up to max_connections is the pool (re)filling after the idle gap
            # between rounds (keepalive_expiry), about one per request is churn
            "connections_opened": spread([float(v) for v in opened[name]], 0),
            # the most requests in flight at once in any round (None: not counted)
            "most_in_flight": max(in_flight[name]) if in_flight[name] else None,
        }
    return out


def _print(line: str) -> None:
    print(line, flush=True)


def main() -> None:
    unlogged()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chains", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--defaults", action="store_true", help="also httpx2's default limits")
    args = parser.parse_args()
    with Server() as server:
        result = asyncio.run(
            bench_many(server, args.chains, args.rounds, args.defaults, log=_print)
        )
    for name, row in result.items():
        print(f"{name}: {row}")


if __name__ == "__main__":
    main()
