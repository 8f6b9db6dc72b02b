"""Request fields each model takes, over the loopback servers: each server refuses what the real
API refuses for a model (sampling on reasoning and adaptive-only models, `enabled` thinking on
Claude's adaptive-only models, a thinking level on Gemini 2.5, fields of another API, a turn
without its thought signature), and the adapters' requests pass."""

from __future__ import annotations

import json
import warnings
from typing import Any

import httpx2
import pytest

import llm_magic
from llm_magic.answers import answer_choice
from llm_magic.catalog import lookup
from llm_magic.errors import ProviderError
from llm_magic.providers._fields import foreign_options, refused_sampling
from tests.provider_models import FAST_RETRY
from tests.providers.test_servers_reject import rejected
from tests.providers.test_servers_selfcheck import post
from tests.servers import Call, Reply

SCHEMA = {"type": "object", "properties": {"key": {"type": "string"}}, "required": ["key"]}


def lookup_key(key: str) -> str:
    """Look a key up."""
    return key.upper()


def model(server: Any, model_id: str, **kwargs: Any) -> llm_magic.AsyncModel:
    return llm_magic.get_async_model(
        model_id, base_url=server.base_url, api_key=server.api_key, retry=FAST_RETRY, **kwargs
    )


def body(server: Any, i: int = -1) -> dict[str, Any]:
    return server.requests[i].body  # type: ignore[no-any-return]


# ---- the shared rules ---------------------------------------------------------------------------
def test_refused_sampling_follows_the_catalog() -> None:
    asked = {"temperature": 0.2, "top_p": 1, "top_k": 5, "max_tokens": 9}
    assert refused_sampling(lookup("openai", "gpt-5.4"), asked) == ["temperature", "top_k"]
    assert refused_sampling(lookup("openai", "gpt-4.1"), asked) == []
    assert refused_sampling(lookup("anthropic", "claude-opus-4-7"), {"temperature": 1}) == []
    assert refused_sampling(None, asked) == []


def test_foreign_options_are_the_other_formats_own_keys() -> None:
    claude = {"thinking": {"type": "adaptive"}, "top_k": 3, "temperature": 0.5, "x-custom": 1}
    assert foreign_options(claude, "openai") == ["thinking", "top_k"]
    assert foreign_options(claude, "anthropic") == []
    gemini = {"generationConfig": {}, "safetySettings": [], "max_tokens": 9}
    assert foreign_options(gemini, "anthropic") == ["generationConfig", "safetySettings"]
    assert foreign_options({"reasoning_effort": "low", "seed": 1}, "gemini") == [
        "reasoning_effort",
        "seed",
    ]


def test_answer_choice_treats_adaptive_thinking_as_thinking() -> None:
    assert answer_choice(None, True, {"thinking": {"type": "adaptive"}}) == "auto"
    assert answer_choice(None, True, {"thinking": {"type": "enabled"}}) == "auto"
    assert answer_choice(None, True, {}, "high") == "auto"
    assert answer_choice(None, True, {}, "off") == "required"
    assert answer_choice(None, False, {"thinking": {"type": "disabled"}}) == "final_answer"


def test_the_thinking_option_takes_its_levels_only() -> None:
    from llm_magic.options import ChainOptions

    assert ChainOptions(thinking="low").thinking == "low"
    with pytest.raises(ValueError, match="thinking must be one of off, low, medium, high"):
        ChainOptions(thinking="max")  # type: ignore[arg-type]


# ---- OpenAI Chat Completions ----------------------------------------------------------------------
def test_openai_reasoning_model_refuses_non_default_sampling(openai_server: Any) -> None:
    s = openai_server
    assert "Only the default (1) value" in rejected(s, model="gpt-5.4", temperature=0.2)
    assert "'top_p'" in rejected(s, model="o3", top_p=0.5)
    for model_id, temperature in (("gpt-5.4", 1), ("gpt-4.1", 0.2)):
        s.push(Reply(text="ok"))
        assert post(s, model=model_id, temperature=temperature)[0] == 200


def test_openai_refuses_fields_it_does_not_know(openai_server: Any) -> None:
    said = rejected(openai_server, thinking={"type": "enabled", "budget_tokens": 2048})
    assert "Unrecognized request argument supplied: thinking" in said


def test_openai_reasoning_effort_on_reasoning_models_only(openai_server: Any) -> None:
    s = openai_server
    assert "not supported with this model" in rejected(s, model="gpt-4.1", reasoning_effort="low")
    assert "Supported values are" in rejected(s, model="gpt-5.4", reasoning_effort="huge")
    s.push(Reply(text="ok"))
    assert post(s, model="gpt-5.4", reasoning_effort="high")[0] == 200


async def test_openai_chat_drops_refused_sampling_with_one_warning(openai_server: Any) -> None:
    openai_server.push("one", "two")
    async with model(openai_server, "openai-chat:gpt-5.4") as m:
        with pytest.warns(UserWarning, match="takes only the default temperature"):
            first = await m.chain("hi", model_options={"temperature": 0.2, "top_p": 1})
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            second = await m.chain("again", model_options={"temperature": 0.2})
    assert (first.text, second.text) == ("one", "two")
    assert "temperature" not in body(openai_server, 0) and body(openai_server, 0)["top_p"] == 1


async def test_openai_chat_keeps_sampling_for_other_models(openai_server: Any) -> None:
    openai_server.push("ok")
    async with model(openai_server, "openai-chat:gpt-4.1") as m:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            await m.chain("hi", model_options={"temperature": 0.2})
    assert body(openai_server)["temperature"] == 0.2


async def test_openai_chat_thinking_is_reasoning_effort(openai_server: Any) -> None:
    openai_server.push("deep", "plain")
    async with model(openai_server, "openai-chat:gpt-5.4") as m:
        assert (await m.chain("hi", thinking="high")).text == "deep"
    assert body(openai_server)["reasoning_effort"] == "high"
    async with model(openai_server, "openai-chat:gpt-4.1") as m:
        with pytest.warns(UserWarning, match="takes no reasoning effort"):
            assert (await m.chain("hi", thinking="low")).text == "plain"
    assert "reasoning_effort" not in body(openai_server)


# ---- Anthropic ---------------------------------------------------------------------------------
def test_anthropic_adaptive_only_models_refuse_enabled_thinking(anthropic_server: Any) -> None:
    s = anthropic_server
    enabled = {"type": "enabled", "budget_tokens": 2048}
    said = rejected(s, model="claude-opus-4-7", max_tokens=4096, thinking=enabled)
    assert "'enabled' is not supported for model claude-opus-4-7" in said
    budget_on_adaptive = {"type": "adaptive", "budget_tokens": 2048}
    assert "Extra inputs" in rejected(s, model="claude-opus-5", thinking=budget_on_adaptive)
    assert "temperature: not supported" in rejected(s, model="claude-sonnet-5", temperature=0.3)
    s.push(Reply(text="ok"), Reply(text="ok"))
    adaptive = {"thinking": {"type": "adaptive"}, "output_config": {"effort": "high"}}
    assert post(s, model="claude-opus-4-7", **adaptive)[0] == 200
    assert post(s, model="claude-sonnet-4-6", max_tokens=4096, thinking=enabled)[0] == 200


def test_anthropic_budget_below_max_tokens(anthropic_server: Any) -> None:
    enabled = {"type": "enabled", "budget_tokens": 2048}
    said = rejected(anthropic_server, model="claude-sonnet-4-6", max_tokens=1024, thinking=enabled)
    assert "greater than `thinking.budget_tokens`" in said


async def test_anthropic_thinking_adaptive_with_effort(anthropic_server: Any) -> None:
    anthropic_server.push(Reply(text="ok", thinking="Let me see."))
    async with model(anthropic_server, "anthropic:claude-opus-4-7", api_version="2023-06-01") as m:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the default temperature is taken
            result = await m.chain("hi", thinking="medium", model_options={"temperature": 1})
    sent = body(anthropic_server)
    assert result.text == "ok" and sent["temperature"] == 1
    assert sent["thinking"] == {"type": "adaptive"}
    assert sent["output_config"] == {"effort": "medium"}


async def test_anthropic_raw_enabled_thinking_on_adaptive_model_is_sent_adaptive(
    anthropic_server: Any,
) -> None:
    anthropic_server.push("one", "two")
    raw = {"thinking": {"type": "enabled", "budget_tokens": 4000}, "top_k": 5}
    async with model(anthropic_server, "anthropic:claude-opus-4-7", api_version="2023-06-01") as m:
        with pytest.warns(UserWarning) as said:
            await m.chain("hi", model_options=raw)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # said once per model
            await m.chain("again", model_options=raw)
    text = " ".join(str(w.message) for w in said)
    assert "takes adaptive thinking only" in text and "default top_k" in text
    assert body(anthropic_server)["thinking"] == {"type": "adaptive"}
    assert "top_k" not in body(anthropic_server)


async def test_anthropic_thinking_budget_raises_max_tokens(anthropic_server: Any) -> None:
    anthropic_server.push("ok")
    async with model(anthropic_server, "anthropic:claude-sonnet-4-6") as m:
        await m.chain("hi", thinking="high", model_options={"max_tokens": 1000})
    sent = body(anthropic_server)
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 24576}
    assert sent["max_tokens"] > 24576 and "output_config" not in sent


async def test_anthropic_typed_answer_with_thinking_is_not_forced(anthropic_server: Any) -> None:
    from dataclasses import dataclass

    @dataclass
    class Answer:
        city: str

    anthropic_server.push(Reply(calls=[Call("final_answer", {"city": "Rome"})]))
    async with model(anthropic_server, "anthropic:claude-opus-4-7") as m:
        result = await m.chain("where?", thinking="high", output_type=Answer)
    assert result.output == Answer("Rome")
    assert body(anthropic_server)["tool_choice"] == {"type": "auto"}


# ---- Gemini ------------------------------------------------------------------------------------
def gemini_post(server: Any, model_id: str, generation: dict[str, Any]) -> int:
    url = f"{server.base_url}/models/{model_id}:generateContent"
    payload = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    payload["generationConfig"] = generation
    r = httpx2.post(url, json=payload, headers={"x-goog-api-key": server.api_key})
    return r.status_code


def test_gemini_thinking_level_on_gemini_3_only(gemini_server: Any) -> None:
    s = gemini_server
    level = {"thinkingConfig": {"thinkingLevel": "low"}}
    assert gemini_post(s, "gemini-2.5-flash", level) == 400
    assert "Thinking level is not supported" in s.take_failures()[0]
    both = {"thinkingConfig": {"thinkingLevel": "low", "thinkingBudget": 10}}
    assert gemini_post(s, "gemini-3.5-flash", both) == 400 and s.take_failures()
    s.push(Reply(text="ok"), Reply(text="ok"))
    assert gemini_post(s, "gemini-3.5-flash", level) == 200
    assert gemini_post(s, "gemini-2.5-flash", {"thinkingConfig": {"thinkingBudget": 0}}) == 200


async def test_gemini_thinking_per_generation(gemini_server: Any) -> None:
    gemini_server.push("three", "two")
    async with model(gemini_server, "gemini:gemini-3.5-flash") as m:
        await m.chain("hi", thinking="high")
    config = body(gemini_server)["generationConfig"]["thinkingConfig"]
    assert config == {"thinkingLevel": "high"}
    async with model(gemini_server, "gemini:gemini-2.5-flash-lite-preview") as m:
        await m.chain("hi", thinking="off")
    assert body(gemini_server)["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 0}


def test_gemini_signature_on_a_thought_part_must_come_back(gemini_server: Any) -> None:
    from tests.providers.test_servers_selfcheck import parse, results_history

    s = gemini_server
    s.push(
        Reply(
            calls=[Call("get_weather", {"city": "Paris"})],
            thought_signature="dGg=",
            signature_on="thought",
        ),
        Reply(text="ok"),
    )
    out = post(s)[1]
    parts = out["candidates"][0]["content"]["parts"]
    assert parts[0]["thought"] is True and parts[0]["thoughtSignature"] == "dGg="
    history = results_history("gemini", parse("gemini", False, out)[1])
    assert post(s, history)[0] == 400 and "thought_signature" in s.take_failures()[0]
    history[1]["parts"] = parts
    assert post(s, history)[0] == 200


async def test_gemini_edited_rerun_keeps_the_signed_thought_part(gemini_server: Any) -> None:
    first_turn = Reply(
        calls=[Call("lookup_key", {"key": "a"})], thought_signature="c2ln", signature_on="thought"
    )
    gemini_server.push(first_turn, "A.", "Z.")
    async with model(gemini_server, "gemini:gemini-3.5-flash") as m:
        first = await m.chain("look up a", tools=[lookup_key])
        again = await first.rerun(first.tool_calls[0].id, arguments={"key": "z"})
    assert (first.text, again.text) == ("A.", "Z.")
    model_parts = body(gemini_server)["contents"][1]["parts"]
    assert model_parts[0]["thought"] is True and model_parts[0]["thoughtSignature"] == "c2ln"
    assert model_parts[1]["functionCall"]["args"] == {"key": "z"}


# ---- a fork onto another provider ---------------------------------------------------------------
async def test_a_fork_leaves_the_first_providers_options_behind(
    anthropic_server: Any, openai_server: Any
) -> None:
    anthropic_server.push(
        Reply(calls=[Call("lookup_key", {"key": "a"})], thinking="One lookup."), "A."
    )
    openai_server.push("Forked.", "Given.")
    raw = {"thinking": {"type": "enabled", "budget_tokens": 2048}, "top_k": 4, "max_tokens": 5000}
    async with (
        model(anthropic_server, "anthropic:claude-sonnet-4-6", api_version="2023-06-01") as claude,
        model(openai_server, "openai-chat:gpt-5.4") as gpt,
    ):
        first = await claude.chain("look up a", tools=[lookup_key], model_options=raw)
        with pytest.warns(UserWarning, match="model_options thinking, top_k of the anthropic run"):
            forked = await first.fork(at=1, prompt="Summarise.", model=gpt, thinking="low")
        given = {"reasoning_effort": "high"}  # given for the branch: sent as they are
        again = await first.fork(at=1, prompt="Again.", model=gpt, model_options=given)
    assert (forked.text, again.text) == ("Forked.", "Given.")
    sent = body(openai_server, 0)
    assert "thinking" not in sent and "top_k" not in sent
    assert sent["max_completion_tokens"] == 5000 and sent["reasoning_effort"] == "low"
    assert body(openai_server, 1)["reasoning_effort"] == "high"
    assert json.dumps(body(anthropic_server, 0)["thinking"]) == json.dumps(raw["thinking"])


async def test_the_fork_without_its_fix_is_refused(openai_server: Any) -> None:
    """What the fork used to send: the OpenAI server refuses Claude's thinking field."""
    openai_server.push("never")
    async with model(openai_server, "openai-chat:gpt-4.1") as gpt:
        with pytest.raises(ProviderError, match="Unrecognized request argument supplied: thinking"):
            await gpt.chain("hi", model_options={"thinking": {"type": "adaptive"}})
    openai_server.take_failures()
