"""The saved copy of a view that stays live after its run (`--live`): the static timeline in an
output of its own, just before the widget's.

A notebook saved while such a view is live holds the widget's model id, which no kernel knows
once it is reopened: JupyterLab then shows "Error displaying widget: model not found" (its
widget renderer falls back to no other type of the same output). The copy reads like a static
timeline there. Its `<style>` hides the copy while the live widget renders just after it, and
hides that output when it holds no timeline (the loading text, the error): in a trusted notebook
the reader sees one timeline either way. Viewers that drop `<style>` (an untrusted notebook,
whose widget output shows its text instead) show the copy and the one line below it.
"""

from __future__ import annotations

COPY_CLASS = "llm-saved-copy"
# JupyterLab and Notebook 7 put each output of a cell in a `.jp-OutputArea-child`; the widget's
# own element carries `llm-magic-timeline-widget` (its `_dom_classes`)
_STYLE = (
    "<style>"
    f".jp-OutputArea-child:has(.{COPY_CLASS}):has(+ .jp-OutputArea-child "
    ".llm-magic-timeline-widget){display:none}"
    f".jp-OutputArea-child:has(.{COPY_CLASS}) + "
    ".jp-OutputArea-child:not(:has(.llm-magic-timeline-widget)){display:none}"
    "</style>"
)
# what the widget's output holds beside the widget: a viewer without the widget shows this line
WIDGET_TEXT = "LLM timeline (live view; the output above is its saved copy)"
# the copy once the view became the static timeline itself ("Done"): nothing left to show
EMPTY = {"text/html": ""}


def copy_bundle(static: dict[str, str]) -> dict[str, str]:
    """The copy's output, from the static timeline's bundle (`text/html` and `text/plain`)."""
    html = f'<div class="{COPY_CLASS}">{_STYLE}{static["text/html"]}</div>'
    return {"text/plain": static["text/plain"], "text/html": html}
