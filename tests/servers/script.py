"""Provider-neutral script vocabulary for the loopback servers.

A test scripts what the fake model says, turn by turn, as a list of `Reply` objects. Each server
renders a Reply into its own provider's wire format, as a JSON body or as an SSE stream depending on
what the request asked for.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Call:
    """A tool call the fake model makes."""

    name: str
    arguments: dict | str = field(default_factory=dict)  # a str is sent verbatim (malformed JSON)
    id: str | None = None  # None: generated per provider; "": no id on the wire (Ollama/Gemini 2)


@dataclass
class Reply:
    """One model turn (or one scripted fault)."""

    text: str = ""
    calls: list[Call] = field(default_factory=list)
    usage: tuple[int, int] = (10, 5)  # input, output tokens
    cached: int = 0  # of the input tokens, read from the prompt cache
    reasoning: int = 0  # of the output tokens, spent thinking
    status: int = 200  # != 200: an error response in the provider's error body format
    error_message: str = ""  # provider's message for error replies (default: a realistic one)
    retry_after: float | None = None  # Retry-After header in seconds (Gemini: RetryInfo instead)
    retry_after_ms: int | None = None  # retry-after-ms header
    cut_after: int | None = None  # close the connection after this many SSE events, no terminator
    delay: float = 0.0  # seconds before the response starts
    chunk_delay: float = 0.0  # seconds between SSE events
    text_chunks: int | None = None  # split text into this many deltas (default: word-sized)
    finish_reason: str | None = None  # override stop/finish reason
    finish_message: str | None = None  # Gemini: finishMessage beside the finishReason
    thinking: str | None = None  # Anthropic: a thinking block with a signature before the text
    thought_signature: str | None = None  # Gemini 3: on the first functionCall part (else text)
    # Gemini 3: the part that carries `thought_signature`: "call" (the first functionCall),
    # "empty_text" (a trailing empty text part) or "thought" (a leading thought part)
    signature_on: str = "call"
    refusal: str | None = None  # OpenAI: message.refusal / delta.refusal; Anthropic: stop_reason
    # Extras beyond the core vocabulary:
    error_code: str | None = None  # OpenAI error.code / Anthropic error.type / Gemini error.status
    headers: dict[str, str] = field(default_factory=dict)  # extra response headers (x-should-retry)
    stream_error: str | None = None  # streaming: an in-stream error event (after cut_after events)
    # Malformed responses, sent verbatim instead of the rendering: `raw_events` are whole SSE
    # frames (e.g. 'data: [1, 2]\n\n') for a streamed request, `raw_body` the JSON text of a
    # non-streamed one.
    raw_events: list[str] | None = None
    raw_body: str | None = None
    # A JSON answer (structured output): the text becomes its JSON, as a model writes it.
    json_content: Any = None
    # The worst case for a budget: the model writes until the request's output cap (or, with
    # none, `UNCAPPED_OUTPUT` tokens), and is cut there with the API's truncation signal; its
    # `reasoning` tokens and any `calls` come out of the same cap, and the input tokens are
    # counted from the request (see LoopbackServer.write_until_cap).
    until_cap: bool = False
    # A model that answers from what it read: the text is written from the request's JSON body
    # when the request arrives (e.g. from the tool results it carries), not when scripted.
    answer: Callable[[dict], str] | None = None

    def __post_init__(self) -> None:
        if self.json_content is not None:
            self.text = json.dumps(self.json_content)


UNCAPPED_OUTPUT = 32_768  # what a model "writing until the cap" writes when no cap was sent
CHARS_PER_TOKEN = 4  # the servers' token count: one token per 4 characters, as tokenizers average
WORD = "word "  # one output token


def as_reply(item: Reply | str) -> Reply:
    """Script items may be plain strings as a shorthand for `Reply(text=...)`."""
    return Reply(text=item) if isinstance(item, str) else item


_WORD = re.compile(r"\s*\S+\s*|\s+")


def split_text(text: str, chunks: int | None = None) -> list[str]:
    """Split text into streaming deltas: word-sized by default, or `chunks` near-equal parts."""
    if not text:
        return []
    if chunks is None:
        return _WORD.findall(text)
    chunks = max(1, min(chunks, len(text)))
    size, extra = divmod(len(text), chunks)
    out, pos = [], 0
    for i in range(chunks):
        n = size + (1 if i < extra else 0)
        out.append(text[pos : pos + n])
        pos += n
    return out


def split_args(args: str, pieces: int = 4) -> list[str]:
    """Split a JSON argument string into a few fragments, as a model streams them."""
    if not args:
        return []
    size = max(4, -(-len(args) // pieces))
    return [args[i : i + size] for i in range(0, len(args), size)]
