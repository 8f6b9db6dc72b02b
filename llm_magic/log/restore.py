"""A logged run back as a `ChainResult` that `continue_`, `fork` and `rerun` take, and as the
events its saved timeline is drawn from.

The log keeps calls, not code: the tool functions come from the notebook again (or `tools=`).
A tool the run had that is not defined now is named in one clear error the moment anything
would need it (a continuation, a fork, a re-run), not as a model's failed call later; passing
`tools=` to `continue_` goes on with those instead. The model is made when first needed, so a
run whose key is not set can still be read and shown.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, cast

from .. import events as ev
from ..cost import add
from ..errors import LLMMagicError, ToolDefinitionError
from ..messages import Message, ModelTurn, ToolCall, Usage
from ..models import AsyncConversation, AsyncModel, get_async_model
from ..records import ToolCallRecord
from ..results import ChainResult, Status
from ..tools import Tool
from .record import SavedRun


class SavedConversation(AsyncConversation):
    """The conversation of a logged run: its model made on first use, its tools found in the
    notebook, and the names of those that were not (see the module docstring)."""

    def __init__(
        self,
        saved: SavedRun,
        *,
        tools: Iterable[Any] = (),
        missing: Sequence[str] = (),
        messages: Sequence[Message] = (),
        cost: Decimal | None = Decimal(0),
        model: AsyncModel | None = None,
    ) -> None:
        self.saved = saved
        self._model = model
        super().__init__(
            cast(AsyncModel, model), system=saved.system, tools=tools, messages=messages, cost=cost
        )
        self.missing = list(missing)  # after the tools are set, which clears it

    @property
    def model(self) -> AsyncModel:
        if self._model is None:
            self._model = model_of(self.saved)
        return self._model

    @model.setter
    def model(self, value: AsyncModel | None) -> None:
        self._model = value

    @property
    def tools(self) -> list[Tool]:
        """Its tools; an error naming the ones the notebook no longer defines."""
        if self.missing:
            names = ", ".join(self.missing)
            raise LLMMagicError(
                f"logged run {self.saved.id} used {names}, which the notebook does not define "
                "now: the log keeps the calls, not the code. Define it again and call "
                f"llm_magic.log.get({self.saved.id}) again, or pass tools=[...] to continue_()"
            )
        return self._tools

    @tools.setter
    def tools(self, value: list[Tool]) -> None:
        self._tools = value
        self.missing = []  # tools given: the run goes on with these

    def fork(
        self,
        messages: Sequence[Message],
        *,
        cost: Decimal | None = Decimal(0),
        model: Any = None,
    ) -> AsyncConversation:
        chosen = model if model is not None else self.model
        if isinstance(chosen, str):
            chosen = get_async_model(chosen)
        elif not isinstance(chosen, AsyncModel):
            chosen = chosen.to_async()
        fork = SavedConversation(
            self.saved, missing=self.missing, messages=messages, cost=cost, model=chosen
        )
        fork._tools, fork.sources = list(self._tools), list(self.sources)
        return fork


def model_of(saved: SavedRun) -> AsyncModel:
    """The model that made `saved`, from the id it was made from (its key and base URL from
    the environment, as then); `llm_magic.log.get(id, model=...)` chooses another."""
    return get_async_model(saved.model_id or saved.model)


def find_tools(names: Iterable[str], namespace: Mapping[str, Any]) -> tuple[list[Tool], list[str]]:
    """The tools named `names` in `namespace` (by variable name or by tool name), and the names
    not found. MCP tools (`server:tool`) are left to `mcp=` / `tools=`: not looked for."""
    by_tool_name: dict[str, Tool] = {}
    found, missing = [], []
    for name in names:
        if ":" in name:
            continue
        tool = _tool(namespace.get(name), name)
        if tool is None:
            if not by_tool_name:
                by_tool_name = _named_tools(namespace)
            tool = by_tool_name.get(name)
        if tool is None:
            missing.append(name)
        else:
            found.append(tool)
    return found, missing


def _tool(value: Any, name: str) -> Tool | None:
    if value is None or not callable(value) or isinstance(value, type):
        return None
    try:
        tool = Tool.from_function(value)
    except (ToolDefinitionError, TypeError, ValueError):
        return None
    return tool if tool.name == name else None


def _named_tools(namespace: Mapping[str, Any]) -> dict[str, Tool]:
    """The tools of the namespace that carry their own name (`Tool`s, `@tool(name=...)`)."""
    out: dict[str, Tool] = {}
    for value in list(namespace.values()):
        marked = value if isinstance(value, Tool) else getattr(value, "__llm_tool__", None)
        if isinstance(marked, Tool):
            out.setdefault(marked.name, marked)
    return out


def user_namespace() -> Mapping[str, Any]:
    """The notebook's names: IPython runs cells in `__main__`, as a script does."""
    main = sys.modules.get("__main__")
    return vars(main) if main is not None else {}


def result_of(
    saved: SavedRun,
    tools: Iterable[Any] | None = None,
    namespace: Mapping[str, Any] | None = None,
    model: AsyncModel | None = None,
) -> ChainResult[Any]:
    """`saved` as a result to go on from (see the module docstring)."""
    if tools is not None:
        found: list[Any] = list(tools)
        missing: list[str] = []
    else:
        ns = namespace if namespace is not None else user_namespace()
        found, missing = find_tools(saved.tools, ns)
    conversation = SavedConversation(
        saved,
        tools=found,
        missing=missing,
        messages=saved.messages,
        cost=saved.conversation_cost,
        model=model,
    )
    return ChainResult(
        text=saved.answer,
        status=cast(Status, saved.status),
        tool_calls=[record_of(c) for c in saved.calls],
        usage=saved.usage,
        steps=max((c.step for c in saved.calls), default=0),
        model=saved.model,
        elapsed=saved.elapsed,
        turns=[
            ModelTurn(t.text, _calls_of(saved, i), t.usage, t.finish_reason, cost=t.cost)
            for i, t in enumerate(saved.turns)
        ],
        messages=list(saved.messages),
        conversation=conversation,
        cost=saved.cost,
        conversation_cost=saved.conversation_cost,
        step_ends=list(saved.step_ends),
        provider=saved.provider,
        stop_reason=saved.stop_reason,
    )


def _calls_of(saved: SavedRun, turn: int) -> list[ToolCall]:
    return [ToolCall(c.call_id, c.name, c.arguments) for c in saved.calls if c.turn == turn]


def record_of(call: Any) -> ToolCallRecord:
    """A saved call as a finished `ToolCallRecord` (its result object is gone: `result` holds
    the text the model saw)."""
    record = ToolCallRecord(call.call_id, call.name, call.arguments, call.step)
    try:
        record.arguments = ToolCall(call.call_id, call.name, call.arguments).parsed_arguments()
    except ValueError:
        record.arguments = None
    record.status = call.status
    record.output = record.result = call.output
    record.truncated = call.truncated
    record.server = call.server
    record.reason = call.error
    record.started_at, record.ended_at = call.started, call.ended
    return record


def replay(saved: SavedRun) -> list[ev.Event]:
    """The events of `saved` in order, with their saved times (seconds from 0): what a view
    folds into the run's timeline, drawn the same as it was live."""
    result = result_of(saved, tools=[])
    records = {r.id: r for r in result.tool_calls}
    out: list[ev.Event] = [ev.RunStarted(saved.model, saved.prompt, saved.tools, at=0.0)]
    calls = [records[c.call_id] for c in saved.calls if c.turn is None]
    out += [ev.ToolCallFinished(r, at=r.started_at or 0.0) for r in calls]
    usage, cost = Usage(), list[Decimal | None]()
    for i, turn in enumerate(saved.turns):
        step = i + 1
        began = turn.started if turn.started is not None else 0.0
        ended = turn.ended if turn.ended is not None else began
        out.append(ev.TurnStarted(step, at=began))
        if turn.ended is not None:
            usage = usage + turn.usage
            out.append(ev.UsageReported(step, turn.usage, usage, at=ended))
            out.append(ev.TurnFinished(step, turn.text, [], turn.usage, at=ended))
        else:
            out.append(ev.TextDelta(step, turn.text, at=began))
        if turn.priced:
            cost.append(turn.cost)
            out.append(ev.CostReported(step, turn.cost, add(*cost), at=ended))
        for c in saved.calls:
            if c.turn == i:
                out.append(ev.ToolCallFinished(records[c.call_id], at=c.started or ended))
    last: type[ev.RunEnded] = ev.RunFinished
    if saved.status in ("failed", "cancelled"):
        last = ev.RunFailed if saved.status == "failed" else ev.RunCancelled
    out.append(last(result, at=saved.elapsed))
    return out
