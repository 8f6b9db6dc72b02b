"""What a run costs in US dollars, from the maintained price table of PyPI `genai-prices`.

A price is a fact or it is unknown: a model the table does not know (a local model, a name
served by an OpenAI-compatible server the table cannot place) costs `None`, and any sum with an
unknown part is unknown too. Nothing here estimates a price from a similar model.

Token kinds are priced as each provider bills them: `Usage.input_tokens` holds all input and
`cache_read_tokens` / `cache_write_tokens` the parts read from and written to the prompt cache,
which is the shape `genai_prices.Usage` expects; reasoning tokens are already inside
`output_tokens` (OpenAI, Anthropic, and Gemini once our adapter adds its `thoughtsTokenCount`),
billed at the output rate.

The table (a 30,000-line module and pydantic; half a second to two on a busy machine) is
imported in a daemon thread, started when the first priced turn ends. A run does not wait for
it: a turn that ended before it loaded is priced when it has (`LateCost`), after the run if
need be; the run's `CostReported` events and the ledger get it then, and reading the result's
`cost` waits for it. Only a budgeted run waits for the table, before its first turn
(`load_prices()`), since its budget needs prices. `ledger` tallies every turn in this process
by model for `%llm_usage`.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from . import _runtime, catalog
from ._approver import running_loop
from .errors import ConfigError
from .messages import ModelRequest, ModelTurn, Usage

if TYPE_CHECKING:
    from .providers.base import Provider

Cost = Decimal | None  # US dollars; None: unknown
# The vendors whose APIs our adapters speak (`Provider.api_vendor`) -> genai-prices' ids.
PRICE_PROVIDERS = {"openai": "openai", "anthropic": "anthropic", "gemini": "google"}
# A budget estimates a prompt on the high side, since an estimate too low lets a turn pass the
# budget: 3 characters a token where English prose averages 4 (code, JSON, numbers and other
# languages tokenise denser), framing per request and message, and an allowance when tools are
# declared for the tool-use instructions an API adds to the prompt itself, by provider (Anthropic
# bills 346 of them on Claude 4 with tool_choice auto, docs.anthropic.com/en/docs/agents-and-
# tools/tool-use/overview "Pricing", read 2026-12-07) and for the schemas' wire framing.
CHARS_PER_TOKEN = 3
REQUEST_TOKENS = 50  # once per request: the reply's priming and the request's own framing
MESSAGE_TOKENS = 8  # role and framing of one message, tool call or tool result
TOOLS_TOKENS = 50  # once per request with tools: their framing
TOOL_PROMPT_TOKENS = {"anthropic": 350}  # ... and the provider's own tool-use instructions
# The least a turn may write under a budget: a budget that cannot pay the prompt and this many
# output tokens stops the run before the turn. 16 tokens is a short sentence; fewer would make
# a turn that is all but certain to be cut before it says anything.
MIN_OUTPUT_TOKENS = 16


PRICE_LOADER = "llm_magic-prices"  # the runtime's job that imports the table


def start_loading() -> None:
    """Start importing the price table in a daemon thread, once; returns at once."""
    if _runtime.job(PRICE_LOADER) is None and "genai_prices" not in sys.modules:
        _runtime.load_once(PRICE_LOADER, _load)


def prices_ready() -> bool:
    loader = _runtime.job(PRICE_LOADER)
    if loader is not None:
        return not loader.is_alive()
    return "genai_prices" in sys.modules


async def load_prices() -> None:
    """The price table, loaded: waits for the loading thread without blocking the loop."""
    start_loading()
    loader = _runtime.job(PRICE_LOADER)
    if loader is not None and loader.is_alive():
        await asyncio.to_thread(loader.join)


def _load() -> None:
    _import_prices().data_snapshot.get_snapshot()


def _import_prices() -> Any:
    global _prices
    if _prices is None:
        import genai_prices
        import genai_prices.data_snapshot

        _prices = genai_prices
    return _prices


_prices: Any = None  # the genai_prices module, once imported


class LateCost:
    """A run's price that settles after the run ended, once the table has loaded.

    `settle` prices the run's turns and reports them (on the run's loop, where its events
    go); `wait()` is what reading the result's cost does: it returns once that happened,
    settling here when no running loop will (the loop closed, or this is its thread).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, settle: Callable[[], None]) -> None:
        self.loop = loop
        self._settle: Callable[[], None] | None = settle
        self.done = threading.Event()
        self._lock = threading.Lock()

    def run(self) -> None:
        with self._lock:
            settle, self._settle = self._settle, None
        if settle is not None:
            try:
                settle()
            finally:
                self.done.set()

    def wait(self) -> None:
        if self.done.is_set():
            return
        loader = _runtime.job(PRICE_LOADER)
        if loader is not None:
            loader.join()
        while not self.done.is_set():
            loop = self.loop
            if loop.is_closed() or not loop.is_running() or running_loop() is loop:
                settle_late()  # ours to settle, unless another thread is settling it now
            self.done.wait(0.05)  # else the loop settles it (`defer` scheduled that)


# Runs whose price waits for the table, oldest first: settled in that order, so that each
# adds to its conversation's cost after the runs before it.
_late: list[LateCost] = []
_late_lock = threading.Lock()


def defer(loop: asyncio.AbstractEventLoop, settle: Callable[[], None]) -> LateCost:
    """Settle a run's price once the table has loaded, on `loop` (in a thread if it closed)."""
    late = LateCost(loop, settle)
    with _late_lock:
        _late.append(late)
    start_loading()

    def when_loaded() -> None:
        loader = _runtime.job(PRICE_LOADER)
        if loader is not None:
            loader.join()
        try:
            loop.call_soon_threadsafe(settle_late)
        except RuntimeError:  # the loop closed meanwhile (`asyncio.run` returned)
            settle_late()

    _runtime.daemon("llm_magic-late-cost", when_loaded)
    return late


def wait_late() -> None:
    """Wait until every run priced late so far has its price (see `LateCost.wait`)."""
    for late in list(_late):
        late.wait()


def late_pending() -> bool:
    """Some run's price still waits for the table."""
    return bool(_late)


def settle_late() -> None:
    """Settle every run whose price waited for the table, oldest first."""
    with _late_lock:
        pending = list(_late)
        _late.clear()
    for late in pending:
        late.run()


def price_source(provider: Provider) -> dict[str, str] | None:
    """How genai-prices should find this provider: its id, or the server's URL.

    An OpenAI-compatible server (Ollama, vLLM, OpenRouter, Groq...) is placed by its base URL
    only, since its model names are its own; the big three are placed by name, whatever URL
    they are reached at (a proxy, a test server).
    """
    name = getattr(provider, "api_vendor", "")
    compat = getattr(provider, "compat", None)
    if name == "openai" and compat is not None:
        from .providers.openai import OPENAI

        if compat != OPENAI:
            return {"provider_api_url": provider.base_url} if provider.base_url else None
    pid = PRICE_PROVIDERS.get(name)
    return {"provider_id": pid} if pid else None


# (table, model, source) the table does not know: genai-prices caches the models it finds, not
# the ones it does not, and looks for those through every model of the provider on every call
# (1,000 chains of a model it does not know: 2,000 such searches, 5-10% of their CPU time)
_unknown: set[tuple[Any, ...]] = set()


def price(model: str, usage: Usage, source: dict[str, str] | None) -> Cost:
    """The price of `usage` on `model`, or None when the table does not know the model."""
    if source is None:
        return None
    prices = _import_prices()
    # a table updated at run time (genai-prices' auto-update) is another snapshot: asked again
    key = (id(prices.data_snapshot.get_snapshot()), model, *source.items())
    if key in _unknown:
        return None
    tokens = prices.Usage(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        cache_write_tokens=usage.cache_write_tokens,
    )
    try:
        calc = prices.calc_price(tokens, model, **source)
    except LookupError:
        _unknown.add(key)
        return None
    except ValueError:
        return None
    return Decimal(calc.total_price)


def add(*costs: Cost) -> Cost:
    """A sum of costs; unknown if any part is unknown."""
    total = Decimal(0)
    for cost in costs:
        if cost is None:
            return None
        total += cost
    return total


def total(costs: Iterable[Cost]) -> Cost:
    return add(*costs)


def estimate_tokens(request: ModelRequest, provider: str = "") -> int:
    """Input tokens of a request to `provider` (an adapter's name), estimated on the high side
    from its size (for budgets, never for prices; see CHARS_PER_TOKEN)."""
    size = len(request.system or "")
    parts = len(request.messages)  # each message, call and result has its own framing
    for message in request.messages:
        size += len(message.text)
        size += sum(len(c.id) + len(c.name) + len(c.arguments) for c in message.tool_calls)
        size += sum(len(r.call_id) + len(r.content) for r in message.tool_results)
        parts += len(message.tool_calls) + len(message.tool_results)
    size += sum(
        len(t.name) + len(json.dumps(t.parameters)) + len(t.description) for t in request.tools
    )
    tools = TOOLS_TOKENS + TOOL_PROMPT_TOKENS.get(provider, 0) if request.tools else 0
    framing = REQUEST_TOKENS + MESSAGE_TOKENS * parts + tools
    return math.ceil(size / CHARS_PER_TOKEN) + framing


@dataclass(frozen=True)
class TurnBudget:
    """What the rest of a budget buys on the next turn after its prompt: how much it may write."""

    # The most the turn may write, reasoning included (None: output is free, no cap needed).
    output_tokens: int | None
    minimal_cost: Decimal  # the prompt's price and MIN_OUTPUT_TOKENS of output

    @property
    def affordable(self) -> bool:
        return self.output_tokens is None or self.output_tokens >= MIN_OUTPUT_TOKENS


def turn_budget(
    model: str, source: dict[str, str] | None, remaining: Decimal, input_tokens: int
) -> TurnBudget | None:
    """How many output tokens `remaining` dollars pay for after a prompt of `input_tokens`, at
    the model's output price (reasoning tokens are billed as output on every API, and count
    against the same cap); None when the table does not know the model's price.

    Prices are asked of the table at this prompt's size, so a price tier that depends on the
    prompt's length (Gemini and Claude above 200,000 input tokens) is the one applied.
    """
    prompt = price(model, Usage(input_tokens), source)
    minimal = price(model, Usage(input_tokens, MIN_OUTPUT_TOKENS), source)
    per_million = price(model, Usage(input_tokens, 1_000_000), source)
    if prompt is None or minimal is None or per_million is None:
        return None
    rate = (per_million - prompt) / 1_000_000  # dollars per output token
    if rate <= 0:
        return TurnBudget(None if prompt <= remaining else 0, minimal)
    tokens = max(0, int((remaining - prompt) / rate))
    # the table rounds its own way: step down until the turn's price really fits
    while tokens > 0 and (price(model, Usage(input_tokens, tokens), source) or 0) > remaining:
        tokens -= 1
    return TurnBudget(tokens, minimal)


def format_cost(cost: Cost) -> str:
    """`$0.0123`, `<$0.0001`, or `unknown`."""
    if cost is None:
        return "unknown"
    if 0 < cost < Decimal("0.0001"):
        return "<$0.0001"
    return f"${cost:.4f}"


@dataclass
class ModelTally:
    """What one model has used in this process."""

    turns: int = 0
    usage: Usage = field(default_factory=Usage)
    cost: Cost = Decimal(0)


class Ledger:
    """Every model turn of this process by model: what `%llm_usage` shows.

    It only adds up (a run never reads it), so sharing one across runs changes no run.
    """

    def __init__(self) -> None:
        self.models: dict[str, ModelTally] = {}
        self._lock = threading.Lock()  # the sync API's runs record from llm_magic's loop thread

    def record(self, model: str, usage: Usage, cost: Cost) -> None:
        with self._lock:
            tally = self.models.setdefault(model, ModelTally())
            tally.turns += 1
            tally.usage = tally.usage + usage
            tally.cost = add(tally.cost, cost)

    def total(self) -> Cost:
        return total(t.cost for t in self.models.values())

    def clear(self) -> None:
        self.models.clear()

    def report(self) -> str:
        """A plain-text table: model, turns, tokens by kind, cost."""
        if not self.models:
            return "llm_magic: no model turns yet in this session"
        head = ["model", "turns", "input", "cached", "cache write", "output", "reasoning", "cost"]
        rows = [head]
        for name, t in sorted(self.models.items()):
            u = t.usage
            counts = (u.input_tokens, u.cache_read_tokens, u.cache_write_tokens, u.output_tokens)
            rows.append(
                [
                    name,
                    str(t.turns),
                    *map(str, counts),
                    str(u.reasoning_tokens),
                    format_cost(t.cost),
                ]
            )
        turns = sum(t.turns for t in self.models.values())
        rows.append(["total", str(turns), *[""] * 5, format_cost(self.total())])
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        lines = [
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
            for r in rows
        ]
        note = "\n(unknown: a model missing from the genai-prices table is never guessed)"
        return "\n".join(lines) + (note if self.total() is None else "")


ledger = Ledger()


_provider_facts: weakref.WeakKeyDictionary[Provider, tuple[dict[str, str] | None, int | None]]
_provider_facts = weakref.WeakKeyDictionary()


class CostMeter:
    """One run's spending: each turn priced (late, once the table has loaded), the total, and
    the budget that caps the next turn's output or stops the run before it.

    Apart from the turn loop because pricing has its own timing: the table loads in a thread
    and a turn that ended before it is priced later (`unpriced`), so the loop only says when a
    turn ended and when it may wait; the meter knows what that costs.
    """

    def __init__(self, provider: Provider, max_cost: float | None, history_cost: Cost) -> None:
        self.model = provider.model
        self.provider_name = provider.name
        self.max_cost = max_cost
        # where the table finds the provider, and the most output the model takes in one
        # request (which a budget's cap never passes): the same for every run of a provider
        facts = _provider_facts.get(provider)
        if facts is None:
            source = price_source(provider)
            known = source is not None and "provider_id" in source
            facts = (
                source,
                catalog.max_output(provider.api_vendor, provider.model) if known else None,
            )
            _provider_facts[provider] = facts
        self.source, self.max_output = facts
        self.cost: Cost = Decimal(0)
        self.history_cost = history_cost  # what the history cost before this run
        self.unpriced: list[int] = []  # steps whose turn is not priced yet

    @property
    def conversation_cost(self) -> Cost:
        return add(self.history_cost, self.cost)

    def usage_lost(self) -> None:
        """A turn was cut while streaming: the provider bills its tokens but never reported
        them, so the run's cost is unknown (None), not the sum of the turns that were."""
        self.cost = None

    def turn_cost(self, usage: Usage) -> Cost:
        return price(self.model, usage, self.source)

    async def check_budget(self) -> None:
        """Before a budgeted run's first turn: the table loaded, and the model in it."""
        if self.max_cost is None:
            return
        await load_prices()
        if self.turn_cost(Usage(1, 1)) is None:
            raise ConfigError(
                f"max_cost needs the price of {self.model!r}, which the genai-prices "
                "table does not know; run without max_cost"
            )

    def turn_ended(self, step: int) -> bool:
        """Note a turn to price; True when it can be priced now (the table is loaded), else
        the table starts loading."""
        self.unpriced.append(step)
        if self.ready():
            return True
        start_loading()
        return False

    def ready(self) -> bool:
        """The unpriced turns can be priced now: the table is loaded, or none is needed."""
        return self.source is None or prices_ready()

    def settle(self, turns: list[ModelTurn]) -> list[tuple[int, Cost, Cost]]:
        """Price the turns not priced yet: (step, its cost, the run's total) for each; only
        once `ready()` (pricing imports the table otherwise, on the caller's thread)."""
        reports = []
        for step in self.unpriced:
            turn = turns[step - 1]
            turn.cost = self.turn_cost(turn.usage)
            self.cost = add(self.cost, turn.cost)
            ledger.record(self.model, turn.usage, turn.cost)
            reports.append((step, turn.cost, self.cost))
        self.unpriced = []
        return reports

    def at_end(
        self, turns: list[ModelTurn], history_cost: Cost
    ) -> tuple[list[tuple[int, Cost, Cost]], bool]:
        """At the run's end: its turns priced if they can be now (what `settle` says), and
        whether its price settles late (the table still loading, or an earlier run's price
        pending: runs settle in order, so a conversation's cost adds up). `history_cost` is
        the conversation's as it is now, which a run priced late may have changed."""
        if prices_ready():
            settle_late()
        self.history_cost = history_cost
        reports = self.settle(turns) if self.unpriced and self.ready() else []
        return reports, bool(self.unpriced) or late_pending()

    def fit(self, request: ModelRequest, turn_number: int) -> str | None:
        """Cap the next turn's output to what the rest of `max_cost` pays for; the reason to
        stop (with its figures) when it cannot pay its prompt and a minimal answer.

        The prompt is estimated on the high side (`estimate_tokens`) and priced at the input
        rate; what is left caps the output, reasoning included, at the output rate, never
        above what the model takes in one request. So a turn's real price stays within the
        budget however much the model writes; after it, its real usage is priced as reported.
        """
        if self.max_cost is None:
            return None
        budget = Decimal(str(self.max_cost))
        spent = self.cost if self.cost is not None else budget
        tokens = estimate_tokens(request, self.provider_name)
        fit = turn_budget(self.model, self.source, budget - spent, tokens)
        if fit is None:  # the table knew the model at the start: it was updated since
            return (
                f"stopped by max_cost before turn {turn_number}: the price of "
                f"{self.model!r} is no longer known, so the turn cannot be budgeted"
            )
        if not fit.affordable:
            return (
                f"stopped by max_cost before turn {turn_number}: "
                f"{format_cost(spent)} spent of {format_cost(budget)}, the next "
                f"turn needs at least {format_cost(fit.minimal_cost)} (a prompt of some "
                f"{tokens:,} tokens and {MIN_OUTPUT_TOKENS} output tokens)"
            )
        request.max_output_tokens = _smaller(fit.output_tokens, self.max_output)
        return None


def _smaller(a: int | None, b: int | None) -> int | None:
    """The smaller of two limits, either of which may be absent (None)."""
    if a is None or b is None:
        return b if a is None else a
    return min(a, b)
