"""The model's Markdown on a terminal, rendered with rich when it is installed (`llm-magic[rich]`).

A turn's text streams into a rich `Live` area that re-renders the Markdown as it grows (at most
every `INTERVAL` seconds, on the loop thread: no refresh thread) and leaves the final render in
place when the turn ends, so the answer shows once, rendered. Without rich, or when the output
is not a terminal (a pipe, a log), the text streams as it comes, unrendered.
"""

from __future__ import annotations

import importlib.util
import time
from typing import Any, TextIO

INTERVAL = 0.08  # seconds between two renders of a growing answer
INDENT = 2  # the answer sits under the run's header line
WIDTH = 100  # at most: a heading centred over a wide terminal reads badly


def can_render(out: TextIO) -> bool:
    """True when `out` is a terminal and rich is installed."""
    try:
        tty = out.isatty()
    except (AttributeError, ValueError, OSError):
        return False
    return tty and importlib.util.find_spec("rich") is not None


def _markdown(text: str) -> Any:
    from rich.markdown import Markdown
    from rich.padding import Padding

    return Padding(Markdown(text), (0, 0, 0, INDENT))


class LiveMarkdown:
    """One turn's text, re-rendered in place while it streams (see the module doc)."""

    def __init__(self, out: TextIO) -> None:
        from rich.console import Console
        from rich.live import Live

        console = Console(file=out)
        if console.width > WIDTH:
            console = Console(file=out, width=WIDTH)
        self._live = Live(
            console=console,
            auto_refresh=False,
            redirect_stdout=False,
            redirect_stderr=False,
            vertical_overflow="crop",  # while it streams; the final render shows it all
        )
        self._live.start()
        self._shown_at = 0.0

    def update(self, text: str) -> None:
        now = time.monotonic()
        if now - self._shown_at >= INTERVAL:
            self._shown_at = now
            self._live.update(_markdown(text), refresh=True)

    def finish(self, text: str) -> None:
        """The whole text, rendered once more, left on the terminal."""
        self._live.update(_markdown(text))
        self._live.stop()


def render_text(text: str, width: int | None = None) -> str:
    """`text` rendered to a string with the terminal's colours (for IPython's `Out[]`)."""
    from rich.console import Console

    console = Console(width=width, force_terminal=True)
    if width is None and console.width > WIDTH:
        console = Console(width=WIDTH, force_terminal=True)
    with console.capture() as captured:
        console.print(_markdown(text))
    return captured.get().rstrip("\n")
