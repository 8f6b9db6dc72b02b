"""How the benchmark times things: warm loops, rotated order, rounds, and their spread.

Every section follows one protocol, so its figures can be compared:

* **Warm loops.** Each contender runs a warm-up first, then, per round, a *block* of `n`
  back-to-back runs timed as one; its figure for the round is the block's time per run. Nothing
  is collected or slept before each run: a collection plus a sleep before every timed chain
  (what this benchmark used to do) cools the caches and the connection, doubles the floor's
  time and flatters every ratio.
* **Rotation.** The contenders' order turns by one each round, so none always runs first (after
  the between-block collection) or last.
* **Rounds and spread.** At least five rounds; every figure is reported as min / median / max
  over the rounds, and a ratio is taken *within* a round (the contenders ran back to back, on the
  same slice of a shared machine), then summarised the same way.
* **Wall and CPU.** Each block records wall time and this process's CPU time; the server runs
  in another process, so CPU time is the client's own cost and moves far less with the load of
  a shared machine.
* **Between blocks** (untimed) the garbage collector runs once, so a contender does not pay to
  collect another's leftovers (llm leaves an OpenAI client per request behind).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def rotated(items: Sequence[T], round_no: int) -> list[T]:
    """The contenders in this round's order: turned by one place per round."""
    k = round_no % len(items)
    return list(items[k:]) + list(items[:k])


def spread(values: Sequence[float], digits: int = 3) -> dict[str, float]:
    """min / median / max of per-round values."""
    return {
        "min": round(min(values), digits),
        "median": round(statistics.median(values), digits),
        "max": round(max(values), digits),
    }


def ratios(values: Sequence[float], base: Sequence[float]) -> list[float]:
    """Per-round ratios: each value over the baseline's value in the same round."""
    return [v / b for v, b in zip(values, base, strict=True)]


def freeze() -> None:
    """After warm-up: move everything alive out of the collector's reach (the modules, clients
    and caches every contender holds), so later collections cost each contender only its own
    garbage."""
    gc.collect()
    gc.freeze()


async def timed_block(run: Callable[[], Awaitable[Any]], n: int) -> tuple[float, float]:
    """Wall and CPU seconds per run, over n back-to-back runs of a warm contender.

    CPU time is this process's (all its threads), so it leaves out the server (another
    process) and, mostly, the other jobs of a shared machine: on a loaded machine it is the
    steadier measure of what a client costs, while wall time is what a user waits.
    """
    gc.collect()  # between blocks, untimed: no one pays for the previous block's leftovers
    clock, cpu = time.perf_counter, time.process_time
    t, c = clock(), cpu()
    for _ in range(n):
        await run()
    return (clock() - t) / n, (cpu() - c) / n


async def rounds(
    runners: dict[str, Callable[[], Awaitable[Any]]], n_rounds: int, per_block: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall and CPU seconds per run for each contender, one value per round, rotated order."""
    wall: dict[str, list[float]] = {name: [] for name in runners}
    cpu: dict[str, list[float]] = {name: [] for name in runners}
    names = list(runners)
    for r in range(n_rounds):
        for name in rotated(names, r):
            w, c = await timed_block(runners[name], per_block)
            wall[name].append(w)
            cpu[name].append(c)
    return wall, cpu


class Ticker:
    """A 5 ms asyncio ticker; `max_delay` is the largest lateness of any tick, in seconds."""

    PERIOD = 0.005

    def __init__(self) -> None:
        self.max_delay = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        clock = time.perf_counter
        while True:
            t = clock()
            await asyncio.sleep(self.PERIOD)
            self.max_delay = max(self.max_delay, clock() - t - self.PERIOD)

    async def __aenter__(self) -> Ticker:
        self._task = asyncio.create_task(self._tick())
        await asyncio.sleep(0)  # let it take its first timestamp
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
