"""The pieces a run is made of, each on its own: the cost meter, the event broadcast, the
approver. The run over real HTTP is tested in test_chain, test_cost and test_budget; these
check each piece's own rules directly."""

from __future__ import annotations

import asyncio
import threading
from decimal import Decimal
from typing import Any

import pytest

import llm_magic
from llm_magic import catalog
from llm_magic import cost as costs
from llm_magic import events as ev
from llm_magic._approver import NO_APPROVER, Approver
from llm_magic._broadcast import Broadcast
from llm_magic.errors import ConfigError
from llm_magic.messages import Message, ModelRequest, ModelTurn, Usage
from llm_magic.options import Approval
from llm_magic.records import ToolCallRecord


def provider(spec: str) -> Any:
    """A real adapter pointed at a closed port: the meter reads its name and model only."""
    return llm_magic.registry.make_provider(spec, base_url="http://127.0.0.1:9/v1", api_key="k")


# -- the cost meter -----------------------------------------------------------------------------
async def test_the_meter_prices_each_turn_and_keeps_the_total() -> None:
    await costs.load_prices()
    meter = costs.CostMeter(provider("openai:gpt-4.1"), None, Decimal("0.5"))
    turns = [ModelTurn(usage=Usage(1000, 100)), ModelTurn(usage=Usage(2000, 50))]
    assert meter.turn_ended(1) and meter.turn_ended(2)  # the table is loaded: price now
    reports = meter.settle(turns)
    first = costs.price("gpt-4.1", Usage(1000, 100), {"provider_id": "openai"})
    second = costs.price("gpt-4.1", Usage(2000, 50), {"provider_id": "openai"})
    assert first is not None and second is not None
    assert reports == [(1, first, first), (2, second, first + second)]
    assert [t.cost for t in turns] == [first, second]
    assert meter.conversation_cost == Decimal("0.5") + first + second
    assert meter.settle(turns) == []  # each turn is priced once


async def test_the_meter_says_unknown_for_a_model_the_table_does_not_know() -> None:
    await costs.load_prices()
    meter = costs.CostMeter(provider("ollama:no-such-model"), None, Decimal(0))
    turns = [ModelTurn(usage=Usage(10, 10))]
    meter.turn_ended(1)
    assert meter.settle(turns) == [(1, None, None)]
    assert meter.cost is None and meter.conversation_cost is None


async def test_a_budget_needs_a_priced_model() -> None:
    with pytest.raises(ConfigError, match="max_cost needs the price"):
        await costs.CostMeter(provider("ollama:no-such-model"), 1.0, Decimal(0)).check_budget()
    await costs.CostMeter(provider("openai:gpt-4.1"), 1.0, Decimal(0)).check_budget()


async def test_the_budget_caps_the_next_turn_or_says_why_it_stops() -> None:
    await costs.load_prices()
    request = ModelRequest(messages=[Message("user", "hello " * 200)])
    ample = costs.CostMeter(provider("openai:gpt-4.1"), 1.0, Decimal(0))
    assert ample.fit(request, 1) is None
    limit = catalog.max_output("openai", "gpt-4.1")
    assert request.max_output_tokens is not None and limit is not None
    assert costs.MIN_OUTPUT_TOKENS <= request.max_output_tokens <= limit
    poor = costs.CostMeter(provider("openai:gpt-4.1"), 0.000001, Decimal(0))
    reason = poor.fit(ModelRequest(messages=[Message("user", "hello " * 200)]), 3)
    assert reason is not None and reason.startswith("stopped by max_cost before turn 3: ")
    assert "$0.0000 spent of <$0.0001" in reason and "16 output tokens" in reason
    assert costs.CostMeter(provider("openai:gpt-4.1"), None, Decimal(0)).fit(request, 1) is None


# -- the event broadcast ------------------------------------------------------------------------
def test_a_late_subscriber_gets_the_past_events_first_then_the_new_ones() -> None:
    broadcast = Broadcast()
    early: list[ev.Event] = []
    broadcast.subscribe(early.append)
    first, second, third = ev.TextDelta(1, "a"), ev.TextDelta(1, "b"), ev.TextDelta(1, "c")
    broadcast.emit(first)
    broadcast.emit(second)
    late: list[ev.Event] = []
    broadcast.subscribe(late.append)
    assert late == [first, second]
    broadcast.emit(third)
    assert early == late == [first, second, third]


def test_a_broken_subscriber_does_not_stop_the_others() -> None:
    broadcast = Broadcast()

    def broken(event: ev.Event) -> None:
        raise RuntimeError("a broken view")

    seen: list[ev.Event] = []
    broadcast.subscribe(broken)
    broadcast.subscribe(seen.append)
    broadcast.emit(ev.TextDelta(1, "a"))
    assert len(seen) == 1 and broadcast.events == seen


async def test_an_iterator_started_late_replays_then_waits_until_the_end() -> None:
    broadcast = Broadcast()
    broadcast.emit(ev.TextDelta(1, "a"))
    got: list[str] = []

    async def read() -> None:
        async for event in broadcast.iterate():
            assert isinstance(event, ev.TextDelta)
            got.append(event.text)

    reader = asyncio.ensure_future(read())
    await asyncio.sleep(0)
    assert got == ["a"] and not reader.done()  # waiting for more
    broadcast.emit(ev.TextDelta(1, "b"))
    broadcast.end()
    await asyncio.wait_for(reader, 5)
    assert got == ["a", "b"]


# -- the approver -------------------------------------------------------------------------------
def record(call_id: str = "c1") -> ToolCallRecord:
    return ToolCallRecord(call_id, "delete", "{}", 1)


async def test_the_options_callback_decides_before_any_view() -> None:
    async def callback(rec: ToolCallRecord) -> bool:
        return rec.id == "yes"

    approver = Approver(callback)
    approver.add_view()  # a view is attached, but the callback is asked
    approver.loop = asyncio.get_running_loop()
    asked: list[str] = []
    yes = approver.ask(record("yes"), lambda: asked.append("yes"))
    no = approver.ask(record("no"), lambda: asked.append("no"))
    assert await asyncio.wait_for(yes, 5) == Approval(True)  # not left waiting for the view
    assert await asyncio.wait_for(no, 5) == Approval(False)
    assert asked == ["yes", "no"]


async def test_without_a_callback_the_attached_view_decides_from_any_thread() -> None:
    approver = Approver(None)
    approver.add_view()
    approver.loop = asyncio.get_running_loop()
    rec = record()

    def click() -> None:  # a widget's button, on another thread
        threading.Thread(target=approver.decide, args=(rec.id, False, "not today")).start()

    decision = await asyncio.wait_for(approver.ask(rec, click), 5)
    assert decision == Approval(False, "not today")
    assert rec.status == "awaiting_approval"


async def test_without_a_callback_or_a_view_the_call_is_denied_with_a_reason() -> None:
    approver = Approver(None)
    approver.loop = asyncio.get_running_loop()
    assert await approver.ask(record(), lambda: None) == Approval(False, NO_APPROVER)
    approver.decide("c1", True)  # an answer nobody waits for changes nothing
