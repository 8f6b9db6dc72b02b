"""Typed options, the layer boundary, resource lifetimes, module shapes.

Each test guards one failure: a misspelt option passing mypy, the core `chain()` writing
notebook state, twenty `asyncio.run()` calls leaking sockets, a timed-out sync tool holding the
process open, and `approve="drop_table"` matching a tool named `drop`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
import textwrap
import threading
import time
import typing
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import llm_magic
from llm_magic import ChainKwargs, ChainOptions
from llm_magic.options import field_hints, normalize_approve
from tests.servers import Call, OpenAIServer, Reply

ROOT = Path(__file__).resolve().parents[2]
MYPY = [
    sys.executable,
    *("-m", "mypy", "--strict", "--no-error-summary", "--hide-error-context"),
    "--follow-imports=silent",  # judge the user's script; llm_magic has its own mypy run
]


# -- one typed declaration ------------------------------------------------------------------------


def test_chain_kwargs_mirror_the_options_exactly() -> None:
    """`ChainKwargs` (the typed keyword arguments) and `ChainOptions` never drift apart."""
    fields = {f.name for f in dataclasses.fields(ChainOptions)}
    assert set(ChainKwargs.__annotations__) == fields
    hints = typing.get_type_hints(ChainKwargs)
    options = field_hints(ChainOptions)
    # those accept more (a list, one item), then normalise
    for name in fields - {"approve", "model_options", "attachments"}:
        assert hints[name] == options[name], name


def _mypy(tmp_path: Path, code: str) -> str:
    script = tmp_path / "user_script.py"
    script.write_text(textwrap.dedent(code))
    out = subprocess.run(
        [*MYPY, "--cache-dir", str(tmp_path / ".mypy_cache"), str(script)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "MYPYPATH": str(ROOT)},
    )
    return out.stdout + out.stderr


def test_mistyped_options_fail_mypy_strict_in_user_code(tmp_path: Path) -> None:
    report = _mypy(
        tmp_path,
        """
        import llm_magic

        async def main() -> None:
            model = llm_magic.get_async_model("gpt-4.1-mini")
            await llm_magic.chain("hi", max_step=3)
            await model.chain("hi", timeout="soon")
            llm_magic.get_model("gpt-4.1-mini").chain("hi", approve=3)
            result = await llm_magic.chain("hi", max_steps=3, timeout=2.5, approve="all")
            result.continue_("more", max_tool_calls="many")
        """,
    )
    errors = [line for line in report.splitlines() if "error:" in line]
    assert 'Unexpected keyword argument "max_step"' in errors[0], report
    assert 'Argument "timeout"' in errors[1] and 'incompatible type "str"' in errors[1], report
    assert 'Argument "approve"' in errors[2] and 'incompatible type "int"' in errors[2], report
    assert 'Argument "max_tool_calls"' in errors[3], report
    assert len(errors) == 4, report  # the correct call on line 9 passes


def test_mcp_settings_are_typed_keywords_for_mypy_strict(tmp_path: Path) -> None:
    """`llm_magic.mcp` takes its settings through one typed declaration (`MCPServerKwargs`),
    shared with `MCPServerSettings`: a misspelt or mistyped one fails in user code."""
    report = _mypy(
        tmp_path,
        """
        import llm_magic
        from llm_magic.mcp_settings import MCPServerSettings

        llm_magic.mcp("uvx mcp-server-time", startup_timout=5.0)
        llm_magic.mcp("uvx mcp-server-time", timeout="soon")
        MCPServerSettings("time", command=["uvx", "mcp-server-time"], optional="yes")
        llm_magic.mcp("https://mcp.example/mcp", name="ex", headers={"a": "b"}, tools=["x"])
        """,
    )
    errors = [line for line in report.splitlines() if "error:" in line]
    assert 'Unexpected keyword argument "startup_timout"' in errors[0], report
    assert 'Argument "timeout"' in errors[1] and 'incompatible type "str"' in errors[1], report
    assert 'Argument "optional"' in errors[2] and 'incompatible type "str"' in errors[2], report
    assert len(errors) == 3, report  # the correct call on the last line passes


def test_correct_use_passes_mypy_strict(tmp_path: Path) -> None:
    report = _mypy(
        tmp_path,
        """
        import llm_magic

        def add(a: int, b: int) -> int:
            "Add."
            return a + b

        async def main() -> str:
            async with llm_magic.get_async_model("gpt-4.1-mini") as model:
                run = model.chain("1+2?", tools=[add], max_steps=2, approve=["add"])
                result = await run
                again = await result.continue_("and 3+4?", stream=False)
                return again.text

        def sync() -> str:
            with llm_magic.get_model("gpt-4.1-mini") as model:
                first = model.chain("hi", timeout=5.0).result()
                return first.continue_("more").text()
        """,
    )
    assert "error:" not in report, report


def test_runtime_errors_for_untyped_code() -> None:
    with pytest.raises(TypeError, match="unknown option 'max_step'; did you mean max_steps"):
        llm_magic.get_async_model("openai-chat:x", api_key="k").chain("hi", max_step=3)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="timeout must be a number of seconds"):
        ChainOptions(timeout="soon")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_steps must be 1 or more"):
        ChainOptions(max_steps=0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ChainOptions().max_steps = 3  # type: ignore[misc]


def test_approve_is_normalised_to_a_frozenset_of_names() -> None:
    assert normalize_approve("drop_table") == frozenset({"drop_table"})
    assert normalize_approve("a, b") == frozenset({"a", "b"})
    assert normalize_approve(["a", "all"]) == "all"
    assert ChainOptions(approve=["x", "y"]).approve == frozenset({"x", "y"})
    assert not ChainOptions(approve="drop_table").needs_approval("drop")
    with pytest.raises(TypeError):
        normalize_approve(3)


async def test_approving_drop_table_does_not_gate_drop(openai_server: OpenAIServer) -> None:
    """`approve="drop_table"` used to iterate the string: a tool named `d`... needed approval."""

    def drop(name: str) -> str:
        "Drop a row."
        return f"dropped {name}"

    def drop_table(name: str) -> str:
        "Drop a table."
        return f"dropped table {name}"

    asked: list[str] = []

    async def deny(record: llm_magic.ToolCallRecord) -> bool:
        asked.append(record.name)
        return False

    openai_server.push(
        Reply(calls=[Call("drop", {"name": "r1"}), Call("drop_table", {"name": "t"})]), "ok"
    )
    model = llm_magic.get_async_model(
        "openai-chat:test", base_url=openai_server.base_url, api_key=openai_server.api_key
    )
    result = await model.chain(
        "go", tools=[drop, drop_table], approve="drop_table", approval_callback=deny
    )
    assert asked == ["drop_table"]
    assert [c.status for c in result.tool_calls] == ["ok", "denied"]
    await model.aclose()


# -- the layer boundary ---------------------------------------------------------------------------


def test_core_chain_in_a_plain_script_leaves_no_notebook_state(
    openai_server: OpenAIServer,
) -> None:
    code = f"""
        import asyncio, sys
        import llm_magic

        def add(a: int, b: int) -> int:
            "Add."
            return a + b

        r = asyncio.run(llm_magic.chain("1+2?", tools=[add], model="openai-chat:test-model",
                                        base_url={openai_server.base_url!r},
                                        api_key={openai_server.api_key!r}))
        again = asyncio.run(llm_magic.chain("sure?", continue_=r))
        notebook = sorted(m for m in sys.modules if m.startswith(("llm_magic.notebook", "IPython",
                                                                  "ipywidgets")))
        print(r.text, again.text, len(r.messages), len(again.messages), notebook)
        """
    openai_server.push(Reply(calls=[Call("add", {"a": 1, "b": 2})]), "3", "yes, 3")
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["3", "yes,", "3", "4", "6", "[]"]


# -- resource lifetimes ---------------------------------------------------------------------------


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_repeated_asyncio_run_leaks_no_clients_or_sockets(openai_server: OpenAIServer) -> None:
    """Each `asyncio.run` closes its loop's client (20 runs must not leave sockets behind)."""
    model = llm_magic.get_async_model(
        "openai-chat:test", base_url=openai_server.base_url, api_key=openai_server.api_key
    )
    http = model.provider.http

    async def once() -> str:
        return (await model.chain("hi").result()).text

    openai_server.push(*["ok"] * 22)
    assert asyncio.run(once()) == "ok"  # warm: imports and the server's own sockets settle
    assert asyncio.run(once()) == "ok"
    before = _open_fds()
    for _ in range(20):
        assert asyncio.run(once()) == "ok"
        assert http.open_clients == 0
    assert _open_fds() <= before + 1, (before, _open_fds())


async def test_aclose_and_context_manager_close_the_client(openai_server: OpenAIServer) -> None:
    openai_server.push("a", "b")
    async with llm_magic.get_async_model(
        "openai-chat:test", base_url=openai_server.base_url, api_key=openai_server.api_key
    ) as model:
        assert (await model.chain("hi")).text == "a"
        assert model.provider.http.open_clients == 1
    assert model.provider.http.open_clients == 0
    assert (await model.chain("again")).text == "b"  # a closed model opens a new client
    await model.aclose()
    assert model.provider.http.open_clients == 0


def test_sync_model_close(openai_server: OpenAIServer) -> None:
    openai_server.push("a")
    with llm_magic.get_model(
        "openai-chat:test", base_url=openai_server.base_url, api_key=openai_server.api_key
    ) as model:
        assert model.chain("hi").text() == "a"
        assert model.provider.http.open_clients == 1
    assert model.provider.http.open_clients == 0


def test_provider_cache_is_bounded_and_clearable() -> None:
    from llm_magic import registry

    registry.clear_cache()
    for i in range(registry.CACHE_SIZE + 5):
        registry.make_provider("openai-chat:m", api_key=f"key-{i}")
    assert len(registry.cached_providers()) == registry.CACHE_SIZE
    registry.clear_cache()
    assert not registry.cached_providers()


def test_a_timed_out_sync_tool_does_not_hold_interpreter_exit(
    openai_server: OpenAIServer,
) -> None:
    """A sync tool can not be stopped; its daemon worker is abandoned at exit
    (a 0.3 s timeout on an 8 s tool must not delay the script's exit by the rest of the 8 s)."""
    code = f"""
        import time
        import llm_magic

        def slow() -> str:
            "Sleeps."
            time.sleep(8)
            return "late"

        model = llm_magic.get_model("openai-chat:test", base_url={openai_server.base_url!r},
                                    api_key={openai_server.api_key!r})
        result = model.chain("go", tools=[slow], tool_timeout=0.3).result()
        print(result.tool_calls[0].status, result.text, flush=True)
        """
    openai_server.push(Reply(calls=[Call("slow", {})]), "gave up")
    started = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    elapsed = time.monotonic() - started
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["error", "gave", "up"]
    assert elapsed < 6.0, f"exit took {elapsed:.1f} s: the 8 s tool held the process"


# -- module shapes --------------------------------------------------------------------------------


def test_every_error_is_an_llm_magic_error() -> None:
    from llm_magic import errors, local_weights
    from llm_magic.notebook import NotebookError
    from llm_magic.notebook.cell_options import OptionError

    classes = [getattr(errors, n) for n in dir(errors) if n.endswith("Error")]
    classes += [local_weights.LocalModelUnavailable, NotebookError, OptionError]
    for cls in classes:
        assert issubclass(cls, llm_magic.LLMMagicError), cls


def test_the_package_is_typed_and_exports_what_users_need() -> None:
    assert (ROOT / "llm_magic" / "py.typed").exists()
    for name in ("RetryPolicy", "ChainKwargs", "ToolArgumentsError", "StreamError", "Approval"):
        assert name in llm_magic.__all__ and hasattr(llm_magic, name)


def test_no_module_over_500_lines_without_a_reason() -> None:
    """A longer module says why in its opening docstring ("Longer than ...")."""
    for path in sorted((ROOT / "llm_magic").rglob("*.py")):
        text = path.read_text()
        if text.count("\n") > 520:
            head = text[: text.find('"""', 3)]
            assert "Longer than" in head, f"{path.relative_to(ROOT)}: {text.count(chr(10))} lines"


# -- error hygiene: the key leaves in no string ---------------------------------------------------

SECRET = "sk-test-SECRET-0123456789abcdef"


class _EchoHandler(BaseHTTPRequestHandler):
    """Answers 200 with a body that is not JSON and quotes the key, and echoes the key as the
    request id: what a misbehaving proxy in front of a provider may do."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        body = f"upstream said: bad key {SECRET}".encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("x-request-id", f"req-{SECRET}")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _strings_of(exc: BaseException) -> list[str]:
    """Every string reachable from an exception: args, attributes, chained exceptions."""
    out, todo, seen = [], [exc], set()
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        out += [a for a in e.args if isinstance(a, str)]
        out += [v for v in vars(e).values() if isinstance(v, str)]
        out.append(str(e))
        todo += [e.__cause__, e.__context__]
    return out


async def test_the_key_is_scrubbed_from_chained_exceptions_and_request_ids() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        model = llm_magic.get_async_model(
            "openai-chat:test",
            base_url=f"http://127.0.0.1:{server.server_address[1]}/v1",
            api_key=SECRET,
        )
        with pytest.raises(llm_magic.ProviderError) as info:
            await model.chain("hi", stream=False)
        await model.aclose()
    finally:
        server.shutdown()
        server.server_close()
    strings = _strings_of(info.value)
    assert any("not JSON" in s for s in strings)
    leaked = [s for s in strings if SECRET in s]
    assert not leaked, leaked


# -- engine hygiene -------------------------------------------------------------------------------


class _BrokenRepr:
    def __repr__(self) -> str:
        raise RuntimeError("repr is broken")


def _deep(n: int) -> list[object]:
    value: list[object] = []
    for _ in range(n):
        value = [value]
    return value


@pytest.mark.parametrize("value", [_BrokenRepr(), _deep(5000)], ids=["broken-repr", "deep-list"])
async def test_an_unserialisable_result_is_a_tool_error(
    openai_server: OpenAIServer, value: object
) -> None:
    """It used to abort the run and mark the call "cancelled by the user"."""

    def make() -> object:
        "Make a value."
        return value

    openai_server.push(Reply(calls=[Call("make", {})]), "noted")
    model = llm_magic.get_async_model(
        "openai-chat:test", base_url=openai_server.base_url, api_key=openai_server.api_key
    )
    result = await model.chain("go", tools=[make])
    (call,) = result.tool_calls
    assert result.status == "done" and result.text == "noted"
    assert call.status == "error" and call.result is value
    assert "could not be turned into text" in call.output
    sent = openai_server.requests[-1].body["messages"][-1]
    assert sent["role"] == "tool" and "could not be turned into text" in sent["content"]
    await model.aclose()


async def test_leaving_the_event_loop_early_leaves_the_run_going(
    openai_server: OpenAIServer,
) -> None:
    """The iterator is a view: `break` does not cancel the run (it used to, silently)."""
    openai_server.push(Reply(calls=[Call("add", {"a": 1, "b": 2})]), "3")

    def add(a: int, b: int) -> int:
        "Add."
        return a + b

    model = llm_magic.get_async_model(
        "openai-chat:test", base_url=openai_server.base_url, api_key=openai_server.api_key
    )
    run = model.chain("1+2?", tools=[add])
    async for event in run:
        if event.type == "turn_started":
            break
    result = await run
    assert result.status == "done" and result.text == "3"
    assert [e.type for e in run.events][-1] == "run_finished"
    await model.aclose()


def test_options_from_the_same_keywords_are_checked_as_before() -> None:
    from llm_magic.options import build_options

    assert build_options(stream=False) == build_options(stream=False) == ChainOptions(stream=False)
    with pytest.raises(TypeError, match="stream"):
        build_options(stream=0)  # equal to False, and still refused
    with pytest.raises(TypeError, match="unknown option 'strem'"):
        build_options(strem=False)
    given = {"temperature": 0.5}
    built = build_options(model_options=given)  # a dict: built each time, never shared
    given["temperature"] = 1.0
    assert built.model_options == {"temperature": 0.5}
    assert build_options(approve=["a"]).approve == frozenset({"a"})
