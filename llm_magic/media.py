"""Images and documents for the model: what counts as one, and fitting it to a provider's limits.

A tool result or an attachment becomes `Media` (bytes and a MIME type) once, here, so every
adapter writes the same part. Image-like values are recognised by what they can do, never by
importing their library: a `Media` as is; an MCP result's images; an MCP image content block;
anything with `_repr_png_` / `_repr_jpeg_` (PIL images, `IPython.display.Image`); anything with
`savefig` (a matplotlib Figure). Attachments may also be paths and raw bytes (their type read
from their first bytes).

Before sending, each item is checked against its provider's documented limits (`LIMITS`); an
image past them is downscaled when Pillow is installed (said in a warning and in the item's
`note`), else refused with a `MediaError` that says how to fix it. A model that takes no images
(the embedded one) gets a line of text in their place, and a warning says so.
"""

from __future__ import annotations

import base64
import io
import os
import struct
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .errors import LLMMagicError

PNG, JPEG, GIF, WEBP, PDF = "image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf"
IMAGE_TYPES = (PNG, JPEG, GIF, WEBP)  # what all three APIs take (see LIMITS' sources)
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", PNG),
    (b"\xff\xd8\xff", JPEG),
    (b"GIF87a", GIF),
    (b"GIF89a", GIF),
    (b"%PDF-", PDF),
)


class MediaError(LLMMagicError):
    """An image or file cannot be sent: not one we can read, or past the provider's limits."""


@dataclass(frozen=True, eq=False)
class Media:
    """An image or a document the model sees: its bytes and their MIME type.

    One neutral part for every adapter: a tool's image result rides on its `ToolResult`, a
    prompt's attachments on the user `Message`; each adapter writes it in its wire form (or,
    where its API takes none, as a note). `note` says what was done to it on the way (a
    downscale), `name` where it came from (a variable, a file).
    """

    data: bytes
    mime: str
    name: str = ""
    note: str = ""

    @classmethod
    def from_path(cls, path: str | os.PathLike[str]) -> Media:
        """A file as Media, its type read from its first bytes (PNG, JPEG, GIF, WebP or PDF)."""
        return from_path(path)

    @property
    def is_image(self) -> bool:
        return self.mime.startswith("image/")

    def base64(self) -> str:
        return base64.b64encode(self.data).decode("ascii")

    def data_uri(self) -> str:
        return f"data:{self.mime};base64,{self.base64()}"

    def __repr__(self) -> str:
        label = f" {self.name!r}" if self.name else ""
        return f"<Media{label} {self.mime}, {len(self.data):,} bytes>"


@dataclass(frozen=True)
class Limits:
    """One API's documented limits on what a request carries inline."""

    image_bytes: int  # one image, decoded
    image_side: int | None  # pixels on the longer side (None: the API resizes, no refusal)
    document_bytes: int  # one document (PDF), decoded
    source: str  # where the figures are documented, and when they were read


MB = 1024 * 1024
LIMITS = {
    "anthropic": Limits(
        5 * MB,
        8000,
        32 * MB,
        "platform.claude.com/docs/en/build-with-claude/vision ('8000x8000 px', 5 MB per image "
        "on the API) and the 32 MB request limit of /docs/en/api/overview, read 2026-12-07",
    ),
    "openai": Limits(
        20 * MB,
        None,
        50 * MB,
        "platform.openai.com/docs/guides/images-vision ('Up to 20MB per image', 50 MB of image "
        "bytes per request) and /docs/guides/pdf-files (50 MB per file), read 2026-12-07",
    ),
    "gemini": Limits(
        100 * MB,
        None,
        50 * MB,
        "blog.google 'Increased file size limits ... in Gemini API' (inline data up to 100 MB, "
        "2026-01-12) and ai.google.dev/gemini-api/docs/document-processing (50 MB), read "
        "2026-12-07",
    ),
}
# A compatible server (llama.cpp, vLLM, Ollama) documents no limit of its own: OpenAI's.
DEFAULT_LIMITS = LIMITS["openai"]


# ---- values to Media -----------------------------------------------------------------------
def sniff(data: bytes) -> str | None:
    """The MIME type of some bytes by their signature (None: not one we know)."""
    for signature, mime in _SIGNATURES:
        if data.startswith(signature):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return WEBP
    return None


def from_path(path: str | os.PathLike[str]) -> Media:
    """A file as Media (its type from its first bytes); MediaError when it is not one."""
    file = Path(path).expanduser()
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise MediaError(f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
    mime = sniff(data)
    if mime is None:
        raise MediaError(
            f"{file.name} is not a PNG, JPEG, GIF, WebP image or a PDF (the types the "
            "providers take)"
        )
    return Media(data, mime, file.name)


def _repr_bytes(value: Any, method: str) -> bytes | None:
    """What `_repr_png_` / `_repr_jpeg_` gives (IPython's Image may add metadata)."""
    render = getattr(value, method, None)
    if not callable(render) or isinstance(value, type):
        return None
    try:  # a broken formatter makes the value no image, not a failed call
        out = render()
        if isinstance(out, tuple) and out:
            out = out[0]
        if isinstance(out, str):  # IPython's own base64 text form
            out = base64.b64decode(out, validate=True)
    except Exception:
        return None
    return out if isinstance(out, bytes) and sniff(out) in IMAGE_TYPES else None


def _one(value: Any, name: str) -> Media | None:
    """The image a value is (see the module docstring), or None."""
    if isinstance(value, Media):
        return replace(value, name=value.name or name)
    if getattr(value, "type", None) == "image" and isinstance(getattr(value, "data", None), str):
        mime = str(getattr(value, "mime_type", None) or getattr(value, "mimeType", "") or PNG)
        return Media(base64.b64decode(value.data), mime, name)  # an MCP ImageContent block
    for method, mime in (("_repr_png_", PNG), ("_repr_jpeg_", JPEG)):
        data = _repr_bytes(value, method)
        if data is not None:
            return Media(data, sniff(data) or mime, name)
    savefig = getattr(value, "savefig", None)
    if callable(savefig) and not isinstance(value, type):  # a matplotlib Figure
        buffer = io.BytesIO()
        savefig(buffer, format="png")
        return Media(buffer.getvalue(), PNG, name)
    return None


def result_media(value: Any) -> list[Media]:
    """The images a tool's result is or holds ([] for any other result)."""
    images = getattr(value, "images", None)
    if callable(getattr(value, "__llm_output__", None)) and isinstance(images, list):
        return [Media(data, mime) for mime, data in images if mime in IMAGE_TYPES]
    if isinstance(value, list | tuple) and value:
        found = [_one(v, "") for v in value]
        return [m for m in found if m is not None] if all(found) else []
    one = _one(value, "")
    return [one] if one is not None else []


def is_image_like(value: Any) -> bool:
    """Whether a notebook value is sent as an image (a `{fig}` placeholder, an attachment)."""
    if isinstance(value, Media):
        return True
    if isinstance(value, type):
        return False
    return any(callable(getattr(value, m, None)) for m in ("_repr_png_", "_repr_jpeg_", "savefig"))


def attachment(value: Any, name: str = "") -> Media:
    """One attachment as Media: an image-like value, a path, or bytes (PNG, JPEG, GIF, WebP
    or PDF); a MediaError says what was given otherwise."""
    if isinstance(value, str | os.PathLike):
        return replace(from_path(value), name=name or Path(value).name)
    if isinstance(value, bytes | bytearray):
        mime = sniff(bytes(value))
        if mime is None:
            raise MediaError(
                f"the bytes of {name or 'an attachment'} are not a PNG, JPEG, GIF, WebP image or "
                "a PDF; wrap other data as llm_magic.Media(data, mime)"
            )
        return Media(bytes(value), mime, name)
    found = _one(value, name)
    if found is None:
        raise MediaError(
            f"cannot attach {name or 'a'} {type(value).__name__}: attach a figure, an image, "
            "a path or bytes"
        )
    return found


def attachments(values: Iterable[Any]) -> list[Media]:
    return [attachment(v) for v in values]


# ---- sizes and limits ----------------------------------------------------------------------
def image_size(media: Media) -> tuple[int, int] | None:
    """(width, height) of a PNG, JPEG or GIF from its header (None: not read)."""
    data = media.data
    if data.startswith(b"\x89PNG") and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data.startswith(b"GIF") and len(data) >= 10:
        return struct.unpack("<HH", data[6:10])
    if data.startswith(b"\xff\xd8"):
        return _jpeg_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """The size in a JPEG's start-of-frame segment (any SOF but DHT, JPG and DAC)."""
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        i += 2 + length
    return None


def describe(media: Media) -> str:
    """A short text of an image for the model and the user: `[image/png 640x480 px]`."""
    size = image_size(media)
    dims = f" {size[0]}x{size[1]} px" if size else ""
    return f"[{media.mime}{dims}, {len(media.data):,} bytes]"


class MediaPolicy:
    """What one model takes: images or not, documents or not, and its API's limits."""

    def __init__(
        self, provider: str, model: str, *, vision: bool = True, documents: bool = True
    ) -> None:
        self.provider = provider
        self.model = model
        self.vision = vision
        self.documents = documents
        self.limits = LIMITS.get(provider, DEFAULT_LIMITS)

    @classmethod
    def of(cls, provider: Any) -> MediaPolicy:
        """The policy of a provider adapter (its `vision` and `documents` flags)."""
        return cls(
            provider.name,
            provider.model,
            vision=getattr(provider, "vision", True),
            documents=getattr(provider, "documents", False),
        )

    def omitted(self, media: Media) -> str:
        """The line the model reads instead of an item it cannot take."""
        if media.is_image:
            return f"[image omitted: model {self.model} takes no images]"
        return f"[document omitted: model {self.model} takes no {media.mime} documents]"

    def fit(self, items: Iterable[Media], *, refuse: bool = False) -> tuple[list[Media], list[str]]:
        """The items this model can take, each within its limits, and a line of text for each
        it cannot (warned once per call). `refuse`: raise MediaError instead of leaving out a
        document the API takes none of (a prompt's attachment: the user asked for it)."""
        kept: list[Media] = []
        lines: list[str] = []
        for media in items:
            if (media.is_image and not self.vision) or (not media.is_image and not self.documents):
                if refuse and not media.is_image:
                    raise MediaError(
                        f"{self.provider} model {self.model} takes no {media.mime} documents "
                        f"here ({media.name or 'an attachment'}); use Anthropic, Gemini or the "
                        "OpenAI Responses API, or send its text"
                    )
                lines.append(self.omitted(media))
                continue
            kept.append(self._within_limits(media))
        if lines:
            warnings.warn("; ".join(lines), stacklevel=3)
        return kept, lines

    def _within_limits(self, media: Media) -> Media:
        limits = self.limits
        if not media.is_image:
            if len(media.data) > limits.document_bytes:
                raise MediaError(
                    f"{media.name or 'the document'} is {len(media.data) / MB:.1f} MB, past "
                    f"{self.provider}'s {limits.document_bytes // MB} MB per document "
                    f"({limits.source})"
                )
            return media
        size = image_size(media)
        too_wide = size is not None and limits.image_side is not None
        too_wide = too_wide and max(size or (0, 0)) > (limits.image_side or 0)
        if media.mime in IMAGE_TYPES and len(media.data) <= limits.image_bytes and not too_wide:
            return media
        return self._downscaled(media, size)

    def _downscaled(self, media: Media, size: tuple[int, int] | None) -> Media:
        """The image re-encoded within the limits with Pillow, said in a warning and in its
        note; without Pillow, a MediaError that says how to fix it."""
        limits = self.limits
        what = f"{media.name or 'an image'} ({media.mime}, {describe(media)[1:-1]})"
        try:
            from PIL import Image as PILImage
        except ImportError:
            side = f"{limits.image_side} px a side, " if limits.image_side else ""
            raise MediaError(
                f"{what} is past {self.provider}'s limits ({side}{limits.image_bytes // MB} MB; "
                f"{limits.source}); install Pillow (pip install 'llm-magic[images]') to "
                "downscale it automatically, or make it smaller"
            ) from None
        image: Any = PILImage.open(io.BytesIO(media.data))
        image.load()
        width, height = image.size
        scale = 1.0
        if limits.image_side is not None and max(width, height) > limits.image_side:
            scale = limits.image_side / max(width, height)
        while True:
            new = (max(1, int(width * scale)), max(1, int(height * scale)))
            resized = image.resize(new) if new != (width, height) else image
            data, mime = _encode(resized, keep_png=media.mime == PNG)
            if len(data) <= limits.image_bytes or min(new) <= 16:
                break
            scale *= 0.75
        note = f"downscaled from {width}x{height} to {new[0]}x{new[1]} px for {self.provider}"
        warnings.warn(f"{media.name or 'an image'}: {note}", stacklevel=4)
        return Media(data, mime, media.name, note)


def _encode(image: Any, *, keep_png: bool) -> tuple[bytes, str]:
    """PNG when the image was one (drawings stay sharp), else JPEG; RGB for JPEG."""
    buffer = io.BytesIO()
    if keep_png:
        image.save(buffer, format="PNG", optimize=True)
        return buffer.getvalue(), PNG
    image.convert("RGB").save(buffer, format="JPEG", quality=85)
    return buffer.getvalue(), JPEG


__all__ = ["Media", "MediaError", "MediaPolicy", "attachment", "result_media"]
