"""llm_magic: let an LLM use a notebook's own Python functions as tools, and see every step.

The core (tools, chain, events, providers) works in plain Python; the notebook layer
(`%load_ext llm_magic`, `%%llm_chain`, the timeline) is imported only when used.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Unpack

from . import log, traces, views
from ._http import RetryPolicy
from .chain import ChainRun
from .errors import (
    AuthenticationError,
    ConfigError,
    LLMMagicError,
    MissingKeyError,
    ModelNotFoundError,
    ModelShutDownError,
    OutputValidationError,
    ProviderError,
    RateLimitError,
    RefusalError,
    StreamError,
    ToolArgumentsError,
    ToolDefinitionError,
    ToolError,
    UnknownModelError,
)
from .kernel_tools import NotebookTools, notebook_tools
from .media import Media, MediaError
from .messages import Message, ToolCall, ToolResult, Usage
from .models import (
    AsyncConversation,
    AsyncModel,
    ChainResponse,
    Conversation,
    Model,
    get_async_model,
    get_model,
)
from .options import Approval, ApprovalCallback, ChainKwargs, ChainOptions
from .records import ToolCallRecord
from .registry import register_alias
from .results import ChainResult
from .tools import Tool, ToolOptions, async_tool_is, cancel_event, tool

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from .mcp_servers import MCPServer
    from .mcp_settings import MCPServerKwargs

__version__ = "0.1.0"

# Every run is logged (llm_magic.log) and traced when the program traces (llm_magic.traces),
# whatever started it: both observe runs as views do.
views.observe(log.observe)
views.observe(traces.observe)

__all__ = [
    "Approval",
    "ApprovalCallback",
    "AsyncConversation",
    "AsyncModel",
    "AuthenticationError",
    "ChainKwargs",
    "ChainOptions",
    "ChainResponse",
    "ChainResult",
    "ChainRun",
    "ConfigError",
    "Conversation",
    "LLMMagicError",
    "Media",
    "MediaError",
    "Message",
    "MissingKeyError",
    "Model",
    "ModelNotFoundError",
    "ModelShutDownError",
    "NotebookTools",
    "OutputValidationError",
    "ProviderError",
    "RateLimitError",
    "RefusalError",
    "RetryPolicy",
    "StreamError",
    "Tool",
    "ToolArgumentsError",
    "ToolCall",
    "ToolCallRecord",
    "ToolDefinitionError",
    "ToolError",
    "ToolOptions",
    "ToolResult",
    "UnknownModelError",
    "Usage",
    "async_tool_is",
    "cancel_event",
    "chain",
    "get_async_model",
    "get_model",
    "load_ipython_extension",
    "log",
    "mcp",
    "notebook_tools",
    "register_alias",
    "tool",
    "traces",
    "unload_ipython_extension",
]


async def chain(
    prompt: str,
    *,
    model: str | AsyncModel | None = None,
    tools: Iterable[Any] = (),
    system: str | None = None,
    continue_: ChainResult[Any] | None = None,
    api_key: str | None = None,
    base_url: str | None = None,
    **options: Unpack[ChainKwargs],
) -> ChainResult[ChainRun]:
    """Run `prompt` with `tools` until the model answers: `result = await llm_magic.chain(...)`.

    Stateless: each call is a new conversation, or a fork of the result given as `continue_`
    (which never changes). model: an id or alias (`get_async_model`'s default when None) or an
    `AsyncModel`; when continuing, the result's model unless given. api_key / base_url: for a
    model given by id. The options are
    `ChainOptions`' fields. With the notebook extension loaded, the run shows its timeline;
    `%%llm_chain` and `llm_magic.notebook.chain` add the notebook's own conversation. For the
    run's events as they happen, use `get_async_model(...).chain(...)`, a `ChainRun`.
    """
    if continue_ is not None and not isinstance(continue_, ChainResult):
        raise TypeError(
            "continue_ takes the result to go on from (what an earlier chain returned), or None "
            f"for a new conversation; got {continue_!r}"
        )
    if continue_ is not None and model is None:
        conversation = continue_.conversation
        model = getattr(conversation, "model", None)
        if isinstance(model, Model):
            model = model.to_async()
    if isinstance(model, AsyncModel):
        chosen = model
    else:
        chosen = get_async_model(model, api_key=api_key, base_url=base_url)
    history = continue_.messages if continue_ is not None else ()
    spent = continue_.conversation_cost if continue_ is not None else Decimal(0)
    conversation = AsyncConversation(
        chosen, system=system, tools=tools, messages=history, cost=spent
    )
    return await conversation.chain(prompt, **options)


def mcp(
    target: str | Sequence[str] | None = None,
    *,
    name: str | None = None,
    **settings: Unpack[MCPServerKwargs],
) -> MCPServer:
    """An MCP server whose tools a chain may call: `tools=[llm_magic.mcp("npx -y server"), f]`.

    `target`: a command line (stdio), an argv list, or an `http(s)://` URL (streamable HTTP).
    Keywords: name, and the settings of `llm_magic.mcp_settings.MCPServerKwargs`: env, cwd,
    headers, approve, timeout, startup_timeout, tools (a subset), optional, ask (see
    `llm_magic.mcp_registry.mcp`).
    Needs the official SDK, mcp 2.x: `pip install 'llm-magic[mcp]'`.
    """
    from .mcp_registry import mcp as make

    return make(target, name=name, **settings)


def load_ipython_extension(ipython: InteractiveShell) -> None:
    from .notebook.magics import load

    load(ipython)


def unload_ipython_extension(ipython: InteractiveShell) -> None:
    from .notebook.magics import unload

    unload(ipython)
