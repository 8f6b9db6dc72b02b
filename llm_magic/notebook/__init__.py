"""The notebook layer: `%load_ext llm_magic`, `%%llm_chain`, `await llm_magic.chain(...)`.

Nothing here is imported by `import llm_magic`; IPython and ipywidgets are imported only by the
modules that need them, when they are first used.
"""

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


def __getattr__(name: str) -> object:
    """`llm_magic.notebook.chain`: the notebook's chain (timeline, notebook conversation);
    `llm_magic.notebook.edit`: edit and re-run a result's calls in a live timeline."""
    if name == "chain":
        from .session import run_chain

        return run_chain
    if name == "edit":
        from .editing import edit

        return edit
    raise AttributeError(name)


__all__ = ["NotebookError", "chain", "edit", "one_line"]
