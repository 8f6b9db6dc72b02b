"""The benchmark is not part of the test run; this runs it with tiny counts so it cannot rot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip(
    "llm", reason="the benchmark compares against the llm library (pip install llm)"
)


@pytest.mark.timeout(120)
def test_bench_quick_writes_every_section(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((tmp_path / "latest.json").read_text())

    for section in (
        "meta",
        "overhead",
        "tool_concurrency",
        "loop_responsiveness",
        "streaming",
        "startup",
        "timeline_cost",
        "floors",
    ):
        assert section in data, section
    meta = data["meta"]
    assert meta["quick"] is True
    assert meta["cpu_count"] and meta["python"] and meta["timestamp"]
    assert {"llm", "httpx"} <= set(meta["versions"])

    for mode in ("non_streaming", "streaming"):
        for name in ("llm_magic", "llm", "bare_httpx"):
            stats = data["overhead"][mode][name]
            assert stats["median_ms"] > 0 and stats["p90_ms"] >= stats["median_ms"]
            assert stats["ratio_to_bare"] > 0
    for kind in ("sync", "async"):
        for name in ("llm_magic", "llm"):
            row = data["tool_concurrency"][kind][name]
            assert row["ratio_to_one_tool"] >= 1.0  # a 0.2 s tool cannot finish sooner
            assert row["ticker_max_delay_ms"] >= 0
            assert name in data["loop_responsiveness"][kind]
    for name in ("llm_magic", "llm", "bare_httpx"):
        assert data["streaming"][name]["events"] == data["streaming"]["tokens"]
        assert data["streaming"][name]["events_per_s_median"] > 0
    assert "import_llm_magic_ms" in data["startup"] and data["startup"]["import_ipython_ms"]
    assert data["timeline_cost"]["status"] in ("ok", "n/a", "error")
    assert len(data["floors"]) == 7
    assert "floors (llm_magic):" in proc.stdout
