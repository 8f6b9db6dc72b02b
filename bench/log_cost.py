"""What the run log costs: the write of one run, and a logged run beside an unlogged one.

    python -m bench.log_cost [--runs 20] [--rounds 5]

Chains of one tool call against bench/server.py's `chain` mode run in blocks, alternately with
the log on (a fresh database in a temporary directory) and off (`LLM_MAGIC_LOG=0`), in rotated
order, as bench/measure.py says. For each, per round: the wall time per run, the process's CPU
time per run with the block's writes finished (`llm_magic.log.flush()`: the writer thread's work
counted), and the 5 ms ticker's worst lateness during the block (the loop's worst delay: a write
that held the loop would show there). Separately, the write itself: one finished run captured,
scrubbed and inserted (one transaction, WAL) `runs` times on this thread, wall and CPU per
write; the same run written 10 at a time in one transaction (what the writer does with the runs
that ended while it wrote), CPU per run; and the database's bytes per run.

`run(server, runs, rounds)` returns the figures as a dict, for bench/run.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.contenders import Magic, Server
from bench.measure import Ticker, rotated, spread

BATCH = 10  # runs per transaction in the batched write figure


async def _block(magic: Magic, n: int, logged: bool) -> tuple[float, float, float]:
    """(wall s, CPU s) per run and the ticker's worst delay (s), over n runs."""
    from llm_magic import log

    os.environ["LLM_MAGIC_LOG"] = "1" if logged else "0"
    clock, cpu = time.perf_counter, time.process_time
    async with Ticker() as ticker:
        t, c = clock(), cpu()
        for _ in range(n):
            await magic.chain(stream=True)
        wall = clock() - t
    log.flush()  # the block's writes, on the writer thread, counted in its CPU time
    return wall / n, (cpu() - c) / n, ticker.max_delay


async def _loops(server: Server, runs: int, rounds: int) -> dict[str, Any]:
    magic = Magic(server)
    try:
        for logged in (True, False):  # warm both paths (the first write opens the database)
            await _block(magic, 2, logged)
        wall: dict[str, list[float]] = {"logged": [], "unlogged": []}
        cpu: dict[str, list[float]] = {"logged": [], "unlogged": []}
        delay: dict[str, list[float]] = {"logged": [], "unlogged": []}
        for r in range(rounds):
            for name in rotated(["logged", "unlogged"], r):
                w, c, d = await _block(magic, runs, name == "logged")
                wall[name].append(w * 1000)
                cpu[name].append(c * 1000)
                delay[name].append(d * 1000)
    finally:
        await magic.aclose()
    return {
        name: {
            "ms_per_run": spread(wall[name]),
            "cpu_ms_per_run": spread(cpu[name]),
            "loop_worst_delay_ms": spread(delay[name]),
        }
        for name in wall
    }


async def _write_cost(server: Server, runs: int, path: Path) -> dict[str, Any]:
    """One real run's write, repeated on this thread: what the writer thread pays per run."""
    from llm_magic.log import writer
    from llm_magic.log.origin import Clock, Where

    magic = Magic(server)
    try:
        run = magic.model("chain").chain("Add one to 41.", tools=[magic.tool])
        result = await run
    finally:
        await magic.aclose()
    writer.flush()
    clock, cpu = time.perf_counter, time.process_time
    before = path.stat().st_size if path.exists() else 0
    stamp = Clock(time.time(), time.monotonic())
    ended = (run, result, len(run.events), stamp, Where(), str(path))
    walls, cpus = [], []
    for _ in range(runs):
        t, c = clock(), cpu()
        writer._write([ended])
        walls.append((clock() - t) * 1000)
        cpus.append((cpu() - c) * 1000)
    batched = []  # runs that ended while the writer was busy go in one transaction
    for _ in range(5):
        c = cpu()
        writer._write([ended] * BATCH)
        batched.append((cpu() - c) * 1000 / BATCH)
    writer.close()  # a checkpoint: the WAL's pages into the file, to measure its size
    grown = sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) - before
    runs += 5 * BATCH
    return {
        "ms_per_write": spread(walls),
        "cpu_ms_per_write": spread(cpus),
        f"cpu_ms_per_run_in_batches_of_{BATCH}": spread(batched),
        "db_bytes_per_run": round(grown / runs),
        "tool_calls_per_run": len(result.tool_calls),
        "messages_per_run": len(result.messages),
    }


def run(server: Server, runs: int = 20, rounds: int = 5) -> dict[str, Any]:
    """The section's figures (see the module docstring); the environment is put back after."""
    saved = {k: os.environ.get(k) for k in ("LLM_MAGIC_LOG", "LLM_MAGIC_LOG_PATH")}
    with tempfile.TemporaryDirectory(prefix="llm_magic_log_bench_") as tmp:
        path = Path(tmp) / "log.db"
        os.environ["LLM_MAGIC_LOG_PATH"] = str(path)
        try:
            loops = asyncio.run(_loops(server, runs, rounds))
            os.environ["LLM_MAGIC_LOG"] = "1"
            write = asyncio.run(_write_cost(server, max(runs, 5), path))
        finally:
            from llm_magic.log import writer

            writer.flush()
            writer.close()
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    return {"runs_per_block": runs, "rounds": rounds, "write": write, **loops}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    with Server() as server:
        print(json.dumps(run(server, args.runs, args.rounds), indent=2))


if __name__ == "__main__":
    main()
