"""Images and documents on the wire: the exact request each provider receives for a tool that
returns an image and for a prompt's attachments, over real loopback HTTP.

The servers check each part's shape against the official SDKs (see tests/servers/media_rules.py
and each server's `_check_media`), decode the bytes, and answer from what they decoded
(`{images}` in a scripted reply), so a reply that names the image's size proves it arrived.
"""

from __future__ import annotations

import base64
import io
import warnings

import pytest
from PIL import Image

import llm_magic
from llm_magic.media import MediaError
from tests.provider_models import FAST_RETRY, model_for
from tests.providers.test_servers_selfcheck import build
from tests.servers import Call, GeminiServer, Reply, fixtures

openai_server, anthropic_server = fixtures.openai_server, fixtures.anthropic_server
gemini_server = fixtures.gemini_server
openai_responses_server = fixtures.openai_responses_server

WIDTH, HEIGHT = 30, 20
PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


def png(width: int = WIDTH, height: int = HEIGHT) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "teal").save(buffer, format="PNG")
    return buffer.getvalue()


PNG = png()
B64 = base64.b64encode(PNG).decode()
DATA_URL = "data:image/png;base64," + B64
DESCRIBED = f"[image/png {WIDTH}x{HEIGHT} px, {len(PNG):,} bytes]"


def plot() -> llm_magic.Media:
    """Draw the chart."""
    return llm_magic.Media(PNG, "image/png")


async def run_plot(server, **kwargs):
    server.push(Reply(calls=[Call("plot", {}, id="call_1")]), Reply(text="I see {images}."))
    return await model_for(server, **kwargs).chain("Plot it", tools=[plot])


# ---- an image a tool returns -------------------------------------------------------------------
async def test_anthropic_gets_the_image_inside_its_tool_result(anthropic_server):
    result = await run_plot(anthropic_server)
    assert result.text == f"I see image/png {WIDTH}x{HEIGHT}."
    turn = anthropic_server.requests[1].body["messages"][-1]
    assert turn == {
        "role": "user",
        "content": [
            {
                "type": "tool_result",
                "tool_use_id": "call_1",
                "content": [
                    {"type": "text", "text": DESCRIBED},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": B64},
                    },
                ],
            }
        ],
    }


async def test_responses_gets_the_image_inside_its_function_call_output(openai_responses_server):
    result = await run_plot(openai_responses_server)
    assert result.text == f"I see image/png {WIDTH}x{HEIGHT}."
    output = openai_responses_server.requests[1].body["input"][-1]
    assert output == {
        "type": "function_call_output",
        "call_id": "call_1",
        "output": [
            {"type": "input_text", "text": DESCRIBED},
            {"type": "input_image", "image_url": DATA_URL},
        ],
    }


async def test_gemini_3_gets_the_image_inside_its_function_response(gemini_server):
    result = await run_plot(gemini_server)
    assert result.text == f"I see image/png {WIDTH}x{HEIGHT}."
    turn = gemini_server.requests[1].body["contents"][-1]
    response = turn["parts"][0]["functionResponse"]
    assert response["parts"] == [{"inlineData": {"mimeType": "image/png", "data": B64}}]
    assert response["response"] == {"output": DESCRIBED}
    assert len(turn["parts"]) == 1


async def test_a_gemini_api_model_before_gemini_3_gets_the_image_after_the_responses_naming_its_call():
    with GeminiServer() as server:
        server.push(Reply(calls=[Call("plot", {})]), Reply(text="I see {images}."))
        model = llm_magic.get_async_model(
            "gemini:gemma-3-27b-it", base_url=server.base_url, api_key=server.api_key
        )
        result = await model.chain("Plot it", tools=[plot])
        parts = server.requests[1].body["contents"][-1]["parts"]
    assert result.text == f"I see image/png {WIDTH}x{HEIGHT}."
    assert "parts" not in parts[0]["functionResponse"]
    call_id = result.tool_calls[0].id
    assert parts[1:] == [
        {"text": f"The image returned by the call {call_id} (plot) follows."},
        {"inlineData": {"mimeType": "image/png", "data": B64}},
    ]


async def test_chat_completions_gets_the_image_in_a_user_message_after_the_tool_message(
    openai_server,
):
    result = await run_plot(openai_server)
    assert result.text == f"I see image/png {WIDTH}x{HEIGHT}."
    messages = openai_server.requests[1].body["messages"]
    assert messages[-2:] == [
        {"role": "tool", "tool_call_id": "call_1", "content": DESCRIBED},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "The image returned by the call call_1 (plot) follows."},
                {"type": "image_url", "image_url": {"url": DATA_URL}},
            ],
        },
    ]


async def test_a_model_without_vision_reads_a_line_instead_of_the_image(openai_server):
    openai_server.push(Reply(calls=[Call("plot", {}, id="call_1")]), Reply(text="done"))
    model = llm_magic.get_async_model(
        "local", base_url=openai_server.base_url, api_key=openai_server.api_key
    )
    with pytest.warns(UserWarning, match=r"image omitted: model local takes no images"):
        result = await model.chain("Plot it", tools=[plot])
    tool = [m for m in openai_server.requests[1].body["messages"] if m["role"] == "tool"]
    assert tool[0]["content"] == "[image omitted: model local takes no images]"
    assert result.tool_calls[0].media == []
    assert openai_server.requests[1].images == []


# ---- a prompt's attachments ----------------------------------------------------------------------
async def attach(server, *items, model_kwargs=None):
    server.push(Reply(text="It shows {images}."))
    model = model_for(server, **(model_kwargs or {}))
    return await model.chain("What is this?", attachments=list(items))


async def test_attachments_in_each_providers_user_message(
    anthropic_server, openai_responses_server, gemini_server, openai_server
):
    for server in (anthropic_server, openai_responses_server, gemini_server, openai_server):
        result = await attach(server, PNG)
        assert result.text == f"It shows image/png {WIDTH}x{HEIGHT}.", server.provider
    assert anthropic_server.requests[0].body["messages"] == [
        {
            "role": "user",
            "content": [
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": B64},
                },
                {"type": "text", "text": "What is this?"},
            ],
        }
    ]
    assert openai_responses_server.requests[0].body["input"] == [
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_image", "image_url": DATA_URL},
                {"type": "input_text", "text": "What is this?"},
            ],
        }
    ]
    assert gemini_server.requests[0].body["contents"] == [
        {
            "role": "user",
            "parts": [
                {"inlineData": {"mimeType": "image/png", "data": B64}},
                {"text": "What is this?"},
            ],
        }
    ]
    assert openai_server.requests[0].body["messages"][-1] == {
        "role": "user",
        "content": [
            {"type": "image_url", "image_url": {"url": DATA_URL}},
            {"type": "text", "text": "What is this?"},
        ],
    }


async def test_a_pdf_goes_as_each_providers_document(
    anthropic_server, openai_responses_server, gemini_server, tmp_path
):
    path = tmp_path / "report.pdf"
    path.write_bytes(PDF)
    b64 = base64.b64encode(PDF).decode()
    for server in (anthropic_server, openai_responses_server, gemini_server):
        await attach(server, str(path))
    blocks = anthropic_server.requests[0].body["messages"][0]["content"]
    assert blocks[0] == {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": b64},
    }
    parts = openai_responses_server.requests[0].body["input"][0]["content"]
    assert parts[0] == {
        "type": "input_file",
        "filename": "report.pdf",
        "file_data": "data:application/pdf;base64," + b64,
    }
    parts = gemini_server.requests[0].body["contents"][0]["parts"]
    assert parts[0] == {"inlineData": {"mimeType": "application/pdf", "data": b64}}


async def test_a_pdf_for_chat_completions_is_a_clear_error_before_anything_is_sent(
    openai_server, tmp_path
):
    path = tmp_path / "report.pdf"
    path.write_bytes(PDF)
    model = model_for(openai_server)
    with pytest.raises(MediaError, match=r"takes no application/pdf documents.*report\.pdf"):
        model.chain("Summarise", attachments=[path])
    assert openai_server.requests == []


async def test_an_image_past_the_limits_is_downscaled_and_said(anthropic_server):
    with pytest.warns(UserWarning, match=r"downscaled from 9000x40 to 8000x35 px for anthropic"):
        await attach(anthropic_server, png(9000, 40))
    assert anthropic_server.requests[0].images[0][:3] == ("image/png", 8000, 35)


def test_an_image_past_the_limits_without_pillow_is_refused(monkeypatch):
    import sys

    wide = png(9000, 40)
    monkeypatch.setitem(sys.modules, "PIL", None)  # as if Pillow were not installed
    model = llm_magic.get_async_model("anthropic:claude-sonnet-4-6", api_key="k", retry=FAST_RETRY)
    with pytest.raises(MediaError, match=r"past anthropic's limits.*8000 px a side.*Pillow"):
        model.chain("What is this?", attachments=[wide])


def test_what_cannot_be_attached_is_named():
    model = llm_magic.get_async_model("anthropic:claude-sonnet-4-6", api_key="k")
    with pytest.raises(MediaError, match="not a PNG, JPEG, GIF, WebP image or a PDF"):
        model.chain("?", attachments=[b"plain text"])
    with pytest.raises(MediaError, match="cannot attach a dict"):
        model.chain("?", attachments=[{"a": 1}])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.chain("?", attachments=PNG)  # one item needs no list


def count() -> int:
    """Count the items."""
    return 3


async def test_a_fork_sends_the_prompts_attachments_once(anthropic_server):
    """A fork inside the run has the prompt and its images in its history: not attached again;
    a fork at step 0 asks a new prompt, with this run's attachments."""
    anthropic_server.push(Reply(calls=[Call("count", {})]), Reply(text="3"))
    model = model_for(anthropic_server)
    result = await model.chain("How many?", tools=[count], attachments=[PNG])
    anthropic_server.push(Reply(text="{images}"), Reply(text="{images}"))
    inside = await result.fork(at=1, prompt="Sure?")
    again = await result.fork(at=0, prompt="How many, really?")
    assert inside.text == again.text == f"image/png {WIDTH}x{HEIGHT}"  # one image each


# ---- what the servers refuse ---------------------------------------------------------------------
def refused(server, history, url=None, **extra) -> list[str]:
    """The problems the server found in a request with this native history (a 400)."""
    import httpx2

    built_url, body, headers = build(server, history, **extra)
    response = httpx2.post(url or built_url, json=body, headers=headers)
    assert response.status_code == 400, response.text
    return server.take_failures()


WRONG_BYTES = base64.b64encode(b"\xff\xd8\xff\xe0 a jpeg").decode()


def test_anthropic_refuses_an_image_whose_bytes_are_not_its_type(anthropic_server):
    image = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": WRONG_BYTES},
    }
    problems = refused(anthropic_server, [{"role": "user", "content": [image]}])
    assert any("does not match the provided media type" in p for p in problems)


def test_anthropic_refuses_a_chat_completions_part_in_a_tool_result(anthropic_server):
    history = [
        {"role": "user", "content": "go"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "t1", "name": "get_weather", "input": {}}],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "t1",
                    "content": [{"type": "image_url", "image_url": {"url": DATA_URL}}],
                }
            ],
        },
    ]
    problems = refused(anthropic_server, history)
    assert any("'image_url' found using 'type'" in p for p in problems)


def test_chat_completions_refuses_an_image_in_a_tool_message(openai_server):
    call = {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    image = {"type": "image_url", "image_url": {"url": DATA_URL}}
    history = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": [image]},
    ]
    problems = refused(openai_server, history)
    assert any("Invalid value: 'image_url'. Supported values are: 'text'" in p for p in problems)


def test_chat_completions_refuses_a_responses_part(openai_server):
    history = [{"role": "user", "content": [{"type": "input_image", "image_url": DATA_URL}]}]
    problems = refused(openai_server, history)
    assert any("Invalid value: 'input_image'" in p for p in problems)


def test_responses_refuses_a_chat_completions_image_in_a_function_call_output(
    openai_responses_server,
):
    history = [
        {"role": "user", "content": "go"},
        {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{}"},
        {
            "type": "function_call_output",
            "call_id": "c1",
            "output": [{"type": "input_image", "image_url": {"url": DATA_URL}}],
        },
    ]
    problems = refused(openai_responses_server, history)
    assert any("image_url': expected a string" in p for p in problems)


def test_responses_refuses_a_file_without_its_name(openai_responses_server):
    part = {
        "type": "input_file",
        "file_data": "data:application/pdf;base64," + base64.b64encode(PDF).decode(),
    }
    problems = refused(openai_responses_server, [{"role": "user", "content": [part]}])
    assert any(".filename'" in p for p in problems)


def test_gemini_refuses_media_inside_a_function_response_for_an_older_model(gemini_server):
    history = [
        {"role": "user", "parts": [{"text": "go"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {}}}]},
        {
            "role": "user",
            "parts": [
                {
                    "functionResponse": {
                        "name": "get_weather",
                        "response": {"output": "x"},
                        "parts": [{"inlineData": {"mimeType": "image/png", "data": B64}}],
                    }
                }
            ],
        },
    ]
    url = f"{gemini_server.base_url}/models/gemini-2.5-flash:generateContent"
    problems = refused(gemini_server, history, url=url)
    assert any(
        "functionResponse.parts: not supported for model gemini-2.5-flash" in p for p in problems
    )


def test_gemini_refuses_file_data_in_a_function_response(gemini_server):
    history = [
        {"role": "user", "parts": [{"text": "go"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {}}}]},
        {
            "role": "user",
            "parts": [
                {
                    "functionResponse": {
                        "name": "get_weather",
                        "response": {"output": "x"},
                        "parts": [{"fileData": {"mimeType": "image/png", "fileUri": "gs://x"}}],
                    }
                }
            ],
        },
    ]
    problems = refused(gemini_server, history)
    assert any("expected inlineData (fileData is not supported)" in p for p in problems)
