"""`notebook_tools()`: the kernel's own variables as tools, asked for here, made by the notebook.

The core reads no IPython shell, so what `notebook_tools()` returns is a tool source (like an MCP
server, see `sources.py`) whose tools the notebook layer makes when a run starts, over the
shell's namespace and history at that moment: `%load_ext llm_magic` registers the maker in
`serve` (and `%unload_ext` removes it), as it registers the run's view in `views.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .errors import ConfigError
from .tools import Tool


@dataclass(frozen=True)
class NotebookTools:
    """The notebook's tools, read-only unless `run_python`: `list_variables`,
    `describe_variable`, `read_cell`, `recent_cells` (and `run_python`, always approved by
    the user first)."""

    run_python: bool = False

    async def list_tools(self) -> list[Tool]:
        if serve is None:
            raise ConfigError(
                "notebook_tools() reads the variables of an IPython kernel: load the extension "
                "first (%load_ext llm_magic)"
            )
        return serve(self)


# the notebook layer's maker of the tools over the running shell (set by `%load_ext`)
serve: Callable[[NotebookTools], list[Tool]] | None = None


def notebook_tools(*, run_python: bool = False) -> NotebookTools:
    """The kernel's variables as tools: `tools=[llm_magic.notebook_tools(), my_function]`.

    Read-only by default: the model can list the notebook's variables, describe one (a
    DataFrame's shape, dtypes, head and summary; an array's statistics; any object's repr,
    docstring and signature) and read cells. `run_python=True` adds a tool that runs code in
    the kernel, each call only once the user approved it (whatever `approve` says).
    Names starting with `_`, modules, IPython's own and private variables (listed in
    `%config LLMMagic.private_names`, or objects whose class sets `__llm_private__ = True`)
    are never shown. `%%llm_chain --tools notebook` (or `notebook+run`) is the same.
    """
    return NotebookTools(run_python=run_python)
