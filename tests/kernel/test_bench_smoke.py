"""The benchmark is not part of the test run; this runs it with tiny counts so it cannot rot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytest.importorskip(
    "llm", reason="the benchmark compares against the llm library (pip install llm)"
)


@pytest.mark.kernel  # the first-use section starts a real ipykernel
@pytest.mark.timeout(180)
def test_bench_quick_writes_every_section(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((tmp_path / "latest.json").read_text())

    for section in (
        "meta",
        "overhead",
        "streaming",
        "tool_concurrency",
        "loop_responsiveness",
        "many_chains",
        "few_chains",
        "history",
        "big_results",
        "startup",
        "first_use",
        "timeline_cost",
        "log_cost",
        "floors",
    ):
        assert section in data, section
    meta = data["meta"]
    assert meta["quick"] is True
    assert meta["cpu_count"] and meta["python"] and meta["timestamp"]
    assert {"llm", "httpx"} <= set(meta["versions"])

    def ordered(spread: dict[str, float]) -> bool:
        return 0 < spread["min"] <= spread["median"] <= spread["max"]

    everyone = ("llm_magic", "llm", "llm_reused_client", "bare_httpx", "raw_socket")
    for mode in ("non_streaming", "streaming"):
        for name in everyone:
            row = data["overhead"][mode][name]
            assert ordered(row["ms"]) and ordered(row["ratio_to_bare"]), (mode, name)
            assert ordered(row["cpu_ms"]) and ordered(row["cpu_ratio_to_bare"]), (mode, name)
        assert data["overhead"][mode]["bare_httpx"]["ratio_to_bare"]["median"] == 1.0
        on_loop = data["overhead"][mode]["llm_magic_on_loop_tool"]  # the engine without the hop
        assert ordered(on_loop["cpu_ratio_to_bare"])
    for name in everyone:
        assert data["streaming"][name]["events"] == data["streaming"]["tokens"]
        assert ordered(data["streaming"][name]["events_per_s"])
    for kind in ("sync", "async"):
        for name in ("llm_magic", "llm"):
            row = data["tool_concurrency"][kind][name]
            assert row["ratio_to_one_tool"]["min"] >= 1.0  # a 0.2 s tool cannot finish sooner
            assert name in data["loop_responsiveness"][kind]
    many = data["many_chains"]
    for name in ("llm_magic", "bare_httpx"):
        assert ordered(many[name]["chains_per_s"]) and "connections_opened" in many[name]
    assert many["limits"]["max_keepalive_connections"] == many["limits"]["max_connections"]
    assert 0 < many["llm_magic"]["most_in_flight"] <= many["limits"]["in_flight"]
    for name in ("llm_magic", "bare_httpx"):
        assert "cpu_us_per_turn_of_history" in data["history"][name]
    assert data["history"]["bare_httpx"]["slope_ratio_to_bare"]["median"] == 1.0
    frame = data["big_results"].get("dataframe_10k_cells")
    assert frame is None or ordered(frame["llm_magic"]["ms"])
    assert "import_llm_magic_ms" in data["startup"] and data["startup"]["import_ipython_ms"]
    first = data["first_use"]
    assert first["status"] == "ok", first
    assert first["load_plus_first_chain_ms"]["median"] > first["load_ext_ms"]["median"] > 0
    assert ordered(first["without_price_table"]["load_plus_first_chain_cpu_ms"])
    floor = first["imports_floor"]
    assert floor["status"] == "ok", floor
    for key in ("http_cpu_ms", "widget_cpu_ms", "price_table_cpu_ms", "all_cpu_ms"):
        assert ordered(floor[key]) and floor[key]["min"] > 0, key
    assert data["timeline_cost"]["status"] in ("ok", "n/a", "error")
    log_cost = data["log_cost"]
    for name in ("logged", "unlogged"):
        for key in ("ms_per_run", "cpu_ms_per_run"):
            assert ordered(log_cost[name][key]), (name, key)
        assert 0 <= log_cost[name]["loop_worst_delay_ms"]["min"]
    assert ordered(log_cost["write"]["ms_per_write"]) and log_cost["write"]["db_bytes_per_run"] > 0
    assert "run log: one run's write" in proc.stdout
    goals = [f for f in data["floors"] if f["target"] != "information"]
    info = [f for f in data["floors"] if f["target"] == "information"]
    assert len(goals) == 16 and len(info) == 8
    assert all(f["met"] is None and f["value"] is not None for f in info), info
    first_use = data["first_use"]
    if first_use["status"] == "ok":  # until the answer, then until its price settled
        priced = first_use["load_plus_first_chain_priced_cpu_ms"]
        assert (
            ordered(priced) and priced["median"] >= first_use["load_plus_first_chain_cpu_ms"]["min"]
        )
    assert "floors (llm_magic):" in proc.stdout
