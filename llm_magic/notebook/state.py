"""What the notebook remembers between cells, and the shell it lives in.

Module state, never ContextVars: a cell, a widget's click and a re-run all see the same
conversation and last result, whatever task or thread they run on.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..chain import ChainRun
    from ..models import AsyncConversation
    from ..results import ChainResult


class NotebookState:
    """The notebook's conversation (what `--continue` goes on with) and its last run."""

    def __init__(self) -> None:
        self.conversation: AsyncConversation | None = None
        self.last_result: ChainResult[Any] | None = None
        self.last_run: ChainRun | None = None


state = NotebookState()


def reset_conversation() -> None:
    """Forget the notebook's conversation: the next `--continue` starts afresh."""
    state.conversation = None


def current_conversation() -> AsyncConversation | None:
    return state.conversation


def shell() -> Any:
    """The running IPython shell, or None; never imports IPython itself."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return None
    try:
        return ipython.get_ipython()
    except Exception:
        return None
