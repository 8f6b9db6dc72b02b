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
imported in a daemon thread that a run awaits when it waits for nothing else (`load_prices()`):
before its next model turn, at its end, or before the first turn of a budgeted run. So the
loop is never blocked, and no other import of the run waits on the import lock meanwhile. `ledger` tallies every turn in
this process by model for `%llm_usage`.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .messages import ModelRequest, Usage

if TYPE_CHECKING:
    from .providers.base import Provider

Cost = Decimal | None  # US dollars; None: unknown
# Our provider adapters by name -> genai-prices' provider ids.
PRICE_PROVIDERS = {"openai": "openai", "anthropic": "anthropic", "gemini": "google"}
CHARS_PER_TOKEN = 4  # the usual rule of thumb for English text and JSON, for budget estimates


_loader: threading.Thread | None = None
_loader_lock = threading.Lock()


def start_loading() -> None:
    """Start importing the price table in a daemon thread, once; returns at once."""
    global _loader
    with _loader_lock:
        if _loader is None and "genai_prices" not in sys.modules:
            _loader = threading.Thread(target=_load, name="llm_magic-prices", daemon=True)
            _loader.start()


def prices_ready() -> bool:
    if _loader is not None:
        return not _loader.is_alive()
    return "genai_prices" in sys.modules


async def load_prices() -> None:
    """The price table, loaded: waits for the loading thread without blocking the loop."""
    start_loading()
    loader = _loader
    if loader is not None and loader.is_alive():
        await asyncio.to_thread(loader.join)


def _load() -> None:
    _import_prices().data_snapshot.get_snapshot()


def _import_prices() -> Any:
    import genai_prices
    import genai_prices.data_snapshot

    return genai_prices


def price_source(provider: Provider) -> dict[str, str] | None:
    """How genai-prices should find this provider: its id, or the server's URL.

    An OpenAI-compatible server (Ollama, vLLM, OpenRouter, Groq...) is placed by its base URL
    only, since its model names are its own; the big three are placed by name, whatever URL
    they are reached at (a proxy, a test server).
    """
    name = getattr(provider, "name", "")
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
    key = (id(prices.data_snapshot.get_snapshot()), model, *sorted(source.items()))
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


def estimate_tokens(request: ModelRequest) -> int:
    """Input tokens of a request, estimated from its size (for budgets, never for prices)."""
    size = len(request.system or "")
    for message in request.messages:
        size += len(message.text) + 8  # role and framing
        size += sum(len(c.name) + len(c.arguments) for c in message.tool_calls)
        size += sum(len(r.content) for r in message.tool_results)
    size += sum(len(json.dumps(t.parameters)) + len(t.description) for t in request.tools)
    return math.ceil(size / CHARS_PER_TOKEN)


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
