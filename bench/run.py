"""The llm_magic benchmark: overhead, tool concurrency, loop responsiveness, streaming, start-up.

    python -m bench.run            # the full run (a few minutes)
    python -m bench.run --quick    # tiny counts (the smoke test)
    python -m bench.run --out DIR_OR_FILE.json

Everything runs in one process against one loopback server (bench/server.py, started in its own
process), side by side: llm_magic, the `llm` library (its async OpenAI model pointed at the same
server through extra-openai-models.yaml in a temporary LLM_USER_PATH), and a bare httpx loop that
sends the same requests by hand. See bench/README.md for what each number means.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import gc
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PROMPT = "Use the tool on 1, then tell me the answer."
ONE_TOOL_S = 0.2


@dataclass
class Config:
    chains: int = 200
    warmup: int = 20
    concurrency_repeats: int = 5
    parallel: int = 8
    stream_tokens: int = 2000
    stream_repeats: int = 40
    startup_repeats: int = 12
    timeline_counts: tuple[int, ...] = (10, 100, 1000)


QUICK = Config(
    chains=5,
    warmup=2,
    concurrency_repeats=1,
    stream_tokens=200,
    stream_repeats=2,
    startup_repeats=2,
    timeline_counts=(10,),
)


# -- the tools ---------------------------------------------------------------------------------
CALLS = {"n": 0}


def add_one(x: int) -> int:
    """Add one to x."""
    CALLS["n"] += 1
    return x + 1


def slow_sync(x: int) -> int:
    """Wait 0.2 seconds (blocking), then return x."""
    time.sleep(ONE_TOOL_S)
    return x


async def slow_async(x: int) -> int:
    """Wait 0.2 seconds (async), then return x."""
    await asyncio.sleep(ONE_TOOL_S)
    return x


TOOL_SPEC = {
    "type": "function",
    "function": {
        "name": "add_one",
        "description": "Add one to x.",
        "parameters": {
            "type": "object",
            "properties": {"x": {"type": "integer"}},
            "required": ["x"],
        },
    },
}


# -- the server ----------------------------------------------------------------------------------
class Server:
    """bench/server.py in its own process (so it never competes for this process's GIL)."""

    def __enter__(self) -> Server:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.server", "--port", "0"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            self.proc.kill()
            raise RuntimeError(f"bench server did not start: {line!r}")
        self.port = int(line.split()[1])
        return self

    def url(self, mode: str) -> str:
        return f"http://127.0.0.1:{self.port}/{mode}/v1"

    def __exit__(self, *exc: Any) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# -- the llm library, configured in a temporary user directory --------------------------------------
def setup_llm(server: Server, modes: list[str], tmp: Path) -> Any:
    os.environ["LLM_USER_PATH"] = str(tmp)
    lines = []
    for mode in modes:
        lines += [
            f"- model_id: bench-{mode}",
            "  model_name: bench",
            f"  api_base: {server.url(mode)}",
            "  api_key_name: bench",
            "  supports_tools: true",
        ]
    (tmp / "extra-openai-models.yaml").write_text("\n".join(lines) + "\n")
    (tmp / "keys.json").write_text(json.dumps({"bench": "sk-bench"}))
    import llm

    return llm


# -- statistics --------------------------------------------------------------------------------
def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    if not s:
        return float("nan")
    k = (len(s) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summary_ms(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {
        "median_ms": round(statistics.median(ms), 3),
        "p90_ms": round(pct(ms, 0.9), 3),
        "min_ms": round(min(ms), 3),
        "n": len(ms),
    }


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


# -- the contenders for one chain ----------------------------------------------------------------
class Bare:
    """What a careful person writes by hand with httpx: the floor for any library."""

    name = "bare_httpx"

    def __init__(self, server: Server) -> None:
        import httpx

        self.url = server.url("chain") + "/chat/completions"
        self.client = httpx.AsyncClient(headers={"authorization": "Bearer sk-bench"})

    def _body(self, messages: list[dict[str, Any]], stream: bool) -> bytes:
        body: dict[str, Any] = {"model": "bench", "messages": messages, "stream": stream}
        if stream:
            body["stream_options"] = {"include_usage": True}
        body["tools"] = [TOOL_SPEC]
        return json.dumps(body).encode()

    async def _turn(self, messages: list[dict[str, Any]], stream: bool) -> dict[str, Any]:
        headers = {"content-type": "application/json"}
        content = self._body(messages, stream)
        if not stream:
            r = await self.client.post(self.url, content=content, headers=headers)
            return json.loads(r.content)["choices"][0]["message"]
        text: list[str] = []
        calls: dict[int, dict[str, Any]] = {}
        async with self.client.stream("POST", self.url, content=content, headers=headers) as r:
            async for line in r.aiter_lines():
                if not line.startswith("data: "):
                    continue
                data = line[6:]
                if data == "[DONE]":
                    # read on to the end of the body rather than break: a response closed
                    # before its last chunk takes its connection out of the pool
                    continue
                for choice in json.loads(data)["choices"]:
                    delta = choice["delta"]
                    if delta.get("content"):
                        text.append(delta["content"])
                    for tc in delta.get("tool_calls") or ():
                        slot = calls.setdefault(
                            tc["index"], {"id": "", "name": "", "arguments": ""}
                        )
                        slot["id"] = slot["id"] or tc.get("id") or ""
                        fn = tc.get("function") or {}
                        slot["name"] = slot["name"] or fn.get("name") or ""
                        slot["arguments"] += fn.get("arguments") or ""
        message: dict[str, Any] = {"role": "assistant", "content": "".join(text) or None}
        if calls:
            message["tool_calls"] = [
                {
                    "id": c["id"],
                    "type": "function",
                    "function": {"name": c["name"], "arguments": c["arguments"]},
                }
                for _, c in sorted(calls.items())
            ]
        return message

    async def chain(self, stream: bool) -> str:
        messages: list[dict[str, Any]] = [{"role": "user", "content": PROMPT}]
        while True:
            message = await self._turn(messages, stream)
            messages.append(message)
            if not message.get("tool_calls"):
                return str(message["content"])
            for call in message["tool_calls"]:
                args = json.loads(call["function"]["arguments"])
                result = add_one(**args)
                messages.append(
                    {"role": "tool", "tool_call_id": call["id"], "content": json.dumps(result)}
                )

    async def stream_events(self, url: str) -> int:
        """Bare SSE parsing of a streamed answer: the count of text deltas."""
        body = json.dumps(
            {
                "model": "bench",
                "messages": [{"role": "user", "content": "Write."}],
                "stream": True,
                "stream_options": {"include_usage": True},
            }
        ).encode()
        count = 0
        headers = {"content-type": "application/json"}
        async with self.client.stream("POST", url, content=body, headers=headers) as r:
            async for line in r.aiter_lines():
                if not line.startswith("data: "):
                    continue
                data = line[6:]
                if data == "[DONE]":
                    continue  # read to the end: keeps the connection alive
                for choice in json.loads(data)["choices"]:
                    if choice["delta"].get("content"):
                        count += 1
        return count

    async def aclose(self) -> None:
        await self.client.aclose()


class Magic:
    name = "llm_magic"

    def __init__(self, server: Server) -> None:
        import llm_magic

        self.lm = llm_magic
        self.server = server
        self.models: dict[str, Any] = {}

    def model(self, mode: str) -> Any:
        if mode not in self.models:
            self.models[mode] = self.lm.get_async_model(
                "openai:bench", base_url=self.server.url(mode), api_key="sk-bench"
            )
        return self.models[mode]

    async def chain(self, stream: bool) -> str:
        result = await self.model("chain").chain(PROMPT, tools=[add_one], stream=stream)
        if result.status != "done" or len(result.tool_calls) != 1:
            raise AssertionError(f"llm_magic chain: {result.status}, {result.tool_calls}")
        return str(result.text)

    async def tools(self, fn: Callable[..., Any], mode: str) -> str:
        result = await self.model(mode).chain(PROMPT, tools=[fn])
        if result.status != "done" or not all(r.status == "ok" for r in result.tool_calls):
            raise AssertionError(f"llm_magic tools: {result.status}, {result.tool_calls}")
        return str(result.text)

    async def stream_events(self, mode: str) -> int:
        from llm_magic.events import TextDelta

        run = self.model(mode).chain("Write.", stream=True)
        count = 0
        async for event in run:
            if isinstance(event, TextDelta):
                count += 1
        return count

    async def aclose(self) -> None:
        for model in self.models.values():
            await model.aclose()


class LLM:
    name = "llm"

    def __init__(self, llm: Any) -> None:
        self.llm = llm
        self.models: dict[str, Any] = {}

    def model(self, mode: str) -> Any:
        if mode not in self.models:
            self.models[mode] = self.llm.get_async_model(f"bench-{mode}")
        return self.models[mode]

    async def chain(self, stream: bool) -> str:
        before = CALLS["n"]
        text = await self.model("chain").chain(PROMPT, tools=[add_one], stream=stream).text()
        if CALLS["n"] != before + 1 or "42" not in text:
            raise AssertionError(f"llm chain: {CALLS['n'] - before} calls, {text!r}")
        return str(text)

    async def tools(self, fn: Callable[..., Any], mode: str) -> str:
        return str(await self.model(mode).chain(PROMPT, tools=[fn]).text())

    async def stream_events(self, mode: str) -> int:
        count = 0
        async for _chunk in self.model(mode).prompt("Write.", stream=True):
            count += 1
        return count

    async def aclose(self) -> None:
        pass


async def settle() -> None:
    """Collect garbage between timed runs, so no contender pays for another's leftovers.

    Cheap because `freeze()` moved everything alive after the warm-up out of the collector's
    reach. The short sleep lets what the collection set off (finalizers closing a client's
    sockets, the server seeing them close) finish before the next timer starts. Each contender
    still pays for the collections its own allocations trigger while it runs.
    """
    gc.collect()
    await asyncio.sleep(0.002)


def freeze() -> None:
    gc.collect()
    gc.freeze()


# -- 1. overhead per chain -----------------------------------------------------------------------
async def bench_overhead(contenders: list[Any], cfg: Config) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for stream in (False, True):
        for _ in range(cfg.warmup):
            for c in contenders:
                await c.chain(stream)
        freeze()
        times: dict[str, list[float]] = {c.name: [] for c in contenders}
        clock = time.perf_counter
        for _ in range(cfg.chains):  # interleaved: A, B, C, A, B, C...
            for c in contenders:
                await settle()
                t = clock()
                await c.chain(stream)
                times[c.name].append(clock() - t)
        section = {name: summary_ms(ts) for name, ts in times.items()}
        bare = times["bare_httpx"]
        for name, stats in section.items():
            # the median of per-round ratios: each round's contenders ran back to back, so
            # a slow patch of the machine (other processes) cancels out
            stats["ratio_to_bare"] = round(
                statistics.median(t / b for t, b in zip(times[name], bare, strict=True)), 3
            )
            stats["ratio_of_medians"] = round(
                stats["median_ms"] / section["bare_httpx"]["median_ms"], 3
            )
            stats["p90_ratio_to_bare"] = round(stats["p90_ms"] / section["bare_httpx"]["p90_ms"], 3)
        out["streaming" if stream else "non_streaming"] = section
    return out


# -- 2 and 3. tool concurrency and loop responsiveness -------------------------------------------------
async def bench_concurrency(contenders: list[Any], cfg: Config) -> dict[str, Any]:
    mode = f"par{cfg.parallel}"
    out: dict[str, Any] = {"parallel_calls": cfg.parallel, "tool_seconds": ONE_TOOL_S}
    for kind, fn in (("sync", slow_sync), ("async", slow_async)):
        walls: dict[str, list[float]] = {c.name: [] for c in contenders}
        delays: dict[str, list[float]] = {c.name: [] for c in contenders}
        for c in contenders:  # warm-up: threads, connections
            await c.tools(fn, mode)
        for _ in range(cfg.concurrency_repeats):
            for c in contenders:
                await settle()
                async with Ticker() as ticker:
                    t = time.perf_counter()
                    await c.tools(fn, mode)
                    wall = time.perf_counter() - t
                walls[c.name].append(wall)
                delays[c.name].append(ticker.max_delay)
        out[kind] = {
            name: {
                "wall_s_median": round(statistics.median(walls[name]), 4),
                "ratio_to_one_tool": round(statistics.median(walls[name]) / ONE_TOOL_S, 3),
                "ticker_max_delay_ms": round(max(delays[name]) * 1000, 2),
                "ticker_median_of_max_delay_ms": round(statistics.median(delays[name]) * 1000, 2),
                "runs": len(walls[name]),
            }
            for name in walls
        }
    return out


# -- 4. streaming ------------------------------------------------------------------------------------
async def bench_streaming(
    magic: Magic, llm_c: LLM, bare: Bare, server: Server, cfg: Config
) -> dict[str, Any]:
    mode = f"long{cfg.stream_tokens}"
    url = server.url(mode) + "/chat/completions"
    runners: dict[str, Callable[[], Awaitable[int]]] = {
        "llm_magic": lambda: magic.stream_events(mode),
        "llm": lambda: llm_c.stream_events(mode),
        "bare_httpx": lambda: bare.stream_events(url),
    }
    for run in runners.values():  # warm-up
        await run()
    rates: dict[str, list[float]] = {name: [] for name in runners}
    counts: dict[str, int] = {}
    freeze()
    for _ in range(cfg.stream_repeats):
        for name, run in runners.items():
            await settle()
            t = time.perf_counter()
            n = await run()
            rates[name].append(n / (time.perf_counter() - t))
            counts[name] = n
    out: dict[str, Any] = {"tokens": cfg.stream_tokens}
    bare = rates["bare_httpx"]
    for name, values in rates.items():
        out[name] = {
            "events_per_s_median": round(statistics.median(values)),
            "events": counts[name],
            # median of per-round ratios (each round runs the contenders back to back)
            "ratio_to_bare": round(
                statistics.median(v / b for v, b in zip(values, bare, strict=True)), 3
            ),
            "ratio_of_medians": round(statistics.median(values) / statistics.median(bare), 3),
            "runs": len(values),
        }
    return out


# -- 5. start-up ------------------------------------------------------------------------------------
_STARTUP = r"""
import json, sys, time
t0 = time.perf_counter()
what = sys.argv[1]
out = {}
if what == "llm_magic":
    import llm_magic
    out["import_ms"] = (time.perf_counter() - t0) * 1000
else:
    import IPython
    from IPython.core.interactiveshell import InteractiveShell
    t1 = time.perf_counter()
    out["import_ms"] = (t1 - t0) * 1000
    shell = InteractiveShell.instance()
    t2 = time.perf_counter()
    out["shell_ms"] = (t2 - t1) * 1000
    if what == "load_ext":
        try:
            shell.run_line_magic("load_ext", "llm_magic")
            error = None
        except BaseException as exc:
            error = f"{type(exc).__name__}: {exc}"
        t3 = time.perf_counter()
        if error is None and "llm_magic" not in shell.extension_manager.loaded:
            error = "llm_magic is not in the loaded extensions"
        out["load_ext_ms"] = (t3 - t2) * 1000
        out["error"] = error
print("RESULT " + json.dumps(out))
"""


def _startup_once(what: str, env: dict[str, str]) -> dict[str, Any]:
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _STARTUP, what],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    wall = (time.perf_counter() - t) * 1000
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[7:])
            result["process_ms"] = wall
            return result
    return {"error": f"exit {proc.returncode}: {proc.stderr.strip()[-300:]}", "process_ms": wall}


def bench_startup(cfg: Config, tmp: Path) -> dict[str, Any]:
    env = dict(os.environ, IPYTHONDIR=str(tmp / "ipython"), PYTHONDONTWRITEBYTECODE="")
    for what in ("ipython", "llm_magic", "load_ext"):  # warm the bytecode and file caches
        _startup_once(what, env)
    runs: dict[str, list[dict[str, Any]]] = {"ipython": [], "llm_magic": [], "load_ext": []}
    for _ in range(cfg.startup_repeats):  # interleaved
        for what in runs:
            runs[what].append(_startup_once(what, env))

    def med(what: str, key: str) -> float | None:
        values = [r[key] for r in runs[what] if key in r and not r.get("error")]
        return round(statistics.median(values), 2) if values else None

    errors = sorted({r["error"] for rs in runs.values() for r in rs if r.get("error")})
    ipython_proc = med("ipython", "process_ms")
    load_proc = med("load_ext", "process_ms")
    return {
        "repeats": cfg.startup_repeats,
        "import_ipython_ms": med("ipython", "import_ms"),
        "ipython_shell_ms": med("ipython", "shell_ms"),
        "ipython_process_ms": ipython_proc,
        "import_llm_magic_ms": med("llm_magic", "import_ms"),
        "llm_magic_process_ms": med("llm_magic", "process_ms"),
        # %load_ext in a process whose IPython shell is already up: the cost beyond IPython
        "load_ext_beyond_ipython_ms": med("load_ext", "load_ext_ms"),
        "load_ext_process_ms": load_proc,
        "load_ext_process_beyond_ipython_ms": (
            round(load_proc - ipython_proc, 2) if load_proc and ipython_proc else None
        ),
        "errors": errors,
    }


# -- 6. timeline cost -------------------------------------------------------------------------------
def bench_timeline(cfg: Config) -> dict[str, Any]:
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


# -- the run ------------------------------------------------------------------------------------------
async def bench_async(server: Server, llm: Any, cfg: Config) -> dict[str, Any]:
    magic, llm_c, bare = Magic(server), LLM(llm), Bare(server)
    try:
        overhead = await bench_overhead([magic, llm_c, bare], cfg)
        concurrency = await bench_concurrency([magic, llm_c], cfg)
        streaming = await bench_streaming(magic, llm_c, bare, server, cfg)
    finally:
        await magic.aclose()
        await bare.aclose()
        gc.unfreeze()
    responsiveness = {
        kind: {name: v["ticker_max_delay_ms"] for name, v in concurrency[kind].items()}
        for kind in ("sync", "async")
    }
    return {
        "overhead": overhead,
        "tool_concurrency": concurrency,
        "loop_responsiveness": {"ticker_period_ms": Ticker.PERIOD * 1000, **responsiveness},
        "streaming": streaming,
    }


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def floors(r: dict[str, Any]) -> list[dict[str, Any]]:
    ov, tc, st, su = r["overhead"], r["tool_concurrency"], r["streaming"], r["startup"]
    load = su.get("load_ext_beyond_ipython_ms")
    rows = [
        (
            "overhead non-streaming, llm_magic / bare",
            ov["non_streaming"]["llm_magic"]["ratio_to_bare"],
            "<= 1.5",
            lambda v: v <= 1.5,
        ),
        (
            "overhead streaming, llm_magic / bare",
            ov["streaming"]["llm_magic"]["ratio_to_bare"],
            "<= 1.5",
            lambda v: v <= 1.5,
        ),
        (
            "8 sync tools, wall / 0.2 s",
            tc["sync"]["llm_magic"]["ratio_to_one_tool"],
            "<= 1.5",
            lambda v: v <= 1.5,
        ),
        (
            "8 sync tools, ticker max delay ms",
            tc["sync"]["llm_magic"]["ticker_max_delay_ms"],
            "<= 20",
            lambda v: v <= 20,
        ),
        (
            "8 async tools, wall / 0.2 s",
            tc["async"]["llm_magic"]["ratio_to_one_tool"],
            "<= 1.3",
            lambda v: v <= 1.3,
        ),
        (
            "streaming events/s, llm_magic / bare",
            st["llm_magic"]["ratio_to_bare"],
            ">= 0.8",
            lambda v: v >= 0.8,
        ),
        ("%load_ext beyond IPython, ms", load, "< 150", lambda v: v < 150),
    ]
    out = []
    for name, value, target, ok in rows:
        met = None if value is None or (su.get("errors") and "load_ext" in name) else ok(value)
        out.append({"floor": name, "value": value, "target": target, "met": met})
    return out


def table(r: dict[str, Any]) -> str:
    rows: list[tuple[str, str, str, str]] = [("measure", "llm_magic", "llm", "bare httpx")]

    def f(v: Any, fmt: str = "{:.2f}") -> str:
        return "n/a" if v is None else fmt.format(v)

    for key, label in (("non_streaming", "non-stream"), ("streaming", "stream")):
        s = r["overhead"][key]
        for stat in ("median_ms", "p90_ms"):
            rows.append(
                (
                    f"1. chain {label} {stat.replace('_ms', '')} ms",
                    *(f(s[n][stat]) for n in ("llm_magic", "llm", "bare_httpx")),
                )
            )
        rows.append(
            (
                f"1. chain {label} ratio to bare (paired median)",
                *(f(s[n]["ratio_to_bare"], "{:.2f}x") for n in ("llm_magic", "llm", "bare_httpx")),
            )
        )
    tc = r["tool_concurrency"]
    for kind in ("sync", "async"):
        rows.append(
            (
                f"2. {tc['parallel_calls']} {kind} tools: wall / 0.2 s",
                f(tc[kind]["llm_magic"]["ratio_to_one_tool"], "{:.2f}x"),
                f(tc[kind]["llm"]["ratio_to_one_tool"], "{:.2f}x"),
                "-",
            )
        )
        rows.append(
            (
                f"3. ticker max delay ms ({kind} tools)",
                f(tc[kind]["llm_magic"]["ticker_max_delay_ms"], "{:.1f}"),
                f(tc[kind]["llm"]["ticker_max_delay_ms"], "{:.1f}"),
                "-",
            )
        )
    st = r["streaming"]
    rows.append(
        (
            f"4. stream {st['tokens']} tokens: events/s",
            *(
                f(st[n]["events_per_s_median"], "{:,.0f}")
                for n in ("llm_magic", "llm", "bare_httpx")
            ),
        )
    )
    rows.append(
        (
            "4. events/s ratio to bare",
            *(f(st[n]["ratio_to_bare"], "{:.2f}x") for n in ("llm_magic", "llm", "bare_httpx")),
        )
    )
    su = r["startup"]
    rows.append(("5. import llm_magic ms", f(su["import_llm_magic_ms"], "{:.0f}"), "-", "-"))
    rows.append(("5. import IPython ms (alone)", "-", "-", f(su["import_ipython_ms"], "{:.0f}")))
    rows.append(
        (
            "5. %load_ext beyond IPython ms",
            "n/a" if su["errors"] else f(su["load_ext_beyond_ipython_ms"], "{:.0f}"),
            "-",
            "-",
        )
    )
    tl = r["timeline_cost"]
    if tl.get("status") == "ok":
        res = tl["result"]
        if isinstance(res, dict) and all(isinstance(v, dict) for v in res.values()):
            for count, fig in res.items():
                keys = [k for k in ("handler_us", "event_flush_us") if k in fig] or [
                    k for k, v in fig.items() if isinstance(v, int | float)
                ][:2]
                for k in keys:
                    rows.append((f"6. timeline {count} calls: {k}", f(fig[k], "{:.4g}"), "-", "-"))
        elif isinstance(res, dict) and all(isinstance(v, int | float) for v in res.values()):
            for k, v in res.items():
                rows.append((f"6. timeline {k}", f(v, "{:.4g}"), "-", "-"))
        else:
            rows.append(("6. timeline cost", "see JSON", "-", "-"))
    else:
        rows.append(("6. timeline cost", str(tl.get("status")), "-", "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    lines.insert(1, "-" * len(lines[0]))
    lines.append("")
    lines.append("floors (llm_magic):")
    for fl in r["floors"]:
        mark = {True: "met", False: "MISSED", None: "n/a"}[fl["met"]]
        lines.append(f"  {mark:6}  {fl['floor']}: {fl['value']} (target {fl['target']})")
    if su["errors"]:
        lines.append(f"  start-up errors: {'; '.join(su['errors'])[:300]}")
    if tl.get("status") != "ok":
        lines.append(f"  timeline cost: {tl.get('note', '')[:300]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description="llm_magic benchmark")
    parser.add_argument("--quick", action="store_true", help="tiny counts (the smoke test)")
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
        with Server() as server:
            llm = setup_llm(
                server, ["chain", f"par{cfg.parallel}", f"long{cfg.stream_tokens}"], tmp
            )
            results = asyncio.run(bench_async(server, llm, cfg))
        results["startup"] = bench_startup(cfg, tmp)
    results["timeline_cost"] = bench_timeline(cfg)
    results["floors"] = floors(results)
    results["meta"] = {
        "timestamp": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(cfg).items()},
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "versions": {d: _version(d) for d in ("llm-magic", "llm", "httpx", "openai", "ipython")},
        "command": "python -m bench.run" + (" --quick" if args.quick else ""),
        "duration_s": round(time.perf_counter() - started, 1),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"\nJSON: {out}  ({results['meta']['duration_s']} s)")
    return results


if __name__ == "__main__":
    main()
