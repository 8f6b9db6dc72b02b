"""Big tool results: what turning a result into the model's text costs, against a bare cut.

    python -m bench.big_results

The model is shown at most `max_result_chars` (20,000) characters of a result. Bare is what a
careful person writes for that: the value's own JSON, cut (`frame.to_json(orient="records")`
for a DataFrame, `json.dumps` for a list). llm_magic's `serialize_result` is timed on the same
values, in the warm, rotated rounds of bench/measure.py.
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Callable
from typing import Any

from bench.measure import ratios, rotated, spread

MAX_CHARS = 20_000


def _cases() -> dict[str, tuple[Any, Callable[[Any], str]]]:
    """name -> (value, the bare way to its cut text)."""
    cases: dict[str, tuple[Any, Callable[[Any], str]]] = {
        "list_100k_ints": (list(range(100_000)), lambda v: json.dumps(v)[:MAX_CHARS]),
    }
    try:
        import numpy as np
        import pandas as pd
    except ImportError:
        return cases
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.random((1000, 10)), columns=[f"c{i}" for i in range(10)])
    cases["dataframe_10k_cells"] = (
        frame,
        lambda v: v.to_json(orient="records", date_format="iso")[:MAX_CHARS],
    )
    return cases


def _per_call(fn: Callable[[], Any], n: int) -> float:
    gc.collect()
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n


def bench_big_results(n_rounds: int, per_block: int) -> dict[str, Any]:
    from llm_magic.tools import serialize_result

    out: dict[str, Any] = {"max_chars": MAX_CHARS, "rounds": n_rounds}
    for case, (value, bare) in _cases().items():
        runners: dict[str, Callable[[], Any]] = {
            "llm_magic": lambda v=value: serialize_result(v, MAX_CHARS),
            "bare": lambda v=value, b=bare: b(v),
        }
        text, truncated = serialize_result(value, MAX_CHARS)
        if not truncated or len(text) < MAX_CHARS:
            raise AssertionError(f"{case}: expected a cut text, got {len(text)} characters")
        for run in runners.values():
            run()  # warm-up
        per_round: dict[str, list[float]] = {name: [] for name in runners}
        for r in range(n_rounds):
            for name in rotated(list(runners), r):
                per_round[name].append(_per_call(runners[name], per_block))
        out[case] = {
            name: {
                "ms": spread([v * 1000 for v in values]),
                "ratio_to_bare": spread(ratios(values, per_round["bare"])),
            }
            for name, values in per_round.items()
        }
    return out


if __name__ == "__main__":
    print(json.dumps(bench_big_results(5, 20), indent=2))
