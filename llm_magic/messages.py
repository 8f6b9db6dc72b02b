"""The neutral conversation model that every provider adapter translates to and from.

One assistant message holds the text and the tool calls of one model turn; one `tool` message
holds all the results of that turn. Provider adapters map this onto their wire format
(OpenAI: one `tool` message per result; Anthropic: one user turn of `tool_result` blocks;
Gemini: one content of `functionResponse` parts). Images and documents are `Media` parts: on a
tool result, or on a user message (a prompt's attachments).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from .media import Media

Role = Literal["system", "user", "assistant", "tool"]
# What a provider tells the model on a `final` request, in the provider's own wire form.
FINAL_TURN_INSTRUCTION = (
    "You have used all the tool calls allowed for this turn. Do not call tools now: answer "
    "with what you have found so far, and say what is still missing."
)


@dataclass
class ToolCall:
    """A call the model asked for. `arguments` is the raw JSON text the model sent."""

    id: str
    name: str
    arguments: str = "{}"
    provider_data: dict[str, Any] = field(default_factory=dict)

    def parsed_arguments(self) -> Any:
        """The arguments as JSON; raises ValueError when the model sent invalid JSON."""
        return json.loads(self.arguments) if self.arguments.strip() else {}


@dataclass
class ToolResult:
    """What is sent back to the model for one call: its text, and any images it returned."""

    call_id: str
    name: str
    content: str
    is_error: bool = False
    media: tuple[Media, ...] = ()


@dataclass
class Message:
    role: Role
    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_results: list[ToolResult] = field(default_factory=list)
    # Images and documents sent with a user message (a prompt's attachments).
    media: tuple[Media, ...] = ()
    # Opaque provider blocks that must be sent back unchanged (Anthropic thinking blocks).
    provider_data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Usage:
    """Tokens of one turn or a sum of turns, as the provider billed them.

    `input_tokens` is all input, cached or not, and `output_tokens` all output, reasoning
    included; the cache and reasoning fields say how much of those was of each kind (they are
    parts of the totals, never added to them), since providers price those parts differently.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0  # part of input_tokens read from the provider's prompt cache
    cache_write_tokens: int = 0  # part of input_tokens written to it (Anthropic bills more)
    reasoning_tokens: int = 0  # part of output_tokens spent thinking

    def __add__(self, other: Usage) -> Usage:
        # field by field: `astuple` deep-copies, and a run adds usages on every turn
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_read_tokens + other.cache_read_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
        )

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass
class ToolSpec:
    """What a provider needs to declare a tool."""

    name: str
    description: str
    parameters: dict[str, Any]
    # Each provider's wire form of `parameters`, made on its first request (a run sends the
    # same spec every turn); a copy (`dataclasses.replace`) starts empty. Never edited.
    wire: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)


@dataclass
class OutputSchema:
    """The JSON a run's final text answer must be, for a provider with native structured output
    (llm_magic.answers): a name the API shows the model, and the answer type's JSON schema."""

    name: str
    schema: dict[str, Any]


@dataclass
class ModelRequest:
    messages: list[Message]
    tools: list[ToolSpec] = field(default_factory=list)
    system: str | None = None
    stream: bool = True
    # "auto", "none", "required", or a tool name to force.
    tool_choice: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    # Answer now, without tools (the run hit a limit); each provider says so in its wire form.
    final: bool = False
    # The final answer's schema, sent as the provider's native structured output; None: free text.
    output: OutputSchema | None = None
    # How hard the model thinks ("off", "low", "medium", "high"; None: its default); each
    # adapter sends it in its model's own fields (llm_magic.providers._fields).
    thinking: str | None = None
    # A cap on the turn's output tokens (reasoning included, as every API bills and counts it),
    # set by a budget (llm_magic.cost); each adapter sends the smaller of it and the user's own
    # `max_tokens` in its wire field. None: no cap beyond the user's.
    max_output_tokens: int | None = None


@dataclass
class ModelTurn:
    """One complete model response, whatever the wire format."""

    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None
    provider_data: dict[str, Any] = field(default_factory=dict)
    cost: Decimal | None = None  # US dollars, set by the chain (None: unknown)

    def to_message(self) -> Message:
        return Message(
            "assistant", self.text, list(self.tool_calls), provider_data=dict(self.provider_data)
        )
