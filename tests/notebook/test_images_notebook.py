"""Images in the notebook: `--attach` and `{fig}` in a cell, and the image the model saw in the
timeline (a thumbnail in the call's line, full size in its details, the prompt's attachments in
the header), sanitized so that only PNG and JPEG `data:` URLs survive."""

from __future__ import annotations

import base64
import io
import time

import pytest
from PIL import Image

import llm_magic
from llm_magic import events as ev
from llm_magic.notebook import render, values
from llm_magic.notebook.cell_options import OptionError, interpolate, parse_line
from llm_magic.notebook.reducer import RunState, apply
from llm_magic.records import ToolCallRecord
from tests.notebook.test_magics import ip, ok  # noqa: F401  (the shell on a loopback server)
from tests.servers import Reply
from tests.servers.fixtures import openai_server  # noqa: F401


def png(width: int = 40, height: int = 30) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "orange").save(buffer, format="PNG")
    return buffer.getvalue()


PNG = png()
PDF = b"%PDF-1.4\n%%EOF\n"


def test_attach_takes_notebook_variables_and_paths(tmp_path):
    report = tmp_path / "report.pdf"
    report.write_bytes(PDF)
    picture = Image.new("RGB", (12, 8), "blue")
    line = parse_line(f"--attach picture,{report}", namespace={"picture": picture})
    first, second = line.chain.attachments
    assert (first.name, first.mime) == ("picture", "image/png")
    assert Image.open(io.BytesIO(first.data)).size == (12, 8)
    assert (second.name, second.mime, second.data) == (str(report), "application/pdf", PDF)


def test_attach_names_what_it_cannot_find_or_send():
    with pytest.raises(OptionError, match=r"--attach pictur: .*did you mean picture\?"):
        parse_line("--attach pictur", namespace={"picture": PNG})
    with pytest.raises(OptionError, match=r"--attach notes: cannot attach notes dict"):
        parse_line("--attach notes", namespace={"notes": {"a": 1}})


def test_a_figure_placeholder_is_the_figure_not_its_repr():
    picture = Image.new("RGB", (12, 8), "blue")
    images: list[llm_magic.Media] = []
    text = interpolate(
        "What is in {picture}? ({n} of them)", {"picture": picture, "n": 3}, (), images
    )
    assert text == "What is in [image: picture, attached]? (3 of them)"
    assert [(m.name, m.mime) for m in images] == [("picture", "image/png")]
    # without a list to put images in (the old call), a value is its text as before
    assert interpolate("{n}", {"n": 3}) == "3"


def finished_call(media: list[llm_magic.Media]) -> ToolCallRecord:
    rec = ToolCallRecord("c1", "plot", "{}", 1, arguments={}, status="ok", output="[image]")
    rec.result, rec.media = object(), media
    rec.started_at = rec.ended_at = time.monotonic()
    return rec


def test_the_call_line_shows_a_thumbnail_and_its_details_the_full_image():
    media = llm_magic.Media(png(800, 400), "image/png")
    rec = finished_call([media])
    line = render.call_line_html(rec)
    assert f'width="{render.THUMBNAIL}"' in line and media.data_uri() in line
    detail = render.call_detail_html(rec)
    assert 'width="800"' in detail and media.data_uri() in detail
    tall = render.call_line_html(finished_call([llm_magic.Media(png(20, 300), "image/png")]))
    assert f'height="{render.THUMBNAIL}"' in tall


def test_the_saved_timeline_keeps_the_images_and_the_prompts_attachments():
    state = RunState(model="m")
    attached = llm_magic.Media(PNG, "image/png", "fig")
    apply(state, ev.RunStarted("m", "What is it?", [], [attached]))
    apply(state, ev.TurnStarted(1))
    shown = llm_magic.Media(png(50, 50), "image/png")
    rec = finished_call([shown])
    apply(state, ev.ToolCallRequested(rec))
    apply(state, ev.ToolCallFinished(rec))
    saved = render.static_html(state)
    assert attached.data_uri() in saved and shown.data_uri() in saved
    assert 'class="llm-attachments"' in saved


def test_only_png_and_jpeg_data_urls_survive_the_sanitizer():
    html_page = base64.b64encode(b"<script>alert(1)</script>").decode()
    svg = base64.b64encode(b"<svg onload='alert(1)'/>").decode()
    markup = (
        f'<a href="data:text/html;base64,{html_page}">x</a>'
        f'<img src="data:image/svg+xml;base64,{svg}">'
        f'<img src="data:image/png;base64,{base64.b64encode(PNG).decode()}">'
        f'<img src="data:image/jpeg;base64,/9j/4AAQ">'
    )
    clean = values.safe_html(markup)
    assert "text/html" not in clean and "svg" not in clean
    assert clean.count("<img") == 3  # the SVG image stays, without its source
    assert "data:image/png;base64," in clean and "data:image/jpeg;base64,/9j/4AAQ" in clean


def test_a_gif_shows_as_its_description(tmp_path):
    gif = io.BytesIO()
    Image.new("RGB", (5, 5)).save(gif, format="GIF")
    markup = render.media_html([llm_magic.Media(gif.getvalue(), "image/gif", "anim")], 96)
    assert "<img" not in markup and "anim [image/gif 5x5 px" in markup


def test_a_cell_sends_its_figure_placeholder_as_an_image(ip):  # noqa: F811
    server = ip.server
    server.push(Reply(text="It is {images}."))
    ip.user_ns["picture"] = Image.new("RGB", (24, 16), "green")
    ok(ip, "%%llm_chain -q\nDescribe {picture}.")
    request = server.requests[-1]
    assert [i[:3] for i in request.images] == [("image/png", 24, 16)]
    user = request.body["messages"][-1]["content"]
    assert user[-1] == {"type": "text", "text": "Describe [image: picture, attached]."}
    assert ip.user_ns["_"].text == "It is image/png 24x16."
