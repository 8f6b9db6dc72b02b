"""The async chain over real loopback HTTP: tools, concurrency, faults, limits, approval,
cancellation, events and compatibility switches."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import pytest

import llm_magic
from llm_magic import (
    Approval,
    AuthenticationError,
    ProviderError,
    RateLimitError,
    RetryPolicy,
    StreamError,
    ToolError,
    tool,
)
from llm_magic import events as ev
from llm_magic.messages import FINAL_TURN_INSTRUCTION
from llm_magic.providers.openai import COMPATIBLE, OpenAICompat
from llm_magic.tool_runner import CANCELLED_OUTPUT
from tests.servers import Call, OpenAIServer, Reply

FAST_RETRY = RetryPolicy(max_retries=3, base_delay=0.01, max_delay=0.05)


def get_model(server: OpenAIServer, **kwargs: Any) -> llm_magic.AsyncModel:
    kwargs.setdefault("retry", FAST_RETRY)
    return llm_magic.get_async_model(
        "openai-chat:test", base_url=server.base_url, api_key=server.api_key, **kwargs
    )


@pytest.fixture
async def model(openai_server: OpenAIServer) -> Any:
    m = get_model(openai_server)
    yield m
    await m.aclose()


def messages(server: OpenAIServer, i: int = -1) -> list[dict[str, Any]]:
    return server.requests[i].body["messages"]


def tool_messages(server: OpenAIServer, i: int = -1) -> dict[str, str]:
    """tool_call_id -> content of the tool messages of request i."""
    return {m["tool_call_id"]: m["content"] for m in messages(server, i) if m["role"] == "tool"}


def call_ids(server: OpenAIServer, i: int = -1) -> list[str]:
    return [
        c["id"]
        for m in messages(server, i)
        if m["role"] == "assistant"
        for c in m.get("tool_calls", [])
    ]


# ---- tools used below --------------------------------------------------------------------------


def lookup(key: str) -> str:
    """Look a key up (sync)."""
    return key.upper()


async def fetch(key: str) -> str:
    """Fetch a key (async)."""
    await asyncio.sleep(0.01)
    return f"<{key}>"


# ---- the basic chain ---------------------------------------------------------------------------


async def test_two_step_chain_with_sync_and_async_tool(
    openai_server: OpenAIServer, model: Any
) -> None:
    openai_server.push(
        Reply(calls=[Call("lookup", {"key": "a"})]),
        Reply(text="Now the other.", calls=[Call("fetch", {"key": "b"})]),
        Reply(text="A and <b>."),
    )
    result = await model.chain("Look up a, then fetch b", tools=[lookup, fetch])
    assert result.status == "done" and result.ok and result.text == "A and <b>."
    assert result.steps == 2 and len(result.turns) == 3
    assert [(r.name, r.status, r.implementation, r.result) for r in result.tool_calls] == [
        ("lookup", "ok", "sync", "A"),
        ("fetch", "ok", "async", "<b>"),
    ]
    assert len(openai_server.requests) == 3
    assert list(tool_messages(openai_server, 1).values()) == ["A"]
    assert tool_messages(openai_server, 2) == {
        result.tool_calls[0].id: "A",
        result.tool_calls[1].id: "<b>",
    }
    assert result.usage.input_tokens == 30 and result.usage.output_tokens == 15
    assert [m.role for m in result.messages] == ["user"] + ["assistant", "tool"] * 2 + ["assistant"]


async def test_parallel_sync_calls_overlap_while_the_loop_keeps_ticking(
    openai_server: OpenAIServer, model: Any
) -> None:
    spans: list[tuple[int, float, float, int]] = []

    def slow(n: int) -> int:
        """Sleep 0.3 s in a worker thread."""
        start = time.monotonic()
        time.sleep(0.3)
        spans.append((n, start, time.monotonic(), threading.get_ident()))
        return n * n

    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)

    openai_server.push(
        Reply(calls=[Call("slow", {"n": i}) for i in range(4)]),
        Reply(text="0 1 4 9"),
    )
    ticking = asyncio.create_task(ticker())
    try:
        result = await model.chain("squares", tools=[slow])
    finally:
        ticking.cancel()
    assert result.status == "done" and [r.result for r in result.tool_calls] == [0, 1, 4, 9]
    assert len(spans) == 4
    last_start = max(s for _, s, _, _ in spans)
    first_end = min(e for _, _, e, _ in spans)
    assert last_start < first_end  # all four sleeps were under way at the same time
    assert threading.get_ident() not in {t for *_, t in spans}  # never on the loop thread
    assert len({t for *_, t in spans}) == 4
    during = [t for t in ticks if last_start < t < first_end]
    assert len(during) >= 5  # the loop kept running while all four slept
    recs = result.tool_calls
    assert max(r.started_at for r in recs) < min(r.ended_at for r in recs)


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "json"])
async def test_streaming_flag_is_sent(
    openai_server: OpenAIServer, model: Any, stream: bool
) -> None:
    openai_server.push(Reply(text="hello there"))
    result = await model.chain("hi", stream=stream)
    assert result.text == "hello there"
    assert openai_server.requests[0].stream is stream


async def test_streaming_and_non_streaming_give_identical_results(
    openai_server: OpenAIServer, model: Any
) -> None:
    script = [
        Reply(
            text="Let me check both.",
            calls=[Call("lookup", {"key": "a"}), Call("fetch", {"key": "b"})],
            usage=(11, 7),
        ),
        Reply(text="Results: A and <b>, in one answer.", usage=(20, 9)),
    ]
    results, deltas = {}, {}
    for stream in (True, False):
        openai_server.push(*script)
        run = model.chain("check", tools=[lookup, fetch], stream=stream)
        deltas[stream] = [e.text for e in [x async for x in run] if isinstance(e, ev.TextDelta)]
        results[stream] = await run

    def shape(r: Any) -> Any:
        return (
            r.status,
            r.text,
            r.steps,
            r.usage,
            [t.text for t in r.turns],
            [
                (c.name, c.raw_arguments, c.arguments, c.output, c.result, c.status)
                for c in r.tool_calls
            ],
            [(m.role, m.text, [c.name for c in m.tool_calls]) for m in r.messages],
        )

    assert shape(results[True]) == shape(results[False])
    assert results[True].usage.input_tokens == 31 and results[True].usage.output_tokens == 16
    assert [r.stream for r in openai_server.requests] == [True, True, False, False]
    assert len(deltas[True]) > 2 and len(deltas[False]) == 2  # word deltas vs one per turn
    assert "".join(deltas[True]) == "".join(deltas[False])


async def test_tool_calls_recognised_by_presence_not_finish_reason(
    openai_server: OpenAIServer, model: Any
) -> None:
    for stream in (True, False):
        openai_server.push(
            Reply(calls=[Call("lookup", {"key": "x"})], finish_reason="stop"), Reply(text="X")
        )
        result = await model.chain("x", tools=[lookup], stream=stream)
        assert [r.result for r in result.tool_calls] == ["X"] and result.text == "X"


async def test_forced_named_tool_choice(openai_server: OpenAIServer, model: Any) -> None:
    openai_server.push(Reply(calls=[Call("lookup", {"key": "k"})]), Reply(text="K"))
    result = await model.chain("k", tools=[lookup, fetch], tool_choice="lookup")
    body = openai_server.requests[0].body
    assert body["tool_choice"] == {"type": "function", "function": {"name": "lookup"}}
    assert result.text == "K" and result.tool_calls[0].status == "ok"


# ---- faults ------------------------------------------------------------------------------------


@pytest.mark.parametrize("header", ["retry_after", "retry_after_ms"])
async def test_429_with_retry_after_is_retried(
    openai_server: OpenAIServer, model: Any, header: str
) -> None:
    wait = {"retry_after": 0.3} if header == "retry_after" else {"retry_after_ms": 300}
    openai_server.push(Reply(status=429, **wait), Reply(text="after the wait"))
    started = time.monotonic()
    result = await model.chain("hi")
    assert result.text == "after the wait" and result.status == "done"
    assert len(openai_server.requests) == 2
    assert time.monotonic() - started >= 0.29  # the server's wait was honoured


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_5xx_then_success(openai_server: OpenAIServer, model: Any, status: int) -> None:
    openai_server.push(Reply(status=status), Reply(status=status), Reply(text="recovered"))
    assert (await model.chain("hi")).text == "recovered"
    assert len(openai_server.requests) == 3


async def test_500_forever_gives_provider_error_after_bounded_retries(
    openai_server: OpenAIServer, model: Any
) -> None:
    openai_server.push(*[Reply(status=500)] * 5)
    with pytest.raises(ProviderError) as err:
        await model.chain("hi")
    assert err.value.status == 500 and "The server had an error" in str(err.value)
    assert len(openai_server.requests) == 1 + FAST_RETRY.max_retries and openai_server.pending == 1
    assert err.value.result.status == "failed"  # type: ignore[attr-defined]


async def test_retry_after_above_the_cap_is_an_error_that_says_so(
    openai_server: OpenAIServer, model: Any
) -> None:
    openai_server.push(Reply(status=429, retry_after=200, error_message="Slow down, please."))
    started = time.monotonic()
    with pytest.raises(RateLimitError) as err:
        await model.chain("hi")
    message = str(err.value)
    # openai-python waits up to 120 s (`_calculate_retry_timeout`), so this cap is 120 s
    assert "Slow down, please." in message and "200 s" in message and "120 s cap" in message
    assert err.value.status == 429 and err.value.retry_after == 200
    assert len(openai_server.requests) == 1 and time.monotonic() - started < 30


async def test_429_retries_run_out(openai_server: OpenAIServer, model: Any) -> None:
    openai_server.push(*[Reply(status=429, retry_after_ms=10)] * 4)
    with pytest.raises(RateLimitError, match="Rate limit reached"):
        await model.chain("hi")
    assert len(openai_server.requests) == 4


async def test_cut_stream_keeps_the_partial_text(openai_server: OpenAIServer, model: Any) -> None:
    # events: the role chunk, "alpha ", "beta ", then the connection closes
    openai_server.push(Reply(text="alpha beta gamma delta", cut_after=3))
    conv = model.conversation()
    with pytest.raises(StreamError) as err:
        await conv.chain("tell me")
    assert err.value.partial_text == "alpha beta "
    result = err.value.result  # type: ignore[attr-defined]
    assert result.status == "failed" and result.text == "alpha beta "
    assert conv.messages[-1].role == "assistant" and conv.messages[-1].text == "alpha beta "
    openai_server.push(Reply(text="again, whole"))
    assert (await conv.chain("go on")).text == "again, whole"
    assert messages(openai_server)[1] == {"role": "assistant", "content": "alpha beta "}


async def test_invalid_json_arguments_go_back_to_the_model(
    openai_server: OpenAIServer, model: Any
) -> None:
    openai_server.push(
        Reply(calls=[Call("lookup", '{"key": "a"')]),
        Reply(calls=[Call("lookup", {"key": "a"})]),
        Reply(text="A"),
    )
    result = await model.chain("a", tools=[lookup])
    assert result.status == "done" and result.text == "A"
    bad, good = result.tool_calls
    assert bad.status == "error" and bad.arguments is None and good.result == "A"
    sent = tool_messages(openai_server, 1)[bad.id]
    assert sent.startswith("error: the arguments are not valid JSON") and '"key"' in sent
    echoed = next(m for m in messages(openai_server, 1) if m["role"] == "assistant")
    json.loads(echoed["tool_calls"][0]["function"]["arguments"])  # echoed as valid JSON


async def test_wrong_argument_types_go_back_to_the_model(
    openai_server: OpenAIServer, model: Any
) -> None:
    def repeat(word: str, times: int) -> str:
        return word * times

    openai_server.push(
        Reply(
            calls=[Call("repeat", {"word": "ab", "times": "three"}), Call("repeat", {"word": "x"})]
        ),
        Reply(calls=[Call("repeat", {"word": "ab", "times": "3"})]),
        Reply(text="ababab"),
    )
    result = await model.chain("r", tools=[repeat])
    first, second, third = result.tool_calls
    sent = tool_messages(openai_server, 1)
    assert "argument 'times': expected an integer, got 'three'" in sent[first.id]
    assert "missing required argument(s) 'times'" in sent[second.id]
    assert third.result == "ababab" and result.status == "done"


async def test_unknown_tool_name_gets_an_error_naming_the_tools(
    openai_server: OpenAIServer, model: Any
) -> None:
    openai_server.push(Reply(calls=[Call("lookup_key", {"key": "a"})]), Reply(text="sorry"))
    result = await model.chain("a", tools=[lookup, fetch])
    rec = result.tool_calls[0]
    assert rec.status == "error" and result.status == "done"
    assert tool_messages(openai_server)[rec.id] == (
        "error: there is no tool named 'lookup_key'; the tools are: lookup, fetch"
    )


async def test_slow_response_and_run_timeout(openai_server: OpenAIServer, model: Any) -> None:
    openai_server.push(Reply(text="too late", delay=1.5))
    conv = model.conversation(tools=[lookup])
    result = await conv.chain("hi", timeout=0.3)
    assert result.status == "timeout" and result.text == "" and result.error is None
    assert [m.role for m in conv.messages] == ["user"]
    openai_server.push(Reply(text="on time"))
    assert (await conv.chain("again")).text == "on time"


async def test_run_timeout_during_a_tool_leaves_every_call_answered(
    openai_server: OpenAIServer, model: Any
) -> None:
    async def stuck(x: int) -> int:
        await asyncio.sleep(30)
        return x

    openai_server.push(Reply(calls=[Call("stuck", {"x": 1}), Call("lookup", {"key": "q"})]))
    conv = model.conversation(tools=[stuck, lookup])
    result = await conv.chain("go", timeout=0.5)
    assert result.status == "timeout"
    assert [(r.name, r.status) for r in result.tool_calls] == [
        ("stuck", "cancelled"),
        ("lookup", "ok"),
    ]
    openai_server.push(Reply(text="ok"))
    assert (await conv.chain("next")).text == "ok"
    assert tool_messages(openai_server) == {
        result.tool_calls[0].id: CANCELLED_OUTPUT,
        result.tool_calls[1].id: "Q",
    }


async def test_401_message_has_the_provider_text_and_never_the_key(
    openai_server: OpenAIServer,
) -> None:
    secret = "sk-live-VERY-SECRET-0123456789abcdef"
    model = llm_magic.get_async_model(
        "openai-chat:test", base_url=openai_server.base_url, api_key=secret
    )
    with pytest.raises(AuthenticationError) as err:
        await model.chain("hi")
    text = str(err.value)
    assert err.value.status == 401 and "Incorrect API key provided" in text
    assert (
        secret not in text and secret not in repr(err.value) and secret not in repr(model.provider)
    )
    assert len(openai_server.requests) == 1  # not retried
    # a server that echoes the whole key: scrubbed
    echo = f"The key {openai_server.api_key} was revoked."
    good = get_model(openai_server)
    openai_server.push(Reply(status=401, error_message=echo))
    with pytest.raises(AuthenticationError) as err:
        await good.chain("hi")
    assert "The key *** was revoked." in str(err.value) and openai_server.api_key not in str(
        err.value
    )
    await model.aclose()
    await good.aclose()


# ---- tool errors, approval, limits -------------------------------------------------------------


def boom(x: int) -> int:
    """Always fails."""
    raise ValueError(f"bad x={x}")


async def test_tool_raising_goes_to_the_model(openai_server: OpenAIServer, model: Any) -> None:
    openai_server.push(Reply(calls=[Call("boom", {"x": 1})]), Reply(text="it failed"))
    result = await model.chain("b", tools=[boom])
    rec = result.tool_calls[0]
    assert result.status == "done" and rec.status == "error"
    assert isinstance(rec.error, ValueError) and "ValueError: bad x=1" in (rec.traceback or "")
    assert tool_messages(openai_server)[rec.id] == "error: ValueError: bad x=1"


@pytest.mark.parametrize("where", ["run", "tool"])
async def test_tool_raising_with_raise_policy(
    openai_server: OpenAIServer, model: Any, where: str
) -> None:
    openai_server.push(Reply(calls=[Call("boom", {"x": 2}), Call("lookup", {"key": "z"})]))
    conv = model.conversation()
    if where == "run":
        run = conv.chain("b", tools=[boom, lookup], on_tool_error="raise")
    else:
        run = conv.chain("b", tools=[llm_magic.Tool.from_function(boom, on_error="raise"), lookup])
    with pytest.raises(ToolError) as err:
        await run
    assert err.value.tool_name == "boom" and isinstance(err.value.original, ValueError)
    assert err.value.result.status == "failed"  # type: ignore[attr-defined]
    # the conversation is still valid: every call has a result
    openai_server.push(Reply(text="ok"))
    assert (await conv.chain("continue")).text == "ok"
    assert set(tool_messages(openai_server)) == set(call_ids(openai_server))


async def test_approval_callback_approves_and_denies(
    openai_server: OpenAIServer, model: Any
) -> None:
    ran: list[int] = []

    def delete(n: int) -> str:
        """Delete item n."""
        ran.append(n)
        return f"deleted {n}"

    asked: list[tuple[int, str]] = []

    async def approver(rec: llm_magic.ToolCallRecord) -> Approval:
        asked.append((rec.arguments["n"], rec.status))  # type: ignore[index]
        await asyncio.sleep(0)
        return Approval(True) if rec.arguments["n"] == 1 else Approval(False, "n=2 is precious")  # type: ignore[index]

    openai_server.push(
        Reply(
            calls=[Call("delete", {"n": 1}), Call("delete", {"n": 2}), Call("lookup", {"key": "k"})]
        ),
        Reply(text="deleted 1 only"),
    )
    run = model.chain(
        "delete 1 and 2", tools=[delete, lookup], approve=["delete"], approval_callback=approver
    )
    result = await run
    assert ran == [1] and sorted(asked) == [(1, "awaiting_approval"), (2, "awaiting_approval")]
    one, two, other = result.tool_calls
    assert (one.status, two.status, other.status) == ("ok", "denied", "ok")
    assert two.output == "denied: the user did not allow this call: n=2 is precious"
    assert tool_messages(openai_server)[two.id] == two.output
    types = [type(e) for e in run.events]
    assert types.count(ev.ToolCallAwaitingApproval) == 2 and types.count(ev.ToolCallDenied) == 1


async def test_approval_per_tool_with_bool_callback(
    openai_server: OpenAIServer, model: Any
) -> None:
    @tool(requires_approval=True)
    def guarded(x: int) -> int:
        return x + 1

    async def yes(rec: Any) -> bool:
        return True

    openai_server.push(Reply(calls=[Call("guarded", {"x": 1})]), Reply(text="2"))
    result = await model.chain("g", tools=[guarded], approval_callback=yes)
    assert result.tool_calls[0].result == 2


async def test_approve_all_without_callback_denies_clearly(
    openai_server: OpenAIServer, model: Any
) -> None:
    ran: list[str] = []

    def touch(key: str) -> str:
        ran.append(key)
        return key

    openai_server.push(Reply(calls=[Call("touch", {"key": "a"})]), Reply(text="not allowed"))
    result = await model.chain("t", tools=[touch], approve="all")
    rec = result.tool_calls[0]
    assert ran == [] and rec.status == "denied" and result.status == "done"
    assert "approval is required and no approver was set" in tool_messages(openai_server)[rec.id]


async def test_max_steps_ends_with_a_final_turn_without_tools(
    openai_server: OpenAIServer, model: Any
) -> None:
    openai_server.push(
        Reply(calls=[Call("lookup", {"key": "a"})]),
        Reply(calls=[Call("lookup", {"key": "b"})]),
        Reply(text="A and B is what I found."),
    )
    conv = model.conversation(tools=[lookup])
    result = await conv.chain("keep looking", max_steps=2)
    assert result.status == "max_steps" and result.steps == 2
    assert result.text == "A and B is what I found."
    assert len(openai_server.requests) == 3
    first, last = openai_server.requests[0].body, openai_server.requests[-1].body
    assert "tool_choice" not in first and last["tool_choice"] == "none"
    assert last["messages"][-1] == {"role": "user", "content": FINAL_TURN_INSTRUCTION}
    assert "for this turn" in FINAL_TURN_INSTRUCTION
    # the instruction was for that turn only: a continued conversation uses tools again
    assert all(m.text != FINAL_TURN_INSTRUCTION for m in conv.messages)
    openai_server.push(Reply(calls=[Call("lookup", {"key": "c"})]), Reply(text="C"))
    again = await conv.chain("and c?", max_steps=2)
    assert again.status == "done" and again.tool_calls[0].result == "C"
    assert "tool_choice" not in openai_server.requests[-1].body


async def test_max_steps_counts_tool_rounds_without_off_by_one(
    openai_server: OpenAIServer, model: Any
) -> None:
    openai_server.push(
        Reply(calls=[Call("lookup", {"key": "a"})]),
        Reply(text="partial", calls=[Call("lookup", {"key": "b"})]),  # ignores tool_choice none
    )
    conv = model.conversation(tools=[lookup])
    result = await conv.chain("go", max_steps=1)
    assert result.status == "max_steps" and result.steps == 1 and len(result.tool_calls) == 1
    assert len(openai_server.requests) == 2 and result.text == "partial"
    openai_server.push(Reply(text="fine"))
    assert (await conv.chain("next")).text == "fine"  # the dropped calls left nothing dangling


async def test_max_tool_calls(openai_server: OpenAIServer, model: Any) -> None:
    two = [Call("lookup", {"key": "a"}), Call("lookup", {"key": "b"})]
    openai_server.push(Reply(calls=two), Reply(calls=two), Reply(text="enough"))
    result = await model.chain("many", tools=[lookup], max_tool_calls=3)
    assert result.status == "max_tool_calls" and result.text == "enough"
    statuses = [r.status for r in result.tool_calls]
    assert statuses == ["ok", "ok", "ok", "cancelled"]
    assert "limit of 3 tool calls" in result.tool_calls[-1].output
    assert openai_server.requests[-1].body["tool_choice"] == "none"


async def test_no_final_turn_when_disabled(openai_server: OpenAIServer, model: Any) -> None:
    openai_server.push(Reply(text="first", calls=[Call("lookup", {"key": "a"})]))
    result = await model.chain("go", tools=[lookup], max_steps=1, final_turn_on_limit=False)
    assert result.status == "max_steps" and len(openai_server.requests) == 1


# ---- cancellation ------------------------------------------------------------------------------


async def test_cancel_mid_tool(openai_server: OpenAIServer, model: Any) -> None:
    started = asyncio.Event()
    release = threading.Event()

    async def wait_long(x: int) -> int:
        started.set()
        await asyncio.sleep(30)
        return x

    def block(x: int) -> int:
        release.wait(10)
        return x

    openai_server.push(
        Reply(
            calls=[
                Call("wait_long", {"x": 1}),
                Call("lookup", {"key": "q"}),
                Call("block", {"x": 2}),
            ]
        )
    )
    conv = model.conversation(tools=[wait_long, lookup, block])
    run = conv.chain("go")
    looked_up = asyncio.Event()
    run.subscribe(
        lambda e: (
            looked_up.set()
            if isinstance(e, ev.ToolCallFinished) and e.call.name == "lookup"
            else None
        )
    )
    waiting = asyncio.ensure_future(run.result())
    await started.wait()
    await looked_up.wait()  # lookup has finished; the other two are still running
    run.cancel()
    try:
        result = await waiting
    finally:
        release.set()
    assert result.status == "cancelled"
    by_name = {r.name: r for r in result.tool_calls}
    assert by_name["lookup"].status == "ok"
    assert by_name["wait_long"].status == by_name["block"].status == "cancelled"
    assert by_name["wait_long"].reason == "cancelled by the user"
    assert isinstance(run.events[-1], ev.RunCancelled)
    openai_server.push(Reply(text="next"))
    assert (await conv.chain("what now?")).text == "next"
    sent = tool_messages(openai_server)
    assert sent[by_name["wait_long"].id] == CANCELLED_OUTPUT and sent[by_name["lookup"].id] == "Q"
    assert set(sent) == set(call_ids(openai_server))


async def test_cancel_mid_stream(openai_server: OpenAIServer, model: Any) -> None:
    openai_server.push(Reply(text="one two three four five six seven", chunk_delay=0.1))
    conv = model.conversation()
    run = conv.chain("count")

    def on_event(event: ev.Event) -> None:
        if isinstance(event, ev.TextDelta):
            run.cancel()

    run.subscribe(on_event)
    result = await run
    assert result.status == "cancelled"
    assert result.text and "seven" not in result.text
    assert "one two three four five six seven".startswith(result.text)
    assert conv.messages[-1].role == "assistant" and conv.messages[-1].text == result.text
    openai_server.push(Reply(text="fine"))
    assert (await conv.chain("again")).text == "fine"


async def test_cancel_while_waiting_for_the_model(openai_server: OpenAIServer, model: Any) -> None:
    openai_server.push(Reply(calls=[Call("lookup", {"key": "a"})]), Reply(text="late", delay=2))
    conv = model.conversation(tools=[lookup])
    run = conv.chain("go")
    run.subscribe(
        lambda e: (
            isinstance(e, ev.ToolCallFinished)
            and asyncio.get_running_loop().call_later(0.2, run.cancel)
        )
    )
    result = await run
    assert result.status == "cancelled" and result.tool_calls[0].status == "ok"
    openai_server.push(Reply(text="ok"))
    assert (await conv.chain("again")).text == "ok"


async def test_awaiting_task_cancelled_like_a_kernel_interrupt(
    openai_server: OpenAIServer, model: Any
) -> None:
    started = asyncio.Event()

    async def wait_long(x: int) -> int:
        started.set()
        await asyncio.sleep(30)
        return x

    openai_server.push(Reply(calls=[Call("wait_long", {"x": 1})]))
    conv = model.conversation(tools=[wait_long])
    run = conv.chain("go")

    async def cell() -> Any:
        return await run

    task = asyncio.create_task(cell())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert run.final is not None and run.final.status == "cancelled"
    assert run.final.tool_calls[0].status == "cancelled"
    assert run.final.tool_calls[0].reason == "interrupted"
    openai_server.push(Reply(text="after the interrupt"))
    assert (await conv.chain("again")).text == "after the interrupt"


# ---- events ------------------------------------------------------------------------------------


async def test_events_in_order_to_subscriber_and_async_for(
    openai_server: OpenAIServer, model: Any
) -> None:
    openai_server.push(
        Reply(text="Checking.", calls=[Call("lookup", {"key": "a"}), Call("fetch", {"key": "b"})]),
        Reply(text="A and <b>."),
    )
    run = model.chain("go", tools=[lookup, fetch])
    via_subscriber: list[ev.Event] = []
    run.subscribe(via_subscriber.append)
    via_iteration = [e async for e in run]
    result = await run
    assert via_subscriber == via_iteration == run.events
    assert all(a is b for a, b in zip(via_subscriber, via_iteration, strict=True))
    late = [e async for e in run]  # a consumer that comes after the end gets the replay
    assert late == run.events
    types = [e.type for e in via_iteration]
    assert types[0] == "run_started" and types[-1] == "run_finished"
    assert via_iteration[-1].result is result  # type: ignore[attr-defined]
    assert [e.at for e in via_iteration] == sorted(e.at for e in via_iteration)
    turn1 = types[: types.index("turn_finished") + 1]
    assert turn1[:2] == ["run_started", "turn_started"] and turn1[-2:] == ["usage", "turn_finished"]
    assert "text_delta" in turn1
    for rec in result.tool_calls:
        mine = [e.type for e in via_iteration if getattr(e, "call", None) is rec]
        assert mine == ["tool_call_requested", "tool_call_started", "tool_call_finished"]
    requested = [i for i, t in enumerate(types) if t == "tool_call_requested"]
    second_turn = [i for i, t in enumerate(types) if t == "turn_started"][1]
    assert max(i for i, t in enumerate(types) if t.startswith("tool_call")) < second_turn
    assert min(requested) > types.index("turn_finished")
    described = ev.describe(via_iteration[1])
    assert described == {"type": "turn_started", "step": 1}


async def test_failed_run_events(openai_server: OpenAIServer, model: Any) -> None:
    openai_server.push(Reply(status=400, error_message="Bad thing."))
    run = model.chain("hi")
    seen: list[str] = []
    run.subscribe(lambda e: seen.append(e.type))
    with pytest.raises(ProviderError, match="Bad thing"):
        await run
    assert seen[0] == "run_started" and seen[-1] == "run_failed"


# ---- where tools run ---------------------------------------------------------------------------


async def test_sync_function_returning_an_awaitable_is_awaited(
    openai_server: OpenAIServer, model: Any
) -> None:
    def deferred(x: int):  # type: ignore[no-untyped-def]
        async def later() -> int:
            await asyncio.sleep(0)
            return x * 10

        return later()

    openai_server.push(Reply(calls=[Call("deferred", {"x": 4})]), Reply(text="40"))
    result = await model.chain("d", tools=[deferred])
    assert result.tool_calls[0].result == 40 and tool_messages(openai_server, 1) == {
        result.tool_calls[0].id: "40"
    }


async def test_per_tool_and_per_run_timeouts(openai_server: OpenAIServer, model: Any) -> None:
    @tool(timeout=0.2)
    async def slowpoke(x: int) -> int:
        await asyncio.sleep(10)
        return x

    async def dawdle(x: int) -> int:
        await asyncio.sleep(10)
        return x

    openai_server.push(
        Reply(calls=[Call("slowpoke", {"x": 1}), Call("lookup", {"key": "k"})]),
        Reply(text="one was slow"),
    )
    result = await model.chain("s", tools=[slowpoke, lookup])
    slow, quick = result.tool_calls
    assert slow.status == "error" and slow.output == "error: slowpoke timed out after 0.2 s"
    assert slow.reason == "timed out after 0.2 s"
    assert quick.status == "ok" and result.status == "done"
    openai_server.push(Reply(calls=[Call("dawdle", {"x": 1})]), Reply(text="too slow"))
    result = await model.chain("s", tools=[dawdle], tool_timeout=0.1)
    assert result.tool_calls[0].output == "error: dawdle timed out after 0.1 s"


async def test_on_loop_tool_runs_on_the_loop_thread(
    openai_server: OpenAIServer, model: Any
) -> None:
    threads: dict[str, int] = {}

    @tool(on_loop=True)
    def draw(x: int) -> int:
        threads["draw"] = threading.get_ident()
        return x

    def compute(x: int) -> int:
        threads["compute"] = threading.get_ident()
        return x

    openai_server.push(
        Reply(calls=[Call("draw", {"x": 1}), Call("compute", {"x": 2})]), Reply(text="ok")
    )
    await model.chain("d", tools=[draw, compute])
    assert threads["draw"] == threading.get_ident()
    assert threads["compute"] != threading.get_ident()


async def test_concurrency_limit(openai_server: OpenAIServer, model: Any) -> None:
    active, peak = 0, 0

    async def work(n: int) -> int:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.05)
        active -= 1
        return n

    openai_server.push(Reply(calls=[Call("work", {"n": i}) for i in range(6)]), Reply(text="done"))
    result = await model.chain("w", tools=[work], max_concurrency=2)
    assert peak == 2 and [r.result for r in result.tool_calls] == list(range(6))


# ---- OpenAI-compatible servers -----------------------------------------------------------------


async def _two_turns(server: OpenAIServer, model: Any, stream: bool = True) -> Any:
    server.push(
        Reply(text="", calls=[Call("lookup", {"key": "a"}), Call("fetch", {"key": "b"})]),
        Reply(text="A <b>"),
    )
    result = await model.chain("go", tools=[lookup, fetch], stream=stream)
    assert result.status == "done" and result.text == "A <b>"
    return result


@pytest.mark.parametrize("how", ["prefix", "prefix@url", "compat="])
async def test_strict_server_with_compatible_switches(
    openai_strict_server: OpenAIServer, how: str
) -> None:
    s = openai_strict_server
    if how == "prefix":
        model = llm_magic.get_async_model(
            "openai-compatible:test", base_url=s.base_url, api_key=s.api_key
        )
    elif how == "prefix@url":
        model = llm_magic.get_async_model(f"openai-compatible:test@{s.base_url}", api_key=s.api_key)
    else:
        model = llm_magic.get_async_model(
            "openai-chat:test", base_url=s.base_url, api_key=s.api_key, compat=COMPATIBLE
        )
    for stream in (True, False):
        await _two_turns(s, model, stream)
    for req in s.requests:
        assert "stream_options" not in req.body and "parallel_tool_calls" not in req.body
        for m in req.body["messages"]:
            assert m.get("content") is not None
    await model.aclose()


async def test_strict_server_rejects_plain_openai_requests(
    openai_strict_server: OpenAIServer,
) -> None:
    s = openai_strict_server
    model = get_model(s)
    s.push(Reply(text="hello"))
    with pytest.raises(ProviderError) as err:
        await model.chain("hi")  # streaming sends stream_options, which this server refuses
    assert err.value.status == 400 and "stream_options" in str(err.value)
    assert s.take_failures()
    await model.aclose()


async def test_compat_switches(openai_server: OpenAIServer) -> None:
    compat = OpenAICompat(
        stream_with_tools=False, parallel_tool_calls=False, max_tokens_field="max_completion_tokens"
    )
    model = get_model(openai_server, compat=compat)
    openai_server.push(Reply(calls=[Call("lookup", {"key": "a"}, id="")]), Reply(text="A"))
    result = await model.chain("go", tools=[lookup], model_options={"max_tokens": 50})
    assert result.text == "A"
    first = openai_server.requests[0].body
    assert first["stream"] is False and first["parallel_tool_calls"] is False
    assert first["max_completion_tokens"] == 50 and "max_tokens" not in first
    # the server sent the call without an id: one was made up and echoed consistently
    assert result.tool_calls[0].id and call_ids(openai_server) == [result.tool_calls[0].id]
    openai_server.push(Reply(text="no tools"))
    await model.chain("plain")
    assert openai_server.requests[-1].body["stream"] is True  # streams when no tools are on
    await model.aclose()


async def test_stream_missing_tool_call_ids(openai_server: OpenAIServer, model: Any) -> None:
    openai_server.whole_calls = True  # Ollama style: each call whole in one delta
    openai_server.push(
        Reply(calls=[Call("lookup", {"key": "a"}, id=""), Call("lookup", {"key": "b"}, id="")]),
        Reply(text="AB"),
    )
    result = await model.chain("go", tools=[lookup])
    ids = [r.id for r in result.tool_calls]
    assert len(set(ids)) == 2 and [r.result for r in result.tool_calls] == ["A", "B"]
    assert set(tool_messages(openai_server)) == set(ids)


async def test_cancel_before_the_first_step(openai_server: OpenAIServer, model: Any) -> None:
    openai_server.push(Reply(text="first"))
    conv = model.conversation()
    run = conv.chain("hi")
    run.start()
    run.cancel()
    result = await run
    assert result.status == "cancelled" and isinstance(run.events[-1], ev.RunCancelled)
    assert (await conv.chain("again")).text == "first"
