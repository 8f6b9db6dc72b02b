"""The model catalog: defaults that exist, shut-down models refused before anything is sent, and
a model the API does not serve named in one line with the models the key can use."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

import llm_magic
from llm_magic import catalog, registry
from llm_magic.errors import ModelNotFoundError, ModelShutDownError
from tests.servers import AnthropicServer, GeminiServer, OpenAIServer, Reply

ROOT = Path(__file__).resolve().parents[2]
# A concrete vendor model id in prose or code: gpt-4.1-mini, o3, claude-sonnet-4-6, gemini-3.5-flash
MODEL_ID = re.compile(
    r"\b(gpt-\d[\w.-]*|o\d(?:-[a-z]+)?|claude-[a-z]+-\d[\w-]*|gemini-\d[\w.-]*)(?<![.-])"
)
VENDORS = ("openai", "anthropic", "gemini")


def named_models(text: str) -> set[str]:
    return set(MODEL_ID.findall(text))


def docs_and_notebooks() -> dict[str, str]:
    """README.md, docs/, and every notebook's cell sources, by file name."""
    texts = {"README.md": (ROOT / "README.md").read_text()}
    texts |= {f"docs/{p.name}": p.read_text() for p in (ROOT / "docs").glob("*.md")}
    for nb in (ROOT / "notebooks").glob("*.ipynb"):
        cells = json.loads(nb.read_text())["cells"]
        texts[nb.name] = "\n".join("".join(c["source"]) for c in cells)
    return texts


def test_entries_name_a_vendor_a_source_and_are_listed_once() -> None:
    seen = set()
    for m in catalog.MODELS:
        assert m.vendor in VENDORS and m.source and m.id
        assert (m.vendor, m.id) not in seen, m.id
        seen.add((m.vendor, m.id))


@pytest.mark.parametrize("vendor", VENDORS)
def test_each_default_is_current_and_not_shutting_down_within_30_days(vendor: str) -> None:
    model = catalog.default_model(vendor)
    info = catalog.lookup(vendor, model)
    assert info is not None and info.listed
    assert info.shutdown is None or info.shutdown > date.today() + timedelta(days=30), model


def test_the_default_for_a_key_comes_from_the_catalog(monkeypatch: pytest.MonkeyPatch) -> None:
    for env in ("LLM_MAGIC_MODEL", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY"):
        monkeypatch.delenv(env, raising=False)
    monkeypatch.setenv("GOOGLE_API_KEY", "g-key")
    assert registry.default_model_id() == catalog.default_model("gemini")


def test_models_named_in_readme_docs_and_notebooks_are_listed_and_not_shut_down() -> None:
    today = date.today()
    for name, text in docs_and_notebooks().items():
        for model in named_models(text):
            vendor = next(v for v in VENDORS if catalog.lookup(v, model) and _prefix_ok(v, model))
            info = catalog.lookup(vendor, model)
            assert info is not None and info.listed, f"{name} names {model}, not in the catalog"
            assert not info.shut_down_on(today), f"{name} names {model}, shut down {info.shutdown}"


def _prefix_ok(vendor: str, model: str) -> bool:
    return model.startswith(
        {"openai": ("gpt-", "o"), "anthropic": "claude-", "gemini": "gemini-"}[vendor]
    )


def test_the_model_id_pattern_finds_what_docs_write() -> None:
    text = "use gpt-4.1-mini, o3 or claude-opus-4-7; `gemini-3.5-flash`. Not gpt-* or claude-."
    assert named_models(text) == {"gpt-4.1-mini", "o3", "claude-opus-4-7", "gemini-3.5-flash"}


def test_a_shut_down_model_is_refused_with_its_date_and_current_models() -> None:
    with pytest.raises(ModelShutDownError) as info:
        catalog.refuse_if_shut_down("openai", "gpt-5-mini", today=date(2026, 12, 11))
    message = str(info.value)
    assert "2026-12-11" in message and "gpt-5-mini" in message
    assert catalog.default_model("openai", date(2026, 12, 11)) in message
    catalog.refuse_if_shut_down("openai", "gpt-5-mini", today=date(2026, 12, 10))  # not yet
    catalog.refuse_if_shut_down("openai", "gpt-unlisted-9", today=date(2030, 1, 1))  # unknown


def test_a_shut_down_model_sends_nothing() -> None:
    with GeminiServer([Reply(text="never")]) as server:
        with pytest.raises(ModelShutDownError, match=r"gemini-2\.5-flash.*2026-12-01"):
            llm_magic.get_async_model(
                "gemini-2.5-flash", base_url=server.base_url, api_key=server.api_key
            )
        assert server.requests == []
        server.take_failures()  # the unserved script entry is not a failure of the client


def test_models_that_are_not_the_catalogs_own_are_never_refused() -> None:
    # an OpenAI-compatible server may serve any name, a shut-down one's included
    model = llm_magic.get_async_model("openai-compatible:gpt-5-mini@http://127.0.0.1:9/v1")
    assert model.provider.model == "gpt-5-mini"


@pytest.mark.parametrize(
    ("vendor", "model", "thinking", "fixed_sampling"),
    [
        ("openai", "gpt-5.9-preview", "effort", True),  # a future gpt-5: a reasoning model
        ("openai", "o7", "effort", True),
        ("openai", "gpt-test", None, False),
        ("anthropic", "claude-opus-4-9", "adaptive", True),
        ("anthropic", "claude-sonnet-6", "adaptive", True),
        ("anthropic", "claude-haiku-4-5", "budget", False),
        ("anthropic", "claude-test", "budget", False),
        ("gemini", "gemini-3.7-flash", "level", False),
        ("gemini", "gemini-2.5-flash", "gemini-budget", False),
    ],
)
def test_unlisted_ids_take_their_familys_request_rules(
    vendor: str, model: str, thinking: str | None, fixed_sampling: bool
) -> None:
    info = catalog.lookup(vendor, model)
    assert info is not None and (info.thinking, info.fixed_sampling) == (thinking, fixed_sampling)
    assert catalog.lookup("openai-compatible", model) is None


def test_check_command_lists_defaults_and_what_shuts_down_soon() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "llm_magic.catalog", "--check", "400"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr  # no default shuts down within 400 days
    for vendor in VENDORS:
        assert f"default {vendor}: {catalog.default_model(vendor)}" in out.stdout
    assert re.search(r"openai gpt-5-mini: shuts? down on 2026-12-11", out.stdout)
    assert re.search(r"openai gpt-4\.1-mini: shuts? down on 2027-01-14", out.stdout)
    bad = subprocess.run(
        [sys.executable, "-m", "llm_magic.catalog"], capture_output=True, text=True, cwd=ROOT
    )
    assert bad.returncode == 2 and "usage" in bad.stderr


# ---- a model the API does not serve --------------------------------------------------------

SERVERS = {
    "openai": (OpenAIServer, "openai-chat:gpt-nonexistent", ["gpt-4.1", "gpt-5.2"]),
    "anthropic": (
        AnthropicServer,
        "claude-nonexistent-1",
        ["claude-haiku-4-5", "claude-sonnet-4-6"],
    ),
    "gemini": (GeminiServer, "gemini-nonexistent", ["gemini-3.1-pro-preview", "gemini-3.5-flash"]),
}


@pytest.mark.parametrize("kind", list(SERVERS))
async def test_a_model_not_found_is_one_line_with_the_models_the_key_can_use(kind: str) -> None:
    cls, model_id, served = SERVERS[kind]
    with cls() as server:
        server.served_models = served
        model = llm_magic.get_async_model(
            model_id, base_url=server.base_url, api_key=server.api_key
        )
        async with model:
            with pytest.raises(ModelNotFoundError) as info:
                await model.chain("hi")
        assert [r.method for r in server.requests] == ["POST", "GET"]
    message = str(info.value)
    assert "\n" not in message and "HTTP 404" in message
    assert f"no model {model_id.split(':')[-1]!r}" in message
    assert f"models it can use: {', '.join(served)}" in message
    assert info.value.available == tuple(served)
    assert server.api_key not in message


async def test_a_model_not_found_without_a_list_still_says_what_happened() -> None:
    with OpenAIServer() as server:
        server.served_models = ["gpt-4.1"]
        server.models_path = ""  # the list endpoint is missing (a proxy that lacks it)
        model = llm_magic.get_async_model(
            "openai-chat:gpt-nope", base_url=server.base_url, api_key=server.api_key
        )
        async with model:
            with pytest.raises(ModelNotFoundError, match=r"no model 'gpt-nope'") as info:
                await model.chain("hi")
        server.take_failures()  # the GET to an unknown endpoint is recorded as such
    assert info.value.available == () and "models it can use" not in str(info.value)


def test_openai_lists_only_models_that_answer_text() -> None:
    from llm_magic.providers.openai import OpenAIChatAdapter

    data = {
        "data": [
            {"id": i}
            for i in ("gpt-4.1", "text-embedding-3-small", "gpt-4o-audio-preview", "o3", "dall-e-3")
        ]
    }
    assert OpenAIChatAdapter("gpt-4.1", api_key="k").model_ids(data) == ["gpt-4.1", "o3"]


def test_every_listed_model_resolves_to_its_vendor_by_its_bare_id() -> None:
    for m in catalog.MODELS:
        route, name = registry.resolve(m.id)
        assert (route.catalog_vendor, name) == (m.vendor, m.id)
