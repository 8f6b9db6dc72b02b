"""OpenTelemetry spans of a run, read back with the SDK's in-memory exporter: one span per run,
a child per model turn and per tool call, with the GenAI semantic-convention attributes; message
content only when asked for; and nothing of OpenTelemetry imported when the program does not."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk", reason="pip install 'llm-magic[test]'")

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import llm_magic
from llm_magic import traces
from tests.servers import Call, Reply

ROOT = Path(__file__).resolve().parents[2]
EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module", autouse=True)
def _provider() -> None:
    """The process's tracer provider (it can be set once), exporting into memory."""
    current = trace.get_tracer_provider()
    if not isinstance(current, TracerProvider):
        current = TracerProvider()
        trace.set_tracer_provider(current)
    current.add_span_processor(SimpleSpanProcessor(EXPORTER))


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    monkeypatch.delenv(traces.CONTENT_ENV, raising=False)
    monkeypatch.setattr(traces, "capture_content", None)
    EXPORTER.clear()
    yield EXPORTER
    EXPORTER.clear()


def get_weather(city: str) -> str:
    """Current weather for a city."""
    if city == "Atlantis":
        raise LookupError("no such city")
    return f"18 degrees in {city}"


async def run_with_two_calls(server: Any) -> llm_magic.ChainResult[Any]:
    server.push(
        Reply(
            calls=[
                Call("get_weather", {"city": "Paris"}),
                Call("get_weather", {"city": "Atlantis"}),
            ],
            usage=(100, 20),
        ),
        Reply(text="Paris: 18 degrees.", usage=(150, 10)),
    )
    model = llm_magic.get_async_model(
        "openai-chat:gpt-4.1-mini", base_url=server.base_url, api_key=server.api_key
    )
    return await model.chain("Weather?", tools=[get_weather])


async def test_a_run_is_a_span_with_a_child_per_turn_and_per_call(
    openai_server: Any, spans: InMemorySpanExporter
) -> None:
    tracer = trace.get_tracer("the user's code")
    with tracer.start_as_current_span("analysis") as outer:
        result = await run_with_two_calls(openai_server)
    assert traces.flush()
    by_name: dict[str, list[Any]] = {}
    for span in spans.get_finished_spans():
        by_name.setdefault(span.name, []).append(span)
    (run,) = by_name["invoke_agent llm_magic"]
    assert run.parent.span_id == outer.get_span_context().span_id  # under the user's span
    assert run.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert run.attributes["gen_ai.request.model"] == "gpt-4.1-mini"
    assert run.attributes["gen_ai.provider.name"] == "openai"
    assert run.attributes["gen_ai.usage.input_tokens"] == 250
    assert run.attributes["gen_ai.usage.output_tokens"] == 30

    turns = sorted(by_name["chat gpt-4.1-mini"], key=lambda s: s.start_time)
    assert len(turns) == 2 and all(t.parent.span_id == run.context.span_id for t in turns)
    assert [t.attributes["gen_ai.usage.input_tokens"] for t in turns] == [100, 150]
    assert turns[0].attributes["gen_ai.operation.name"] == "chat"

    calls = sorted(
        by_name["execute_tool get_weather"], key=lambda s: s.attributes["gen_ai.tool.call.id"]
    )
    records = sorted(result.tool_calls, key=lambda r: r.id)
    assert [c.attributes["gen_ai.tool.call.id"] for c in calls] == [r.id for r in records]
    assert all(c.parent.span_id == run.context.span_id for c in calls)
    failed = [c for c in calls if "error.type" in c.attributes]
    assert [c.attributes["error.type"] for c in failed] == ["LookupError"]
    assert failed[0].status.status_code == trace.StatusCode.ERROR
    # the times are the run's own: each call inside the run, after the first turn ended
    for call in calls:
        assert turns[0].end_time <= call.start_time <= call.end_time <= turns[1].start_time
    assert run.start_time <= turns[0].start_time and turns[1].end_time <= run.end_time
    for span in [run, *turns, *calls]:  # no content unless asked for
        assert not any(k.endswith(("messages", "arguments", "result")) for k in span.attributes)


async def test_content_only_when_the_user_opts_in(
    openai_server: Any, spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(traces.CONTENT_ENV, "true")
    await run_with_two_calls(openai_server)
    assert traces.flush()
    found = {s.name: s for s in spans.get_finished_spans()}
    assert found["invoke_agent llm_magic"].attributes["gen_ai.input.messages"] == "Weather?"
    call = found["execute_tool get_weather"]
    assert call.attributes["gen_ai.tool.call.arguments"].startswith('{"city": ')
    assert "gen_ai.tool.call.result" in call.attributes
    chat = [s for s in spans.get_finished_spans() if s.name.startswith("chat ")]
    assert any(s.attributes.get("gen_ai.output.messages") == "Paris: 18 degrees." for s in chat)
    assert "sk-test-123" not in repr([dict(s.attributes) for s in spans.get_finished_spans()])


_NO_OTEL = """
import asyncio, sys
import llm_magic
from tests.servers import OpenAIServer, Reply

async def main():
    with OpenAIServer() as server:
        server.push(Reply(text="hi"))
        model = llm_magic.get_async_model(
            "openai-chat:gpt-4.1-mini", base_url=server.base_url, api_key=server.api_key
        )
        assert (await model.chain("hello")).text == "hi"
    llm_magic.log.flush()

asyncio.run(main())
print(sorted(m for m in sys.modules if m.startswith("opentelemetry")))
"""


def test_nothing_of_opentelemetry_is_imported_when_the_program_does_not_trace(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LLM_MAGIC_LOG_PATH": str(tmp_path / "l.db")}
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_NO_OTEL)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "[]"
