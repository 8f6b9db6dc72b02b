"""The live timeline widget: one anywidget model per run, its front end in static/timeline.js.

The front end (module and CSS, ~28 KB) travels once per kernel, in one shared `TimelineAssets`
model; each run's widget carries a small loader (static/loader.js) and a reference to it.

Python renders every entry's HTML (the same fragments as the saved timeline, see `render`); the
front end places the entries and does the interaction: toggles, copy to the clipboard, the
approval card (the decision and its reason leave as ONE message with the click, so a reason typed
while the cell runs is never cut to its first character), Cancel, follow-the-tail, a sticky
header, live elapsed times.

State goes out as patches: `patch` holds the entries changed since the last flush with a sequence
number, so a flush costs what changed, not the size of the run. A view that opens later (a page
reload, a second view) asks for the full state: `get_state()` then hands it a full snapshot; a
view made again in the same page (a display updated) finds the store by the widget's `key`, and
one that missed entries asks for them (a `snapshot` message: `reset` sends them all).
Messages from the front end arrive on whatever thread ipykernel dispatches them on; `on_action`
is the controller's, which hands them to the loop.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anywidget
import ipywidgets
import traitlets

from .styles import CSS, compact_css

STATIC = Path(__file__).with_name("static")
Action = Callable[[dict[str, Any]], None]


def compact_js(source: str) -> str:
    """The module without its comment lines and indentation (a line comment after code stays:
    telling it from a `//` in a string needs a parser)."""
    lines = (line.strip() for line in source.splitlines())
    return "\n".join(line for line in lines if line and not line.startswith("//"))


class TimelineAssets(ipywidgets.Widget):  # type: ignore[misc]  # ipywidgets is untyped
    """The timeline's front end (module and CSS), sent once per kernel: each run's widget refers
    to this model instead of carrying ~28 KB of its own (`static/loader.js` loads it)."""

    esm = traitlets.Unicode("").tag(sync=True)
    css = traitlets.Unicode("").tag(sync=True)


_assets: list[TimelineAssets] = []


def shared_assets() -> TimelineAssets:
    """The kernel's one `TimelineAssets` (made again if it was closed)."""
    if not _assets or _assets[0].comm is None:
        # the live view's layout, then the look of the fragments Python renders (shared with
        # the saved timeline, see `styles`), without comments
        css = compact_css((STATIC / "timeline.css").read_text(encoding="utf-8") + CSS)
        esm = compact_js((STATIC / "timeline.js").read_text(encoding="utf-8"))
        _assets[:] = [TimelineAssets(esm=esm, css=css)]
    return _assets[0]


class TimelineWidget(anywidget.AnyWidget):
    """One run's live view (see the module doc)."""

    # A small loader: the timeline's module and CSS come from the kernel's shared `assets`.
    # A string, not a Path: for a Path anywidget connects every instance to the file's change
    # signal (for hot reload), which keeps each run's widget, and its timeline, alive for ever.
    # Declared as traits (with anywidget's id for the class), so that anywidget adds none to
    # each instance: see `add_traits`.
    _esm = traitlets.Unicode((STATIC / "loader.js").read_text(encoding="utf-8")).tag(sync=True)
    _anywidget_id = traitlets.Unicode(f"{__name__}.TimelineWidget").tag(sync=True)
    assets = traitlets.Instance(ipywidgets.Widget).tag(sync=True, **ipywidgets.widget_serialization)

    header = traitlets.Unicode("").tag(sync=True)
    note = traitlets.Unicode("").tag(sync=True)
    running = traitlets.Bool(True).tag(sync=True)
    has_calls = traitlets.Bool(False).tag(sync=True)
    patch = traitlets.Dict().tag(sync=True)
    generation = traitlets.Int(0).tag(sync=True)  # which run it shows (a re-run: the next one)
    editable = traitlets.Bool(False).tag(sync=True)  # its run ended and it offers edits
    history = traitlets.Unicode("").tag(sync=True)  # the runs shown before this one (static)
    allowed = traitlets.List(traitlets.Unicode()).tag(sync=True)  # tools always allowed
    # what the front end keys its store by: anywidget gives each view its own proxy of the model
    key = traitlets.Unicode("").tag(sync=True)

    def __init__(
        self, snapshot: Callable[[], list[dict[str, Any]]], on_action: Action, **traits: Any
    ) -> None:
        """traits: the first values of synced traits (the header), sent with the model."""
        self._snapshot = snapshot
        self._on_action = on_action
        self._seq = 0
        super().__init__(
            _dom_classes=["llm-magic-timeline-widget"],
            key=uuid.uuid4().hex,
            assets=shared_assets(),
            **traits,
        )
        self.on_msg(self._message)

    def add_traits(self, **traits: Any) -> None:
        """Add only the traits the class does not declare. anywidget adds `_esm` and its id to
        each instance unless they are traits already, and traitlets adds traits by making a new
        class for the instance: about 1 ms of every run, for values the class already holds."""
        new = {name: trait for name, trait in traits.items() if not self.has_trait(name)}
        if new:
            super().add_traits(**new)

    def send_entries(self, entries: list[dict[str, Any]]) -> None:
        """Send the entries changed since the last flush (one comm message)."""
        self._seq += 1
        self.patch = {"seq": self._seq, "full": False, "entries": entries}

    def reset(self, entries: list[dict[str, Any]]) -> None:
        """Replace every entry (the view now shows another run): a full patch."""
        self._seq += 1
        self.patch = {"seq": self._seq, "full": True, "entries": entries}

    def close_all(self) -> None:
        """Close the widget and its layout: nothing of this run stays in the kernel."""
        layout = self.layout
        self.close()
        if layout is not None:
            layout.close()

    def get_state(self, key: Any = None, drop_defaults: bool = False) -> dict[str, Any]:
        state: dict[str, Any] = super().get_state(key, drop_defaults)
        if key is None and "patch" in state:  # a whole-state request: a full snapshot
            state["patch"] = {"seq": self._seq, "full": True, "entries": self._snapshot()}
        return state

    def _message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if isinstance(content, dict) and isinstance(content.get("type"), str):
            self._on_action(content)
