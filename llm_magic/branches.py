"""Branches: a run that goes on from a point inside another result, which never changes.

`result.fork(at=step)` keeps the conversation through that step (the model's turn and its tool
results) and goes on, with a new prompt or without. `result.rerun(call_id, arguments=...)` and
`result.fork(at=call_id, result=value)` go back to the turn that made a call: the call runs
again (with edited arguments, checked against the tool's schema before anything runs) or takes
the given value as its result, the turn's other calls keep their results, and the model goes on
from there. The history up to the branch point is the result's own messages, provider data
(Anthropic thinking blocks and signatures, Gemini thought signatures) included, so each
provider's adapter sends it in its own form.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from .errors import LLMMagicError, ToolArgumentsError
from .messages import Message, ToolCall, ToolResult
from .providers._fields import foreign_options, wire_format

if TYPE_CHECKING:
    from .options import ChainOptions
    from .providers.base import Provider
    from .results import ChainResult
    from .tools import Tool

BranchKind = Literal["fork", "rerun", "given"]
# "No result given" for `ChainResult.fork(at=call_id)`: the one sentinel of both modules, so a
# fork without `result=` keeps the call's own result rather than sending the sentinel itself
NOT_GIVEN: Any = object()


@dataclass(frozen=True, eq=False)
class BranchPoint:
    """Where a result branched from: the original result, and the step or call."""

    result: ChainResult[Any] = field(repr=False)
    step: int  # the original's step (model turn) kept; 0: before its first turn
    kind: BranchKind
    call_id: str | None = None
    arguments: dict[str, Any] | None = None  # the edited arguments of a re-run call

    def __repr__(self) -> str:
        what = f"{self.kind} of call {self.call_id}" if self.call_id else "fork"
        return f"<BranchPoint step {self.step}, {what}>"


@dataclass(eq=False)
class Resume:
    """What a branched run does before its first model turn: answer the branch turn's calls.

    `calls` are the turn's calls in order; those in `run` run again, those in `given` take the
    value given, the others keep the result they had (`kept`).
    """

    point: BranchPoint
    calls: list[ToolCall]
    run: set[str] = field(default_factory=set)
    given: dict[str, Any] = field(default_factory=dict)
    kept: dict[str, ToolResult] = field(default_factory=dict)


@dataclass(eq=False)
class Plan:
    """A branch ready to run: the history to fork, and what to do first."""

    messages: list[Message]
    point: BranchPoint
    resume: Resume | None = None
    # The provider the options' `model_options` were written for (the original run's);
    # None: given for this branch, sent as they are.
    options_from: str | None = None

    def options_for(self, options: ChainOptions, provider: Provider) -> ChainOptions:
        """`options` for a branch on `provider`: on another wire format, the model_options
        that belong to the first one's stay behind (a Claude run's `thinking` is a 400 at
        OpenAI), said in one warning; the neutral options (`thinking`, ...) carry over."""
        if not self.options_from or wire_format(self.options_from) == wire_format(provider.name):
            return options
        dropped = foreign_options(options.model_options, wire_format(provider.name))
        if not dropped:
            return options
        warnings.warn(
            f"model_options {', '.join(dropped)} of the {self.options_from} run were left out "
            f"of the branch at {provider.name} ({provider.model}), which does not take them",
            stacklevel=4,
        )
        kept = {k: v for k, v in options.model_options.items() if k not in dropped}
        return options.replace(model_options=kept)


def plan_fork(result: ChainResult[Any], at: int | str, given: Any = NOT_GIVEN) -> Plan:
    """The history of `result` through step `at`, or through the turn of call `at`."""
    if isinstance(at, str):
        if given is NOT_GIVEN:  # a call with its result as it was: its step
            return plan_fork(result, _step_of_call(result, at))
        return _plan_call(result, at, "given", given=given)
    if isinstance(at, bool) or not isinstance(at, int):
        raise TypeError(f"at= takes a step number or a call id, got {at!r}")
    ends = result.step_ends
    if not 0 <= at < len(ends):
        raise ValueError(
            f"this result has steps 0 to {len(ends) - 1} (0: before its first model turn), not {at}"
        )
    return Plan(list(result.messages[: ends[at]]), BranchPoint(result, at, "fork"))


def plan_rerun(
    result: ChainResult[Any],
    call_id: str,
    arguments: Mapping[str, Any] | None,
    tools: Mapping[str, Tool],
) -> Plan:
    """The turn of `call_id` with that call to run again; edited arguments checked first."""
    index, message = _find_call(result, call_id)
    call = next(c for c in message.tool_calls if c.id == call_id)
    tool = tools.get(call.name)
    if tool is None:
        raise LLMMagicError(
            f"call {call_id} was to {call.name!r}, which is not one of this result's tools "
            f"({', '.join(tools) or 'none'}), so it cannot run again"
        )
    if arguments is not None:
        if not isinstance(arguments, Mapping):
            raise ToolArgumentsError(f"arguments must be a dict, got {arguments!r}")
        try:
            tool.parameters.validate(dict(arguments))
        except ToolArgumentsError as exc:
            raise ToolArgumentsError(
                f"invalid arguments for {tool.name}: {exc}; it takes {takes(tool.schema)}"
            ) from None
    return _plan_call(result, call_id, "rerun", arguments=arguments, index=index)


def takes(schema: Mapping[str, Any]) -> str:
    """A tool's parameters in words, `city (string, required), days (integer)`: what a person
    fixing the arguments needs, where the full JSON schema would bury it."""
    properties = schema.get("properties") or {}
    required = set(schema.get("required") or ())
    if not properties:
        return "no arguments"
    parts = []
    for name, spec in properties.items():
        kind = spec.get("type") if isinstance(spec, dict) else None
        if isinstance(spec, dict) and "enum" in spec:
            kind = " | ".join(json.dumps(v) for v in spec["enum"])
        elif isinstance(kind, list):
            kind = " or ".join(map(str, kind))
        bits = [str(kind or "any value"), *(["required"] if name in required else [])]
        parts.append(f"{name} ({', '.join(bits)})")
    return ", ".join(parts)


def _plan_call(
    result: ChainResult[Any],
    call_id: str,
    kind: BranchKind,
    *,
    arguments: Mapping[str, Any] | None = None,
    given: Any = NOT_GIVEN,
    index: int | None = None,
) -> Plan:
    if index is None:
        index, _ = _find_call(result, call_id)
    message = result.messages[index]
    calls = [
        dataclasses.replace(c, arguments=json.dumps(dict(arguments)))
        if c.id == call_id and arguments is not None
        else c
        for c in message.tool_calls
    ]
    edited = dataclasses.replace(message, tool_calls=calls)
    answered = result.messages[index + 1] if index + 1 < len(result.messages) else None
    kept = {r.call_id: r for r in (answered.tool_results if answered is not None else [])}
    kept.pop(call_id, None)
    step = _step_of_call(result, call_id)
    point = BranchPoint(
        result, step, kind, call_id, dict(arguments) if arguments is not None else None
    )
    resume = Resume(point, calls, kept=kept)
    if kind == "rerun":
        resume.run.add(call_id)
    else:
        resume.given[call_id] = given
    for c in calls:  # a call that never got a result (the run was cut) runs again too
        if c.id not in kept and c.id != call_id:
            resume.run.add(c.id)
    return Plan([*result.messages[:index], edited], point, resume)


def _find_call(result: ChainResult[Any], call_id: str) -> tuple[int, Message]:
    for index in range(len(result.messages) - 1, -1, -1):
        message = result.messages[index]
        if message.role == "assistant" and any(c.id == call_id for c in message.tool_calls):
            return index, message
    known = [c.id for m in result.messages for c in m.tool_calls]
    raise LLMMagicError(
        f"no tool call {call_id!r} in this result; its calls are: {', '.join(known) or 'none'}"
    )


def _step_of_call(result: ChainResult[Any], call_id: str) -> int:
    """The step whose turn made the call; 0 for a call made before this result's run."""
    index, _ = _find_call(result, call_id)
    for step, end in enumerate(result.step_ends):
        if index < end:
            return step
    return len(result.step_ends) - 1
