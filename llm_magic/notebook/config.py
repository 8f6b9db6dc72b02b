"""Notebook defaults as a traitlets `Configurable`: `%config LLMMagic.default_model = "..."`.

The same class reads IPython profile configuration (`c.LLMMagic.history_window = 20` in
`ipython_config.py`). Outside IPython a standalone instance holds the defaults, so
`await llm_magic.chain(...)` in a plain script behaves the same way.

Precedence for the model: an explicit `--model` / `model=`, then `LLMMagic.default_model`, then
the environment variable `LLM_MAGIC_MODEL`, then a model of the first provider with a key
(`OPENAI_API_KEY`, `ANTHROPIC_API_KEY`, `GEMINI_API_KEY`), then the embedded `local` model.
"""

from __future__ import annotations

from typing import Any

from traitlets import Bool, Float, Int, Unicode
from traitlets.config import Configurable

MODEL_ENV = "LLM_MAGIC_MODEL"


class LLMMagic(Configurable):
    """Defaults for `%%llm_chain` and `await llm_magic.chain(...)`."""

    default_model = Unicode(
        "",
        help="Model id or alias used when no --model is given. Empty: LLM_MAGIC_MODEL, else a "
        "model of the first provider with an API key set, else 'local'.",
    ).tag(config=True)
    default_max_steps = Int(
        0,
        help="Rounds of tool calls a run may take before it must answer. 0: the model's own "
        "default (10; 1 for the small local model, which cannot tell when to stop).",
    ).tag(config=True)
    history_window = Int(
        40,
        help="Most messages of an earlier conversation sent with a continued run (0: all). "
        "The cut is made at a user message, so no tool call is separated from its result.",
    ).tag(config=True)
    auto_continue = Bool(
        False,
        help="Every %%llm_chain cell continues the notebook's conversation, as if --continue "
        "were given (--reset starts a fresh one).",
    ).tag(config=True)
    stream = Bool(True, help="Stream model text as it arrives.").tag(config=True)
    quiet = Bool(False, help="No timeline: only the answer.").tag(config=True)
    static_after_run = Bool(
        False,
        help="When a run ends, replace its live widget by the static HTML timeline (entries "
        "still expand). For notebooks saved with widget state, whose viewers would otherwise "
        "show the widget, which needs a kernel or the widget scripts.",
    ).tag(config=True)
    timeout = Float(
        None, allow_none=True, help="Wall-time limit of a run in seconds (None: no limit)."
    ).tag(config=True)
    interpolate = Bool(
        True, help="Fill {name} placeholders of %%llm_chain cells from the user namespace."
    ).tag(config=True)
    system = Unicode(None, allow_none=True, help="System prompt used when none is given.").tag(
        config=True
    )

    def effective(self) -> dict[str, Any]:
        """Every configurable value, by name."""
        return {name: getattr(self, name) for name in self.class_trait_names(config=True)}


_active: LLMMagic | None = None  # the loaded extension's instance (registered with %config)
_standalone: LLMMagic | None = None


def set_active(config: LLMMagic | None) -> None:
    global _active
    _active = config


def get_config() -> LLMMagic:
    """The instance `%config` changes when the extension is loaded, else a standalone one."""
    if _active is not None:
        return _active
    global _standalone
    if _standalone is None:
        _standalone = LLMMagic()
    return _standalone
