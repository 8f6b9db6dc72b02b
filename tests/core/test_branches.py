"""Re-run a call with edited arguments, fork at a step or a call, over each provider's loopback
server: the new run goes on from the branch point in that provider's form (thinking blocks and
thought signatures kept), and the original result never changes."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from llm_magic import ChainResponse, ChainRun
from llm_magic.errors import ToolArgumentsError
from tests.provider_models import model_for, sync_model_for, tool_results, user_texts
from tests.servers import Call, Reply
from tests.servers.fixtures import _serve

ran: list[str] = []


def lookup(key: str) -> str:
    """Look a key up."""
    ran.append(key)
    return key.upper()


@pytest.fixture(autouse=True)
def _clear_ran() -> None:
    ran.clear()


@pytest.fixture(params=["openai", "anthropic", "gemini"])
def server(request: Any) -> Any:
    yield from _serve(request.param)


def first_turn(server: Any) -> Reply:
    """Two calls in one turn, with the provider's opaque reasoning data on it."""
    extra: dict[str, Any] = {}
    if server.provider == "anthropic":
        extra["thinking"] = "Two lookups."
    if server.provider == "gemini":
        extra["thought_signature"] = "c2lnbmF0dXJlLW9uZQ=="
    return Reply(calls=[Call("lookup", {"key": "a"}), Call("lookup", {"key": "b"})], **extra)


def snapshot(result: Any) -> Any:
    return (
        result.text,
        result.status,
        copy.deepcopy(result.messages),
        [(c.id, c.raw_arguments, c.result, c.output) for c in result.tool_calls],
        result.cost,
    )


def call_arguments(server: Any, i: int) -> list[Any]:
    """The tool-call arguments request i sent back, in order."""
    body = server.requests[i].body
    if server.provider == "openai":
        return [
            json.loads(c["function"]["arguments"])
            for m in body["messages"]
            for c in m.get("tool_calls") or []
        ]
    if server.provider == "anthropic":
        return [
            b["input"]
            for m in body["messages"]
            if isinstance(m["content"], list)
            for b in m["content"]
            if b.get("type") == "tool_use"
        ]
    return [
        p["functionCall"]["args"]
        for c in body["contents"]
        for p in c["parts"]
        if "functionCall" in p
    ]


def opaque_data_kept(server: Any, i: int) -> bool:
    sent = json.dumps(server.requests[i].body)
    if server.provider == "anthropic":
        return '"type": "thinking"' in sent and '"signature"' in sent
    if server.provider == "gemini":
        return "c2lnbmF0dXJlLW9uZQ==" in sent
    return True


async def test_rerun_with_edited_arguments_goes_on_and_the_first_result_is_unchanged(
    server: Any,
) -> None:
    server.push(first_turn(server), Reply(text="A and B."), Reply(text="C and B."))
    async with model_for(server) as model:
        first = await model.chain("look up a and b", tools=[lookup])
        before = snapshot(first)
        call_a = first.tool_calls[0]
        second = await first.rerun(call_a.id, arguments={"key": "c"})
    assert ran == ["a", "b", "c"]  # only the edited call ran again
    assert second.ok and second.text == "C and B."
    assert [(c.id, c.result, c.step) for c in second.tool_calls] == [(call_a.id, "C", 0)]
    assert call_arguments(server, 2) == [{"key": "c"}, {"key": "b"}]
    assert "C" in tool_results(server, 2)[0] and "B" in tool_results(server, 2)[1]
    assert user_texts(server, 2) == ["look up a and b"]
    assert opaque_data_kept(server, 2)
    point = second.branched_from
    assert point is not None and point.result is first and point.kind == "rerun"
    assert (point.call_id, point.step, point.arguments) == (call_a.id, 1, {"key": "c"})
    assert snapshot(first) == before  # the original never changes
    assert second.conversation_cost == first.turns[0].cost + second.cost


async def test_fork_from_step_1_with_a_new_prompt(server: Any) -> None:
    server.push(first_turn(server), Reply(text="A and B."), Reply(text="A et B."))
    async with model_for(server) as model:
        first = await model.chain("look up a and b", tools=[lookup])
        before = snapshot(first)
        forked = await first.fork(at=1, prompt="Answer in French.")
    assert forked.text == "A et B." and forked.tool_calls == [] and ran == ["a", "b"]
    assert user_texts(server, 2) == ["look up a and b", "Answer in French."]
    assert [("A" in r, "B" in r) for r in tool_results(server, 2)] == [(True, False), (False, True)]
    assert "A and B." not in json.dumps(server.requests[2].body)  # step 2 is not in the fork
    assert opaque_data_kept(server, 2)
    assert forked.branched_from is not None and forked.branched_from.step == 1
    assert snapshot(first) == before


async def test_fork_at_a_call_takes_the_given_result(openai_server: Any) -> None:
    openai_server.push(first_turn(openai_server), Reply(text="A and B."), Reply(text="A, given."))
    async with model_for(openai_server) as model:
        first = await model.chain("look up a and b", tools=[lookup])
        call_b = first.tool_calls[1]
        forked = await first.fork(at=call_b.id, result={"value": "given"})
    assert ran == ["a", "b"]  # nothing ran again
    assert tool_results(openai_server, 2) == ["A", '{"value": "given"}']
    assert forked.tool_calls[0].result == {"value": "given"}
    assert forked.branched_from is not None and forked.branched_from.kind == "given"


async def test_fork_at_a_call_without_a_result_keeps_what_the_call_returned(
    openai_server: Any,
) -> None:
    openai_server.push(first_turn(openai_server), Reply(text="A and B."), Reply(text="Again."))
    async with model_for(openai_server) as model:
        first = await model.chain("look up a and b", tools=[lookup])
        forked = await first.fork(at=first.tool_calls[1].id)
    assert ran == ["a", "b"]  # nothing ran again
    assert tool_results(openai_server, 2) == ["A", "B"]
    assert "object object" not in json.dumps(openai_server.requests[2].body)
    assert forked.text == "Again."


async def test_fork_at_step_0_replaces_the_prompt(openai_server: Any) -> None:
    openai_server.push("first answer", "second answer")
    async with model_for(openai_server) as model:
        first = await model.chain("question one")
        forked = await first.fork(at=0, prompt="question two")
        with pytest.raises(ValueError, match="give prompt="):
            first.fork(at=0)
        with pytest.raises(ValueError, match="steps 0 to 1"):
            first.fork(at=5, prompt="x")
    assert user_texts(openai_server, 1) == ["question two"]
    assert forked.text == "second answer"


async def test_edited_arguments_are_checked_before_anything_runs(openai_server: Any) -> None:
    openai_server.push(Reply(calls=[Call("lookup", {"key": "a"})]), "A.")
    async with model_for(openai_server) as model:
        first = await model.chain("a", tools=[lookup])
        with pytest.raises(ToolArgumentsError, match=r"invalid arguments for lookup: .*'key'"):
            first.rerun(first.tool_calls[0].id, arguments={"key": ["not", "a", "string"]})
        with pytest.raises(Exception, match="no tool call 'nope'"):
            first.rerun("nope")
    assert len(openai_server.requests) == 2 and ran == ["a"]


async def test_a_branch_of_a_branch(openai_server: Any) -> None:
    openai_server.push(Reply(calls=[Call("lookup", {"key": "a"})]), "A.", "C.", "D.")
    async with model_for(openai_server) as model:
        first = await model.chain("a", tools=[lookup])
        call = first.tool_calls[0].id
        second = await first.rerun(call, arguments={"key": "c"})
        third = await second.rerun(call, arguments={"key": "d"})
    assert (second.text, third.text) == ("C.", "D.") and ran == ["a", "c", "d"]
    assert third.branched_from is not None and third.branched_from.result is second
    assert tool_results(openai_server, 3) == ["D"]


def test_branches_have_the_colour_of_the_run(openai_server: Any) -> None:
    openai_server.push(Reply(calls=[Call("lookup", {"key": "a"})]), "A.", "B.")
    with sync_model_for(openai_server) as model:
        first = model.chain("a", tools=[lookup]).result()
        response = first.rerun(first.tool_calls[0].id, arguments={"key": "b"})
        assert isinstance(response, ChainResponse)
        assert response.text() == "B." and ran[-1] == "b"


async def test_async_branches_are_runs(openai_server: Any) -> None:
    openai_server.push("one", "two")
    async with model_for(openai_server) as model:
        first = await model.chain("x")
        run = first.fork(at=1, prompt="y")
        assert isinstance(run, ChainRun)
        assert (await run).text == "two"


async def test_a_branch_goes_on_at_another_provider(
    anthropic_server: Any, openai_server: Any, gemini_server: Any
) -> None:
    anthropic_server.push(first_turn(anthropic_server), Reply(text="A and B."))
    openai_server.push("Forked at OpenAI.")
    gemini_server.push("Re-run at Gemini.")
    async with (
        model_for(anthropic_server) as claude,
        model_for(openai_server) as gpt,
        model_for(gemini_server) as gemini,
    ):
        first = await claude.chain("look up a and b", tools=[lookup])
        forked = await first.fork(at=1, prompt="Summarise.", model=gpt)
        rerun = await first.rerun(first.tool_calls[1].id, arguments={"key": "z"}, model=gemini)
    assert forked.text == "Forked at OpenAI." and forked.model == "openai-chat:gpt-4.1"
    assert call_arguments(openai_server, 0) == [{"key": "a"}, {"key": "b"}]
    assert tool_results(openai_server, 0) == ["A", "B"]
    assert user_texts(openai_server, 0) == ["look up a and b", "Summarise."]
    assert "Two lookups." not in json.dumps(openai_server.requests[0].body)  # Claude's thinking
    assert rerun.text == "Re-run at Gemini." and ran == ["a", "b", "z"]
    assert call_arguments(gemini_server, 0) == [{"key": "a"}, {"key": "z"}]
    assert ["A" in r for r in tool_results(gemini_server, 0)] == [True, False]
    assert rerun.conversation.model is gemini and first.conversation.model is claude


async def test_a_cancelled_rerun_leaves_a_valid_history(openai_server: Any) -> None:
    import asyncio

    started = asyncio.Event()

    async def slow(key: str) -> str:
        """Take a while."""
        if key == "slow":
            started.set()
            await asyncio.sleep(30)
        return key.upper()

    openai_server.push(Reply(calls=[Call("slow", {"key": "a"}), Call("slow", {"key": "b"})]), "ok")
    async with model_for(openai_server) as model:
        first = await model.chain("x", tools=[slow])
        run = first.rerun(first.tool_calls[0].id, arguments={"key": "slow"})
        task = asyncio.ensure_future(run)
        await started.wait()
        run.cancel()
        result = await task
    assert result.status == "cancelled" and len(openai_server.requests) == 2
    answered = result.messages[-1]
    assert [(r.call_id, r.is_error) for r in answered.tool_results] == [
        (first.tool_calls[0].id, True),
        (first.tool_calls[1].id, False),  # the sibling keeps its result, in the turn's order
    ]
    assert answered.tool_results[1].content == "B"


async def test_a_rerun_keeps_the_runs_options_approval_included(openai_server: Any) -> None:
    asked: list[str] = []

    async def yes(record: Any) -> bool:
        asked.append(record.raw_arguments)
        return True

    async def no(record: Any) -> bool:
        asked.append(record.raw_arguments)
        return False

    openai_server.push(Reply(calls=[Call("lookup", {"key": "a"})]), "A.", "denied.")
    async with model_for(openai_server) as model:
        first = await model.chain("a", tools=[lookup], approve="lookup", approval_callback=yes)
        again = await first.rerun(first.tool_calls[0].id, arguments={"key": "b"})
        assert again.tool_calls[0].status == "ok" and len(asked) == 2  # asked again, approved
        openai_server.push("no.")
        denied = await first.rerun(first.tool_calls[0].id, approval_callback=no)
    assert denied.tool_calls[0].status == "denied" and ran == ["a", "b"]
    assert denied.options is not None and denied.options.approve == frozenset({"lookup"})
