"""Notebook defaults as a traitlets `Configurable`: `%config LLMMagic.max_steps = 3`.

The traits are not written out here: they are derived from the option declarations
(`ChainOptions` and `CellOptions`, every field whose `Option` says `config`), so a new option
is configurable the moment it is declared. The same class reads IPython profile configuration
(`c.LLMMagic.history_window = 20` in `ipython_config.py`). Outside IPython a standalone instance
holds the defaults.

Precedence for the model: an explicit `--model` / `model=`, then `LLMMagic.default_model`, then
the environment variable `LLM_MAGIC_MODEL`, then a model of the first provider with a key
(`OPENAI_API_KEY`, `ANTHROPIC_API_KEY`, `GEMINI_API_KEY`), then the embedded `local` model.
"""

from __future__ import annotations

import typing
from typing import Any

from traitlets import Bool, Enum, Float, Int, TraitType, Unicode, default, observe
from traitlets.config import Configurable

from ..log import settings as log_settings
from ..options import ChainOptions, default_of, field_hints, literal_values, options_of
from .cell_options import CellOptions

MODEL_ENV = "LLM_MAGIC_MODEL"
_TRAITS: dict[type, type[TraitType[Any, Any]]] = {bool: Bool, int: Int, float: Float, str: Unicode}


def _trait(hint: Any, default: Any, help: str) -> TraitType[Any, Any]:
    optional = type(None) in typing.get_args(hint)
    words = literal_values(hint)
    if words:  # one of some words: only those are taken
        if optional:
            return Enum(list(words), default, allow_none=True, help=help).tag(config=True)
        return Enum(list(words), default, help=help).tag(config=True)
    kinds = [k for k in typing.get_args(hint) if k is not type(None)] or [hint]
    trait = _TRAITS[kinds[0]]
    return trait(default, allow_none=optional, help=help).tag(config=True)


def _declared_traits() -> dict[str, TraitType[Any, Any]]:
    traits: dict[str, TraitType[Any, Any]] = {}
    for cls in (CellOptions, ChainOptions):
        hints = field_hints(cls)
        for f, meta in options_of(cls):
            name = meta.config_name(f.name)
            if name:
                traits[name] = _trait(hints[f.name], default_of(f), meta.help)
    return traits


def config_names() -> dict[str, str]:
    """Field name -> trait name, for every configurable option."""
    out = {}
    for cls in (CellOptions, ChainOptions):
        for f, meta in options_of(cls):
            name = meta.config_name(f.name)
            if name:
                out[f.name] = name
    return out


class LLMMagicBase(Configurable):
    """Defaults for `%%llm_chain` and `llm_magic.notebook.chain(...)` (traits: module doc)."""

    # The run log (llm_magic.log): not run options, so declared here rather than derived.
    log = Bool(help="write every run to the run log (%llm_log); default: LLM_MAGIC_LOG").tag(
        config=True
    )
    log_path = Unicode(
        "", help="the run log's SQLite file; empty: LLM_MAGIC_LOG_PATH, else the data directory"
    ).tag(config=True)

    @default("log")
    def _log_from_environment(self) -> bool:
        return log_settings.env_enabled()

    @observe("log", "log_path")
    def _log_changed(self, _change: Any) -> None:
        self.apply_log_settings()

    def apply_log_settings(self) -> None:
        """Give the run log this configuration's choice (the environment's, where it agrees)."""
        on = self.log
        log_settings.configure(
            enabled=None if on == log_settings.env_enabled() else on, path=self.log_path or None
        )

    def defaults(self) -> dict[str, Any]:
        """The configured default of every option, by option (field) name."""
        return {field: getattr(self, trait) for field, trait in config_names().items()}

    def effective(self) -> dict[str, Any]:
        """Every configurable value, by trait name."""
        return {name: getattr(self, name) for name in self.class_trait_names(config=True)}


LLMMagic: type[LLMMagicBase] = type(
    "LLMMagic", (LLMMagicBase,), {"__doc__": LLMMagicBase.__doc__, **_declared_traits()}
)

_active: LLMMagicBase | None = None  # the loaded extension's instance (registered with %config)
_standalone: LLMMagicBase | None = None


def set_active(config: LLMMagicBase | None) -> None:
    global _active
    _active = config


def get_config() -> LLMMagicBase:
    """The instance `%config` changes when the extension is loaded, else a standalone one."""
    if _active is not None:
        return _active
    global _standalone
    if _standalone is None:
        _standalone = LLMMagic()
    return _standalone
