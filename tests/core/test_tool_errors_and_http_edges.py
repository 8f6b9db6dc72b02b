"""Edge cases of the core, over real HTTP.

Tool errors that used to escape the run (SystemExit, a tool's own TimeoutError, argument
validation), bound methods marked in a class body, where `on_loop` tools run in sync code,
timeouts and odd headers at the HTTP layer, and the key scrubbed from in-stream errors.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any

import httpx2
import pytest

import llm_magic
from llm_magic import ProviderError, ToolError, _loop, async_tool_is, tool
from llm_magic._http import RetryPolicy, retry_after
from llm_magic.docstrings import parse_docstring
from llm_magic.errors import ToolArgumentsError
from llm_magic.options import ChainOptions
from llm_magic.tools import Tool, serialize_result
from tests.servers import Call, OpenAIServer, Reply

FAST_RETRY = RetryPolicy(max_retries=1, base_delay=0.01, max_delay=0.02)
MODEL_FOR = {
    "openai": "openai-chat:gpt-test",
    "openai-strict": "openai-compatible:local-test",
    "anthropic": "claude-test",
    "gemini": "gemini-test",
    "openai-responses": "openai:gpt-test",
}


def amodel(server: Any, model: str = "openai-chat:test", **kwargs: Any) -> llm_magic.AsyncModel:
    kwargs.setdefault("retry", FAST_RETRY)
    return llm_magic.get_async_model(
        model, base_url=server.base_url, api_key=server.api_key, **kwargs
    )


def smodel(server: OpenAIServer) -> llm_magic.Model:
    return llm_magic.get_model(
        "openai-chat:test", base_url=server.base_url, api_key=server.api_key, retry=FAST_RETRY
    )


def within(seconds: float, fn: Callable[[], Any]) -> Any:
    """fn() on a helper thread; a hang fails the test instead of blocking the suite."""
    out: dict[str, Any] = {}

    def target() -> None:
        try:
            out["value"] = fn()
        except BaseException as exc:
            out["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still blocked after {seconds} s"
    if "error" in out:
        raise out["error"]
    return out["value"]


def cli(arg: str) -> str:
    """Run a CLI that exits (as argparse does on bad input)."""
    sys.exit(2)


# -- 1. SystemExit in a tool -------------------------------------------------------------------
async def test_tool_calling_sys_exit_is_a_tool_error(openai_server: OpenAIServer) -> None:
    openai_server.push(Reply(calls=[Call("cli", {"arg": "x"})]), Reply(text="it exited"))
    run = amodel(openai_server).chain("go", tools=[cli])
    result = await run
    assert result.status == "done" and run.final is result
    assert result.tool_calls[0].output == "error: SystemExit: 2"


def test_tool_calling_sys_exit_keeps_the_sync_api_alive(openai_server: OpenAIServer) -> None:
    model = smodel(openai_server)
    openai_server.push(Reply(calls=[Call("cli", {"arg": "x"})]), Reply(text="it exited"))
    first = within(10, lambda: model.chain("go", tools=[cli]).result())
    assert first.status == "done" and first.tool_calls[0].status == "error"
    openai_server.push(Reply(text="hello"))
    assert within(10, lambda: model.chain("again").text()) == "hello"


def test_private_loop_recovers_when_its_thread_died() -> None:
    old = _loop.private_loop()
    old.call_soon_threadsafe(old.stop)  # its thread ends; the loop is not closed
    for thread in threading.enumerate():
        if thread.name == "llm_magic-loop":
            thread.join(5)

    async def answer() -> int:
        return 42

    assert within(10, lambda: _loop.run_sync(answer())) == 42
    assert _loop.private_loop() is not old
    old.close()


def test_system_exit_escaping_a_task_reaches_its_caller() -> None:
    async def boom() -> None:
        raise SystemExit(3)

    async def answer() -> int:
        return 7

    loop = _loop.private_loop()
    with pytest.raises(SystemExit):  # not a caller blocked forever on a dead loop thread
        within(10, lambda: _loop.run_sync(boom()))
    assert within(10, lambda: _loop.run_sync(answer())) == 7
    assert _loop.private_loop() is loop


# -- 2. methods marked in a class body ---------------------------------------------------------
class Weather:
    def __init__(self, unit: str) -> None:
        self.unit = unit

    async def aget(self, city: str) -> str:
        return f"{city}: 20{self.unit} (async)"

    @async_tool_is(aget)
    def get(self, city: str) -> str:
        """Weather for a city."""
        return f"{city}: 20{self.unit} (sync)"

    @tool(timeout=5)
    def plain(self, city: str) -> str:
        """Marked method."""
        return f"{city} in {self.unit}"


def test_marked_methods_give_a_schema_without_self() -> None:
    w = Weather("C")
    for method in (w.get, w.plain):
        t = Tool.from_function(method)
        assert list(t.schema["properties"]) == ["city"] and t.schema["required"] == ["city"]
    assert Tool.from_function(w.plain).options.timeout == 5
    assert Tool.from_function(w.plain)(city="Oslo") == "Oslo in C"


async def test_paired_method_runs_each_colour_on_the_instance(
    openai_server: OpenAIServer,
) -> None:
    w = Weather("F")
    openai_server.push(Reply(calls=[Call("get", {"city": "Paris"})]), Reply(text="ok"))
    result = await amodel(openai_server).chain("go", tools=[w.get])
    assert result.tool_calls[0].output == "Paris: 20F (async)"
    openai_server.push(Reply(calls=[Call("get", {"city": "Rome"})]), Reply(text="ok"))
    calls = await asyncio.to_thread(
        lambda: smodel(openai_server).chain("go", tools=[w.get]).tool_calls()
    )
    assert calls[0].output == "Rome: 20F (sync)"


def test_async_tool_is_on_bound_methods() -> None:
    class Store:
        async def aget(self, key: str) -> str:
            return "A" + key

        def get(self, key: str) -> str:
            return "S" + key

    store = Store()
    paired = async_tool_is(store.aget)(store.get)
    t = Tool.from_function(paired)
    assert t.implementation(prefer_sync=False) == "async" and t.name == "get"
    assert list(t.schema["properties"]) == ["key"]
    assert asyncio.run(t.call({"key": "k"})) == "Ak"
    assert asyncio.run(t.call({"key": "k"}, prefer_sync=True)) == "Sk"


# -- 3. argument validation raising other exceptions -------------------------------------------
@dataclasses.dataclass
class Range:
    lo: int
    hi: int

    def __post_init__(self) -> None:
        if self.lo > self.hi:
            raise ValueError("lo must be <= hi")


def span(r: Range) -> int:
    """Width of a range."""
    return r.hi - r.lo


def square(n: int) -> int:
    """Square n."""
    return n * n


async def test_post_init_error_is_an_invalid_arguments_result(
    openai_server: OpenAIServer,
) -> None:
    openai_server.push(Reply(calls=[Call("span", {"r": {"lo": 5, "hi": 1}})]), Reply(text="ok"))
    result = await amodel(openai_server).chain("go", tools=[span])
    assert result.status == "done"
    assert result.tool_calls[0].output.startswith("error: invalid arguments for span")
    assert "lo must be <= hi" in result.tool_calls[0].output


def test_int_past_the_digit_limit_is_invalid_arguments() -> None:
    params = Tool.from_function(square).parameters
    with pytest.raises(ToolArgumentsError, match="integer too long"):
        params.validate({"n": "1" * 5000})


# -- 4. read timeouts --------------------------------------------------------------------------
@pytest.mark.parametrize("stream", [False, True])
async def test_read_timeout_is_a_retried_provider_error(
    openai_server: OpenAIServer, stream: bool
) -> None:
    openai_server.push(Reply(text="slow", delay=1.0), Reply(text="slow", delay=1.0))
    model = amodel(openai_server, timeout=0.2)
    with pytest.raises(ProviderError, match=r"timed out after 0\.2 s") as info:
        await model.chain("hi", stream=stream)
    assert openai_server.api_key not in str(info.value)
    assert len(openai_server.requests) == 2  # retried once (FAST_RETRY.max_retries)


# -- 5. on_loop tools in the sync API ----------------------------------------------------------
@tool(on_loop=True)
def where() -> str:
    """Say which thread this runs on."""
    return threading.current_thread().name


def test_on_loop_tool_runs_on_the_calling_thread_in_sync_code(
    openai_server: OpenAIServer,
) -> None:
    def run(iterate: bool) -> tuple[str, str]:
        openai_server.push(Reply(calls=[Call("where", {})]), Reply(text="ok"))
        response = smodel(openai_server).chain("go", tools=[where])
        if iterate:
            list(response)
        return threading.current_thread().name, response.tool_calls()[0].result

    caller, ran_on = run(iterate=False)
    assert ran_on == caller == threading.main_thread().name
    caller, ran_on = within(10, lambda: run(iterate=True))
    assert ran_on == caller != "llm_magic-loop"


# -- 6. API key in in-stream errors ------------------------------------------------------------
async def test_in_stream_error_event_is_scrubbed(provider_server: Any) -> None:
    kind = provider_server.kind
    key = provider_server.api_key
    provider_server.push(Reply(text="a b c", cut_after=1, stream_error=f"invalid key {key}"))
    with pytest.raises(ProviderError, match=r"invalid key \*\*\*") as info:
        await amodel(provider_server, MODEL_FOR[kind]).chain("hi")
    assert key not in str(info.value) and key not in info.value.provider_message


@pytest.mark.parametrize("stream", [False, True])
async def test_gemini_blocked_turn_message_is_scrubbed(gemini_server: Any, stream: bool) -> None:
    key = gemini_server.api_key
    gemini_server.push(
        Reply(text="", finish_reason="OTHER", finish_message=f"invalid credential {key}")
    )
    with pytest.raises(ProviderError, match=r"blocked .*invalid credential \*\*\*") as info:
        await amodel(gemini_server, "gemini-test").chain("hi", stream=stream)
    assert key not in str(info.value)


# -- 7. a tool's own TimeoutError --------------------------------------------------------------
def fetch(url: str) -> str:
    """Fetch a URL."""
    raise TimeoutError("connect to example.org timed out")


async def test_tool_raising_timeout_error_is_not_the_tool_timeout(
    openai_server: OpenAIServer,
) -> None:
    openai_server.push(Reply(calls=[Call("fetch", {"url": "http://x"})]), Reply(text="ok"))
    result = await amodel(openai_server).chain("go", tools=[fetch], tool_timeout=5)
    assert result.tool_calls[0].output == "error: TimeoutError: connect to example.org timed out"
    openai_server.push(Reply(calls=[Call("fetch", {"url": "http://x"})]), Reply(text="ok"))
    with pytest.raises(ToolError):
        await amodel(openai_server).chain("go", tools=[fetch], on_tool_error="raise")


# -- 8. max_steps=0 ----------------------------------------------------------------------------
def test_max_steps_below_one_is_an_error() -> None:
    with pytest.raises(ValueError, match="max_steps must be 1 or more"):
        ChainOptions(max_steps=0)
    model = llm_magic.get_async_model("openai-chat:x", base_url="http://127.0.0.1:9", api_key="k")
    with pytest.raises(ValueError, match="max_steps"):
        model.chain("hi", max_steps=-1)


# -- 9. the sync twin after a failed run -------------------------------------------------------
def test_sync_failed_run_raises_every_time(openai_server: OpenAIServer) -> None:
    openai_server.push(Reply(status=400, error_message="bad request"))
    response = smodel(openai_server).chain("hi", stream=False)
    depths = []
    for _ in range(3):
        with pytest.raises(ProviderError, match="bad request") as info:
            response.text()
        depths.append(len(traceback.extract_tb(info.value.__traceback__)))
    assert depths[1] == depths[2]  # the same traceback each time, not one that keeps growing


def test_a_started_run_with_an_on_loop_tool_finishes_without_a_waiter(
    openai_server: OpenAIServer,
) -> None:
    """After start() no thread waits for the run: its on_loop tools run on the loop thread."""

    @tool(on_loop=True)
    def plot() -> str:
        """Draw."""
        return threading.current_thread().name

    openai_server.push(Reply(calls=[Call("plot", {})]), Reply(text="drawn"))
    done = threading.Event()
    response = smodel(openai_server).chain("go", tools=[plot])
    response.subscribe(lambda e: isinstance(e, llm_magic.events.RunEnded) and done.set())
    response.start()
    assert done.wait(30), "the started run never finished"
    assert response.result().tool_calls[0].result == "llm_magic-loop"


def test_a_run_inside_an_on_loop_tool_does_not_inherit_the_callers_thread(
    openai_server: OpenAIServer,
) -> None:
    """An async run made inside a sync run's tool runs its on_loop tools on its own loop."""

    @tool(on_loop=True)
    def where() -> str:
        """Which thread."""
        return threading.current_thread().name

    @tool(on_loop=True)
    def outer() -> str:
        """Runs a chain of its own."""
        inner = amodel(openai_server).chain("x", tools=[where], timeout=10)
        result = asyncio.run(inner.result())
        return f"{result.status} {result.tool_calls[0].result}"

    openai_server.push(
        Reply(calls=[Call("outer", {})]),
        Reply(calls=[Call("where", {})]),
        Reply(text="inner done"),
        Reply(text="outer done"),
    )
    result = smodel(openai_server).chain("go", tools=[outer]).result()
    assert result.tool_calls[0].result == f"done {threading.current_thread().name}"


# -- 10. NumPy values in tool results ----------------------------------------------------------
def test_numpy_values_are_sent_as_json() -> None:
    np = pytest.importorskip("numpy")
    total = np.arange(4).sum()
    assert serialize_result({"total": total, "ok": np.bool_(True)})[0] == (
        '{"total": 6, "ok": true}'
    )
    assert serialize_result(np.arange(3))[0] == "[0, 1, 2]"
    assert serialize_result([np.float32(0.5), np.zeros((1, 2))])[0] == "[0.5, [[0.0, 0.0]]]"


def test_big_arrays_and_frames_go_as_their_summarising_repr() -> None:
    """Not a full `.tolist()` (seconds and hundreds of MB for 5M floats) that is then cut."""
    np = pytest.importorskip("numpy")
    big = np.zeros(5_000_000)
    text, truncated = serialize_result({"values": big})
    assert text == repr({"values": big}) and "..." in text and not truncated
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"x": range(50_000)})
    text, truncated = serialize_result(frame)
    assert text == repr(frame) and not truncated


# -- 11. Retry-After that is neither seconds nor a date ----------------------------------------
async def test_unparsable_retry_after_falls_back_to_backoff(openai_server: OpenAIServer) -> None:
    assert retry_after(httpx2.Headers({"retry-after": "soon"})) is None
    openai_server.push(Reply(status=503, headers={"retry-after": "soon"}), Reply(text="fine"))
    result = await amodel(openai_server).chain("hi")
    assert result.text == "fine"


# -- 12. NumPy docstrings with several names in one entry --------------------------------------
def test_numpydoc_entry_with_several_names() -> None:
    doc = parse_docstring(
        """Distance from the origin.

        Parameters
        ----------
        scale : float
            Scale factor.
        x, y : float
            Coordinates of the point.
        """
    )
    assert doc.params == {
        "scale": "Scale factor.",
        "x": "Coordinates of the point.",
        "y": "Coordinates of the point.",
    }
