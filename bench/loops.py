"""The in-process sections: overhead per chain, tool concurrency with loop lateness, streaming.

All follow bench/measure.py's protocol (warm blocks, rotated order, >= 5 rounds, min / median /
max, ratios within a round). See bench/README.md for what each figure means.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from bench.contenders import ONE_TOOL_S, slow_async, slow_sync
from bench.measure import Ticker, freeze, ratios, rotated, rounds, spread

BASELINE = "bare_httpx"
FLOOR = "raw_socket"


def _figures(
    wall: dict[str, list[float]], cpu: dict[str, list[float]], scale: float, unit: str
) -> dict[str, Any]:
    """Each contender's per-round wall and CPU values (times `scale`, in `unit`), and its
    per-round ratios to bare httpx and to the raw-socket floor."""
    out: dict[str, Any] = {}
    for name, values in wall.items():
        row: dict[str, Any] = {
            unit: spread([v * scale for v in values]),
            "cpu_" + unit: spread([v * scale for v in cpu[name]]),
            "ratio_to_bare": spread(ratios(values, wall[BASELINE])),
            "cpu_ratio_to_bare": spread(ratios(cpu[name], cpu[BASELINE])),
        }
        if FLOOR in wall:
            row["ratio_to_raw"] = spread(ratios(values, wall[FLOOR]))
            row["cpu_ratio_to_raw"] = spread(ratios(cpu[name], cpu[FLOOR]))
        out[name] = row
    return out


async def bench_overhead(contenders: list[Any], cfg: Any) -> dict[str, Any]:
    """ms per chain (two turns, one trivial sync tool), streaming and not."""
    out: dict[str, Any] = {"rounds": cfg.rounds, "chains_per_block": cfg.chains}
    for stream in (False, True):
        runners: dict[str, Callable[[], Awaitable[Any]]] = {
            c.name: (lambda c=c, s=stream: c.chain(s)) for c in contenders
        }
        for _ in range(cfg.warmup):
            for run in runners.values():
                await run()
        freeze()
        wall, cpu = await rounds(runners, cfg.rounds, cfg.chains)
        out["streaming" if stream else "non_streaming"] = _figures(wall, cpu, 1000, "ms")
    return out


async def bench_streaming(contenders: list[Any], cfg: Any) -> dict[str, Any]:
    """Text-delta events per second of a long streamed answer."""
    mode = f"long{cfg.stream_tokens}"
    counts: dict[str, int] = {}

    def runner(c: Any) -> Callable[[], Awaitable[int]]:
        async def run() -> int:
            counts[c.name] = await c.stream_events(mode)
            return counts[c.name]

        return run

    runners = {c.name: runner(c) for c in contenders}
    for run in runners.values():  # warm-up
        await run()
    freeze()
    wall, cpu = await rounds(runners, cfg.rounds, cfg.streams)

    # seconds per stream -> events per (CPU) second; a ratio of rates is the inverse of the
    # ratio of times, so >= 0.8x reads the same way for both
    def rates(seconds: dict[str, list[float]]) -> dict[str, list[float]]:
        return {name: [counts[name] / s for s in values] for name, values in seconds.items()}

    out: dict[str, Any] = {"tokens": cfg.stream_tokens, "rounds": cfg.rounds}
    out.update(_figures(rates(wall), rates(cpu), 1, "events_per_s"))
    for name in out:
        if isinstance(out[name], dict):
            out[name]["events"] = counts[name]
    return out


async def bench_tool_concurrency(contenders: list[Any], cfg: Any) -> dict[str, Any]:
    """8 calls of a 0.2 s tool in one turn: whole-chain wall / 0.2 s, and a 5 ms ticker's
    largest lateness meanwhile (a tool run on the loop thread shows up as its whole length)."""
    mode = f"par{cfg.parallel}"
    out: dict[str, Any] = {"parallel_calls": cfg.parallel, "tool_seconds": ONE_TOOL_S}
    for kind, fn in (("sync", slow_sync), ("async", slow_async)):
        walls: dict[str, list[float]] = {c.name: [] for c in contenders}
        delays: dict[str, list[float]] = {c.name: [] for c in contenders}
        for c in contenders:  # warm-up: threads, connections
            await c.tools(fn, mode)
        for r in range(cfg.concurrency_rounds):
            for c in rotated(contenders, r):
                async with Ticker() as ticker:
                    t = time.perf_counter()
                    await c.tools(fn, mode)
                    walls[c.name].append(time.perf_counter() - t)
                delays[c.name].append(ticker.max_delay)
        out[kind] = {
            name: {
                "ratio_to_one_tool": spread([w / ONE_TOOL_S for w in walls[name]]),
                "ticker_max_delay_ms": spread([d * 1000 for d in delays[name]], 1),
                "runs": len(walls[name]),
            }
            for name in walls
        }
    return out
