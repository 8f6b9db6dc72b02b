"""Where a timeline shows in its cell: the display that holds the live widget, and the saved
copy displayed just before it for a view that stays live after its run (`saved_copy`).

When the run ends the display is updated in place: to the static timeline (the default: the
widget is then closed), or, for a view that stays live, to the widget again with its saved copy
brought up to date. A change after that (a let-go thread's late result) updates the static
timeline again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import saved_copy

Bundle = dict[str, str]


class Outputs:
    """A timeline's displays. static: the static timeline's bundle, rendered when asked."""

    def __init__(self, static: Callable[[], Bundle]) -> None:
        self.static = static
        self.handle: Any = None  # the view's display, once shown
        self.copy: Any = None  # the saved copy's display, for a view that outlives its run

    @property
    def shown(self) -> bool:
        return self.handle is not None

    def show(self, view: Any, *, live: bool) -> None:
        """Display `view` (its `_repr_mimebundle_`); a live one after its saved copy."""
        from IPython.display import display

        if live:
            copy = saved_copy.copy_bundle(self.static())
            self.copy = display(copy, raw=True, display_id=True)  # type: ignore[no-untyped-call]
        self.handle = display(view, display_id=True)  # type: ignore[no-untyped-call]

    def become_static(self) -> None:
        """The display becomes the static timeline (its saved copy, if any, is emptied)."""
        if self.copy is not None:
            self.copy.update(saved_copy.EMPTY, raw=True)
            self.copy = None
        self.handle.update(self.static(), raw=True)

    def refresh(self, view: Any) -> None:
        """Show `view` again (it stays live), with its saved copy brought up to date."""
        self.handle.update(view)
        if self.copy is not None:
            self.copy.update(saved_copy.copy_bundle(self.static()), raw=True)

    def beside_widget(self, bundle: dict[str, Any]) -> dict[str, Any]:
        """The rest of the view's bundle: the static timeline, or, when the saved copy above
        holds it, one line for viewers without the widget."""
        if self.copy is None:
            bundle.update(self.static())
        else:
            bundle["text/plain"] = saved_copy.WIDGET_TEXT
        return bundle
