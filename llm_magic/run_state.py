"""The state of one run, in one place: what the turn loop, the tool runner and the cost meter
read and move forward.

Modelled on an explicit run state moved through small steps (pydantic-ai's run graph): each
step of a run changes these fields and nothing hidden, so printing the state tells where a run
is and why it ended.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from .messages import ModelTurn, Usage
from .records import ToolCallRecord

if TYPE_CHECKING:
    from .cost import Cost
    from .options import ChainOptions
    from .results import Status
    from .tools import Tool


@dataclass
class RunState:
    """Where a run is: its status, rounds, turns, calls, usage and cost so far."""

    tools: dict[str, Tool] = field(default_factory=dict, repr=False)
    status: Status = "pending"
    steps: int = 0  # tool rounds taken
    turns: list[ModelTurn] = field(default_factory=list)
    records: list[ToolCallRecord] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    cost: Cost = Decimal(0)
    stop_reason: str | None = None  # why a limit ended the run, with its figures
    cancel_reason: str | None = None
    started_at: float = 0.0
    step_ends: list[int] = field(default_factory=list)  # history length after each step
    partial: list[str] = field(default_factory=list, repr=False)  # the streaming turn's text
    pending: list[ToolCallRecord] = field(default_factory=list, repr=False)  # not yet answered

    @property
    def turn_number(self) -> int:
        """The number of the next model turn."""
        return len(self.turns) + 1

    def limit_reached(self, options: ChainOptions, default_max_steps: int) -> Status | None:
        """The limit the run reached after a tool round, if any (`default_max_steps`: the
        provider's, when the options set none)."""
        if len(self.records) >= options.max_tool_calls:
            return "max_tool_calls"
        steps = options.max_steps
        if self.steps >= (steps if steps is not None else default_max_steps):
            return "max_steps"
        return None
