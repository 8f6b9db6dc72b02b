"""Every public method of the async API has a same-named sync twin, and the other way round."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from llm_magic import AsyncConversation, AsyncModel, ChainResponse, ChainRun, Conversation, Model

PAIRS = [(AsyncModel, Model), (AsyncConversation, Conversation), (ChainRun, ChainResponse)]
# httpx2's names (httpx's): `AsyncClient.aclose()` is a coroutine, `Client.close()` its sync twin
TWIN_NAMES = {"aclose": "close", "to_sync": "to_async"}  # and each turns into the other
# A ChainRun is also a coroutine (`asyncio.run(model.chain(...))`): the coroutine protocol's own
# methods are how the event loop drives it, not part of the vocabulary its sync twin mirrors.
COROUTINE_PROTOCOL = {"send", "throw", "close"}


def public_methods(cls: type) -> dict[str, Any]:
    out = {}
    for name, member in inspect.getmembers(cls):
        if name.startswith("_") or isinstance(inspect.getattr_static(cls, name), property):
            continue
        if cls is ChainRun and name in COROUTINE_PROTOCOL:
            continue
        if name == "wrapping":  # how Conversation wraps an AsyncConversation: no twin needed
            continue
        if callable(member):
            out[TWIN_NAMES.get(name, name)] = member
    return out


def is_async(fn: Any) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn)


def params(fn: Any) -> list[tuple[str, Any, Any]]:
    sig = inspect.signature(fn)
    return [(p.name, p.kind, p.default) for p in sig.parameters.values()]


@pytest.mark.parametrize("async_cls,sync_cls", PAIRS, ids=[s.__name__ for _, s in PAIRS])
def test_same_public_methods(async_cls: type, sync_cls: type) -> None:
    a, s = public_methods(async_cls), public_methods(sync_cls)
    assert sorted(a) == sorted(s), (
        f"only on {async_cls.__name__}: {sorted(set(a) - set(s))}; "
        f"only on {sync_cls.__name__}: {sorted(set(s) - set(a))}"
    )
    assert a, "no public methods found"


@pytest.mark.parametrize("async_cls,sync_cls", PAIRS, ids=[s.__name__ for _, s in PAIRS])
def test_awaited_versus_plain(async_cls: type, sync_cls: type) -> None:
    a, s = public_methods(async_cls), public_methods(sync_cls)
    for name in a:
        assert not is_async(s[name]), f"{sync_cls.__name__}.{name} must be called plainly"
        if name in ("chain", "conversation"):  # return a run / conversation, awaited later
            assert not is_async(a[name])
        elif name in (
            "subscribe",
            "cancel",
            "reset",
            "start",
            "decide",
            "fork",
            "branch",
            "to_async",
        ):
            assert not is_async(a[name])
        else:
            assert is_async(a[name]), f"{async_cls.__name__}.{name} must be awaited"


@pytest.mark.parametrize("async_cls,sync_cls", PAIRS, ids=[s.__name__ for _, s in PAIRS])
def test_same_parameters(async_cls: type, sync_cls: type) -> None:
    a, s = public_methods(async_cls), public_methods(sync_cls)
    for name in a:
        assert params(a[name]) == params(s[name]), name


def test_iteration_and_awaiting_twins() -> None:
    assert hasattr(ChainRun, "__await__") and hasattr(ChainRun, "__aiter__")
    assert hasattr(ChainResponse, "__iter__") and not hasattr(ChainResponse, "__await__")
    assert hasattr(ChainResponse, "__str__")


def test_async_and_sync_model_methods_return_the_right_colour() -> None:
    assert inspect.signature(AsyncModel.chain).return_annotation in ("ChainRun", ChainRun)
    assert inspect.signature(Model.chain).return_annotation in ("ChainResponse", ChainResponse)
    assert inspect.signature(AsyncConversation.chain).return_annotation in ("ChainRun", ChainRun)
    assert inspect.signature(Conversation.chain).return_annotation in (
        "ChainResponse",
        ChainResponse,
    )


def test_each_twin_turns_into_the_other_over_the_same_parts() -> None:
    from llm_magic.providers.openai import OpenAIChatAdapter

    model = AsyncModel(OpenAIChatAdapter("gpt-test", api_key="k"), "openai:gpt-test")
    twin = model.to_sync()
    assert isinstance(twin, Model) and twin.provider is model.provider
    assert twin.to_async().provider is model.provider and twin.model_id == model.model_id
    conversation = model.conversation(system="s")
    sync_conversation = conversation.to_sync()
    assert isinstance(sync_conversation, Conversation)
    assert sync_conversation.to_async() is conversation
    assert sync_conversation.messages is conversation.messages
