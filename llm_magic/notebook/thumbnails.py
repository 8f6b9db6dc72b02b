"""The images a model saw, as the timeline shows them: a thumbnail, and the image full size.

Sized by `width`/`height` attributes and passed through the sanitizer every tool's HTML goes
through (which keeps `data:` URLs of PNG and JPEG images only), so the saved notebook shows them
as the live view does, with no script and no stylesheet.
"""

from __future__ import annotations

import functools

from ..media import Media, describe, image_size
from .look import esc
from .values import safe_html

THUMBNAIL = 96  # pixels on the longer side of an image's thumbnail
FULL_SIZE = 900  # at most this wide when shown whole


def media_html(items: list[Media], longest: int) -> str:
    """The images the model saw, at most `longest` pixels on their longer side (a thumbnail in
    the call's line, full size in its details and under the prompt); a document, or an image
    the sanitizer does not keep, as its description. Sized by attributes and sanitized, so the
    saved notebook shows them as the live view does."""
    shown = []
    for media in items:
        label = esc(f"{media.name or media.mime} {describe(media)}".strip())
        if media.mime not in ("image/png", "image/jpeg"):
            shown.append(f'<span class="llm-media-name" title="{label}">{label}</span>')
            continue
        width, height = image_size(media) or (longest, longest)
        side = "width" if width >= height else "height"
        pixels = min(width if side == "width" else height, longest)
        shown.append(
            f'<img class="llm-media" alt="{label}" title="{label}" {side}="{pixels}" '
            f'src="{media.data_uri()}">'
        )
    return safe_html(f'<div class="llm-media-strip">{" ".join(shown)}</div>')


@functools.lru_cache(maxsize=8)  # the header is rendered again on every tick of a live run
def attachments_html(items: tuple[Media, ...]) -> str:
    """The prompt's attachments: thumbnails that open to full size (no script: the same in the
    saved notebook)."""
    return (
        f'<details class="llm-attachments"><summary style="cursor:pointer">'
        f"{media_html(list(items), THUMBNAIL)}</summary>{media_html(list(items), FULL_SIZE)}</details>"
    )
