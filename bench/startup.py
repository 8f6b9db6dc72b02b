"""Start-up and first use, each in fresh processes.

    python -m bench.startup [--repeats 5]     # first use in a real kernel, with the module list

* **Start-up** (`bench_startup`): fresh interpreters, timed inside the process: `import IPython`
  (plus the `InteractiveShell` import), `import llm_magic` alone, and `%load_ext llm_magic` in a
  process whose IPython shell is already up (the cost beyond IPython's own start-up).
* **First use** (`bench_first_use`): a fresh ipykernel per repeat (jupyter_client), where one
  cell times `%load_ext llm_magic` and then the first `await llm_magic.chain(...)` (timeline,
  imports and a loopback round trip included), then a second, warm chain: the first-use cost is
  load + first chain, and what the first chain costs beyond a warm one is the imports and set-up
  it triggers. The modules each step imports are listed, to find what could load later.
  As many kernels again (interleaved) time only the imports no first use can skip
  (`imports_floor`): the HTTP stack, the widget, the price table.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.contenders import API_KEY, ROOT, Server
from bench.measure import spread

_STARTUP = r"""
import json, sys, time
t0, c0 = time.perf_counter(), time.process_time()
what = sys.argv[1]
out = {}
if what == "llm_magic":
    import llm_magic
    out["import_ms"] = (time.perf_counter() - t0) * 1000
    out["import_cpu_ms"] = (time.process_time() - c0) * 1000
else:
    import IPython
    from IPython.core.interactiveshell import InteractiveShell
    t1 = time.perf_counter()
    out["import_ms"] = (t1 - t0) * 1000
    shell = InteractiveShell.instance()
    t2 = time.perf_counter()
    out["shell_ms"] = (t2 - t1) * 1000
    if what == "load_ext":
        c2 = time.process_time()
        try:
            shell.run_line_magic("load_ext", "llm_magic")
            error = None
        except BaseException as exc:
            error = f"{type(exc).__name__}: {exc}"
        t3 = time.perf_counter()
        if error is None and "llm_magic" not in shell.extension_manager.loaded:
            error = "llm_magic is not in the loaded extensions"
        out["load_ext_ms"] = (t3 - t2) * 1000
        out["load_ext_cpu_ms"] = (time.process_time() - c2) * 1000
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


def bench_startup(repeats: int, tmp: Path) -> dict[str, Any]:
    env = dict(os.environ, IPYTHONDIR=str(tmp / "ipython"), PYTHONDONTWRITEBYTECODE="")
    for what in ("ipython", "llm_magic", "load_ext"):  # warm the bytecode and file caches
        _startup_once(what, env)
    runs: dict[str, list[dict[str, Any]]] = {"ipython": [], "llm_magic": [], "load_ext": []}
    for _ in range(repeats):  # interleaved
        for what in runs:
            runs[what].append(_startup_once(what, env))

    def med(what: str, key: str) -> float | None:
        values = [r[key] for r in runs[what] if key in r and not r.get("error")]
        return round(statistics.median(values), 2) if values else None

    errors = sorted({r["error"] for rs in runs.values() for r in rs if r.get("error")})
    ipython_proc = med("ipython", "process_ms")
    load_proc = med("load_ext", "process_ms")
    return {
        "repeats": repeats,
        "import_ipython_ms": med("ipython", "import_ms"),
        "ipython_shell_ms": med("ipython", "shell_ms"),
        "ipython_process_ms": ipython_proc,
        "import_llm_magic_ms": med("llm_magic", "import_ms"),
        "import_llm_magic_cpu_ms": med("llm_magic", "import_cpu_ms"),
        "llm_magic_process_ms": med("llm_magic", "process_ms"),
        # %load_ext in a process whose IPython shell is already up: the cost beyond IPython
        "load_ext_beyond_ipython_ms": med("load_ext", "load_ext_ms"),
        "load_ext_beyond_ipython_cpu_ms": med("load_ext", "load_ext_cpu_ms"),
        "load_ext_process_ms": load_proc,
        "load_ext_process_beyond_ipython_ms": (
            round(load_proc - ipython_proc, 2) if load_proc and ipython_proc else None
        ),
        "errors": errors,
    }


# -- first use, in a real kernel -------------------------------------------------------------------
_FIRST_USE = r"""
import json as _json, sys as _sys, time as _time
def add_one(x: int) -> int:
    "Add one to x."
    return x + 1
%(before)s
_before = set(_sys.modules)
_c0, _t0 = _time.process_time(), _time.perf_counter()
get_ipython().run_line_magic("load_ext", "llm_magic")
_c1, _t1 = _time.process_time(), _time.perf_counter()
_after_load = set(_sys.modules)
import llm_magic as _lm
_kw = dict(tools=[add_one], model="openai-chat:bench", base_url=%(url)r, api_key=%(key)r)
_r = await _lm.chain("Use the tool on 1, then tell me the answer.", **_kw)
_c2, _t2 = _time.process_time(), _time.perf_counter()
_after_chain = set(_sys.modules)
_r.cost  # the price settles after the run, in the background: wait for it
_c2p, _t2p = _time.process_time(), _time.perf_counter()
_r2 = await _lm.chain("Use the tool on 1, then tell me the answer.", **_kw)
_c3, _t3 = _time.process_time(), _time.perf_counter()
def _tops(names): return sorted({n.split(".")[0] for n in names})
print("RESULT " + _json.dumps({
    "status": [_r.status, _r2.status],
    "load_ext_ms": (_t1 - _t0) * 1000,
    "first_chain_ms": (_t2 - _t1) * 1000,
    "priced_ms": (_t2p - _t2) * 1000,
    "warm_chain_ms": (_t3 - _t2p) * 1000,
    "load_ext_cpu_ms": (_c1 - _c0) * 1000,
    "first_chain_cpu_ms": (_c2 - _c1) * 1000,
    "priced_cpu_ms": (_c2p - _c2) * 1000,
    "warm_chain_cpu_ms": (_c3 - _c2p) * 1000,
    "modules_by_load_ext": len(_after_load - _before),
    "modules_by_first_chain": len(_after_chain - _after_load),
    "packages_by_load_ext": _tops(_after_load - _before),
    "packages_by_first_chain": _tops(_after_chain - _after_load),
}))
"""


# Untimed, before the cell's clock starts: the price table (genai-prices and pydantic), which the
# first priced run loads, so that the variant shows what the rest of the first use costs.
_PRICES_LOADED = "import genai_prices.data_snapshot; genai_prices.data_snapshot.get_snapshot()"


# The imports no first use can skip, timed alone in a fresh kernel: the HTTP stack (httpx2 and the
# httpcore2/h11 modules its first request loads), the widget (ipywidgets, anywidget), and the price
# table (genai-prices, pydantic). What llm_magic's own code and the round trip add comes on top.
_FLOOR = r"""
import json as _json, time as _time
def _cpu(names):
    _c0 = _time.process_time()
    for _n in names:
        __import__(_n)
    return (_time.process_time() - _c0) * 1000
_http = _cpu(["httpx2", "httpcore2._async.http11", "httpcore2._backends.anyio", "h11"])
_widget = _cpu(["ipywidgets", "anywidget"])
_c0 = _time.process_time()
import genai_prices.data_snapshot
genai_prices.data_snapshot.get_snapshot()
_prices = (_time.process_time() - _c0) * 1000
print("RESULT " + _json.dumps({"http_cpu_ms": _http, "widget_cpu_ms": _widget,
                               "price_table_cpu_ms": _prices}))
"""


def _first_use_once(
    url: str, ipython_dir: str, before: str = "", code: str | None = None
) -> dict[str, Any]:
    from jupyter_client.manager import start_new_kernel

    # bytecode written and reused, as an installed package has it (pip compiles on install): with
    # PYTHONDONTWRITEBYTECODE inherited, every kernel compiled llm_magic's sources again (~190 ms)
    env = dict(os.environ, PYTHONPATH=str(ROOT), IPYTHONDIR=ipython_dir, PYTHONDONTWRITEBYTECODE="")
    # the run log on, as users meet it, but in the bench's own folder, not the user's log
    env["LLM_MAGIC_LOG_PATH"] = _log_path(ipython_dir)
    km, kc = start_new_kernel(kernel_name="python3", env=env, cwd=str(ROOT))
    out: list[str] = []

    def hook(msg: dict[str, Any]) -> None:
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            out.append("ERROR " + msg["content"]["ename"] + ": " + msg["content"]["evalue"])

    try:
        kc.execute_interactive("1", timeout=60, output_hook=lambda m: None)  # up and idle
        if code is None:
            code = _FIRST_USE % {"url": url, "key": API_KEY, "before": before}
        kc.execute_interactive(code, timeout=120, output_hook=hook)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    text = "".join(out)
    for line in text.splitlines():
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[7:])
            return result
    return {"error": text[-500:]}


def _log_path(ipython_dir: str) -> str:
    return os.path.join(ipython_dir, "runs.db")


def _existing_log(path: str) -> None:
    """The run log made beforehand, as a user's is after their first session: a kernel shut
    down right after its cell may not have written its run yet, and then each kernel would
    make the tables again (~13 ms more per first use, measured)."""
    from llm_magic.log.schema import connect

    connect(Path(path)).close()


def bench_first_use(server: Server, repeats: int) -> dict[str, Any]:
    """`%load_ext` + first chain in a fresh kernel, `repeats` kernels (after one warm-up); and
    the same in `repeats` more kernels, interleaved, whose price table was loaded before the
    clock started (`without_price_table`): the first priced run loads genai-prices."""
    url = server.url("chain")
    runs, loaded, floors = [], [], []
    with tempfile.TemporaryDirectory(prefix="llm_magic_bench_ipython_") as ipython_dir:
        # a clean profile: no user startup files in the figure, nothing left in the checkout
        _existing_log(_log_path(ipython_dir))
        _first_use_once(url, ipython_dir)  # warm the bytecode and file caches
        for _ in range(repeats):
            runs.append(_first_use_once(url, ipython_dir))
            loaded.append(_first_use_once(url, ipython_dir, _PRICES_LOADED))
            floors.append(_first_use_once(url, ipython_dir, code=_FLOOR))
    out = _first_use_figures(runs)
    out["imports_floor"] = _floor_figures(floors)
    if out["status"] == "ok":
        without = _first_use_figures(loaded)
        out["without_price_table"] = {
            k: without.get(k)
            for k in ("load_plus_first_chain_ms", "load_plus_first_chain_cpu_ms", "errors")
        }
    return out


def _floor_figures(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """CPU ms of the imports no first use can skip, median (min-max) over fresh kernels."""
    good = [r for r in runs if "error" not in r]
    if not good:
        return {"status": "error", "errors": [r.get("error") for r in runs]}
    keys = ("http_cpu_ms", "widget_cpu_ms", "price_table_cpu_ms")
    out: dict[str, Any] = {"status": "ok", "kernels": len(good)}
    for key in keys:
        out[key] = spread([r[key] for r in good], 1)
    out["http_and_widget_cpu_ms"] = spread([r[keys[0]] + r[keys[1]] for r in good], 1)
    out["all_cpu_ms"] = spread([sum(r[k] for k in keys) for r in good], 1)
    return out


def _first_use_figures(runs: list[dict[str, Any]]) -> dict[str, Any]:
    good = [r for r in runs if "error" not in r and r["status"] == ["done", "done"]]
    if not good:
        return {"status": "error", "errors": [r.get("error", r.get("status")) for r in runs]}
    total = [r["load_ext_ms"] + r["first_chain_ms"] for r in good]
    total_cpu = [r["load_ext_cpu_ms"] + r["first_chain_cpu_ms"] for r in good]
    # the first chain's answer is there before its price: what the price load costs after it
    priced_cpu = [cpu + r.get("priced_cpu_ms", 0.0) for cpu, r in zip(total_cpu, good, strict=True)]
    last = good[-1]
    return {
        "status": "ok",
        "kernels": len(good),
        "load_ext_ms": spread([r["load_ext_ms"] for r in good], 1),
        "first_chain_ms": spread([r["first_chain_ms"] for r in good], 1),
        "warm_chain_ms": spread([r["warm_chain_ms"] for r in good], 1),
        "load_plus_first_chain_ms": spread(total, 1),
        # this process's CPU time (the kernel's threads included): steadier on a loaded machine
        "load_ext_cpu_ms": spread([r["load_ext_cpu_ms"] for r in good], 1),
        "first_chain_cpu_ms": spread([r["first_chain_cpu_ms"] for r in good], 1),
        "warm_chain_cpu_ms": spread([r["warm_chain_cpu_ms"] for r in good], 1),
        "load_plus_first_chain_cpu_ms": spread(total_cpu, 1),
        "load_plus_first_chain_priced_cpu_ms": spread(priced_cpu, 1),
        "modules_by_load_ext": last["modules_by_load_ext"],
        "modules_by_first_chain": last["modules_by_first_chain"],
        "packages_by_load_ext": last["packages_by_load_ext"],
        "packages_by_first_chain": last["packages_by_first_chain"],
        "errors": [r.get("error") for r in runs if r not in good],
    }


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with Server() as server:
        print(json.dumps(bench_first_use(server, args.repeats), indent=2))


if __name__ == "__main__":
    main()
