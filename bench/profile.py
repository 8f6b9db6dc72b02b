"""Where llm_magic's time goes, for the floors the benchmark reports as missed.

    python -m bench.profile stream [--tokens 2000] [--repeats 20]   # cProfile of the event stream
    python -m bench.profile scaling                                  # events/s by answer length
    python -m bench.profile overhead [--chains 300]                  # cProfile of chains
    python -m bench.profile executor                                 # 8 sync tools vs thread pool
    python -m bench.profile keepalive                                # streamed turns vs connections

Uses the same loopback server as bench.run. llm_magic's files are never changed; the what-if
rows (`executor`, `keepalive`) patch objects in this process only, to size a proposed fix.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import cProfile
import io
import os
import pstats
import statistics
import time

from bench.contenders import Bare, Magic, Server, slow_sync, unlogged
from bench.measure import Ticker


def _print_profile(prof: cProfile.Profile, limit: int) -> None:
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.strip_dirs().sort_stats("tottime").print_stats(limit)
    print(out.getvalue())


async def _stream(server: Server, tokens: int, repeats: int, limit: int) -> None:
    magic, bare = Magic(server), Bare(server)
    mode = f"long{tokens}"
    await magic.stream_events(mode)
    await bare.stream_events(mode)
    for name, fn in (
        ("llm_magic", lambda: magic.stream_events(mode)),
        ("bare_httpx", lambda: bare.stream_events(mode)),
    ):
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(repeats):
            await fn()
        prof.disable()
        print(f"==== {name}: {repeats} x {tokens} tokens, by own time")
        _print_profile(prof, limit)
    await magic.aclose()
    await bare.aclose()


async def _scaling(server: Server) -> None:
    magic, bare = Magic(server), Bare(server)
    print(f"{'tokens':>7} {'llm_magic ev/s':>15} {'bare ev/s':>10} {'ratio':>6}")
    for tokens in (100, 500, 2000, 8000):
        mode = f"long{tokens}"
        await magic.stream_events(mode)
        await bare.stream_events(mode)
        rates: dict[str, list[float]] = {"m": [], "b": []}
        for _ in range(max(3, 20000 // tokens)):
            for key, fn in (
                ("m", lambda m=mode: magic.stream_events(m)),
                ("b", lambda m=mode: bare.stream_events(m)),
            ):
                t = time.perf_counter()
                n = await fn()
                rates[key].append(n / (time.perf_counter() - t))
        m, b = statistics.median(rates["m"]), statistics.median(rates["b"])
        print(f"{tokens:>7} {m:>15,.0f} {b:>10,.0f} {m / b:>6.2f}")
    await magic.aclose()
    await bare.aclose()


async def _overhead(server: Server, chains: int, limit: int) -> None:
    magic = Magic(server)
    for stream in (False, True):
        for _ in range(20):
            await magic.chain(stream)
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(chains):
            await magic.chain(stream)
        prof.disable()
        print(f"==== llm_magic: {chains} chains, stream={stream}, by own time")
        _print_profile(prof, limit)
    await magic.aclose()


async def _executor(server: Server) -> None:
    magic = Magic(server)
    mode = "par8"
    loop = asyncio.get_running_loop()
    print(
        f"os.cpu_count() = {os.cpu_count()}; asyncio's default executor has "
        f"min(32, cpu_count + 4) = {min(32, (os.cpu_count() or 1) + 4)} workers"
    )

    async def measure(label: str) -> None:
        await magic.tools(slow_sync, mode)  # warm the pool
        walls, delays = [], []
        for _ in range(5):
            async with Ticker() as ticker:
                t = time.perf_counter()
                await magic.tools(slow_sync, mode)
                walls.append(time.perf_counter() - t)
            delays.append(ticker.max_delay)
        print(
            f"{label:<44} wall/0.2 s = {statistics.median(walls) / 0.2:.2f}x, "
            f"ticker max {max(delays) * 1000:.1f} ms"
        )

    await measure("default executor (as shipped)")
    loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(max_workers=8))
    await measure("default executor replaced, max_workers=8")
    await magic.aclose()


async def _keepalive(server: Server, chains: int) -> None:
    import contextlib

    from llm_magic import _http as lm_http

    magic, bare = Magic(server), Bare(server)

    async def measure(label: str) -> None:
        for _ in range(20):
            await magic.chain(True)
            await bare.chain(True)
        prof = cProfile.Profile()  # only to count connect() calls, on 20 chains
        prof.enable()
        for _ in range(20):
            await magic.chain(True)
        prof.disable()
        connects = sum(
            v[0]
            for k, v in pstats.Stats(prof).stats.items()
            if k[2] == "<method 'connect' of '_socket.socket' objects>"
        )
        ratios, tm = [], []
        for _ in range(chains):
            t = time.perf_counter()
            await magic.chain(True)
            a = time.perf_counter() - t
            t = time.perf_counter()
            await bare.chain(True)
            ratios.append(a / (time.perf_counter() - t))
            tm.append(a)
        print(
            f"{label:<50} {connects / 20:.1f} connects/chain, "
            f"{statistics.median(tm) * 1000:.2f} ms/chain, "
            f"paired ratio to bare {statistics.median(ratios):.2f}x"
        )

    await measure("streaming chain as shipped")
    shipped = lm_http.HTTPSession.stream

    @contextlib.asynccontextmanager
    async def draining(self, path, body):  # what-if: read the body to its end before closing
        async with shipped(self, path, body) as events:
            yield events
            async for _ in events:
                pass

    lm_http.HTTPSession.stream = draining  # type: ignore[method-assign]
    try:
        await measure("what-if: events drained after [DONE] (no break)")
    finally:
        lm_http.HTTPSession.stream = shipped  # type: ignore[method-assign]
    await magic.aclose()
    await bare.aclose()


def main() -> None:
    unlogged()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("stream", "scaling", "overhead", "executor", "keepalive"))
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--chains", type=int, default=300)
    parser.add_argument("--limit", type=int, default=25)
    args = parser.parse_args()
    with Server() as server:
        if args.what == "stream":
            asyncio.run(_stream(server, args.tokens, args.repeats, args.limit))
        elif args.what == "scaling":
            asyncio.run(_scaling(server))
        elif args.what == "overhead":
            asyncio.run(_overhead(server, args.chains, args.limit))
        elif args.what == "keepalive":
            asyncio.run(_keepalive(server, args.chains))
        else:
            asyncio.run(_executor(server))


if __name__ == "__main__":
    main()
