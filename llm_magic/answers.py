"""Typed answers: the run's final answer validated into a dataclass, TypedDict or pydantic model.

The answer arrives as a call of one more tool, `final_answer`, whose parameters are the type's
JSON schema (from `llm_magic.schema`, the same converters that check tool arguments). A final
tool works on every provider and, unlike a provider's JSON mode, goes together with the run's
other tools: the model may call them first and answer when it is ready (the `llm` library loses
the schema once a tool is called, its issue #1222). The run asks for a tool call on every turn
(`tool_choice="required"` unless the caller chose), so the model cannot drift into prose.

A validation failure goes back to the model once, as the tool's error (or, when the model
answered in text that is not the type, as a reminder); a second failure ends the run with an
`OutputValidationError` that quotes the problem.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import OutputValidationError, ToolArgumentsError, ToolDefinitionError
from .events import ToolCallRecord
from .schema import Converter, Invalid, Parameters, converter_for
from .tools import Tool

FINAL_TOOL = "final_answer"
RETRIES = 1  # validation failures sent back to the model before the run fails
REMINDER = (
    "Give your final answer now by calling the {tool} tool with arguments that match its "
    "schema, not as text."
)
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


@dataclass(eq=False)
class _WholeValue(Parameters):
    """Parameters that are one value of the output type: its schema, its validation."""

    converter: Converter | None = None

    @property
    def schema(self) -> dict[str, Any]:
        assert self.converter is not None
        return dict(self.converter.schema)

    def validate(self, arguments: Any) -> dict[str, Any]:
        assert self.converter is not None
        try:
            return {"value": self.converter.convert(arguments)}
        except Invalid as exc:
            where = f"{exc.path!r}: " if exc.path else ""
            raise ToolArgumentsError(where + exc.message) from None
        except Exception as exc:  # a validator's own code rejected it
            raise ToolArgumentsError(f"{type(exc).__name__}: {exc}") from None


class TypedAnswer:
    """One run's expected answer: the final tool, and what came of it."""

    def __init__(self, output_type: type[Any]) -> None:
        self.type = output_type
        converter = converter_for(output_type)
        self.parameters = _WholeValue({}, set(), {}, {}, converter=converter)
        self.failures = 0
        self.value: Any = None
        self.done = False
        self.last_error = ""

    def tool(self, others: dict[str, Tool]) -> Tool:
        if FINAL_TOOL in others:
            raise ToolDefinitionError(
                f"a tool named {FINAL_TOOL!r} cannot be used with output_type, which adds its own"
            )

        async def final_answer(value: Any) -> Any:
            return value

        name = getattr(self.type, "__name__", "the answer")
        return Tool(
            FINAL_TOOL,
            f"Give the final answer, as a {name}. Call this once you have everything you need; "
            "the run ends with it.",
            self.parameters,
            async_impl=final_answer,
        )

    def after_tools(self, batch: list[ToolCallRecord]) -> None:
        """Take the answer from this round's calls, or count a failed one."""
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
        """A text answer that is the type's JSON (a model that skipped the tool): take it."""
        body = text.strip()
        fenced = _FENCE.match(body)
        try:
            value = json.loads(fenced.group(1) if fenced else body)
            self.value = self.parameters.validate(value)["value"]
        except (ValueError, ToolArgumentsError) as exc:
            self.last_error = f"the answer was text, not a {FINAL_TOOL} call ({exc})"
            self._failed()
            return False
        self.done = True
        return True

    def _failed(self) -> None:
        self.failures += 1
        if self.failures > RETRIES:
            name = getattr(self.type, "__name__", repr(self.type))
            raise OutputValidationError(
                f"the model's final answer is not a valid {name} after {self.failures} "
                f"tries: {self.last_error}"
            )

    def reminder(self) -> str:
        return REMINDER.format(tool=FINAL_TOOL)


def answer_choice(chosen: str | None, tools_on: bool, model_options: Mapping[str, Any]) -> str:
    """The tool choice of a turn of a typed run: a tool call every turn, the final tool on the
    last one, unless the caller chose, or forcing is not allowed.

    Anthropic's extended thinking accepts only `auto` and `none`, and rejects a forced tool
    (docs.anthropic.com/en/docs/build-with-claude/extended-thinking, "Extended thinking with
    tool use"); with thinking on, the reminder after a text answer does the asking.
    """
    thinking = model_options.get("thinking")
    if isinstance(thinking, Mapping) and thinking.get("type") not in (None, "disabled"):
        return chosen or "auto"
    return (chosen or "required") if tools_on else FINAL_TOOL
