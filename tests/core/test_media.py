"""What counts as an image (by what it can do, never by importing its library), what an image's
header says, and each model's policy: limits, downscaling, no vision, no documents."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

import llm_magic
from llm_magic.media import (
    Limits,
    MediaError,
    MediaPolicy,
    attachment,
    describe,
    image_size,
    is_image_like,
    result_media,
    sniff,
)


def encoded(fmt: str, size: tuple[int, int] = (30, 20), mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, "purple").save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("fmt", "mime"),
    [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("GIF", "image/gif"), ("WEBP", "image/webp")],
)
def test_the_type_and_size_come_from_the_bytes(fmt, mime):
    data = encoded(fmt, (37, 23))
    assert sniff(data) == mime
    size = image_size(llm_magic.Media(data, mime))
    assert size == ((37, 23) if fmt != "WEBP" else None)  # WebP: no header reader, Pillow decides


def test_a_matplotlib_figure_a_pil_image_and_ipythons_image_are_images():
    from IPython.display import Image as IPyImage
    from matplotlib.figure import Figure

    figure = Figure(figsize=(2, 1), dpi=50)
    figure.subplots().plot([1, 2])
    jpeg = encoded("JPEG")
    found = [
        result_media(figure),
        result_media(Image.new("RGB", (8, 6))),
        result_media(IPyImage(data=encoded("PNG"), width=300)),  # metadata: a (data, md) pair
        result_media(IPyImage(data=jpeg, format="jpeg")),
    ]
    assert [(m[0].mime, image_size(m[0])) for m in found] == [
        ("image/png", (100, 50)),
        ("image/png", (8, 6)),
        ("image/png", (30, 20)),
        ("image/jpeg", (30, 20)),
    ]
    assert len(result_media([figure, Image.new("RGB", (2, 2))])) == 2


def test_an_mcp_image_block_and_an_mcp_result_are_images():
    from mcp import types

    from llm_magic.mcp_results import to_result

    png = encoded("PNG")
    block = types.ImageContent(
        type="image", data=base64.b64encode(png).decode(), mimeType="image/png"
    )
    assert [m.data for m in result_media(block)] == [png]
    raw = types.CallToolResult(content=[types.TextContent(type="text", text="a chart"), block])
    result = to_result("charts", "draw", raw)
    assert [(m.mime, m.data) for m in result_media(result)] == [("image/png", png)]


class _BrokenPNG:
    def _repr_png_(self) -> str:
        return 'x" onerror="alert(1)'


@pytest.mark.parametrize(
    "value", ["text", {"a": 1}, [1, 2], None, _BrokenPNG(), [Image.new("RGB", (2, 2)), 3]]
)
def test_other_results_hold_no_image(value):
    assert result_media(value) == []


def test_is_image_like_asks_no_rendering():
    assert (
        is_image_like(Image.new("RGB", (2, 2)))
        and not is_image_like("fig")
        and not is_image_like(Image.Image)
    )


def test_attachments_read_paths_and_bytes_and_say_what_they_cannot(tmp_path):
    path = tmp_path / "shot.png"
    path.write_bytes(encoded("PNG"))
    assert llm_magic.Media.from_path(path).name == "shot.png"
    assert attachment(str(path)).mime == "image/png"
    assert attachment(encoded("JPEG"), "photo").mime == "image/jpeg"
    with pytest.raises(MediaError, match="cannot read"):
        attachment(tmp_path / "missing.png")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(MediaError, match=r"notes\.txt is not a PNG"):
        attachment(tmp_path / "notes.txt")


def test_a_model_without_vision_gets_a_line_and_a_warning():
    policy = MediaPolicy("local", "local", vision=False)
    with pytest.warns(UserWarning, match=r"\[image omitted: model local takes no images\]"):
        kept, lines = policy.fit([llm_magic.Media(encoded("PNG"), "image/png")])
    assert kept == [] and lines == ["[image omitted: model local takes no images]"]


def test_a_document_where_the_api_takes_none_is_refused_for_a_prompt_and_noted_for_a_result():
    pdf = llm_magic.Media(b"%PDF-1.4\n", "application/pdf", "report.pdf")
    policy = MediaPolicy("openai", "gpt-4.1", documents=False)
    with pytest.raises(
        MediaError, match=r"takes no application/pdf documents here \(report\.pdf\)"
    ):
        policy.fit([pdf], refuse=True)
    with pytest.warns(UserWarning):
        assert policy.fit([pdf]) == (
            [],
            ["[document omitted: model gpt-4.1 takes no application/pdf documents]"],
        )


def test_an_image_past_the_byte_limit_is_reencoded_smaller_and_noted():
    noise = Image.frombytes("RGB", (600, 400), bytes(range(256)) * 2812 + bytes(192))
    buffer = io.BytesIO()
    noise.save(buffer, format="PNG")
    big = llm_magic.Media(buffer.getvalue(), "image/png", "noise")
    policy = MediaPolicy("anthropic", "claude")
    policy.limits = Limits(len(big.data) // 3, 8000, 10**6, "a test limit")
    with pytest.warns(UserWarning, match="noise: downscaled from 600x400"):
        (fitted,), _ = policy.fit([big])
    assert len(fitted.data) <= len(big.data) // 3 and fitted.note.startswith(
        "downscaled from 600x400"
    )
    assert describe(fitted).startswith("[image/png ")


def test_a_pdf_past_its_limit_is_refused_with_the_source_of_the_limit():
    policy = MediaPolicy("anthropic", "claude")
    policy.limits = Limits(10, None, 8, "docs.example, read today")
    with pytest.raises(MediaError, match=r"past anthropic's 0 MB per document \(docs.example"):
        policy.fit([llm_magic.Media(b"%PDF-1.4 and more", "application/pdf")])
