"""End states that say what happened: a run without an answer says why, a cut stream's tokens are
unknown (never 0), an error from the Python API reads as the user's frame and one line, and the
messages a user fixes things from (a refused edit, a result whose HTML held a script, an
unknown cost) say what the user needs.

Real runs against the loopback OpenAI server; the timeline's state and HTML are read directly.
"""

from __future__ import annotations

import asyncio
import html
import socket
from typing import Any

import pytest

import llm_magic
from llm_magic.errors import ProviderError, ToolArgumentsError
from llm_magic.notebook import render, values
from llm_magic.notebook.cell_value import mark_shown, result_html
from llm_magic.notebook.timeline import Timeline
from tests.notebook.test_timeline import comms, until  # noqa: F401  (comms: fixture)
from tests.servers import Call, OpenAIServer, Reply

pytestmark = pytest.mark.usefixtures("comms")


def get_weather(city: str) -> dict:
    """Current weather for a city."""
    return {"city": city, "temp": 14}


async def slow_weather(city: str) -> dict:
    """Current weather for a city, slowly."""
    await asyncio.sleep(30)
    return {"city": city}


def gpt(server: OpenAIServer) -> Any:
    return llm_magic.get_async_model(
        "openai-chat:gpt-4.1-mini", base_url=server.base_url, api_key=server.api_key
    )


def shown_text(markup: str | None) -> str:
    return html.unescape(markup or "")


async def test_a_run_stopped_by_its_budget_says_why_there_is_no_answer():
    # turn 1 (a call, and some text before it) spends more than the budget leaves for turn 2
    replies = [Reply(text="Let me look.", calls=[Call("get_weather", {"city": "Paris"})])]
    replies[0].usage = (2000, 50)
    with OpenAIServer(replies) as server:
        run = gpt(server).chain("Weather?", tools=[get_weather], max_cost=0.0009)
        tl = Timeline(run, model="m")
        result = await run
        tl.close()
    assert result.status == "max_cost" and result.text == "Let me look."
    mark_shown(result)  # what a widget timeline does once it showed the last turn's text
    line = shown_text(result_html(result))
    assert "the answer is in the timeline above" not in line
    assert "no answer: stopped by max_cost before turn 2: $" in line
    assert "spent of $0.0009" in line


async def test_a_run_cancelled_before_any_answer_says_so():
    replies = [Reply(calls=[Call("slow_weather", {"city": "Paris"})])]
    with OpenAIServer(replies) as server:
        run = gpt(server).chain("Weather?", tools=[slow_weather])
        task = asyncio.ensure_future(run)
        await until(lambda: any(r.status == "running" for r in run.records))
        run.cancel("interrupted")
        result = await asyncio.wait_for(task, 10)
    mark_shown(result)
    line = shown_text(result_html(result))
    assert "no answer: cancelled before the model answered, after 1 turn" in line
    assert "timeline above" not in line


async def test_a_run_that_answered_still_points_to_the_timeline():
    replies = [Reply(calls=[Call("get_weather", {"city": "Paris"})]), Reply(text="14 degrees.")]
    with OpenAIServer(replies) as server:
        result = await gpt(server).chain("Weather?", tools=[get_weather])
    mark_shown(result)
    assert "the answer is in the timeline above" in shown_text(result_html(result))


async def test_a_cut_stream_shows_unknown_tokens_and_cost_never_zero():
    text = " ".join(f"w{i}" for i in range(400))
    with OpenAIServer([Reply(text=text, chunk_delay=0.01, usage=(900, 400))]) as server:
        run = gpt(server).chain("talk")
        tl = Timeline(run, model="m")
        task = asyncio.ensure_future(run)
        await until(lambda: bool(tl.state.turns) and "w20" in tl.state.turns[0].text)
        run.cancel("interrupted")
        result = await asyncio.wait_for(task, 10)
        tl.close()
    assert result.status == "cancelled"
    assert result.cost is None and result.conversation_cost is None  # billed, amount unknown
    for shown in (render.header_html(tl.state), render.static_text(tl.state)):
        assert "0 in / 0 out" not in shown and "$0.0000" not in shown
        assert "tokens unknown (cut off before the provider reported them)" in shown
        assert "cost unknown" in shown
    assert "cost unknown (no token count)" in render.turn_line_html(tl.state.turns[0])


def test_an_unknown_price_says_what_is_unknown():
    from llm_magic.notebook.reducer import RunState, TurnState

    turn = TurnState(step=1, started_at=0.0, status="done", priced=True, cost=None)
    state = RunState(model="m", turns=[turn], priced=True, cost=None)
    assert "cost unknown (no price for this model)" in render.turn_line_html(turn)
    assert "cost unknown (no price for this model)" in render.header_html(state)


async def test_a_refused_edit_names_the_parameters_not_the_whole_schema():
    replies = [Reply(calls=[Call("get_weather", {"city": "Paris"})]), Reply(text="14.")]
    with OpenAIServer(replies) as server:
        result = await gpt(server).chain("Weather?", tools=[get_weather])
    with pytest.raises(ToolArgumentsError) as info:
        result.rerun(result.tool_calls[0].id, arguments={"town": "Rome"})
    message = str(info.value)
    assert message.endswith("it takes city (string, required)"), message
    assert '"properties"' not in message and "{" not in message.split("; it takes")[1]


class Page:
    """A fetched page wrapped for display, whose HTML carries a script."""

    def __init__(self, markup: str) -> None:
        self.markup = markup

    def _repr_html_(self) -> str:
        return self.markup

    def __repr__(self) -> str:
        return "<Page>"


def test_a_result_whose_html_held_a_script_says_what_was_removed():
    shown = values.rich_html(Page("<h1>Prices</h1><p>Rome 19</p><script>steal()</script>"))
    assert "its HTML held &lt;script&gt;, removed; the rest of its HTML is below" in shown
    assert "Rome 19" in shown and "steal()" not in shown and "<script" not in shown
    only = values.rich_html(Page("<script>steal()</script><iframe src='x'></iframe>"))
    assert "its HTML held &lt;iframe&gt; and &lt;script&gt;" in only
    assert "nothing else was in it; its text form is below" in only and "&lt;Page&gt;" in only
    assert "<script" not in only and "<iframe" not in only
    assert "removed" not in values.rich_html(Page("<b>plain</b>"))


async def test_a_provider_error_from_the_python_api_reads_as_the_users_frame_and_one_line():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed when the block ends: nothing listens there
    key = "sk-end-states-secret-1"
    model = llm_magic.get_async_model(
        "openai-chat:gpt-4.1-mini",
        base_url=f"http://127.0.0.1:{port}/v1",
        api_key=key,
        retry=llm_magic.RetryPolicy(max_retries=0),
    )
    with pytest.raises(ProviderError) as info:
        await model.chain("hi")
    lines = info.value._render_traceback_()  # what IPython shows instead of the traceback
    assert lines[0] == "Traceback (most recent call last):"
    assert __file__ in lines[1] and "await model.chain" in "\n".join(lines)
    assert lines[-1] == f"ProviderError: {info.value}" and "cannot reach" in lines[-1]
    text = "\n".join(lines)
    assert "llm_magic/" not in text and "site-packages" not in text  # no machinery frames
    assert key not in text and len(lines) <= 6, text


def test_a_turn_that_never_got_an_answer_has_no_unknown_tokens():
    """A request that failed before the model wrote anything was not billed: no "unknown"."""
    from llm_magic.notebook.reducer import RunState, TurnState

    turn = TurnState(step=1, started_at=0.0, status="stopped")
    state = RunState(model="m", turns=[turn], status="failed")
    assert "unknown" not in render.turn_line_html(turn) + render.header_html(state)
    turn.parts.append("Once upon")  # the model had started writing: billed, amount unknown
    assert "tokens unknown" in render.turn_line_html(turn)


def test_a_config_error_shows_the_users_frame_one_line_and_its_cause():
    from llm_magic.errors import ConfigError

    try:
        try:
            int("many")
        except ValueError as exc:
            raise ConfigError("max_steps must be a number") from exc
    except ConfigError as err:
        lines = err._render_traceback_()
    assert lines[0] == "Traceback (most recent call last):" and __file__ in lines[1]
    assert lines[-2] == "ConfigError: max_steps must be a number"
    assert lines[-1].startswith("  (caused by ValueError: invalid literal for int()")
    assert "__cause__" in lines[-1]
    assert not any(set(line.strip()) <= set("^~") for line in lines)  # no column markers
