"""OpenTelemetry spans for each run, when the program has set a tracer provider.

A run is an `invoke_agent` span with a `chat` child per model turn and an `execute_tool` child
per tool call, named and described by the OpenTelemetry GenAI semantic conventions (spans
docs/gen-ai/gen-ai-spans.md and docs/gen-ai/gen-ai-agent-spans.md of open-telemetry/
semantic-conventions; the attribute names as opentelemetry-semantic-conventions 0.66b2 ships
them, opentelemetry/semconv/_incubating/attributes/gen_ai_attributes.py; read 2026-12-07).
Message content (prompts, answers, tool arguments and results) goes on the spans only when the
user opts in, with the variable the OpenTelemetry GenAI instrumentations read
(`OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`) or `llm_magic.traces.capture_content
= True`; then too without keys (the run log's scrubber).

Nothing is imported for this: a program that traces has imported `opentelemetry.trace` to set
its provider (Logfire, Phoenix, Langfuse, an OTLP exporter...), so a run looks for it in
`sys.modules` and does nothing when it is absent or no provider is set. The spans are made when
the run ends, on a thread of their own, with the times the run's events recorded: exporting
never holds up the run's loop. They are children of the span current when the run started.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import TYPE_CHECKING, Any

from . import _runtime
from . import events as ev

if TYPE_CHECKING:
    from .chain import ChainRun
    from .results import ChainResult

WORKER = "llm_magic-traces"
CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
capture_content: bool | None = None  # None: the environment variable decides
# gen_ai.provider.name's well-known values (gen_ai_attributes.py, GenAiProviderNameValues)
_PROVIDER_NAMES = {"openai": "openai", "anthropic": "anthropic", "gemini": "gcp.gemini"}


def observe(run: ChainRun) -> None:
    """Trace `run` if the program set a tracer provider (see the module docstring)."""
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return
    provider = trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        return
    parent = sys.modules["opentelemetry.context"].get_current()
    wall, mono = time.time_ns(), time.monotonic()

    def on_event(event: ev.Event) -> None:
        if isinstance(event, ev.RunEnded):
            result, count = event.result, len(run.events)
            _runtime.worker(WORKER).submit(
                lambda: _spans(trace, parent, run, result, count, (wall, mono))
            )

    run.subscribe(on_event)


def flush(timeout: float | None = 10.0) -> bool:
    """Wait until the spans of the runs that ended so far are made (tests)."""
    return _runtime.worker(WORKER).drain(timeout)


def _content_on() -> bool:
    if capture_content is not None:
        return capture_content
    return os.environ.get(CONTENT_ENV, "").strip().lower() in ("1", "true", "yes")


def _spans(
    trace: Any,
    parent: Any,
    run: ChainRun,
    result: ChainResult[Any],
    count: int,
    clock: tuple[int, float],
) -> None:
    """On the traces thread: the run's span and its children, with the run's own times."""
    from .log.capture import secrets_of, timings
    from .mcp_config import scrub

    events = run.events[:count]
    start = next((e.at for e in events if isinstance(e, ev.RunStarted)), run.started_at)

    def ns(mono: float) -> int:
        return clock[0] + int((mono - clock[1]) * 1e9)

    secrets = secrets_of(run) if _content_on() else []

    def content(value: Any) -> str:
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        return scrub(text, secrets)

    tracer = trace.get_tracer("llm_magic")
    vendor = run.provider.api_vendor  # "openai" over either API
    common = {
        "gen_ai.provider.name": _PROVIDER_NAMES.get(vendor, vendor),
        "gen_ai.request.model": run.provider.model,
    }
    root = tracer.start_span(
        "invoke_agent llm_magic",
        context=parent,
        kind=trace.SpanKind.INTERNAL,
        start_time=ns(start),
        attributes={
            **common,
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": "llm_magic",
            "gen_ai.usage.input_tokens": result.usage.input_tokens,
            "gen_ai.usage.output_tokens": result.usage.output_tokens,
        },
    )
    if _content_on():
        root.set_attribute("gen_ai.input.messages", content(run.prompt or ""))
        if run.system:
            root.set_attribute("gen_ai.system_instructions", content(run.system))
    inside = trace.set_span_in_context(root, parent)
    turn_times, _ = timings(events)
    for turn, (began, ended, _priced) in zip(result.turns, turn_times, strict=False):
        span = tracer.start_span(
            f"chat {run.provider.model}",
            context=inside,
            kind=trace.SpanKind.CLIENT,
            start_time=ns(began),
            attributes={
                **common,
                "gen_ai.operation.name": "chat",
                "gen_ai.usage.input_tokens": turn.usage.input_tokens,
                "gen_ai.usage.output_tokens": turn.usage.output_tokens,
                "gen_ai.response.finish_reasons": [turn.finish_reason or "stop"],
            },
        )
        if _content_on():
            span.set_attribute("gen_ai.output.messages", content(turn.text))
        span.end(end_time=ns(ended if ended is not None else began))
    for call in result.tool_calls:
        began = call.started_at if call.started_at is not None else start
        span = tracer.start_span(
            f"execute_tool {call.name}",
            context=inside,
            kind=trace.SpanKind.INTERNAL,
            start_time=ns(began),
            attributes={
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": call.name,
                "gen_ai.tool.call.id": call.id,
                "gen_ai.tool.type": "function" if call.server is None else "extension",
            },
        )
        if _content_on():
            span.set_attribute("gen_ai.tool.call.arguments", content(call.raw_arguments))
            span.set_attribute("gen_ai.tool.call.result", content(call.output))
        if call.is_error:
            _failed(trace, span, type(call.error).__name__ if call.error else call.status)
        span.end(end_time=ns(call.ended_at if call.ended_at is not None else began))
    if result.status in ("failed", "cancelled", "timeout"):
        _failed(trace, root, type(result.error).__name__ if result.error else result.status)
    root.end(end_time=ns(start + result.elapsed))


def _failed(trace: Any, span: Any, error_type: str) -> None:
    """`error.type` and an error status, as the conventions ask of a failed operation."""
    span.set_attribute("error.type", error_type)
    span.set_status(trace.Status(trace.StatusCode.ERROR))
