"""The terminal text view of a run: compact live lines and the approval question.

Terminal IPython and plain Python have no comms, so the timeline prints one line per tool call
and the answer as it streams, and asks for approval on the terminal itself: every argument whole
before the question, then `y` (run it), `n` or Enter (deny), `a` (approve it and the other calls
of its turn), `?` (the tool's description and the arguments as JSON), or any other text (deny,
with that text as the reason the model reads). What the run prints while the question waits
(another call's result) is held and printed after the answer, never on the question's line.

The question reads its line on the event loop (`add_reader` on the terminal), not with `input()`
in a worker thread: Ctrl-C cancels the run, and a thread blocked in `input()` can not be
stopped, so it would go on reading the keys typed at IPython's next prompt (and keep the
process from exiting). Cancelling a loop reader just removes it. When stdin is not a terminal
(a pipe, whose lines may already sit in `sys.stdin`'s buffer) or the loop can not watch it
(Windows' proactor loop), `input()` in a thread is used as before.
"""

from __future__ import annotations

import asyncio
import codecs
import os
import sys
import weakref
from collections.abc import Callable
from typing import TextIO

from .. import events as ev
from ..options import Approval
from ..records import ToolCallRecord
from . import render as R
from .reducer import RunState, TurnState
from .terminal_markdown import LiveMarkdown, can_render
from .values import arg_summary, pretty_json


class TextView:
    """Compact live text lines for terminal IPython and plain Python: a run's events as they
    come, once the reducer has folded them into the run's state."""

    def __init__(self, model: str) -> None:
        self.out = sys.stdout
        self.open_text = False
        self.ended = False
        # on a terminal with rich, a turn's text is Markdown rendered in place as it streams
        self.rendered = can_render(self.out)
        self._live: LiveMarkdown | None = None
        self._live_turn: TurnState | None = None
        self.write(f"LLM {model}\n")

    def write(self, text: str) -> None:
        if not _HELD.hold(self.out, text):
            _put(self.out, text)

    def end_line(self) -> None:
        """End the streamed text's line (a question starts on a line of its own)."""
        self._end_text()

    def _end_text(self) -> None:
        live, turn = self._live, self._live_turn
        if live is not None and turn is not None:
            self._live = self._live_turn = None
            live.finish(turn.text)
        if self.open_text:
            self.write("\n")
            self.open_text = False

    def delta(self, turn: TurnState, text: str) -> None:
        if self.rendered and not self.open_text and not _HELD.asking:
            if self._live is None:
                self._live, self._live_turn = LiveMarkdown(self.out), turn
            self._live.update(turn.text)
            return
        if not self.open_text:
            self.write("  ")
            self.open_text = True
        self.write(_indent(text))

    def turn_done(self, turn: TurnState) -> None:
        if self._live is None and self.rendered and not self.open_text and turn.final_text:
            self._live, self._live_turn = LiveMarkdown(self.out), turn  # a turn not streamed
        if self._live is not None:
            self._live_turn = turn
            self._end_text()
            return
        if not self.open_text and turn.final_text:
            self.write("  " + _indent(turn.final_text))
            self.open_text = True
        self._end_text()

    def call(self, rec: ToolCallRecord, event: ev.Event) -> None:
        if isinstance(event, ev.ToolCallRequested | ev.ToolCallStarted):
            return  # one line per call, when it ends
        if isinstance(event, ev.ToolCallAwaitingApproval):
            return  # the approval prompt is the line
        self._end_text()
        self.write("    " + R.call_text(rec) + "\n")

    def feed(self, state: RunState, event: ev.Event) -> None:
        """Take one event, once `state` has folded it in."""
        if isinstance(event, ev.ToolCallEvent):
            self.call(event.call, event)
        elif isinstance(event, ev.TextDelta | ev.TurnFinished) and state.current is not None:
            if isinstance(event, ev.TextDelta):
                self.delta(state.current, event.text)
            else:
                self.turn_done(state.current)
        elif isinstance(event, ev.RunEnded):
            self.run_ended(state)

    def run_ended(self, state: RunState) -> None:
        self._end_text()
        self.write(R.header_text(state) + "\n")
        self.ended = True

    def finish(self, state: RunState) -> None:
        if not self.ended:
            self.run_ended(state)


def _indent(text: str) -> str:
    """Every line of the answer under the header (the first line's indent is written once)."""
    return text.replace("\n", "\n  ")


ANSWERS = (
    "      y: run it · n or Enter: deny · a: approve it and the other calls of this turn · "
    "?: these details · any other text: deny, with it as the reason the model reads\n"
)


class TerminalApprover:
    """The approval question of one run's calls on the terminal (see the module docstring).

    describe: the description of a tool by name, for `?`.
    """

    def __init__(self, describe: Callable[[str], str | None] = lambda _name: None) -> None:
        self.describe = describe
        self.all_steps: set[int] = set()  # turns whose calls the user approved with `a`

    async def ask(self, record: ToolCallRecord) -> Approval:
        call = f"{record.name}({arg_summary(record, 70)})"
        async with _one_question():
            if record.step in self.all_steps:
                _write(f"    ✓ approved with the other calls of its turn: {call}\n")
                _write(arguments_text(record))
                return Approval(True)
            _write(f"    {record.name} needs your approval; its arguments:\n")
            _write(arguments_text(record))
            prompt = f"    ? approve {call}? [y/N/a/?, or a reason to deny] "
            while True:
                try:
                    answer = (await _question(prompt)).strip()
                except (EOFError, OSError):
                    return Approval(False, "no one was there to approve it")
                if answer != "?":
                    break
                _write(self.details(record))
        word = answer.lower()
        if word in ("a", "all"):
            self.all_steps.add(record.step)
        if word in ("y", "yes", "a", "all"):
            return Approval(True)
        if word in ("", "n", "no"):
            return Approval(False)
        return Approval(False, answer)

    def details(self, record: ToolCallRecord) -> str:
        """What `?` prints: the tool's description, the arguments as JSON, the answers."""
        lines = [f"    {record.name}: {self.describe(record.name) or '(no description)'}\n"]
        shown = pretty_json(record.arguments) if record.arguments is not None else None
        body = shown if shown is not None else record.raw_arguments or "{}"
        lines += [f"      {line}\n" for line in f"arguments (JSON):\n{body}".splitlines()]
        return "".join(lines) + ANSWERS


def arguments_text(record: ToolCallRecord) -> str:
    """Every argument whole, one per line; a value of several lines indented under its name."""
    args = record.arguments
    if not isinstance(args, dict):
        return f"      {record.raw_arguments or '(no arguments)'}\n"
    if not args:
        return "      (no arguments)\n"
    out = []
    for key, value in args.items():
        shown = value if isinstance(value, str) else pretty_json(value)
        first, *rest = shown.split("\n")
        out.append(f"      {key}: {first}\n")
        out += [f"        {line}\n" for line in rest]
    return "".join(out)


async def _question(prompt: str) -> str:
    """Ask on the terminal, holding the run's other output until the answer (see `_Held`)."""
    _HELD.asking += 1
    try:
        answer = await read_line(prompt)
        if _terminal_fd() is None:  # a pipe echoes no Enter: end the question's line here
            _write("\n")
        return answer
    finally:
        _HELD.asking -= 1
        if not _HELD.asking:
            _HELD.release()


class _Held:
    """The run's output while a question waits on the terminal: held, then printed after it."""

    def __init__(self) -> None:
        self.asking = 0
        self.texts: list[tuple[TextIO, str]] = []

    def hold(self, out: TextIO, text: str) -> bool:
        if not self.asking:
            return False
        self.texts.append((out, text))
        return True

    def release(self) -> None:
        texts, self.texts = self.texts, []
        for out, text in texts:
            _put(out, text)


_HELD = _Held()


_questions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def _one_question() -> asyncio.Lock:
    """Parallel calls that need approval are asked one after another: the terminal has one
    line to answer on."""
    loop = asyncio.get_running_loop()
    lock = _questions.get(loop)
    if lock is None:
        lock = _questions[loop] = asyncio.Lock()
    return lock


async def read_line(prompt: str) -> str:
    """Write `prompt` and return the line typed at the terminal (without its newline).

    Raises EOFError on Ctrl-D; cancelling it stops reading at once (see the module docstring).
    """
    fd = _terminal_fd()
    if fd is None:
        return await asyncio.to_thread(input, prompt)
    loop = asyncio.get_running_loop()
    reader = _LineReader(fd, loop.create_future())
    try:
        loop.add_reader(fd, reader.readable)
    except (NotImplementedError, ValueError, OSError):  # a loop that can not watch the terminal
        return await asyncio.to_thread(input, prompt)
    try:
        _write(prompt)
        return await reader.done
    except asyncio.CancelledError:
        _write("\n")  # end the question's line (the terminal echoed ^C on it)
        raise
    finally:
        loop.remove_reader(fd)


def _terminal_fd() -> int | None:
    try:
        fd = sys.stdin.fileno()
    except (AttributeError, ValueError, OSError):  # stdin replaced or closed
        return None
    return fd if os.isatty(fd) else None


def _write(text: str) -> None:
    _put(sys.stdout, text)


def _put(out: TextIO, text: str) -> None:
    try:
        out.write(text)
        out.flush()
    except (OSError, ValueError):  # a closed stream must not break the run
        pass


class _LineReader:
    """Collects what the terminal hands over (a whole line at a time in its usual cooked mode)
    until a newline; an empty read is Ctrl-D on an empty line."""

    def __init__(self, fd: int, done: asyncio.Future[str]) -> None:
        self.fd, self.done, self.text = fd, done, ""
        try:
            factory = codecs.getincrementaldecoder(sys.stdin.encoding or "utf-8")
        except (AttributeError, LookupError):
            factory = codecs.getincrementaldecoder("utf-8")
        self.decoder = factory(errors="replace")

    def readable(self) -> None:
        if self.done.done():
            return
        try:
            data = os.read(self.fd, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self.done.set_exception(exc)
            return
        if not data:
            self.done.set_exception(EOFError())
            return
        self.text += self.decoder.decode(data)
        if "\n" in self.text:
            self.done.set_result(self.text.split("\n", 1)[0].rstrip("\r"))
