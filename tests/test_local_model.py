"""A real chain on the embedded local model (Gemma 3 270M under llama-cpp-python's server).

The model's own tool call is parsed, the tool runs with the model's arguments, the result goes
back, and the run ends with a status. The model is tiny: the assertions are about the mechanics,
not the wording of its answer.
"""

from __future__ import annotations

import pytest

import llm_magic

pytestmark = pytest.mark.local_model

SEEN: list[str] = []


def get_weather(city: str) -> dict:
    """Get the current weather for a city.

    Args:
        city: The city name.
    """
    SEEN.append(city)
    return {"city": city, "temp_c": 21, "sky": "sunny"}


async def test_real_tool_call_round_trip():
    SEEN.clear()
    model = llm_magic.get_async_model("local")
    result = await model.chain("What is the weather in Paris?", tools=[get_weather], max_steps=1)
    assert result.status in ("done", "max_steps")
    assert result.tool_calls, "the local model made no tool call"
    call = result.tool_calls[0]
    assert call.name == "get_weather" and call.status == "ok"
    assert isinstance(call.arguments, dict) and call.arguments["city"] == SEEN[0]
    assert call.result == {"city": SEEN[0], "temp_c": 21, "sky": "sunny"}
    # the result went back: the conversation holds the tool message and a final turn after it
    roles = [m.role for m in result.conversation.messages]
    assert roles[:3] == ["user", "assistant", "tool"] and roles[-1] == "assistant"
    assert len(result.turns) == 2


def test_sync_api_on_local_model():
    SEEN.clear()
    model = llm_magic.get_model("local")
    response = model.chain("What is the weather in Rome?", tools=[get_weather], max_steps=1)
    calls = response.tool_calls()
    assert calls and calls[0].status == "ok" and SEEN
    assert response.result().status in ("done", "max_steps")
