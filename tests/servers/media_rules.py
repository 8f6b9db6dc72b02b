"""What the servers check of an image or document a request carries, whatever its wire shape.

Each server finds the parts in its own format (and cites where that format is documented); here
the bytes are judged the same way for all: valid base64, of a type the API takes, whose first
bytes match the declared type (Anthropic answers 400 "Image does not match the provided media
type"; the others cannot decode what is not the image it claims to be). What an image decodes
to is recorded on the request (`RecordedRequest.images`: mime, width, height, where), so a
scripted reply can answer from it (`Reply.text` containing `{images}`).
"""

from __future__ import annotations

import base64
import binascii
import re
import struct

IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
DOCUMENT_TYPES = ("application/pdf",)
_MAGIC = {
    "image/png": b"\x89PNG\r\n\x1a\n",
    "image/jpeg": b"\xff\xd8\xff",
    "image/gif": b"GIF8",
    "image/webp": b"RIFF",
    "application/pdf": b"%PDF-",
}
_DATA_URL = re.compile(r"^data:([\w.+-]+/[\w.+-]+);base64,(.*)$", re.S)


def parse_data_url(url: object) -> tuple[str, str] | None:
    """(mime, base64 text) of a `data:<mime>;base64,<data>` URL; None for anything else."""
    match = _DATA_URL.match(url) if isinstance(url, str) else None
    return (match.group(1), match.group(2)) if match else None


def size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a PNG, JPEG or GIF, read from its header."""
    if data.startswith(_MAGIC["image/png"]) and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data.startswith(b"GIF8") and len(data) >= 10:
        return struct.unpack("<HH", data[6:10])
    if data.startswith(b"\xff\xd8"):
        i = 2
        while i + 9 < len(data) and data[i] == 0xFF:
            marker, length = data[i + 1], int.from_bytes(data[i + 2 : i + 4], "big")
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                h, w = struct.unpack(">HH", data[i + 5 : i + 9])
                return w, h
            i += 2 + length
    return None


def check_media(rec, where: str, mime: object, b64: object, p: list[str], *, documents: bool):
    """Judge one part's bytes (see the module docstring); record an image on `rec`."""
    allowed = IMAGE_TYPES + (DOCUMENT_TYPES if documents else ())
    if mime not in allowed:
        p.append(f"{where}: media type {mime!r} is not one of {', '.join(allowed)}")
        return
    if not isinstance(b64, str) or not b64:
        p.append(f"{where}: data must be a non-empty base64 string")
        return
    try:
        data = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        p.append(f"{where}: data is not valid base64")
        return
    if not data.startswith(_MAGIC[str(mime)]):
        p.append(f"{where}: Image does not match the provided media type {mime}")
        return
    if str(mime).startswith("image/"):
        w, h = size(data) or (0, 0)
        rec.images.append((str(mime), w, h, where))


def describe(rec) -> str:
    """The images a request carried, in words a scripted reply can hold: `image/png 640x480`."""
    return ", ".join(f"{m} {w}x{h}" for m, w, h, _ in rec.images) or "no image"
