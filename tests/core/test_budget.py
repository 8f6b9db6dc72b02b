"""Budgets that hold: `max_cost` caps each turn's output, so a model that writes until the cap on
every turn never takes a run past its budget, on every wire format.

The loopback servers count a request's input tokens from its body and cut a `until_cap` reply at
the request's output cap with the API's own truncation signal; the expectations come from the
genai-prices table, never from dollar figures written here.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import genai_prices
import pytest

import llm_magic
from llm_magic import cost as costs
from llm_magic.messages import Message, ModelRequest
from llm_magic.providers.anthropic import AnthropicMessagesAdapter
from llm_magic.providers.openai import COMPATIBLE, OpenAIChatAdapter
from tests.provider_models import FAST_RETRY
from tests.providers.test_servers_reject import rejected
from tests.providers.test_servers_selfcheck import post
from tests.servers import Call, Reply, make_server
from tests.servers.script import UNCAPPED_OUTPUT


@dataclass(frozen=True)
class Wire:
    """One wire format: its loopback server, a priced model id on it, and the field that caps
    a turn's output with the signal of a reply cut there."""

    server: str  # a `make_server` kind
    model: str  # the llm_magic model id
    price_id: str  # genai-prices' model and provider ids
    price_provider: str
    truncated: str  # the API's finish / stop reason for a reply cut at the cap

    def cap_of(self, body: dict[str, Any]) -> int | None:
        if self.server == "openai":
            return body.get("max_completion_tokens")
        if self.server == "openai-responses":
            return body.get("max_output_tokens")
        if self.server == "anthropic":
            return body.get("max_tokens")
        return (body.get("generationConfig") or {}).get("maxOutputTokens")


WIRES = {
    "openai-responses": Wire("openai-responses", "openai:gpt-4.1", "gpt-4.1", "openai", "length"),
    "openai-chat": Wire("openai", "openai-chat:gpt-4.1-mini", "gpt-4.1-mini", "openai", "length"),
    "anthropic": Wire(
        "anthropic", "anthropic:claude-haiku-4-5", "claude-haiku-4-5", "anthropic", "max_tokens"
    ),
    "gemini": Wire("gemini", "gemini:gemini-3.5-flash", "gemini-3.5-flash", "google", "MAX_TOKENS"),
}


def lookup(key: str) -> str:
    """Look a key up."""
    return key.upper()


def table_price(wire: Wire, i: int, o: int) -> Decimal:
    """What genai-prices itself says a turn of `i` input and `o` output tokens costs."""
    usage = genai_prices.Usage(input_tokens=i, output_tokens=o)
    calc = genai_prices.calc_price(usage, wire.price_id, provider_id=wire.price_provider)
    return Decimal(calc.total_price)


@pytest.fixture(params=list(WIRES))
def wire(request: Any) -> Any:
    spec = WIRES[request.param]
    server = make_server(spec.server).start()
    try:
        yield spec, server
    finally:
        server.close()


def model_on(spec: Wire, server: Any) -> llm_magic.AsyncModel:
    return llm_magic.get_async_model(
        spec.model, base_url=server.base_url, api_key=server.api_key, retry=FAST_RETRY
    )


def assert_priced_as_reported(spec: Wire, result: Any) -> None:
    """The run's cost is the table's price of each turn's reported usage, added up."""
    expected = [
        table_price(spec, t.usage.input_tokens, t.usage.output_tokens) for t in result.turns
    ]
    assert [t.cost for t in result.turns] == expected
    assert result.cost == sum(expected, Decimal(0))


# -- the servers honour the cap ------------------------------------------------------------------


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "json"])
async def test_a_reply_written_until_the_cap_is_cut_there_with_the_apis_signal(
    wire: Any, stream: bool
) -> None:
    spec, server = wire
    server.push(Reply(until_cap=True, reasoning=5 if spec.server != "anthropic" else 0))
    async with model_on(spec, server) as model:
        result = await model.chain("write", stream=stream, model_options={"max_tokens": 37})
    assert spec.cap_of(server.requests[0].body) == 37  # the user's own limit, in the API's field
    turn = result.turns[0]
    assert turn.finish_reason == spec.truncated
    assert turn.usage.output_tokens == 37  # reasoning included, as each API counts it
    assert len(turn.text.split()) == 37 - turn.usage.reasoning_tokens


async def test_without_a_cap_a_reply_written_until_the_cap_writes_the_servers_maximum(
    wire: Any,
) -> None:
    spec, server = wire
    if spec.server == "anthropic":
        pytest.skip("Anthropic requires max_tokens: every request has a cap")
    server.push(Reply(until_cap=True))
    async with model_on(spec, server) as model:
        result = await model.chain("write", stream=False)
    assert spec.cap_of(server.requests[0].body) is None
    assert result.usage.output_tokens == UNCAPPED_OUTPUT


# -- worst cases: a model that writes until the cap on every turn -----------------------------


@pytest.mark.parametrize("minimal_turns", [3, 40, 400])
@pytest.mark.parametrize("tools", [True, False], ids=["tool rounds", "one answer"])
async def test_a_model_writing_until_the_cap_never_takes_a_run_past_its_budget(
    wire: Any, minimal_turns: int, tools: bool
) -> None:
    spec, server = wire
    # budgets of a few sizes, counted in minimal turns (a 1,000-token prompt, 16 tokens out)
    budget = table_price(spec, 1000, costs.MIN_OUTPUT_TOKENS) * minimal_turns
    calls = [Call("lookup", {"key": "a"})] if tools else []
    server.push(*[Reply(until_cap=True, calls=calls) for _ in range(40)])
    async with model_on(spec, server) as model:
        result = await model.chain(
            "go",
            tools=[lookup] if tools else [],
            max_cost=float(budget),
            max_steps=39,
            max_tool_calls=39,
        )
    assert result.turns, "the budget paid for at least one turn"
    assert result.cost is not None and result.cost <= budget
    assert_priced_as_reported(spec, result)
    sent = [spec.cap_of(r.body) for r in server.requests]
    assert all(cap is not None and cap >= costs.MIN_OUTPUT_TOKENS for cap in sent)
    # every turn wrote all its cap allowed: the worst case, each one priced within the rest
    assert [t.usage.output_tokens for t in result.turns] == sent
    if tools:  # tool rounds go on until the budget cannot pay another turn
        assert result.status == "max_cost"
        assert f"before turn {len(result.turns) + 1}" in (result.stop_reason or "")
    else:
        assert result.status == "done" and result.turns[0].finish_reason == spec.truncated


async def test_a_budget_too_small_for_one_minimal_turn_sends_nothing(wire: Any) -> None:
    spec, server = wire
    # not even one input token and the minimal answer
    budget = table_price(spec, 1, costs.MIN_OUTPUT_TOKENS - 1)
    async with model_on(spec, server) as model:
        result = await model.chain("hello", max_cost=float(budget))
    assert result.status == "max_cost" and server.requests == []
    assert result.cost == 0 and result.turns == []
    reason = result.stop_reason or ""
    assert reason.startswith("stopped by max_cost before turn 1: $0.0000 spent of ")
    assert f"{costs.MIN_OUTPUT_TOKENS} output tokens" in reason


async def test_the_stop_reason_gives_what_was_spent_and_what_the_next_turn_needs(
    openai_server: Any,
) -> None:
    spec = WIRES["openai-chat"]
    budget = table_price(spec, 1000, costs.MIN_OUTPUT_TOKENS) * 30
    openai_server.push(*[Reply(until_cap=True, calls=[Call("lookup", {"key": "a"})])] * 3)
    async with model_on(spec, openai_server) as model:
        result = await model.chain("go", tools=[lookup], max_cost=float(budget))
    assert result.status == "max_cost"
    turn = len(result.turns) + 1
    assert result.stop_reason is not None
    assert result.stop_reason.startswith(
        f"stopped by max_cost before turn {turn}: {costs.format_cost(result.cost)} spent of "
        f"{costs.format_cost(budget)}, the next turn needs at least $"
    )
    needed = Decimal(result.stop_reason.split("at least $")[1].split(" ")[0])
    assert needed > budget - result.cost  # the figures say why it stopped


async def test_the_cap_never_raises_the_users_own_max_tokens(wire: Any) -> None:
    spec, server = wire
    server.push(Reply(until_cap=True))
    budget = table_price(spec, 1000, 5000)
    async with model_on(spec, server) as model:
        result = await model.chain("go", max_cost=float(budget), model_options={"max_tokens": 20})
    assert spec.cap_of(server.requests[0].body) == 20
    assert result.usage.output_tokens == 20


async def test_an_unpriced_model_is_still_refused_under_a_budget(openai_server: Any) -> None:
    model = llm_magic.get_async_model(
        "openai-chat:no-such-model", base_url=openai_server.base_url, api_key="sk-test-123"
    )
    async with model:
        with pytest.raises(llm_magic.errors.ConfigError, match="genai-prices table does not"):
            await model.chain("hi", max_cost=1.0)
    assert openai_server.requests == []


# -- each adapter's wire field -----------------------------------------------------------------


def capped(cap: int, **options: Any) -> ModelRequest:
    return ModelRequest(
        [Message("user", "hi")], stream=False, options=options, max_output_tokens=cap
    )


async def test_an_openai_compatible_server_gets_the_cap_as_max_tokens(openai_server: Any) -> None:
    openai_server.push(Reply(until_cap=True))
    provider = OpenAIChatAdapter(
        "llama3", compat=COMPATIBLE, base_url=openai_server.base_url, api_key="sk-test-123"
    )
    try:
        turn = await provider.turn(capped(24, max_tokens=100))
    finally:
        await provider.aclose()
    body = openai_server.requests[0].body
    assert body["max_tokens"] == 24 and "max_completion_tokens" not in body
    assert turn.usage.output_tokens == 24 and turn.finish_reason == "length"


async def test_anthropic_thinking_is_fitted_under_a_lower_cap(anthropic_server: Any) -> None:
    anthropic_server.push("ok", "ok")
    thinking = {"type": "enabled", "budget_tokens": 2000}
    provider = AnthropicMessagesAdapter(
        "claude-haiku-4-5", base_url=anthropic_server.base_url, api_key="sk-test-123"
    )
    try:
        await provider.turn(capped(1500, thinking=thinking, max_tokens=8000))
        await provider.turn(capped(800, thinking=thinking, max_tokens=8000))
    finally:
        await provider.aclose()
    first, second = (r.body for r in anthropic_server.requests)
    assert first["max_tokens"] == 1500
    assert first["thinking"] == {"type": "enabled", "budget_tokens": 1499}
    # too small for the minimum thinking budget (1,024): thinking off for that turn
    assert second["max_tokens"] == 800 and second["thinking"] == {"type": "disabled"}


# -- the servers refuse a cap the APIs refuse -----------------------------------------------------


def test_openai_refuses_a_cap_below_one(openai_server: Any) -> None:
    assert "integer below minimum value" in rejected(openai_server, max_completion_tokens=0)
    openai_server.push("ok")
    assert post(openai_server, max_completion_tokens=1)[0] == 200


def test_gemini_refuses_a_cap_below_one(gemini_server: Any) -> None:
    assert "max_output_tokens" in rejected(gemini_server, generationConfig={"maxOutputTokens": 0})
    gemini_server.push("ok")
    assert post(gemini_server, generationConfig={"maxOutputTokens": 1})[0] == 200


def test_anthropic_refuses_a_thinking_budget_not_below_max_tokens(anthropic_server: Any) -> None:
    too_big = {"type": "enabled", "budget_tokens": 1024}
    assert "greater than `thinking.budget_tokens`" in rejected(
        anthropic_server, max_tokens=1024, thinking=too_big
    )
    assert "greater than or equal to 1024" in rejected(
        anthropic_server, max_tokens=4000, thinking={"type": "enabled", "budget_tokens": 1000}
    )
    anthropic_server.push("ok")
    assert post(anthropic_server, max_tokens=1025, thinking=too_big)[0] == 200


async def test_the_timeline_shows_why_the_budget_stopped_the_run(openai_server: Any) -> None:
    from llm_magic.notebook import render
    from llm_magic.notebook.reducer import RunState, apply

    spec = WIRES["openai-chat"]
    budget = table_price(spec, 1000, costs.MIN_OUTPUT_TOKENS) * 30
    openai_server.push(*[Reply(until_cap=True, calls=[Call("lookup", {"key": "a"})])] * 3)
    async with model_on(spec, openai_server) as model:
        run = model.chain("go", tools=[lookup], max_cost=float(budget))
        state = RunState(model=spec.model)
        async for event in run:
            apply(state, event)
    result = await run
    assert result.stop_reason and state.status == "max_cost"
    assert f"note: {result.stop_reason}" in render.static_text(state)
    assert render.esc(result.stop_reason) in render.static_html(state)
