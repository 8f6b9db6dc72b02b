"""The benchmark's verdicts and tables: floors met or missed, the console table, and the Markdown
table that bench/README.md and the README quote (`python -m bench.run --markdown`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

NAMES = ("llm_magic", "llm", "llm_reused_client", "bare_httpx", "raw_socket")
HEADERS = ("llm_magic", "llm", "llm, reused client", "bare httpx", "raw socket")
ON_LOOP = "llm_magic_on_loop_tool"


def _get(r: dict[str, Any], *path: str) -> Any:
    for key in path:
        if not isinstance(r, dict) or key not in r:
            return None
        r = r[key]
    return r


INFO = "information"  # a row shown beside the goals, to read them by, not a goal itself


def floors(r: dict[str, Any]) -> list[dict[str, Any]]:
    """Each goal of the performance issue, with the figure it is judged on (a ratio within one
    run: the machine is shared), and the information rows to read them by."""
    tc, su, fu, many = r["tool_concurrency"], r["startup"], r["first_use"], r["many_chains"]
    few = r.get("few_chains", {})
    rows: list[tuple[str, Any, str, Callable[[float], bool] | None]] = [
        (
            "chain non-streaming, llm_magic / bare, CPU (median of rounds)",
            _get(r, "overhead", "non_streaming", "llm_magic", "cpu_ratio_to_bare", "median"),
            "<= 1.2",
            lambda v: v <= 1.2,
        ),
        (
            "chain streaming, llm_magic / bare, CPU (median of rounds)",
            _get(r, "overhead", "streaming", "llm_magic", "cpu_ratio_to_bare", "median"),
            "<= 1.2",
            lambda v: v <= 1.2,
        ),
        *(
            (
                f"chain {label}, CPU, the tool on the loop's thread as bare's is (the engine "
                "without the hop to a worker thread)",
                _get(r, "overhead", key, ON_LOOP, "cpu_ratio_to_bare", "median"),
                INFO,
                None,
            )
            for key, label in (("non_streaming", "non-streaming"), ("streaming", "streaming"))
        ),
        (
            "8 sync tools, wall / 0.2 s (median)",
            _get(tc, "sync", "llm_magic", "ratio_to_one_tool", "median"),
            "<= 1.1",
            lambda v: v <= 1.1,
        ),
        (
            "8 sync tools, ticker max delay ms (worst run)",
            _get(tc, "sync", "llm_magic", "ticker_max_delay_ms", "max"),
            "<= 20",
            lambda v: v <= 20,
        ),
        (
            "8 async tools, wall / 0.2 s (median)",
            _get(tc, "async", "llm_magic", "ratio_to_one_tool", "median"),
            "<= 1.3",
            lambda v: v <= 1.3,
        ),
        (
            "streaming events/s, llm_magic / bare (median of rounds)",
            _get(r, "streaming", "llm_magic", "ratio_to_bare", "median"),
            ">= 0.9",
            lambda v: v >= 0.9,
        ),
        (
            "history: CPU per turn of history, llm_magic's slope / bare's (median of rounds)",
            _get(r, "history", "llm_magic", "slope_ratio_to_bare", "median"),
            "<= 1.2",
            lambda v: v <= 1.2,
        ),
        (
            "%load_ext beyond IPython, ms (median)",
            None if su.get("errors") else su.get("load_ext_beyond_ipython_ms"),
            "< 150",
            lambda v: v < 150,
        ),
        (
            "first use in a kernel: %load_ext + first chain, CPU ms of the kernel (median)",
            _get(fu, "load_plus_first_chain_cpu_ms", "median"),
            "<= 250",
            lambda v: v <= 250,
        ),
        (
            "the same until its price has settled (the table loads after the answer), CPU ms",
            _get(fu, "load_plus_first_chain_priced_cpu_ms", "median"),
            "<= 250",
            lambda v: v <= 250,
        ),
        (
            "the same in wall ms (median)",
            _get(fu, "load_plus_first_chain_ms", "median"),
            INFO,
            None,
        ),
        (
            "the same in CPU ms, the price table loaded beforehand (what the rest costs)",
            _get(fu, "without_price_table", "load_plus_first_chain_cpu_ms", "median"),
            INFO,
            None,
        ),
        (
            "the imports no first use can skip (HTTP stack, widget, price table), CPU ms",
            _get(fu, "imports_floor", "all_cpu_ms", "median"),
            INFO,
            None,
        ),
        (
            "the same without the price table (HTTP stack and widget), CPU ms",
            _get(fu, "imports_floor", "http_and_widget_cpu_ms", "median"),
            INFO,
            None,
        ),
        (
            "1,000 concurrent chains: most llm_magic requests in flight / max_connections",
            _in_flight_share(many),
            "<= 1.0",
            lambda v: v <= 1.0,
        ),
        *_many_rows(few),
        *_many_rows(many),
        (
            "1,000 concurrent chains: llm_magic's worst round / bare's best",
            _get(many, "llm_magic", "worst_round_to_best_bare"),
            INFO,
            None,
        ),
        (
            "1,000 concurrent chains: bare httpx's own worst round / its best (the noise)",
            _get(many, "bare_httpx", "worst_round_to_best_bare"),
            INFO,
            None,
        ),
        (
            "10k-cell DataFrame result, llm_magic / bare cut (median of rounds)",
            _get(r, "big_results", "dataframe_10k_cells", "llm_magic", "ratio_to_bare", "median"),
            "<= 1.0",
            lambda v: v <= 1.0,
        ),
    ]
    return [
        {
            "floor": name,
            "value": value,
            "target": target,
            "met": None if value is None or ok is None else ok(value),
        }
        for name, value, target, ok in rows
    ]


def _many_rows(many: dict[str, Any]) -> list[tuple[str, Any, str, Callable[[float], bool]]]:
    """The goals of one many-chains section: chains/s within a round, and CPU per chain (a
    CPU ratio <= 1.2x is chains per CPU second >= 1 / 1.2 of bare's)."""
    n = f"{many.get('chains', '?'):,}" if isinstance(many.get("chains"), int) else "?"
    return [
        (
            f"{n} concurrent chains: llm_magic / bare httpx within a round (median)",
            _get(many, "llm_magic", "ratio_to_bare", "median"),
            ">= 0.9",
            lambda v: v >= 0.9,
        ),
        (
            f"{n} concurrent chains: chains per CPU second, llm_magic / bare (median)",
            _get(many, "llm_magic", "cpu_ratio_to_bare", "median"),
            ">= 0.83 (CPU <= 1.2x)",
            lambda v: v >= 1 / 1.2,
        ),
    ]


def _in_flight_share(many: dict[str, Any]) -> float | None:
    """The most requests llm_magic had in flight at once, over the bound (`max_connections`)."""
    most, bound = _get(many, "llm_magic", "most_in_flight"), _get(many, "limits", "in_flight")
    return round(most / bound, 3) if most is not None and bound else None


def _sp(s: dict[str, float] | None, fmt: str = "{:.2f}", suffix: str = "") -> str:
    """A spread as `median (min-max)`."""
    if not s:
        return "-"
    f = fmt.format
    return f"{f(s['median'])}{suffix} ({f(s['min'])}-{f(s['max'])})"


def _rows(r: dict[str, Any]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for key, label in (("non_streaming", "non-streaming"), ("streaming", "streaming")):
        s = r["overhead"][key]
        rows.append((f"chain {label}, ms", *(_sp(_get(s, n, "ms"), "{:.2f}") for n in NAMES)))
        rows.append(
            (
                f"chain {label}, ratio to bare httpx",
                *(_sp(_get(s, n, "ratio_to_bare"), "{:.2f}", "x") for n in NAMES),
            )
        )
        rows.append(
            (
                f"chain {label}, CPU ratio to bare httpx",
                *(_sp(_get(s, n, "cpu_ratio_to_bare"), "{:.2f}", "x") for n in NAMES),
            )
        )
        rows.append(
            (
                f"chain {label}, CPU ratio to bare httpx, llm_magic with an on-loop tool",
                _sp(_get(s, ON_LOOP, "cpu_ratio_to_bare"), "{:.2f}", "x"),
                *("-" for _ in NAMES[1:]),
            )
        )
    st = r["streaming"]
    rows.append(
        (
            f"stream of {st['tokens']} tokens, events/s",
            *(_sp(_get(st, n, "events_per_s"), "{:,.0f}") for n in NAMES),
        )
    )
    rows.append(
        (
            "events/s, ratio to bare httpx",
            *(_sp(_get(st, n, "ratio_to_bare"), "{:.2f}", "x") for n in NAMES),
        )
    )
    rows.append(
        (
            "events per CPU second, ratio to bare httpx",
            *(_sp(_get(st, n, "cpu_ratio_to_bare"), "{:.2f}", "x") for n in NAMES),
        )
    )
    tc = r["tool_concurrency"]
    for kind in ("sync", "async"):
        rows.append(
            (
                f"{tc['parallel_calls']} {kind} tools of 0.2 s: wall / 0.2 s",
                *(_sp(_get(tc, kind, n, "ratio_to_one_tool"), "{:.2f}", "x") for n in NAMES),
            )
        )
        rows.append(
            (
                f"5 ms ticker's max delay, ms ({kind} tools)",
                *(_sp(_get(tc, kind, n, "ticker_max_delay_ms"), "{:.1f}") for n in NAMES),
            )
        )
    for many in (r["many_chains"], r.get("few_chains")):
        if many:
            rows.extend(_many_table_rows(many))
    hist = r.get("history")
    if hist:
        rows.append(
            (
                "CPU per turn of history, µs (slope)",
                *(_sp(_get(hist, n, "cpu_us_per_turn_of_history"), "{:.1f}") for n in NAMES),
            )
        )
        rows.append(
            (
                "the same, ratio to bare httpx",
                *(_sp(_get(hist, n, "slope_ratio_to_bare"), "{:.2f}", "x") for n in NAMES),
            )
        )
    br = r["big_results"]
    for case in ("dataframe_10k_cells", "list_100k_ints"):
        if case in br:
            rows.append(
                (
                    f"result {case} to 20k chars, ratio to bare cut",
                    _sp(_get(br, case, "llm_magic", "ratio_to_bare"), "{:.2f}", "x"),
                    "-",
                    "-",
                    _sp(_get(br, case, "bare", "ms"), "{:.2f}", " ms"),
                    "-",
                )
            )
    return rows


def _many_table_rows(many: dict[str, Any]) -> list[tuple[str, ...]]:
    """The table's rows of one many-chains section (1,000 or 100 chains at once)."""
    rows: list[tuple[str, ...]] = []
    for label, key, fmt, suffix in (
        ("chains/s", "chains_per_s", "{:.0f}", ""),
        ("ratio to bare httpx", "ratio_to_bare", "{:.2f}", "x"),
        ("CPU ratio to bare httpx", "cpu_ratio_to_bare", "{:.2f}", "x"),
        ("connections opened per round", "connections_opened", "{:.0f}", ""),
    ):
        rows.append(
            (
                f"{many.get('chains')} concurrent chains, {label}",
                *(_sp(_get(many, n, key), fmt, suffix) for n in NAMES),
            )
        )
        rows.append(
            (
                f"{many.get('chains')} concurrent chains, {label}, llm_magic with an on-loop tool",
                _sp(_get(many, ON_LOOP, key), fmt, suffix),
                "-",
                "-",
                "-",
                "-",
            )
        )
    return rows


def table(r: dict[str, Any]) -> str:
    """The console table: median (min-max) over the rounds, then the floors."""
    rows = [("measure", *HEADERS), *_rows(r)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    su, fu = r["startup"], r["first_use"]
    lines.append("")
    lines.append(
        f"start-up: import IPython {su.get('import_ipython_ms')} ms, import llm_magic "
        f"{su.get('import_llm_magic_ms')} ms, %load_ext beyond IPython "
        f"{su.get('load_ext_beyond_ipython_ms')} ms (medians; CPU: import llm_magic "
        f"{su.get('import_llm_magic_cpu_ms')} ms, %load_ext {su.get('load_ext_beyond_ipython_cpu_ms')}"
        " ms)"
    )
    if fu.get("status") == "ok":
        lines.append(
            f"first use in a kernel: %load_ext {_sp(fu['load_ext_ms'], '{:.0f}')} ms + first "
            f"chain {_sp(fu['first_chain_ms'], '{:.0f}')} ms (a warm chain: "
            f"{_sp(fu['warm_chain_ms'], '{:.0f}')} ms); CPU: %load_ext "
            f"{_sp(fu['load_ext_cpu_ms'], '{:.0f}')} ms + first chain "
            f"{_sp(fu['first_chain_cpu_ms'], '{:.0f}')} ms; first chain imports "
            f"{fu['modules_by_first_chain']} modules: {', '.join(fu['packages_by_first_chain'])}"
        )
        without = _get(fu, "without_price_table", "load_plus_first_chain_cpu_ms")
        if without:
            lines.append(
                f"first use with the price table loaded beforehand: %load_ext + first chain "
                f"{_sp(_get(fu, 'without_price_table', 'load_plus_first_chain_ms'), '{:.0f}')} ms"
                f", CPU {_sp(without, '{:.0f}')} ms"
            )
        floor = fu.get("imports_floor", {})
        if floor.get("status") == "ok":
            lines.append(
                "the imports no first use can skip, alone in fresh kernels, CPU ms: HTTP stack "
                f"{_sp(floor['http_cpu_ms'], '{:.0f}')} + widget "
                f"{_sp(floor['widget_cpu_ms'], '{:.0f}')} + price table "
                f"{_sp(floor['price_table_cpu_ms'], '{:.0f}')} = "
                f"{_sp(floor['all_cpu_ms'], '{:.0f}')}"
            )
    else:
        lines.append(f"first use: {fu.get('status')} {fu.get('errors', '')}"[:300])
    tl = r["timeline_cost"]
    if tl.get("status") != "ok":
        lines.append(f"timeline cost: {tl.get('status')} {tl.get('note', '')}"[:300])
    else:
        lines.append(f"timeline cost per event (event + flush) by tool calls: {timeline_line(r)}")
    if "log_cost" in r:
        lines.append(log_line(r["log_cost"]))
    lines.append("")
    lines.append("floors (llm_magic):")
    for fl in r["floors"]:
        mark = (
            "info"
            if fl["target"] == INFO
            else {True: "met", False: "MISSED", None: "n/a"}[fl["met"]]
        )
        lines.append(f"  {mark:6}  {fl['floor']}: {fl['value']} (target {fl['target']})")
    if su.get("errors"):
        lines.append(f"  start-up errors: {'; '.join(su['errors'])[:300]}")
    return "\n".join(lines)


def log_line(lc: dict[str, Any]) -> str:
    """The run log: the write of one run, and logged beside unlogged runs (bench/log_cost.py)."""
    on, off, w = lc["logged"], lc["unlogged"], lc["write"]
    return (
        f"run log: one run's write {_sp(w['ms_per_write'], '{:.2f}')} ms on the writer thread "
        f"({w['db_bytes_per_run']} bytes); a run logged / unlogged "
        f"{_sp(on['ms_per_run'], '{:.2f}')} / {_sp(off['ms_per_run'], '{:.2f}')} ms, CPU "
        f"{_sp(on['cpu_ms_per_run'], '{:.2f}')} / {_sp(off['cpu_ms_per_run'], '{:.2f}')} ms, "
        f"loop's worst delay {_sp(on['loop_worst_delay_ms'], '{:.1f}')} / "
        f"{_sp(off['loop_worst_delay_ms'], '{:.1f}')} ms"
    )


def markdown(r: dict[str, Any]) -> str:
    """The table bench/README.md and the README quote: median (min-max) over the rounds."""
    rows = [("measure", *HEADERS), ("---",) * (len(HEADERS) + 1), *_rows(r)]
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def timeline_line(r: dict[str, Any]) -> str | None:
    """Timeline cost per event (event + forced flush, µs) by tool calls, when measured."""
    tl = r.get("timeline_cost", {})
    res = tl.get("result")
    if tl.get("status") != "ok" or not isinstance(res, dict):
        return None
    try:
        parts = [f"{int(n):,}: {fig['event_flush_us']:.0f}" for n, fig in res.items()]
    except (KeyError, TypeError, ValueError):
        return None
    return " / ".join(parts) + " µs"


def summary_markdown(r: dict[str, Any]) -> str:
    """The README's short table: ratios to bare httpx, median (min-max) over the rounds, wall
    time then CPU time, with each goal."""
    ov, st, tc, many, fu = (
        r["overhead"],
        r["streaming"],
        r["tool_concurrency"],
        r["many_chains"],
        r["first_use"],
    )
    names = ("llm_magic", "llm", "llm_reused_client", "raw_socket")

    def both(section: dict[str, Any], name: str) -> str:
        wall = _sp(_get(section, name, "ratio_to_bare"), "{:.2f}", "x")
        cpu = _sp(_get(section, name, "cpu_ratio_to_bare"), "{:.2f}", "x")
        return f"{wall}; CPU {cpu}"

    rows: list[tuple[str, ...]] = [
        ("measure", "llm_magic", "llm", "llm, reused client", "raw socket", "goal"),
        ("---",) * 6,
        (
            "chain (2 turns, 1 sync tool), non-streaming, / bare httpx",
            *(both(ov["non_streaming"], n) for n in names),
            "CPU <= 1.2x",
        ),
        (
            "same, streaming",
            *(both(ov["streaming"], n) for n in names),
            "CPU <= 1.2x",
        ),
        (
            "same, both with the tool on the loop's thread as bare httpx calls it (no hop "
            "to a worker thread), non-streaming / streaming",
            f"{both(ov['non_streaming'], ON_LOOP)} / {both(ov['streaming'], ON_LOOP)}",
            "-",
            "-",
            "-",
            "information",
        ),
        (
            f"{st['tokens']}-token stream: events/s / bare SSE parsing",
            *(both(st, n) for n in names),
            ">= 0.9x",
        ),
    ]
    for kind, goal in (("sync", "<= 1.1x"), ("async", "<= 1.3x")):
        rows.append(
            (
                f"8 parallel {kind} tools of 0.2 s: wall / 0.2 s",
                _sp(_get(tc, kind, "llm_magic", "ratio_to_one_tool"), "{:.2f}", "x"),
                _sp(_get(tc, kind, "llm", "ratio_to_one_tool"), "{:.2f}", "x"),
                "-",
                "-",
                goal,
            )
        )
        rows.append(
            (
                f"largest delay of a 5 ms loop ticker meanwhile ({kind})",
                _sp(_get(tc, kind, "llm_magic", "ticker_max_delay_ms"), "{:.1f}", " ms"),
                _sp(_get(tc, kind, "llm", "ticker_max_delay_ms"), "{:.0f}", " ms"),
                "-",
                "-",
                "<= 20 ms" if kind == "sync" else "-",
            )
        )
    for name, label in (("llm_magic", ""), (ON_LOOP, ", tool on the loop's thread")):
        lm = many.get(name, {})
        rows.append(
            (
                f"{many['chains']} concurrent chains{label}: chains/s / bare httpx (same pool)",
                f"{both(many, name)}; worst round / bare's best: "
                f"{lm.get('worst_round_to_best_bare')} "
                f"(CPU {lm.get('cpu_worst_round_to_best_bare')})",
                "-",
                "-",
                "-",
                ">= 0.9x (median), CPU <= 1.2x",
            )
        )
    limits = many.get("limits", {})
    rows.append(
        (
            f"{many['chains']} concurrent chains: most requests in flight at once",
            f"{_get(many, 'llm_magic', 'most_in_flight')} (bound: max_connections = "
            f"{limits.get('in_flight')})",
            "-",
            "-",
            "-",
            "<= max_connections",
        )
    )
    frame = _get(r, "big_results", "dataframe_10k_cells", "llm_magic", "ratio_to_bare")
    rows.append(
        (
            "10k-cell DataFrame result to 20,000 chars / bare to_json + cut",
            _sp(frame, "{:.2f}", "x"),
            "-",
            "-",
            "-",
            "<= 1.0x",
        )
    )
    su = r["startup"]
    rows.append(
        (
            "`%load_ext llm_magic` beyond IPython (terminal shell)",
            f"{su.get('load_ext_beyond_ipython_ms')} ms; CPU "
            f"{su.get('load_ext_beyond_ipython_cpu_ms')} ms",
            "-",
            "-",
            "-",
            "< 150 ms",
        )
    )
    if fu.get("status") == "ok":
        rows.append(
            (
                "first use in a fresh kernel: `%load_ext` + first chain",
                f"{_sp(fu['load_plus_first_chain_ms'], '{:.0f}', ' ms')}; CPU "
                f"{_sp(fu['load_plus_first_chain_cpu_ms'], '{:.0f}', ' ms')}",
                "-",
                "-",
                "-",
                "CPU <= 250 ms",
            )
        )
        without = fu.get("without_price_table") or {}
        if without.get("load_plus_first_chain_cpu_ms"):
            rows.append(
                (
                    "same, the price table (genai-prices) loaded beforehand",
                    f"{_sp(without.get('load_plus_first_chain_ms'), '{:.0f}', ' ms')}; CPU "
                    f"{_sp(without.get('load_plus_first_chain_cpu_ms'), '{:.0f}', ' ms')}",
                    "-",
                    "-",
                    "-",
                    "-",
                )
            )
        floor = fu.get("imports_floor") or {}
        if floor.get("status") == "ok":
            rows.append(
                (
                    "the imports no first use can skip (HTTP stack + widget + price table), CPU",
                    f"{_sp(floor['http_cpu_ms'], '{:.0f}')} + {_sp(floor['widget_cpu_ms'], '{:.0f}')}"
                    f" + {_sp(floor['price_table_cpu_ms'], '{:.0f}')} = "
                    f"{_sp(floor['all_cpu_ms'], '{:.0f}', ' ms')}",
                    "-",
                    "-",
                    "-",
                    "-",
                )
            )
    timeline = timeline_line(r)
    if timeline:
        rows.append(("timeline cost per event by tool calls", timeline, "-", "-", "-", "flat"))
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)
