"""The llm_magic benchmark: overhead, streaming, tool concurrency, many chains, long histories,
big results, start-up and first use, timeline cost, the run log's cost.

    python -m bench.run            # the full run (a few minutes)
    python -m bench.run --quick    # tiny counts (the smoke test)
    python -m bench.run --out DIR_OR_FILE.json
    python -m bench.run --markdown # also print the Markdown table the READMEs quote

Everything runs side by side in one process against one loopback server (bench/server.py, in
its own process): llm_magic, the `llm` library (as shipped, and with its client reused), bare
httpx2 (and bare httpx 0.x where installed), and a raw-socket floor (bench/contenders.py), timed as bench/measure.py says (warm
blocks, rotated order, min / median / max over the rounds). bench/README.md explains each figure.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import gc
import importlib.metadata
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import log_cost, report
from bench.big_results import bench_big_results
from bench.contenders import LLM, Bare, Magic, Raw, Server, legacy_bare, setup_llm
from bench.history import bench_history
from bench.loops import bench_overhead, bench_streaming, bench_tool_concurrency
from bench.measure import Ticker
from bench.scale import bench_many
from bench.startup import bench_first_use, bench_startup

HERE = Path(__file__).resolve().parent


@dataclass
class Config:
    rounds: int = 7  # rounds of the timed loops (overhead, streaming)
    chains: int = 20  # chains per contender per round (one timed block)
    warmup: int = 20
    stream_tokens: int = 2000
    streams: int = 3  # streamed answers per contender per round
    parallel: int = 8
    concurrency_rounds: int = 5
    many_chains: int = 1000
    few_chains: int = 100  # the same at 100 chains at once
    many_rounds: int = 5
    history_turns: int = 200  # continuations of one conversation per round
    history_rounds: int = 3
    history_block: int = 10
    big_results_per_block: int = 20
    startup_repeats: int = 9
    first_use_kernels: int = 5
    timeline_counts: tuple[int, ...] = (10, 100, 1000)
    log_runs: int = 20  # chains per block, logged and unlogged (bench/log_cost.py)
    log_rounds: int = 5


QUICK = Config(
    rounds=2,
    chains=2,
    warmup=2,
    stream_tokens=200,
    streams=1,
    concurrency_rounds=1,
    many_chains=20,
    few_chains=10,
    many_rounds=2,
    history_turns=6,
    history_rounds=1,
    history_block=2,
    big_results_per_block=1,
    startup_repeats=1,
    first_use_kernels=1,
    timeline_counts=(10,),
    log_runs=2,
    log_rounds=1,
)


def bench_timeline(cfg: Config) -> dict[str, Any]:
    """bench/timeline_cost.py's `run(counts)`, when it exists."""
    counts = list(cfg.timeline_counts)
    try:
        from bench import timeline_cost
    except ImportError as exc:
        return {"status": "n/a", "note": f"bench/timeline_cost.py not present ({exc})"}
    run = getattr(timeline_cost, "run", None)
    if run is None:
        return {"status": "n/a", "note": "bench/timeline_cost.py has no run(counts)"}
    try:
        result = run(counts)
        if asyncio.iscoroutine(result):
            result = asyncio.run(result)
    except Exception as exc:
        return {"status": "error", "note": f"{type(exc).__name__}: {exc}"[:500]}
    return {"status": "ok", "counts": counts, "result": result}


async def bench_async(server: Server, llm: Any, cfg: Config) -> dict[str, Any]:
    magic, bare, raw = Magic(server), Bare(server), Raw(server)
    llm_c, llm_reused = LLM(llm), LLM(llm, reuse_client=True)
    everyone = [magic, llm_c, llm_reused, bare, raw, *legacy_bare(server)]
    try:
        # the engine without the thread hop: its sync tool on the loop's thread, as the
        # hand-written loops call theirs (overhead rows only)
        on_loop = Magic(server, on_loop=True)
        everyone.append(on_loop)
        overhead = await bench_overhead(everyone, cfg)
        everyone.remove(on_loop)
        await on_loop.aclose()
        streaming = await bench_streaming(everyone, cfg)
        concurrency = await bench_tool_concurrency([magic, llm_c], cfg)
    finally:
        for c in everyone:
            await c.aclose()
        gc.unfreeze()
    many = await bench_many(server, cfg.many_chains, cfg.many_rounds, defaults=False)
    gc.unfreeze()
    few = await bench_many(server, cfg.few_chains, cfg.many_rounds, defaults=False)
    gc.unfreeze()
    history = await bench_history(server, cfg.history_turns, cfg.history_rounds, cfg.history_block)
    gc.unfreeze()
    responsiveness = {
        kind: {name: v["ticker_max_delay_ms"] for name, v in concurrency[kind].items()}
        for kind in ("sync", "async")
    }
    return {
        "overhead": overhead,
        "streaming": streaming,
        "tool_concurrency": concurrency,
        "loop_responsiveness": {"ticker_period_ms": Ticker.PERIOD * 1000, **responsiveness},
        "many_chains": many,
        "few_chains": few,
        "history": history,
    }


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _meta(cfg: Config, quick: bool, started: float) -> dict[str, Any]:
    return {
        "timestamp": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(cfg).items()},
        "cpu_count": os.cpu_count(),
        "load_average": list(os.getloadavg()),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "versions": {
            d: _version(d)
            for d in (
                *("llm-magic", "llm", "httpx2", "httpcore2", "httpx", "httpcore", "openai"),
                *("ipython", "ipykernel"),
            )
        },
        "command": "python -m bench.run" + (" --quick" if quick else ""),
        "duration_s": round(time.perf_counter() - started, 1),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description="llm_magic benchmark")
    parser.add_argument("--quick", action="store_true", help="tiny counts (the smoke test)")
    parser.add_argument("--markdown", action="store_true", help="print the README table too")
    parser.add_argument(
        "--out",
        default=str(HERE / "results" / "latest.json"),
        help="a .json file, or a directory to write latest.json in",
    )
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else Config()
    out = Path(args.out)
    if out.suffix != ".json":
        out = out / "latest.json"
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="llm_magic_bench_") as tmpdir:
        tmp = Path(tmpdir)
        # the log stays on where users meet it (first use), its runs in a scratch file
        os.environ.setdefault("LLM_MAGIC_LOG_PATH", str(tmp / "log.db"))
        with Server() as server:
            modes = ["chain", f"par{cfg.parallel}", f"long{cfg.stream_tokens}"]
            # the per-chain rows compare llm_magic with bare loops that write no log: they run
            # with the log off; the log_cost section reports a logged run beside an unlogged one
            logging_was = os.environ.get("LLM_MAGIC_LOG")
            os.environ["LLM_MAGIC_LOG"] = "0"
            try:
                results = asyncio.run(bench_async(server, setup_llm(server, modes, tmp), cfg))
            finally:
                if logging_was is None:
                    os.environ.pop("LLM_MAGIC_LOG")
                else:
                    os.environ["LLM_MAGIC_LOG"] = logging_was
            results["first_use"] = bench_first_use(server, cfg.first_use_kernels)
            results["log_cost"] = log_cost.run(server, cfg.log_runs, cfg.log_rounds)
        results["startup"] = bench_startup(cfg.startup_repeats, tmp)
    results["big_results"] = bench_big_results(max(cfg.rounds, 2), cfg.big_results_per_block)
    results["timeline_cost"] = bench_timeline(cfg)
    results["floors"] = report.floors(results)
    results["meta"] = _meta(cfg, args.quick, started)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(report.table(results))
    if args.markdown:
        print("\nbench/README.md:\n\n" + report.markdown(results))
        print("\nREADME.md:\n\n" + report.summary_markdown(results))
    print(f"\nJSON: {out}  ({results['meta']['duration_s']} s)")
    return results


if __name__ == "__main__":
    main()
