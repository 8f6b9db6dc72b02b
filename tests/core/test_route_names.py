"""A result names the route its run went by (`ChainResult.provider`), as precisely as its model
id does: the same prefix, one per route of the registry. The vendor behind a route still decides
the price: OpenAI's models are priced whichever of its APIs ran them, while a compatible server
serving a model of the same name is not priced as OpenAI."""

from __future__ import annotations

import pytest

import llm_magic
from llm_magic import registry
from llm_magic.cost import price
from llm_magic.messages import Usage
from tests.servers import Reply, make_server

# route prefix -> (server kind, model id, genai-prices' provider id; None: no price)
ROUTE_CASES: dict[str, tuple[str, str, str | None]] = {
    "openai": ("openai-responses", "openai:gpt-4.1", "openai"),
    "openai-chat": ("openai", "openai-chat:gpt-4.1", "openai"),
    "anthropic": ("anthropic", "anthropic:claude-sonnet-4-6", "anthropic"),
    "gemini": ("gemini", "gemini:gemini-3.5-flash", "google"),
    "ollama": ("openai-strict", "ollama:gpt-4.1", None),
    "openai-compatible": ("openai-strict", "openai-compatible:gpt-4.1@{url}", None),
    "local": ("openai", "local", None),
}


def test_every_route_of_the_registry_is_checked() -> None:
    assert set(ROUTE_CASES) == set(registry.ROUTES)


@pytest.mark.parametrize("prefix", list(ROUTE_CASES))
async def test_each_routes_result_names_its_provider_and_keeps_its_price(prefix: str) -> None:
    kind, model_id, price_id = ROUTE_CASES[prefix]
    with make_server(kind, [Reply(text="hi", usage=(1000, 100))]) as server:
        model = llm_magic.get_async_model(
            model_id.format(url=server.base_url), base_url=server.base_url, api_key=server.api_key
        )
        async with model:
            result = await model.chain("hello")
    assert result.status == "done" and result.text == "hi"
    assert result.provider == prefix == model.provider.name
    assert result.model.partition(":")[0] == prefix or result.model == prefix == "local"
    if price_id is None:
        assert result.cost is None
    else:
        expected = price(model.provider.model, Usage(1000, 100), {"provider_id": price_id})
        assert expected is not None and result.cost == expected


def test_errors_name_the_vendor_whose_api_answered() -> None:
    """Both OpenAI APIs and every compatible server speak OpenAI's API: their errors say so
    (and their retries follow openai-python's caps), whatever the route is called."""
    chat = registry.make_provider("openai-chat:gpt-4.1", api_key="k")
    ollama = registry.make_provider("ollama:llama3.2")
    assert (chat.name, ollama.name) == ("openai-chat", "ollama")
    assert chat.http.provider == ollama.http.provider == "openai"


def test_an_adapter_made_directly_is_named_for_its_own_route() -> None:
    from llm_magic.providers.openai import OpenAIChatAdapter
    from llm_magic.providers.openai_responses import OpenAIResponsesAdapter

    assert OpenAIChatAdapter("gpt-4.1").name == "openai-chat"
    assert OpenAIResponsesAdapter("gpt-4.1").name == "openai"
    assert all(name in registry.ROUTES for name in ("openai-chat", "openai"))
