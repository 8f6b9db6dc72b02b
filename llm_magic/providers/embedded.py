"""The embedded `local` model: the OpenAI adapter pointed at the llama-cpp-python server.

The server is started on the first turn (not at import or model lookup), so choosing the model
costs nothing. Its quirks are compatibility switches, not branches: `content` must be a string,
tool turns are non-streaming (with `stream: true` plus tools it returns no call), and turns
without tools go to the alias that renders tool results as text (`gemma-chat`).
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

from .._http import HTTPSession
from ..local import LocalServer, get_local_server
from ..local_aliases import CHAT_MODEL, TOOLS_MODEL
from ..messages import ModelRequest, ModelTurn
from .base import TextCallback
from .openai import OpenAIChatAdapter, OpenAICompat

LOCAL_COMPAT = OpenAICompat(
    content_string=True,
    stream_with_tools=False,
    stream_usage=False,
    model_without_tools=CHAT_MODEL,
    max_tokens_field="max_tokens",  # llama-cpp-python reads max_tokens
)


LOCAL_SYSTEM_PROMPT = (
    "You are a function-calling assistant. Always answer by calling one of the functions."
)


def _stderr(message: str) -> None:
    print(f"[llm_magic] {message}", file=sys.stderr, flush=True)


class LocalProvider(OpenAIChatAdapter):
    name = api_vendor = "local"
    vision = False  # Gemma 3 270M reads text only: an image becomes a line saying so
    default_max_steps = (
        1  # a 270M base model calls the tool again and again; answer after one round
    )

    def __init__(
        self,
        model: str = "local",
        *,
        server: LocalServer | None = None,
        progress: Any = _stderr,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("api_key", None)
        self.explicit_base_url = kwargs.get("base_url")
        kwargs["base_url"] = self.explicit_base_url or "http://127.0.0.1:1/v1"
        super().__init__(model, compat=LOCAL_COMPAT, **kwargs)
        self.wire_model = TOOLS_MODEL
        self.server = server or get_local_server()
        self.progress = progress

    async def turn(self, request: ModelRequest, on_text: TextCallback | None = None) -> ModelTurn:
        if not self.explicit_base_url:
            url = await self.server.ensure_started(progress=self.progress)
            if url != self.http.base_url:
                self.base_url = url
                self.http = HTTPSession(
                    self.api_vendor, url, {}, retry=self.http.retry, timeout=self.http._timeout
                )
        request = self.final_form(request)
        turn = await super().turn(self.adapt(request), on_text)
        if not turn.tool_calls and not turn.text.strip() and request.tool_choice != "none":
            # The tools alias chose text but wrote none (it cannot see earlier tool results);
            # ask the answer alias, which can, instead of ending the run with no answer.
            answer = await super().turn(dataclasses.replace(request, tool_choice="none"), on_text)
            answer.usage = turn.usage + answer.usage
            turn = answer
        turn.text = turn.text.strip()  # the answer alias starts its text with a space
        return turn

    def final_form(self, request: ModelRequest) -> ModelRequest:
        """A final turn goes to the answer alias (`tool_choice: none`) without the usual
        instruction: that alias's transcript format would render it as a new question and
        answer it instead of the user's."""
        if not request.final:
            return request
        return dataclasses.replace(request, tool_choice="none", final=False)

    @staticmethod
    def adapt(request: ModelRequest) -> ModelRequest:
        """What this 270M base model needs to call tools at all (measured: without an explicit
        `tool_choice: "auto"` the server offers no tools; with this system prompt 8 of 8
        weather prompts made a call, against 4 of 8 without one)."""
        if request.tool_choice == "none" or not request.tools:
            return request
        return dataclasses.replace(
            request,
            tool_choice=request.tool_choice or "auto",
            system=request.system or LOCAL_SYSTEM_PROMPT,
        )
