"""Exceptions raised by llm_magic. Every message is written for the person reading it.

API keys never appear in these messages: providers build them from status, the provider's
own error text and the request id only.
"""

from __future__ import annotations

import functools
import traceback
from collections.abc import Callable
from pathlib import Path

# Frames of these packages are the machinery under a run, not the user's code: an error that
# `user_traceback` shows leaves them out (the full traceback stays on the exception).
_MACHINERY = frozenset(
    {
        "llm_magic",
        "httpx",
        "httpx2",
        "httpcore",
        "anyio",
        "h11",
        "h2",
        "asyncio",
        "IPython",
        "ipykernel",
    }
)
_HERE = Path(__file__).resolve().parent


@functools.cache
def _stdlib() -> Path:
    import sysconfig  # only when an error is shown: not on the import path of every run

    return Path(sysconfig.get_paths()["stdlib"]).resolve()


def _machinery(filename: str) -> bool:
    """A frame of llm_magic, of the libraries under it, or of Python's own library."""
    if filename.startswith("<frozen"):
        return True
    path = Path(filename).resolve()
    installed = "site-packages" in path.parts or "dist-packages" in path.parts
    if path.is_relative_to(_HERE) or (path.is_relative_to(_stdlib()) and not installed):
        return True
    return any(part in _MACHINERY for part in path.parts[:-1])


def user_traceback(exc: BaseException) -> list[str]:
    """`exc` as the user needs it: the frames of their own code, then one line, and where the
    cause is (no frames of llm_magic, httpx or asyncio, no chained transport error).

    IPython (a notebook, terminal IPython) shows this instead of the full traceback for the
    errors that define `_render_traceback_` with it: a provider that cannot be reached, a
    missing key, an unknown model. `traceback.print_exception(err)` still prints everything.
    """
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not _machinery(f.filename)]
    lines = (
        ["Traceback (most recent call last):\n", *traceback.format_list(frames)] if frames else []
    )
    lines.append(f"{type(exc).__name__}: {exc}")
    cause = exc.__cause__
    if cause is not None:
        lines.append(
            f"  (caused by {type(cause).__name__}: {cause}; it is the error's __cause__, "
            "and traceback.print_exception(err) shows every frame)"
        )
    # Python's column markers (^^^ under the call) only wrap in a narrow output: left out
    return [line for line in "\n".join(lines).splitlines() if line.strip(" ^~")]


class LLMMagicError(Exception):
    """Base class of every error llm_magic raises on purpose."""


class ConfigError(LLMMagicError):
    """Bad configuration: unknown model, missing key, bad option."""

    def _render_traceback_(self) -> list[str]:
        return user_traceback(self)


class UnknownModelError(ConfigError):
    """No provider serves this model id; the notebook suggests close ids."""


class ModelShutDownError(ConfigError):
    """The model catalog knows this model to be shut down; the message gives the date and the
    vendor's current models (llm_magic.catalog)."""


class MissingKeyError(ConfigError):
    """No API key for a provider; the message names the environment variable to set."""


class ToolDefinitionError(LLMMagicError):
    """A function cannot become a tool (unsupported hint, duplicate name, bad pairing)."""


class ToolArgumentsError(LLMMagicError):
    """The model's arguments do not fit the tool's schema; sent back to the model as text."""


class ToolError(LLMMagicError):
    """A tool raised and the policy says to raise to the user instead of telling the model."""

    def __init__(self, tool_name: str, original: BaseException) -> None:
        super().__init__(f"tool {tool_name!r} raised {type(original).__name__}: {original}")
        self.tool_name = tool_name
        self.original = original


class OutputValidationError(LLMMagicError):
    """The model's final answer did not fit the run's `output_type`, twice."""


class LocalServerError(LLMMagicError, RuntimeError):
    """The local model server could not be started (or died); the message quotes its log."""

    def __init__(self, message: str, *, log_path: Path | None = None) -> None:
        super().__init__(message)
        self.log_path = log_path


class ProviderError(LLMMagicError):
    """An HTTP or protocol error from a model provider."""

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        status: int | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.provider = provider
        self.status = status
        self.request_id = request_id
        self.retry_after = retry_after
        self.provider_message = message
        super().__init__(self._format())

    def redact(self, clean: Callable[[str], str]) -> None:
        """Rewrite every string this error carries (the key scrubbed), keeping the type, and
        cut the exception chain: a chained exception (a JSONDecodeError's `doc`, an httpx2
        error's request) may quote the key in attributes no message shows."""
        self.provider_message = clean(self.provider_message)
        if self.request_id is not None:
            self.request_id = clean(self.request_id)
        self.__cause__ = self.__context__ = None
        self.__suppress_context__ = True
        self.args = (self._format(),)

    def _render_traceback_(self) -> list[str]:
        return user_traceback(self)

    def _format(self) -> str:
        head = self.provider or "provider"
        if self.status is not None:
            head += f" HTTP {self.status}"
        text = f"{head}: {self.provider_message}"
        if self.request_id:
            text += f" (request id {self.request_id})"
        return text


class AuthenticationError(ProviderError):
    """The provider rejected the API key (401, or Gemini's 400 API_KEY_INVALID)."""


class ModelNotFoundError(ProviderError):
    """The provider does not serve this model to this key; `available` lists what it does
    serve, where its list endpoint answered (empty otherwise)."""

    available: tuple[str, ...] = ()


class RateLimitError(ProviderError):
    """429 after the retries ran out, or a server asking to wait longer than the cap."""


class RefusalError(ProviderError):
    """The model refused to answer (OpenAI `refusal`, Anthropic `stop_reason: "refusal"`);
    the message is the model's own refusal text, or says that it gave none."""

    def __init__(self, refusal: str, *, provider: str = "") -> None:
        self.refusal = refusal
        super().__init__(f"the model refused: {refusal}", provider=provider)


class StreamError(ProviderError):
    """A streamed response stopped before its end; `partial_text` keeps what arrived."""

    def __init__(self, message: str, *, provider: str = "", partial_text: str = "") -> None:
        self.partial_text = partial_text
        super().__init__(message, provider=provider)

    def redact(self, clean: Callable[[str], str]) -> None:
        self.partial_text = clean(self.partial_text)
        super().redact(clean)


def scrub_exception(exc: BaseException, clean: Callable[[str], str]) -> None:
    """Scrub every string an exception carries, and those of the exceptions chained to it.

    A message is not enough: `json.JSONDecodeError.doc` holds the whole response text, and a
    `raise ... from None` still keeps the original as `__context__`, where a debugger, a
    logger or `traceback.print_exception(chain=True)` finds it. A `ProviderError` cuts its
    chain instead (see `ProviderError.redact`); any other error is scrubbed along its chain.
    """
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ProviderError):
            current.redact(clean)
        else:
            current.args = tuple(clean(a) if isinstance(a, str) else a for a in current.args)
        for name, value in list(vars(current).items()):
            if isinstance(value, str):
                setattr(current, name, clean(value))
        notes = getattr(current, "__notes__", None)
        if isinstance(notes, list):
            notes[:] = [clean(n) if isinstance(n, str) else n for n in notes]
        todo += [current.__cause__, current.__context__]
