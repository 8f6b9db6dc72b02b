"""The notebook's user-facing errors: one line in a cell, not a traceback."""

from __future__ import annotations

from ..errors import ConfigError


class NotebookError(ConfigError):
    """A mistake the user can fix (bad option, unknown tool or model), shown as one line.

    IPython calls `_render_traceback_` instead of printing a traceback, so a cell that fails
    this way shows only the message: what is wrong and what would be right.
    """

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


def one_line(exc: BaseException) -> BaseException:
    """Make IPython show `exc` as one line, keeping its type (so `except ProviderError` works)."""
    line = f"{type(exc).__name__}: {exc}"
    try:
        exc._render_traceback_ = lambda: [line]  # type: ignore[attr-defined]
    except (AttributeError, TypeError):  # an exception type with __slots__
        pass
    return exc
