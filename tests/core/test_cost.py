"""Cost and budgets over the loopback servers: prices from genai-prices' own table, cached and
reasoning tokens as each provider reports them, unknown models never guessed, `max_cost`."""

from __future__ import annotations

import asyncio
import threading
from decimal import Decimal
from typing import Any

import genai_prices
import pytest

import llm_magic
from llm_magic import _runtime
from llm_magic import cost as costs
from llm_magic import events as ev
from llm_magic.errors import ConfigError
from llm_magic.notebook.cell_options import help_text, parse_line
from tests.notebook.test_magics import ip, ok  # noqa: F401  (the IPython shell fixture)
from tests.provider_models import PRICE_IDS, model_for
from tests.servers import Call, Reply
from tests.servers.fixtures import _serve

PROVIDERS = ["openai", "anthropic", "gemini"]
PRICED = {"openai": "gpt-4.1", "anthropic": "claude-sonnet-4-6", "gemini": "gemini-3.5-flash"}


def lookup(key: str) -> str:
    """Look a key up."""
    return key.upper()


def table_price(kind: str, i: int, o: int, cached: int) -> Decimal:
    """What genai-prices itself says a turn costs."""
    usage = genai_prices.Usage(input_tokens=i, output_tokens=o, cache_read_tokens=cached)
    calc = genai_prices.calc_price(usage, PRICED[kind], provider_id=PRICE_IDS[kind])
    return Decimal(calc.total_price)


@pytest.fixture(params=PROVIDERS)
def server(request: Any) -> Any:
    yield from _serve(request.param)


async def test_cost_of_a_scripted_run_matches_the_price_table(server: Any) -> None:
    kind = server.provider
    server.push(
        Reply(calls=[Call("lookup", {"key": "a"})], usage=(1200, 300), cached=1000, reasoning=120),
        Reply(text="A.", usage=(1500, 40), cached=1100),
    )
    async with model_for(server) as model:
        result = await model.chain("look a up", tools=[lookup])
    assert result.ok and result.text == "A."
    expected = [table_price(kind, 1200, 300, 1000), table_price(kind, 1500, 40, 1100)]
    assert [t.cost for t in result.turns] == expected
    assert result.cost == sum(expected) > 0
    assert result.conversation_cost == result.cost
    # the cached part is billed at the cache rate: cheaper than the same tokens uncached
    assert result.cost < table_price(kind, 1200, 300, 0) + table_price(kind, 1500, 40, 0)
    assert result.usage.input_tokens == 2700 and result.usage.cache_read_tokens == 2100
    assert result.usage.output_tokens == 340
    # Anthropic folds thinking into output_tokens and does not report it apart
    assert result.usage.reasoning_tokens == (0 if kind == "anthropic" else 120)


async def test_conversation_cost_adds_up_across_continued_runs(openai_server: Any) -> None:
    openai_server.push(Reply(text="one", usage=(100, 10)), Reply(text="two", usage=(200, 20)))
    async with model_for(openai_server) as model:
        first = await model.chain("1")
        second = await first.continue_("2")
    assert second.cost == table_price("openai", 200, 20, 0)
    assert second.conversation_cost == first.cost + second.cost
    assert first.conversation_cost == first.cost  # a result never changes


async def test_cost_events_follow_each_turn(openai_server: Any) -> None:
    openai_server.push(Reply(calls=[Call("lookup", {"key": "a"})]), Reply(text="A"))
    async with model_for(openai_server) as model:
        run = model.chain("x", tools=[lookup])
        events = [e async for e in run]
    costed = [e for e in events if isinstance(e, llm_magic.events.CostReported)]
    assert [(e.step, e.cost) for e in costed] == [(1, run.turns[0].cost), (2, run.turns[1].cost)]
    assert costed[-1].total_cost == (await run).cost
    types = [e.type for e in events]
    assert types.index("cost") > types.index("turn_finished")  # the price follows the turn


async def test_an_unknown_model_costs_unknown_never_a_guess(openai_server: Any) -> None:
    openai_server.push(Reply(text="hi"), Reply(text="again"))
    model = llm_magic.get_async_model(
        "openai-chat:my-finetune-xyz",
        base_url=openai_server.base_url,
        api_key=openai_server.api_key,
    )
    async with model:
        result = await model.chain("hi")
        later = await result.continue_("more")
    assert result.cost is None and result.turns[0].cost is None
    assert later.conversation_cost is None
    assert costs.format_cost(result.cost) == "unknown"


def test_openai_compatible_servers_are_priced_by_url_only() -> None:
    compatible = llm_magic.registry.make_provider(
        "ollama:gpt-4.1-mini", base_url="http://127.0.0.1:9/v1"
    )
    assert costs.price_source(compatible) == {"provider_api_url": "http://127.0.0.1:9/v1"}
    assert (
        costs.price("gpt-4.1-mini", llm_magic.Usage(100, 10), costs.price_source(compatible))
        is None
    )
    local = llm_magic.registry.make_provider("local")
    assert costs.price_source(local) is None


# -- budgets --------------------------------------------------------------------------------------


def big(n: int) -> str:
    """Return n characters."""
    return "x" * n


async def test_a_budget_stops_the_run_before_the_turn_that_would_pass_it(server: Any) -> None:
    kind = server.provider
    server.push(Reply(calls=[Call("big", {"n": 20_000})], usage=(1000, 100)))
    first = table_price(kind, 1000, 100, 0)
    # room for 1,000 more input tokens; the tool's 20,000 characters make the next prompt
    # some 5,000 tokens
    budget = first + table_price(kind, 1000, 0, 0)
    async with model_for(server) as model:
        result = await model.chain("go", tools=[big], max_cost=float(budget))
    assert result.status == "max_cost" and not result.ok
    assert len(server.requests) == 1  # the second turn was never sent
    assert result.tool_calls[0].status == "ok"  # the history stays valid for a continuation
    assert result.cost == first


async def test_the_same_run_goes_on_under_a_larger_budget(openai_server: Any) -> None:
    openai_server.push(Reply(calls=[Call("big", {"n": 20_000})], usage=(1000, 100)), "done")
    budget = table_price("openai", 1000, 100, 0) + table_price("openai", 10_000, 0, 0)
    async with model_for(openai_server) as model:
        result = await model.chain("go", tools=[big], max_cost=float(budget))
    assert result.status == "done" and len(openai_server.requests) == 2


async def test_a_budget_too_small_for_the_first_turn_sends_nothing(openai_server: Any) -> None:
    async with model_for(openai_server) as model:
        result = await model.chain("hello " * 100, max_cost=1e-7)
    assert result.status == "max_cost" and openai_server.requests == []
    assert result.cost == 0


async def test_a_budget_on_a_model_without_a_price_fails_clearly(openai_server: Any) -> None:
    model = llm_magic.get_async_model(
        "openai-chat:no-such-model", base_url=openai_server.base_url, api_key=openai_server.api_key
    )
    async with model:
        with pytest.raises(ConfigError, match="max_cost needs the price of 'no-such-model'"):
            await model.chain("hi", max_cost=1.0)
    assert openai_server.requests == []


@pytest.mark.parametrize("bad", [0, -1, float("nan"), "1", True])
def test_max_cost_is_checked(bad: Any) -> None:
    with pytest.raises((TypeError, ValueError), match="max_cost"):
        llm_magic.ChainOptions(max_cost=bad)


def test_max_cost_is_on_the_magic_line_and_in_help() -> None:
    assert parse_line("--max-cost 0.25").chain.max_cost == 0.25
    assert "--max-cost USD" in help_text()
    with pytest.raises(Exception, match="--max-cost must be a positive"):
        parse_line("--max-cost -2")


# -- %llm_usage -----------------------------------------------------------------------------------


def test_llm_usage_shows_the_sessions_totals_by_model(ip: Any) -> None:  # noqa: F811
    costs.ledger.clear()
    ip.server.push(Reply(text="one", usage=(1000, 50), cached=400), Reply(text="two"))
    ok(ip, '%config LLMMagic.default_model = "openai-chat:gpt-4.1"')
    ok(ip, "%%llm_chain -q\nfirst")
    ok(ip, "%%llm_chain -q -m openai-chat:my-own-model\nsecond")
    _, cap = ok(ip, "%llm_usage")
    rows = {line.split()[0]: line.split() for line in cap.stdout.splitlines() if line.strip()}
    assert rows["gpt-4.1"][1:6] == ["1", "1000", "400", "0", "50"]
    assert rows["gpt-4.1"][-1] == costs.format_cost(table_price("openai", 1000, 50, 400))
    assert rows["my-own-model"][-1] == "unknown" and rows["total"][-1] == "unknown"
    _, cap = ok(ip, "%llm_usage reset")
    _, cap = ok(ip, "%llm_usage")
    assert "no model turns yet" in cap.stdout


async def test_the_stateless_chain_carries_the_history_cost(openai_server: Any) -> None:
    openai_server.push(Reply(text="one", usage=(100, 10)), Reply(text="two", usage=(300, 30)))
    async with model_for(openai_server) as model:
        first = await llm_magic.chain("1", model=model)
        second = await llm_magic.chain("2", continue_=first)
    assert second.conversation_cost == first.cost + second.cost
    assert second.cost == table_price("openai", 300, 30, 0)


def test_max_cost_from_config_stops_a_cell(ip: Any) -> None:  # noqa: F811
    ip.server.push(Reply(calls=[Call("get_weather", {"city": "Paris"})], usage=(1000, 100)))
    ok(ip, '%config LLMMagic.default_model = "openai-chat:gpt-4.1"')
    ok(ip, "%config LLMMagic.max_cost = 0.0000001")
    result, _ = ok(ip, "%%llm_chain -q -t get_weather\nweather?")
    assert result.status == "max_cost" and ip.server.requests == []
    result, _ = ok(ip, "%%llm_chain -q -t get_weather --max-cost 0.0005\nweather?")
    assert result.status == "max_cost" and len(ip.server.requests) == 1


def test_a_fresh_process_prices_every_turn_without_waiting_for_the_table(
    openai_server: Any,
) -> None:
    """The table loads in a thread; turns that end before it are priced later, exactly."""
    import subprocess
    import sys
    import textwrap
    from pathlib import Path

    openai_server.push(
        Reply(calls=[Call("lookup", {"key": "a"})], usage=(1000, 10)),
        Reply(text="A", usage=(1200, 5)),
    )
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        import llm_magic
        from llm_magic import events as ev

        def lookup(key: str) -> str:
            "Look up."
            return "genai_prices loaded" if "genai_prices" in sys.modules else "not yet"

        async def main():
            model = llm_magic.get_async_model(
                "openai-chat:gpt-4.1", base_url={openai_server.base_url!r},
                api_key={openai_server.api_key!r})
            async with model:
                run = model.chain("x", tools=[lookup])
                streamed = [e async for e in run]  # up to the run's end
                result = await run
                total = result.cost  # waits for the table, then the cost events follow
            events = run.events
            print([(e.step, str(e.cost)) for e in events if isinstance(e, ev.CostReported)])
            print(str(total))
            print(streamed == events[: len(streamed)])

        asyncio.run(main())
        """
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=root,
        timeout=60,
        env={**__import__("os").environ, "PYTHONPATH": str(root)},
    )
    assert out.returncode == 0, out.stderr
    costs_line, total, in_order = out.stdout.splitlines()
    assert in_order == "True"
    first, second = table_price("openai", 1000, 10, 0), table_price("openai", 1200, 5, 0)
    assert costs_line == str([(1, str(first)), (2, str(second))])
    assert total == str(first + second)


def test_a_model_the_table_does_not_know_is_looked_up_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """genai-prices caches what it finds, not what it does not: llm_magic remembers the misses
    (one search through the provider's models per turn cost 1,000 chains 5-10% of their CPU)."""
    searches: list[str] = []
    real = genai_prices.calc_price

    def counting(usage: Any, model: str, **source: Any) -> Any:
        searches.append(model)
        return real(usage, model, **source)

    monkeypatch.setattr(genai_prices, "calc_price", counting)
    source = {"provider_id": "openai"}
    for _ in range(3):
        assert costs.price("no-such-model-xyz", llm_magic.Usage(100, 10), source) is None
        assert costs.price("gpt-4.1-mini", llm_magic.Usage(100, 10), source) is not None
    assert searches.count("no-such-model-xyz") == 1
    assert searches.count("gpt-4.1-mini") == 3  # known models: genai-prices' own cache


# -- a price that settles after the run ---------------------------------------------------------


@pytest.fixture
def slow_table(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The price table still loading: its loader thread holds until the test sets the gate."""
    gate = threading.Event()
    loader = threading.Thread(target=gate.wait, daemon=True)
    loader.start()
    monkeypatch.setitem(_runtime._jobs, costs.PRICE_LOADER, loader)
    monkeypatch.setattr(costs, "prices_ready", lambda: not loader.is_alive())
    yield gate
    gate.set()


async def test_a_run_ends_before_the_table_loads_and_its_cost_follows(
    openai_server: Any, slow_table: threading.Event
) -> None:
    costs.ledger.clear()
    openai_server.push(Reply(calls=[Call("lookup", {"key": "a"})], usage=(100, 10)), Reply("A."))
    async with model_for(openai_server) as model:
        run = model.chain("look a up", tools=[lookup])
        result = await run
        assert result.text == "A." and result.late is not None  # ended, the table still loading
        assert not [e for e in run.events if isinstance(e, ev.CostReported)]
        assert costs.ledger.models == {}
        slow_table.set()
        for _ in range(200):  # the run's loop settles it once the table has loaded
            if result.late is None:
                break
            await asyncio.sleep(0.01)
        assert result.late is None
    turns = [table_price("openai", 100, 10, 0), result.turns[1].cost]
    assert result.turns[0].cost == turns[0] and turns[1] is not None
    assert result.cost == result.conversation_cost == sum(turns) > 0
    assert result.conversation is not None and result.conversation.cost == result.cost
    reported = [e for e in run.events if isinstance(e, ev.CostReported)]
    assert [(e.step, e.cost) for e in reported] == [(1, turns[0]), (2, turns[1])]
    assert isinstance(run.events[-3], ev.RunFinished)  # the cost came after the run's end
    assert costs.ledger.models[PRICED["openai"]].cost == result.cost


async def test_reading_a_late_cost_waits_for_it_and_runs_after_it_add_up(
    openai_server: Any, slow_table: threading.Event
) -> None:
    openai_server.push(Reply(text="one", usage=(100, 10)), Reply(text="two", usage=(200, 20)))
    async with model_for(openai_server) as model:
        conversation = model.conversation()
        first = await conversation.chain("1")
        second = await conversation.chain("2")  # a run after one priced late is priced late
        assert first.late is not None and second.late is not None
        threading.Timer(0.05, slow_table.set).start()
        assert second.conversation_cost == table_price("openai", 100, 10, 0) + table_price(
            "openai", 200, 20, 0
        )  # read on the loop's thread: waits, settles
    assert first.cost == first.conversation_cost == table_price("openai", 100, 10, 0)
    assert second.cost == table_price("openai", 200, 20, 0)
    assert conversation.cost == second.conversation_cost


async def test_a_budgeted_run_loads_the_table_before_its_first_turn(openai_server: Any) -> None:
    openai_server.push(Reply(text="one", usage=(100, 10)))
    async with model_for(openai_server) as model:
        run = model.chain("1", max_cost=1.0)
        result = await run
    assert result.late is None and costs.prices_ready()
    assert result.cost == table_price("openai", 100, 10, 0)
    assert isinstance(run.events[-1], ev.RunFinished)  # priced within the run, before its end


async def test_an_editor_opened_before_the_price_settled_shows_each_turns_cost(
    openai_server: Any, slow_table: threading.Event
) -> None:
    """`%llm_edit` rebuilds a finished run's events from its result: it waits for a price
    still settling, so its header never says "no price for this model" for a priced model."""
    from llm_magic.notebook.editing import replay

    openai_server.push(Reply(calls=[Call("lookup", {"key": "a"})], usage=(100, 10)), Reply("A."))
    async with model_for(openai_server) as model:
        result = await model.chain("look a up", tools=[lookup])
        assert result.late is not None  # ended, the table still loading
        threading.Timer(0.2, slow_table.set).start()
        events = await asyncio.to_thread(replay, result)  # the loop stays free to settle it
    costs_seen = [e.cost for e in events if isinstance(e, ev.CostReported)]
    assert len(costs_seen) == 2 and all(c is not None and c > 0 for c in costs_seen)
