"""Long conversations: what one more turn of history adds to the CPU cost of a continuation.

    python -m bench.history [--turns 200] [--rounds 3]

A conversation resends its whole history on every request, so a continuation's cost grows with
the history for every client (the JSON body grows); what matters is how fast. Each round, llm_magic
continues one conversation (`conversation.chain(prompt)`: two model turns and one tool call, four
messages more each time) and bare httpx2 continues a list of messages the same way, block by
block in turn (`--block` continuations each). The figure is the slope of CPU time per
continuation against the continuations before it (least squares over the blocks' means), in
µs per continuation of history, and llm_magic's slope over bare httpx2's within the round.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bench.contenders import PROMPT, Bare, Magic, Server, add_one, unlogged
from bench.measure import freeze, ratios, spread


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys over xs."""
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs
    )


async def _cpu_block(step: Callable[[], Awaitable[Any]], n: int) -> float:
    """CPU seconds per continuation over n back-to-back ones."""
    c = time.process_time()
    for _ in range(n):
        await step()
    return (time.process_time() - c) / n


async def _round(
    magic: Magic, bare: Bare, turns: int, block: int, r: int
) -> dict[str, tuple[float, float]]:
    """One round, a new conversation each: per contender, the first block's CPU µs per
    continuation and the slope in CPU µs per continuation of history."""
    conversation = magic.model("chain").conversation(tools=[add_one])
    history: list[dict[str, Any]] = []
    steps: dict[str, Callable[[], Awaitable[Any]]] = {
        "llm_magic": lambda: conversation.chain(PROMPT, stream=False),
        "bare_httpx": lambda: bare.chain(False, history),
    }
    xs: list[float] = []
    ys: dict[str, list[float]] = {name: [] for name in steps}
    for start in range(0, turns, block):
        gc.collect()  # between blocks, untimed, as bench/measure.py does
        order = list(steps) if (start // block + r) % 2 == 0 else list(steps)[::-1]
        for name in order:
            ys[name].append(await _cpu_block(steps[name], block))
        xs.append(start + (block - 1) / 2)
    return {name: (ys[name][0] * 1e6, slope(xs, ys[name]) * 1e6) for name in steps}


async def bench_history(
    server: Server, turns: int, n_rounds: int, block: int = 10
) -> dict[str, Any]:
    """Per round: CPU slope per continuation of history, llm_magic and bare httpx2."""
    magic, bare = Magic(server), Bare(server)
    slopes: dict[str, list[float]] = {"llm_magic": [], "bare_httpx": []}
    firsts: dict[str, list[float]] = {"llm_magic": [], "bare_httpx": []}
    try:
        for _ in range(20):  # warm-up: connections, imports, caches
            await magic.chain(False)
            await bare.chain(False)
        freeze()
        for r in range(n_rounds):
            for name, (first, per_turn) in (await _round(magic, bare, turns, block, r)).items():
                slopes[name].append(per_turn)
                firsts[name].append(first)
    finally:
        await magic.aclose()
        await bare.aclose()
    return {
        "turns": turns,
        "rounds": n_rounds,
        "block": block,
        **{
            name: {
                "cpu_us_per_turn_of_history": spread(values, 2),
                "cpu_us_first_block": spread(firsts[name], 1),
                "slope_ratio_to_bare": spread(ratios(values, slopes["bare_httpx"])),
            }
            for name, values in slopes.items()
        },
    }


def main() -> None:
    unlogged()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--block", type=int, default=10)
    args = parser.parse_args()
    with Server() as server:
        out = asyncio.run(bench_history(server, args.turns, args.rounds, args.block))
    for name in ("llm_magic", "bare_httpx"):
        row = out[name]
        print(
            f"{name:<11} {row['cpu_us_per_turn_of_history']['median']:8.2f} µs CPU per turn of "
            f"history ({row['cpu_us_per_turn_of_history']['min']:.2f}-"
            f"{row['cpu_us_per_turn_of_history']['max']:.2f}); slope / bare "
            f"{row['slope_ratio_to_bare']['median']:.2f}x"
        )


if __name__ == "__main__":
    main()
