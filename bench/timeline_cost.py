"""Cost per event of the notebook timeline at 10, 100 and 1,000 tool calls.

    python -m bench.timeline_cost [--counts 10 100 1000]

Synthetic chain events (turns of 10 parallel calls: requested, started, finished, plus the model
turns' text and usage) are fed into a `Timeline` without a kernel; its widgets are built and
every flush is forced after each event (the worst case: the throttle batches far more in a real
run). Comm messages are counted through `comm.create_comm`, the hook a kernel uses. The table
shows that the cost of one event does not grow with the number of entries already shown; only
the static HTML snapshot (rendered once, at `close()`) is linear.

`run(counts)` returns the figures as a dict, for a benchmark runner.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
from typing import Any

from llm_magic import events as ev
from llm_magic.messages import Usage
from llm_magic.options import ChainOptions
from llm_magic.records import ToolCallRecord
from llm_magic.results import ChainResult

PER_TURN = 10


class _Run:
    """What a Timeline uses from a ChainRun: subscribe (as the approver), options, cancel."""

    options = ChainOptions()

    def __init__(self) -> None:
        self.callbacks: list[Any] = []

    def subscribe(self, callback: Any, *, approver: bool = False) -> Any:
        self.callbacks.append(callback)
        return callback

    def cancel(self, reason: str = "") -> None:  # pragma: no cover - not clicked here
        pass

    def emit(self, event: ev.Event) -> None:
        for callback in self.callbacks:
            callback(event)


def _events(n_calls: int) -> list[ev.Event | tuple[str, ToolCallRecord]]:
    """A run with n_calls tool calls in turns of PER_TURN; record mutations are interleaved."""
    out: list[Any] = []
    total = Usage()
    out.append(ev.RunStarted("bench-model", "go", ["lookup"]))
    records: list[ToolCallRecord] = []
    step = 0
    while len(records) < n_calls:
        step += 1
        out.append(ev.TurnStarted(step))
        for word in ("Looking ", "up ", "the ", "next ", "batch."):
            out.append(ev.TextDelta(step, word))
        usage = Usage(100, 20)
        total = total + usage
        out.append(ev.UsageReported(step, usage, total))
        batch = [
            ToolCallRecord(
                f"call_{len(records) + i}", "lookup", f'{{"key": {len(records) + i}}}', step
            )
            for i in range(min(PER_TURN, n_calls - len(records)))
        ]
        out.append(ev.TurnFinished(step, "Looking up the next batch.", batch, usage))
        for rec in batch:
            out.append(ev.ToolCallRequested(rec))
        for rec in batch:
            out.append(("start", rec))
            out.append(ev.ToolCallStarted(rec))
        for rec in batch:
            out.append(("finish", rec))
            out.append(ev.ToolCallFinished(rec))
        records.extend(batch)
    out.append(ev.TurnStarted(step + 1))
    out.append(ev.TextDelta(step + 1, "Done."))
    out.append(ev.TurnFinished(step + 1, "Done.", [], Usage(100, 5)))
    result = ChainResult("Done.", "done", records, total, step, "bench-model", 1.0)
    out.append(ev.RunFinished(result))
    return out


def _mutate(kind: str, rec: ToolCallRecord) -> None:
    now = time.monotonic()
    if kind == "start":
        rec.arguments = {"key": int(rec.id.split("_")[1])}
        rec.status = "running"
        rec.implementation = "sync"
        rec.started_at = now
    else:
        rec.status = "ok"
        rec.result = {"key": rec.arguments["key"] if rec.arguments else 0, "value": "x" * 40}
        rec.output = str(rec.result)
        rec.ended_at = now + 0.001


def measure(n_calls: int) -> dict[str, float]:
    import comm
    from comm.base_comm import BaseComm

    from llm_magic.notebook.timeline import Timeline

    sent = {"msgs": 0, "opens": 0, "bytes": 0}
    encoding = [0.0]  # seconds spent counting the bytes, taken out of the timing

    class CountingComm(BaseComm):
        def publish_msg(
            self,
            msg_type: str,
            data: Any = None,
            metadata: Any = None,
            buffers: Any = None,
            **keys: Any,
        ) -> None:
            sent["opens" if msg_type == "comm_open" else "msgs"] += 1
            if msg_type != "comm_open":
                # the bytes as jupyter_client encodes them, counted at once and out of the timing
                # (the kernel's work, not ours); not kept for later: holding every message until
                # the loop ends grew the heap the garbage collector walks inside the timed loop
                # (a full collection of ~16 ms at 1,000 calls), which no kernel does
                t = time.perf_counter()
                sent["bytes"] += len(json.dumps(data, default=str, ensure_ascii=False).encode())
                encoding[0] += time.perf_counter() - t

    original = comm.create_comm
    comm.create_comm = CountingComm
    try:
        run = _Run()
        tl = Timeline(run, model="bench-model")  # type: ignore[arg-type]
        tl.widget  # noqa: B018 - build the widget view
        items = _events(n_calls)
        events = [e for e in items if isinstance(e, ev.Event)]
        costs: list[float] = []
        handler: list[float] = []
        for item in items:
            if isinstance(item, tuple):
                _mutate(*item)
                continue
            e0 = encoding[0]
            t0 = time.perf_counter()
            run.emit(item)
            t1 = time.perf_counter()
            e1 = encoding[0]
            tl.flush()
            t2 = time.perf_counter()
            handler.append(t1 - t0 - (e1 - e0))
            costs.append(t2 - t0 - (encoding[0] - e0))
        msgs_per_event = sent["msgs"] / len(events)
        t0 = time.perf_counter()
        tl.close()
        bundle = tl._repr_mimebundle_()
        close_s = time.perf_counter() - t0
        # marginal cost: the last PER_TURN calls' events, when n_calls entries already exist
        tail = costs[-(3 * PER_TURN + 4) :]
        return {
            "calls": n_calls,
            "events": len(events),
            "handler_us": statistics.mean(handler) * 1e6,
            "event_flush_us": statistics.mean(costs) * 1e6,
            "tail_event_flush_us": statistics.mean(tail) * 1e6,
            "p99_event_flush_us": sorted(costs)[int(0.99 * (len(costs) - 1))] * 1e6,
            "comm_msgs_per_event": msgs_per_event,
            "comm_bytes_per_event": sent["bytes"] / len(events),
            "comm_opens_per_call": sent["opens"] / n_calls,
            "close_and_static_ms": close_s * 1e3,
            "static_html_kb": len(bundle["text/html"]) / 1024,
        }
    finally:
        comm.create_comm = original


def run(counts: tuple[int, ...] = (10, 100, 1000)) -> dict[int, dict[str, float]]:
    # the collector starts from the same state whatever ran before in this process (a
    # benchmark runner's other sections): else a full collection (~15 ms with this heap) lands
    # in a timed loop or not depending on what they left, not on the timeline's own allocations
    gc.collect()
    measure(10)  # warm up imports and caches
    return {n: measure(n) for n in counts}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[10, 100, 1000])
    args = parser.parse_args(argv)
    results = run(tuple(args.counts))
    print("timeline cost per event (widgets built, a flush forced after every event)")
    header = (
        f"{'calls':>6} {'events':>7} {'handler µs':>11} {'event+flush µs':>15} "
        f"{'last turn µs':>13} {'p99 µs':>8} {'msgs/event':>11} {'opens/call':>11} "
        f"{'B/event':>8} {'close ms':>9} {'html KB':>8}"
    )
    print(header)
    for r in results.values():
        print(
            f"{r['calls']:>6} {r['events']:>7} {r['handler_us']:>11.1f} {r['event_flush_us']:>15.1f} "
            f"{r['tail_event_flush_us']:>13.1f} {r['p99_event_flush_us']:>8.0f} "
            f"{r['comm_msgs_per_event']:>11.2f} {r['comm_opens_per_call']:>11.2f} "
            f"{r['comm_bytes_per_event']:>8.0f} "
            f"{r['close_and_static_ms']:>9.1f} {r['static_html_kb']:>8.0f}"
        )
    small, large = results[min(results)], results[max(results)]
    ratio = large["tail_event_flush_us"] / small["tail_event_flush_us"]
    print(f"per-event cost at {large['calls']} calls / at {small['calls']} calls: {ratio:.2f}x")


if __name__ == "__main__":
    main()
