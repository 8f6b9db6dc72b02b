"""llm_magic: let an LLM use a notebook's own Python functions as tools, and see every step.

The core (tools, chain, events, providers) works in plain Python; the notebook layer
(`%load_ext llm_magic`, `%%llm_chain`, the timeline) is imported only when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .chain import Approval, ChainOptions, ChainResult, ChainRun
from .errors import (
    AuthenticationError,
    ConfigError,
    LLMMagicError,
    MissingKeyError,
    ProviderError,
    RateLimitError,
    RefusalError,
    StreamError,
    ToolDefinitionError,
    ToolError,
    UnknownModelError,
)
from .events import ToolCallRecord
from .http import RetryPolicy
from .messages import Message, ToolCall, ToolResult, Usage
from .models import AsyncConversation, AsyncModel, ChainResponse, Conversation, Model
from .registry import get_async_model, get_model, register_alias
from .tools import Tool, async_tool_is, tool

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

__version__ = "0.1.0"

__all__ = [
    "Approval",
    "AsyncConversation",
    "AsyncModel",
    "AuthenticationError",
    "ChainOptions",
    "ChainResponse",
    "ChainResult",
    "ChainRun",
    "ConfigError",
    "Conversation",
    "LLMMagicError",
    "Message",
    "MissingKeyError",
    "Model",
    "ProviderError",
    "RateLimitError",
    "RefusalError",
    "RetryPolicy",
    "StreamError",
    "Tool",
    "ToolCall",
    "ToolCallRecord",
    "ToolDefinitionError",
    "ToolError",
    "ToolResult",
    "UnknownModelError",
    "Usage",
    "async_tool_is",
    "chain",
    "get_async_model",
    "get_model",
    "load_ipython_extension",
    "register_alias",
    "tool",
    "unload_ipython_extension",
]


async def chain(prompt: str, **kwargs: Any) -> ChainResult:
    """Run a chain from a notebook cell (`await llm_magic.chain(...)`) with its live timeline.

    Keyword arguments are the `%%llm_chain` options: tools, model, system, max_steps, timeout,
    approve, quiet, stream, continue_ (a result or conversation to go on with), and any
    `ChainOptions` field. Outside IPython it runs without a timeline.
    """
    from .notebook.session import run_chain

    return await run_chain(prompt, **kwargs)


def load_ipython_extension(ipython: InteractiveShell) -> None:
    from .notebook.magics import load

    load(ipython)


def unload_ipython_extension(ipython: InteractiveShell) -> None:
    from .notebook.magics import unload

    unload(ipython)
