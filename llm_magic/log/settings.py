"""Whether runs are logged, and where: the environment's word, unless the notebook set one.

`LLM_MAGIC_LOG=0` (or `false`, `no`, `off`) turns the log off, `LLM_MAGIC_LOG_PATH` moves it;
`%config LLMMagic.log = False` and `%config LLMMagic.log_path = "..."` (or `configure()`) win
over the environment for the session. By default the log is on, in the user's data directory
(`platformdirs.user_data_dir("llm_magic")`, e.g. ~/.local/share/llm_magic/log.db on Linux).
"""

from __future__ import annotations

import os
from pathlib import Path

ENABLED_ENV = "LLM_MAGIC_LOG"
PATH_ENV = "LLM_MAGIC_LOG_PATH"
_OFF = ("0", "false", "no", "off")

_enabled: bool | None = None  # None: the environment decides
_path: str | None = None


def configure(*, enabled: bool | None = None, path: str | None = None) -> None:
    """Set the session's choice; None gives the decision back to the environment."""
    global _enabled, _path
    _enabled, _path = enabled, path or None


def env_enabled() -> bool:
    return os.environ.get(ENABLED_ENV, "1").strip().lower() not in _OFF


def enabled() -> bool:
    return env_enabled() if _enabled is None else _enabled


def default_path() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("llm_magic", appauthor=False)) / "log.db"


def chosen() -> str | None:
    """The file the session or the environment chose (None: the default), read cheaply."""
    return _path or os.environ.get(PATH_ENV)


def path(where: str | None = None) -> Path:
    """The database file runs are written to (and read from): `where` (a `chosen()` read
    earlier), or the one chosen now."""
    where = where or chosen()
    return Path(where).expanduser() if where else default_path()
