"""The notebook layer: `%load_ext llm_magic`, `%%llm_chain`, `await llm_magic.chain(...)`.

Nothing here is imported by `import llm_magic`; IPython and ipywidgets are imported only by the
modules that need them, when they are first used.
"""

from __future__ import annotations

from .errors import NotebookError, one_line


def __getattr__(name: str) -> object:
    """`llm_magic.notebook.chain`: the notebook's chain (timeline, notebook conversation);
    `llm_magic.notebook.edit`: edit and re-run a result's calls in a live timeline."""
    if name == "chain":
        from .run import run_chain

        return run_chain
    if name == "edit":
        from .editing import edit

        return edit
    raise AttributeError(name)


__all__ = ["NotebookError", "chain", "edit", "one_line"]
