"""Pytest fixtures for the loopback servers.

Use from a conftest.py with `pytest_plugins = ["tests.servers.fixtures"]`, or import the fixture
functions into a test module. Each fixture yields a started server with an empty script (add
replies with `server.push(...)`), closes it afterwards, and fails the test at teardown if the server
recorded any malformed request (`server.failures`), as `close()` and `with` do. Tests that provoke failures on purpose should
consume them with `server.take_failures()`.
"""

from __future__ import annotations

import pytest

from . import KINDS, make_server


def _serve(kind: str):
    server = make_server(kind).start()
    try:
        yield server
    finally:
        server._shutdown()
    try:
        server.check()
    except AssertionError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def openai_server():
    yield from _serve("openai")


@pytest.fixture
def openai_strict_server():
    yield from _serve("openai-strict")


@pytest.fixture
def anthropic_server():
    yield from _serve("anthropic")


@pytest.fixture
def gemini_server():
    yield from _serve("gemini")


@pytest.fixture
def openai_responses_server():
    yield from _serve("openai-responses")


@pytest.fixture(params=KINDS)
def provider_server(request):
    """Parametrised over "openai", "anthropic", "gemini", "openai-strict", "openai-responses";
    see `server.kind` to tell them apart."""
    yield from _serve(request.param)
