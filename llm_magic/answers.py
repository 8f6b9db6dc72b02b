"""Typed answers: the run's final answer validated into a dataclass, TypedDict or pydantic model.

Two ways to ask for it, one validation (the type's converter from `llm_magic.schema`, the same
that checks tool arguments), the same `result.output`:

- Native structured output, where the provider has one that goes together with tools (OpenAI
  Responses: `text.format`, `providers.openai_responses`; Chat Completions: `response_format`,
  `providers.openai`; both with a strict JSON schema). The run
  keeps its tools and its tool choice; the model calls tools as it likes, and its final text is
  JSON of the type (`from_text`).
- A final tool, `final_answer`, whose parameters are the type's schema, everywhere else. The run
  asks for a tool call on every turn (`tool_choice="required"` unless the caller chose), so the
  model cannot drift into prose. It stays for:
  Gemini, which answers 400 "Function calling with a response mime type: 'application/json' is
  unsupported" when `responseMimeType`/`responseSchema` come with function declarations (the
  2.x models; googleapis/python-genai issue #867);
  Anthropic, whose JSON outputs (`output_config.format`, first the `structured-outputs-2025-11-13`
  beta's `output_format`) are newer than, and not on every model like, tool use, where the final
  tool also follows extended thinking's tool-choice rules (`answer_choice`);
  the embedded `local` model, prompted to answer by calling a function, and other
  OpenAI-compatible servers, which differ in whether they take `response_format` beside `tools`.
Either way the `llm` library's problem is avoided: it loses the schema once a tool is called (its
issue #1222).

A validation failure goes back to the model once (the final tool's error, or a user message
quoting the problem when the answer was text); a second failure ends the run with an
`OutputValidationError` that quotes the problem.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._schema_refs import hoist_defs
from .errors import OutputValidationError, ToolArgumentsError, ToolDefinitionError
from .messages import OutputSchema
from .records import ToolCallRecord
from .schema import Converter, Invalid, Parameters, converter_for
from .tools import Tool

FINAL_TOOL = "final_answer"
RETRIES = 1  # validation failures sent back to the model before the run fails
REMINDER = (
    "Give your final answer now by calling the {tool} tool with arguments that match its "
    "schema, not as text."
)
NATIVE_REMINDER = (
    "Your answer is not a valid {type}: {problem}. Answer again with only the JSON object that "
    "matches the response schema."
)
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)
WRAPPED = "value"  # the one property a non-object answer goes under
_NAME_BAD = re.compile(r"[^a-zA-Z0-9_-]")  # OpenAI's json_schema.name: ^[a-zA-Z0-9_-]{1,64}$


@dataclass(eq=False)
class _WholeValue(Parameters):
    """Parameters that are one value of the output type: its schema, its validation.

    A type whose JSON is not an object (`RootModel[list[int]]`, a pydantic union) goes under one
    property, `value`: OpenAI's strict `response_format` and function `parameters`, Anthropic's
    `input_schema` and Gemini's function parameters all must be objects. The answer is taken out
    of it before validation, so the run's output is still the user's type.
    """

    converter: Converter | None = None

    @property
    def wrapped(self) -> bool:
        assert self.converter is not None
        return self.converter.schema.get("type") != "object"

    @property
    def schema(self) -> dict[str, Any]:
        assert self.converter is not None
        inner = dict(self.converter.schema)
        if self.wrapped:
            inner = {
                "type": "object",
                "properties": {WRAPPED: inner},
                "required": [WRAPPED],
                "additionalProperties": False,
            }
        return hoist_defs(inner)  # `#/$defs/...` point at the root, wrapped or not

    def validate(self, arguments: Any) -> dict[str, Any]:
        assert self.converter is not None
        unwrap = self.wrapped and isinstance(arguments, dict) and set(arguments) == {WRAPPED}
        try:
            return {"value": self.converter.convert(arguments[WRAPPED] if unwrap else arguments)}
        except Invalid as exc:
            found = exc.at(WRAPPED) if unwrap else exc
            where = f"{found.path!r}: " if found.path else ""
            raise ToolArgumentsError(where + found.message) from None
        except Exception as exc:  # a validator's own code rejected it
            raise ToolArgumentsError(f"{type(exc).__name__}: {exc}") from None


def for_run(
    output_type: type[Any] | None, native: bool, tools: dict[str, Tool]
) -> TypedAnswer | None:
    """The run's expected answer, if it asks for one; without native structured output, its
    final tool joins `tools` (the model answers by calling it)."""
    if output_type is None:
        return None
    answer = TypedAnswer(output_type, native=native)
    if not answer.native:
        tools[FINAL_TOOL] = answer.tool(tools)
    return answer


class TypedAnswer:
    """One run's expected answer: how it is asked for (`native`: the provider's structured
    output; else the final tool), and what came of it."""

    def __init__(self, output_type: type[Any], native: bool = False) -> None:
        self.type = output_type
        self.native = native
        self.name = getattr(output_type, "__name__", repr(output_type))
        converter = converter_for(output_type)
        self.parameters = _WholeValue({}, set(), {}, {}, converter=converter)
        self.failures = 0
        self.value: Any = None
        self.done = False
        self.last_error = ""

    def output_schema(self) -> OutputSchema:
        """The schema sent as native structured output, under a name the APIs accept."""
        name = _NAME_BAD.sub("_", self.name)[:64] or "answer"
        return OutputSchema(name, self.parameters.schema)

    def tool(self, others: dict[str, Tool]) -> Tool:
        if FINAL_TOOL in others:
            raise ToolDefinitionError(
                f"a tool named {FINAL_TOOL!r} cannot be used with output_type, which adds its own"
            )

        async def final_answer(value: Any) -> Any:
            return value

        return Tool(
            FINAL_TOOL,
            f"Give the final answer, as a {self.name}. Call this once you have everything you need; "
            "the run ends with it.",
            self.parameters,
            async_impl=final_answer,
        )

    def after_tools(self, batch: list[ToolCallRecord]) -> None:
        """Take the answer from this round's calls, or count a failed one (final tool only:
        with native output a call named `final_answer` is just a call)."""
        if self.native:
            return
        for rec in batch:
            if rec.name != FINAL_TOOL:
                continue
            if rec.status == "ok":
                self.value, self.done = rec.result, True
                return
            self.last_error = rec.output
        if any(rec.name == FINAL_TOOL for rec in batch):
            self._failed()

    def from_text(self, text: str) -> bool:
        """A text answer that is the type's JSON (native output, or a model that skipped the
        final tool): take it, or count a failure."""
        body = text.strip()
        fenced = _FENCE.match(body)
        try:
            value = json.loads(fenced.group(1) if fenced else body)
            self.value = self.parameters.validate(value)["value"]
        except (ValueError, ToolArgumentsError) as exc:
            if self.native:
                self.last_error = f"{'not JSON: ' if isinstance(exc, ValueError) else ''}{exc}"
            else:
                self.last_error = f"the answer was text, not a {FINAL_TOOL} call ({exc})"
            self._failed()
            return False
        self.done = True
        return True

    def _failed(self) -> None:
        self.failures += 1
        if self.failures > RETRIES:
            raise OutputValidationError(
                f"the model's final answer is not a valid {self.name} after {self.failures} "
                f"tries: {self.last_error}"
            )

    def reminder(self) -> str:
        """What goes back to the model after a text answer that is not the type."""
        if self.native:
            return NATIVE_REMINDER.format(type=self.name, problem=self.last_error)
        return REMINDER.format(tool=FINAL_TOOL)


def answer_choice(
    chosen: str | None,
    tools_on: bool,
    model_options: Mapping[str, Any],
    thinking: str | None = None,
) -> str:
    """The tool choice of a turn of a typed run: a tool call every turn, the final tool on the
    last one, unless the caller chose, or forcing is not allowed.

    Anthropic's thinking, extended (`enabled`) or `adaptive`, accepts only `auto` and `none`,
    and rejects a forced tool (docs.anthropic.com/en/docs/build-with-claude/extended-thinking,
    "Extended thinking with tool use"); with thinking on, by the run's `thinking` option or by
    a raw `thinking` field, the reminder after a text answer does the asking.
    """
    raw = model_options.get("thinking")
    raw_on = isinstance(raw, Mapping) and raw.get("type") not in (None, "disabled")
    if raw_on or thinking not in (None, "off"):
        return chosen or "auto"
    return (chosen or "required") if tools_on else FINAL_TOOL
