"""`%load_ext llm_magic` in a headless IPython `InteractiveShell`, against the loopback server.

The transformer output, every `%%llm_chain` option, `{name}` placeholders, the one-line errors a
user reads, `%config LLMMagic`, `%llm_config` / `%llm_models`, the registered fallback magic, and
`await llm_magic.chain(...)`. Real kernels are in test_kernel.py.
"""

from __future__ import annotations

import ast
import asyncio
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from IPython.core.interactiveshell import InteractiveShell  # noqa: E402
from IPython.utils.capture import capture_output  # noqa: E402

from llm_magic.messages import Message, ToolCall, ToolResult  # noqa: E402
from llm_magic.notebook import NotebookError  # noqa: E402
from llm_magic.notebook import run as nb_run  # noqa: E402
from llm_magic.notebook import state as nb_state  # noqa: E402
from llm_magic.notebook.cell_options import OptionError, help_text, interpolate, parse_line  # noqa: E402
from llm_magic.notebook.magics import ENTRY, CellTransformer, mask, transform_cell_source  # noqa: E402
from llm_magic.results import ChainResult  # noqa: E402
from tests.servers import Call, Reply  # noqa: E402
from tests.servers.fixtures import openai_server  # noqa: E402, F401

TOOLS_CELL = '''
import asyncio
import llm_magic

@llm_magic.tool
def get_weather(city: str) -> dict:
    """Current weather for a city."""
    print(f"get_weather ran for {city}")
    return {"city": city, "temp_c": 21}

async def slow_tool(seconds: float) -> str:
    """Sleeps."""
    await asyncio.sleep(seconds)
    return "slept"

def unmarked(x: int) -> int:
    """Not marked with @tool."""
    return x * 2

class Helper:
    def lookup(self, key: str) -> str:
        """Look a key up."""
        return key.upper()

helper = Helper()
city = "Paris"
'''


@pytest.fixture
def ip(openai_server, monkeypatch):  # noqa: F811
    monkeypatch.setenv("OPENAI_API_KEY", openai_server.api_key)
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    for var in ("LLM_MAGIC_MODEL", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    shell = InteractiveShell.instance()
    before = set(shell.user_ns)
    shell.config.pop("LLMMagic", None)  # %config values live on in the shell's config
    shell.extension_manager.load_extension("llm_magic")
    shell.run_cell('%config LLMMagic.default_model = "openai-chat:test-model"').raise_error()
    shell.run_cell(TOOLS_CELL).raise_error()
    nb_state.reset_conversation()
    shell.server = openai_server
    yield shell
    shell.extension_manager.unload_extension("llm_magic")
    shell.config.pop("LLMMagic", None)
    shell.autoawait = True
    for name in set(shell.user_ns) - before:
        del shell.user_ns[name]
    nb_state.reset_conversation()


def run(ip: InteractiveShell, cell: str) -> tuple[Any, Any]:
    """Run a cell, capturing its output: (ExecutionResult, captured)."""
    with capture_output() as cap:
        result = ip.run_cell(cell)
    return result, cap


def ok(ip: InteractiveShell, cell: str) -> tuple[Any, Any]:
    result, cap = run(ip, cell)
    assert result.error_in_exec is None, cap.stdout
    assert result.error_before_exec is None
    return result.result, cap


def error_line(ip: InteractiveShell, cell: str) -> str:
    """The text a user sees for a failing cell: exactly one line."""
    result, cap = run(ip, cell)
    assert result.error_in_exec is not None, f"no error for {cell!r}"
    lines = [line for line in cap.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, cap.stdout
    return lines[0]


def bodies(ip: InteractiveShell) -> list[dict]:
    return [r.body for r in ip.server.requests]


# -- the input transformer ------------------------------------------------------------------------


def test_transformer_rewrites_cell_into_top_level_await(ip):
    cell = "%%llm_chain -m x --tools a,b\nWhat about {city}?\n"
    src = ip.transform_cell(cell)
    assert src == (
        "await __import__('llm_magic.notebook.magics', fromlist=['_'])"
        ".cell_entry('-m x --tools a,b', 'What about {city}?\\n')\n"
    )
    assert ip.should_run_async(cell, transformed_cell=src)


@pytest.mark.parametrize(
    "body",
    [
        "quotes ' \" \"\"\" ''' and a backslash \\ and \\n literally\n",
        ">>> print('a REPL transcript')\n... more\n",
        "  indented first line\n\tand a tab\n",
        "unicode: café ☕ 日本\n",
        '{"json": {"nested": [1, 2, {}]}} and {{double}}\n',
        "%not_a_magic and !not_a_shell and trailing?\n",
    ],
)
def test_transformer_keeps_the_prompt_exactly(ip, body):
    src = ip.transform_cell("%%llm_chain -q\n" + body)
    call = ast.parse(src).body[0].value.value  # await <call>
    assert [ast.literal_eval(a) for a in call.args] == ["-q", body]


def test_transformer_skips_leading_blank_lines(ip):
    assert ip.transform_cell("\n\n%%llm_chain\nhi\n").startswith(ENTRY)


@pytest.mark.parametrize(
    "cell",
    ["%%llm_chain?\n", "%%llm_chainx\nhi\n", "x = 1\n%%llm_chain\nhi\n", "%%time\n1\n"],
)
def test_transformer_leaves_other_cells_alone(ip, cell):
    assert ENTRY not in ip.transform_cell(cell)


def test_transformer_steps_aside_without_autoawait(ip):
    ip.autoawait = False
    try:
        src = ip.transform_cell("%%llm_chain -q\nhi\n")
    finally:
        ip.autoawait = True
    assert src.startswith("get_ipython().run_cell_magic('llm_chain', '-q',")


def test_transform_cell_source_helper():
    assert transform_cell_source("%%llm_chain\nhi\n").startswith(ENTRY)
    assert transform_cell_source("print(1)\n") == "print(1)\n"


@pytest.mark.parametrize(
    ("cell", "status"),
    [
        ("%%llm_chain", "incomplete"),
        ("%%llm_chain -m openai-chat:test-model --approve all", "incomplete"),
        ("%%llm_chain\n", "incomplete"),
        ("%%llm_chain\nwhat is the weather?", "incomplete"),
        ("%%llm_chain\nwhat is the weather?\n\n", "complete"),
    ],
)
def test_check_complete_treats_llm_chain_like_any_cell_magic(ip, cell, status):
    """Terminal IPython's Enter key and a kernel's is_complete_request ask this: a lone
    `%%llm_chain` line must wait for its body, as `%%bash` does."""
    check = ip.input_transformer_manager.check_complete
    assert check(cell)[0] == status
    assert check(cell.replace("%%llm_chain", "%%bash", 1))[0] == status  # the same as IPython's
    assert ENTRY in ip.transform_cell("%%llm_chain\nhi\n")  # running it still awaits


def test_check_complete_is_ipythons_own_after_unload(ip):
    ip.extension_manager.unload_extension("llm_magic")
    try:
        assert ip.input_transformer_manager.check_complete("%%llm_chain")[0] == "incomplete"
        assert ip.input_transformer_manager.check_complete("x = 1")[0] == "complete"
    finally:
        ip.extension_manager.load_extension("llm_magic")


def test_load_and_unload(ip):
    assert "llm_chain" in ip.magics_manager.magics["cell"]
    assert {"llm_config", "llm_models"} <= set(ip.magics_manager.magics["line"])
    assert sum(isinstance(t, CellTransformer) for t in ip.input_transformers_cleanup) == 1
    assert any(type(c).__name__ == "LLMMagic" for c in ip.configurables)
    ip.extension_manager.unload_extension("llm_magic")
    assert "llm_chain" not in ip.magics_manager.magics["cell"]
    assert "llm_config" not in ip.magics_manager.magics["line"]
    assert not any(isinstance(t, CellTransformer) for t in ip.input_transformers_cleanup)
    assert not any(type(c).__name__ == "LLMMagic" for c in ip.configurables)
    ip.extension_manager.load_extension("llm_magic")
    assert "llm_chain" in ip.magics_manager.magics["cell"]


def test_load_ext_imports_no_widgets_and_patches_nothing():
    code = textwrap.dedent(
        """
        import asyncio, sys
        from IPython.core.interactiveshell import InteractiveShell
        ip = InteractiveShell.instance()
        run, task = asyncio.run, asyncio.Task
        ip.run_line_magic("load_ext", "llm_magic")
        assert "ipywidgets" not in sys.modules
        assert "nest_asyncio" not in sys.modules and "nest_asyncio2" not in sys.modules
        assert asyncio.run is run and asyncio.Task is task
        """
    )
    # Its cost is bench/startup.py's to measure; here only what it leaves behind.
    subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )


def test_load_ext_defers_what_no_first_chain_uses():
    """`%load_ext` registers every magic but imports the run log's reader and records, editing,
    the notebook tools, `%llm_mcp` and MCP's session only when one is used: `%llm_log` still
    works."""
    code = textwrap.dedent(
        """
        import sys
        from IPython.core.interactiveshell import InteractiveShell
        ip = InteractiveShell.instance()
        ip.run_line_magic("load_ext", "llm_magic")
        later = ["llm_magic.mcp_session", "llm_magic.log.record", "llm_magic.log.capture",
                 "llm_magic.notebook.log_magic", "llm_magic.notebook.editing",
                 "llm_magic.notebook.shell_tools", "llm_magic.notebook.mcp_magic"]
        print("LOADED", [m for m in later if m in sys.modules])
        print("MAGICS", sorted(ip.magics_manager.magics["line"]))
        ip.run_line_magic("llm_log", "--help")
        print("AFTER", "llm_magic.notebook.log_magic" in sys.modules)
        ip.run_line_magic("unload_ext", "llm_magic")
        print("UNLOADED", "llm_magic.mcp_session" in sys.modules)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert "LOADED []" in out, out
    for magic in ("llm_config", "llm_edit", "llm_log", "llm_mcp", "llm_models", "llm_usage"):
        assert f"'{magic}'" in out.split("MAGICS", 1)[1].splitlines()[0], out
    assert "%llm_log" in out and "AFTER True" in out and "UNLOADED False" in out, out


# -- a cell end to end and each option ------------------------------------------------------------


def test_cell_runs_with_marked_tools_and_returns_the_result(ip):
    ip.server.push(Reply(calls=[Call("get_weather", {"city": "Paris"})]), Reply(text="Sunny."))
    result, cap = ok(ip, "%%llm_chain -q\nWeather in Paris?\n")
    assert isinstance(result, ChainResult)
    assert repr(result) == "Sunny." and result.status == "done"
    assert [c.name for c in result.tool_calls] == ["get_weather"]
    assert result.tool_calls[0].result == {"city": "Paris", "temp_c": 21}
    assert "get_weather ran for Paris" in cap.stdout  # print() in the sync tool
    first, second = bodies(ip)
    assert first["model"] == "test-model"
    assert [t["function"]["name"] for t in first["tools"]] == ["get_weather"]  # marked only
    assert first["messages"] == [{"role": "user", "content": "Weather in Paris?"}]
    assert first["stream"] is True
    assert second["messages"][-1]["role"] == "tool"
    assert ip.user_ns["_"] is result


@pytest.mark.parametrize("flag", ["-m", "--model"])
def test_model_option(ip, flag):
    ip.server.push("ok")
    ok(ip, f"%%llm_chain -q {flag} openai-chat:other-model\nhi\n")
    assert bodies(ip)[0]["model"] == "other-model"


@pytest.mark.parametrize(
    "line",
    [
        "-t get_weather,unmarked",
        "--tools get_weather,unmarked",
        "--tools get_weather --tools unmarked",
        "-t 'get_weather, unmarked'",
    ],
)
def test_tools_option(ip, line):
    ip.server.push("ok")
    ok(ip, f"%%llm_chain -q {line}\nhi\n")
    assert [t["function"]["name"] for t in bodies(ip)[0]["tools"]] == ["get_weather", "unmarked"]


def test_tools_option_takes_methods_and_async_functions(ip):
    ip.server.push(
        Reply(calls=[Call("lookup", {"key": "abc"}), Call("slow_tool", {"seconds": 0})]), "done"
    )
    result, _ = ok(ip, "%%llm_chain -q --tools helper.lookup,slow_tool\nhi\n")
    assert [c.result for c in result.tool_calls] == ["ABC", "slept"]


def test_no_tools_option(ip):
    ip.server.push("plain")
    ok(ip, "%%llm_chain -q --no-tools\nhi\n")
    assert "tools" not in bodies(ip)[0]


@pytest.mark.parametrize("flag", ["-s", "--system"])
def test_system_option(ip, flag):
    ip.server.push("ok")
    ok(ip, f'%%llm_chain -q {flag} "Answer in French."\nhi\n')
    assert bodies(ip)[0]["messages"][0] == {"role": "system", "content": "Answer in French."}


def test_max_steps_option(ip):
    call = Reply(calls=[Call("get_weather", {"city": "Paris"})])
    ip.server.push(call, "What I found so far.")
    result, _ = ok(ip, "%%llm_chain -q --max-steps 1\nhi\n")
    assert result.status == "max_steps" and result.steps == 1
    assert bodies(ip)[1]["tool_choice"] == "none"


def test_timeout_option(ip):
    ip.server.push(Reply(text="late", delay=2.0))
    result, _ = ok(ip, "%%llm_chain -q --timeout 0.3 --no-tools\nhi\n")
    assert result.status == "timeout"


@pytest.mark.parametrize("line", ["-a get_weather", "--approve get_weather", "--approve all"])
def test_approve_option_without_a_timeline_denies_with_a_reason(ip, line):
    ip.server.push(Reply(calls=[Call("get_weather", {"city": "Paris"})]), "Denied, fine.")
    result, cap = ok(ip, f"%%llm_chain -q {line}\nhi\n")
    call = result.tool_calls[0]
    assert call.status == "denied"
    assert "get_weather ran" not in cap.stdout
    assert "needs approval" in call.output and "--quiet" in call.output
    assert bodies(ip)[1]["messages"][-1]["content"].startswith("denied")


@pytest.mark.parametrize("flag", ["-o", "--out"])
def test_out_option(ip, flag):
    ip.server.push("bound")
    result, _ = ok(ip, f"%%llm_chain -q {flag} answer\nhi\n")
    assert ip.user_ns["answer"] is result


def test_continue_option_goes_on_with_the_notebook_conversation(ip):
    ip.server.push("first answer", "second answer")
    ok(ip, "%%llm_chain -q --no-tools\nfirst question\n")
    result, _ = ok(ip, "%%llm_chain -q --no-tools -c\nsecond question\n")
    assert [m["content"] for m in bodies(ip)[1]["messages"]] == [
        "first question",
        "first answer",
        "second question",
    ]
    assert len(result.messages) == 4


def test_without_continue_each_cell_starts_afresh(ip):
    ip.server.push("a", "b")
    ok(ip, "%%llm_chain -q --no-tools\none\n")
    ok(ip, "%%llm_chain -q --no-tools\ntwo\n")
    assert bodies(ip)[1]["messages"] == [{"role": "user", "content": "two"}]


def test_continue_named_result(ip):
    ip.server.push("A1", "B1", "A2")
    ok(ip, "%%llm_chain -q --no-tools -o first\nquestion A\n")
    ok(ip, "%%llm_chain -q --no-tools\nquestion B\n")
    ok(ip, "%%llm_chain -q --no-tools --continue first\nmore on A\n")
    assert [m["content"] for m in bodies(ip)[2]["messages"]] == ["question A", "A1", "more on A"]
    assert len(ip.user_ns["first"].messages) == 2  # a result stays the point it ended at


def test_auto_continue_config_and_reset_option(ip):
    ip.server.push("a", "b", "c")
    ok(ip, "%config LLMMagic.auto_continue = True")
    ok(ip, "%%llm_chain -q --no-tools\none\n")
    ok(ip, "%%llm_chain -q --no-tools\ntwo\n")
    ok(ip, "%%llm_chain -q --no-tools --reset\nthree\n")
    assert len(bodies(ip)[1]["messages"]) == 3
    assert bodies(ip)[2]["messages"] == [{"role": "user", "content": "three"}]


def test_history_option_sends_a_window_cut_at_a_user_message(ip):
    ip.server.push(
        Reply(calls=[Call("get_weather", {"city": "Paris"})]),
        "P",
        Reply(calls=[Call("get_weather", {"city": "Rome"})]),
        "R",
        "O",
    )
    ok(ip, "%%llm_chain -q\nParis?\n")  # user, assistant(call), tool, assistant
    ok(ip, "%%llm_chain -q -c\nRome?\n")  # 8 messages now
    _, cap = run(ip, "%%llm_chain --no-tools -c --history 5\nOslo?\n")
    sent = bodies(ip)[4]["messages"]
    # the last 5 would start at a tool result; the window starts at the next user message
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "assistant", "user"]
    assert sent[0]["content"] == "Rome?"
    assert "sending the last 4" in cap.stdout  # the cut is visible
    assert len(nb_state.current_conversation().messages) == 10  # nothing is forgotten


@pytest.mark.parametrize("flag", ["--no-stream"])
def test_no_stream_option(ip, flag):
    ip.server.push("whole")
    result, _ = ok(ip, f"%%llm_chain -q {flag}\nhi\n")
    assert bodies(ip)[0]["stream"] is False and result.text == "whole"


@pytest.mark.parametrize("flag", ["-q", "--quiet"])
def test_quiet_option_shows_only_the_answer(ip, flag):
    ip.server.push("answer")
    result, cap = ok(ip, f"%%llm_chain {flag}\nhi\n")
    assert cap.outputs == []
    assert cap.stdout.splitlines()[-1].endswith("answer")  # only the displayed value (Out)
    assert len(cap.stdout.splitlines()) == 1
    assert result.text == "answer"


def test_timeline_shown_without_quiet(ip):
    ip.server.push(Reply(calls=[Call("get_weather", {"city": "Paris"})]), "Sunny.")
    result, cap = ok(ip, "%%llm_chain\nhi\n")
    assert result.text == "Sunny."
    assert "get_weather" in cap.stdout  # the terminal timeline (text) names the call


def test_no_interpolate_option(ip):
    ip.server.push("a", "b")
    ok(ip, "%%llm_chain -q\nabout {city}\n")
    ok(ip, "%%llm_chain -q --no-interpolate\nabout {city}\n")
    assert bodies(ip)[0]["messages"][0]["content"] == "about Paris"
    assert bodies(ip)[1]["messages"][0]["content"] == "about {city}"


@pytest.mark.parametrize("line", ["-h", "--help", "-q --help"])
def test_help_option(ip, line):
    result, cap = ok(ip, f"%%llm_chain {line}\n")
    assert result is None and "--model" in cap.stdout and "--no-interpolate" in cap.stdout
    assert ip.server.requests == []


def test_question_mark_documents_the_options(ip):
    magic = ip.find_cell_magic("llm_chain")
    assert magic.__doc__ == help_text()
    _, cap = run(ip, "%%llm_chain?")
    assert "--approve" in cap.stdout and "--history" in cap.stdout


def test_every_documented_option_parses():
    line = parse_line(
        "-m gpt-4.1 -t a,b -s 'be brief' --max-steps 3 --timeout 2.5 -a a -o out "
        "-c prev --no-stream -q --no-interpolate --history 4 --tool-timeout 1.5"
    )
    cell, opts = line.cell, line.chain
    assert (cell.model, cell.tools, cell.system, opts.max_steps, opts.timeout) == (
        "gpt-4.1",
        ["a", "b"],
        "be brief",
        3,
        2.5,
    )
    assert (opts.approve, cell.out, cell.continue_, cell.history) == (
        frozenset({"a"}),
        "out",
        "prev",
        4,
    )
    assert not opts.stream and cell.quiet and not cell.interpolate and not cell.reset
    assert opts.tool_timeout == 1.5
    assert parse_line("--approve all").chain.approve == "all"
    assert parse_line("-c").cell.continue_ is True
    assert parse_line("--reset --no-tools").cell.reset


def test_options_come_from_one_declaration():
    """Every declared option with flags is in --help and parses; every `config` one is a
    `%config LLMMagic` trait, and the trait's value is the line's default."""
    from llm_magic.notebook.cell_options import CellOptions
    from llm_magic.notebook.config import LLMMagic
    from llm_magic.options import ChainOptions, options_of

    text, traits = help_text(), set(LLMMagic.class_trait_names(config=True))
    for cls in (CellOptions, ChainOptions):
        for field, meta in options_of(cls):
            for flag in meta.flags:
                assert flag in text, flag
            name = meta.config_name(field.name)
            if name:
                assert name in traits, name
    configured = LLMMagic(max_tool_calls=7, history_window=3)
    line = parse_line("", configured.defaults())
    assert line.chain.max_tool_calls == 7 and line.cell.history == 3
    assert parse_line("--max-tool-calls 9", configured.defaults()).chain.max_tool_calls == 9


@pytest.mark.parametrize(
    "line",
    ["--max-steps 0", "--timeout -1", "--max-concurrency 0", "--on-tool-error maybe"],
)
def test_bad_values_are_one_line_errors(line):
    with pytest.raises(OptionError, match="%%llm_chain"):
        parse_line(line)


# -- placeholders ---------------------------------------------------------------------------------


class _Obj:
    name = "widget"
    shape = (3, 4)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("in {city}", "in Paris"),
        ("{obj.name} {obj.shape}", "widget (3, 4)"),
        ("{missing} stays", "{missing} stays"),
        ("{obj.nope} stays", "{obj.nope} stays"),
        ("empty {} stays", "empty {} stays"),
        ('{"city": "{city}", "n": {"a": [1, {}]}}', '{"city": "Paris", "n": {"a": [1, {}]}}'),
        ("{{city}} and { city } stay", "{{city}} and { city } stay"),
        ("{city!r} {city:>10} {0} {1.5}", "{city!r} {city:>10} {0} {1.5}"),
        ("d = {k: v for k, v in x}", "d = {k: v for k, v in x}"),
        ("{json} is a module, {In} is IPython's", "{json} is a module, {In} is IPython's"),
        ("unbalanced { and } and {city", "unbalanced { and } and {city"),
    ],
)
def test_interpolate(text, expected):
    ns = {"city": "Paris", "obj": _Obj(), "json": json, "In": ["x"]}
    assert interpolate(text, ns, hidden={"In"}) == expected


def test_placeholders_in_a_cell_leave_json_alone(ip):
    ip.server.push("ok")
    prompt = 'Weather in {city}? Reply as {"city": "...", "temp": 0} or {} or {undefined_name}.'
    ok(ip, f"%%llm_chain -q\n{prompt}\n")
    sent = bodies(ip)[0]["messages"][0]["content"]
    assert sent == prompt.replace("{city}", "Paris")


def test_a_failing_attribute_never_crashes(ip):
    ip.run_cell(
        "class Boom:\n    @property\n    def x(self):\n        raise RuntimeError('no')\nboom = Boom()"
    )
    ip.server.push("ok")
    ok(ip, "%%llm_chain -q\n{boom.x} and {boom}\n")
    assert bodies(ip)[0]["messages"][0]["content"].startswith("{boom.x} and <")


# -- errors: one line that says what is wrong and what would be right ----------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("--modle x", "unknown option --modle; did you mean --model?"),
        ("--tool get_weather", "unknown option --tool; did you mean --tools"),
        ("--max-steps many", "argument --max-steps: invalid int value: 'many'"),
        ("--max-steps 0", "--max-steps must be 1 or more"),
        ("--timeout -1", "--timeout must be a positive number"),
        ("--tools a --no-tools", "use either --tools or --no-tools"),
        ("--reset -c", "use either --reset"),
        ("-o 'not a name'", "--out needs a variable name"),
        ("-o class", "--out needs a variable name, got 'class'"),
        ("-s 'unclosed", "cannot read the options"),
        ("what is this", "unexpected 'what' on the magic line"),
        ("-m", "argument -m/--model: expected one argument"),
    ],
)
def test_bad_options_are_one_line(ip, line, expected):
    text = error_line(ip, f"%%llm_chain {line}\nhi\n")
    assert text.startswith("OptionError: %%llm_chain: ")
    assert expected in text
    assert ip.server.requests == []


def test_unknown_tool_suggests_close_names(ip):
    text = error_line(ip, "%%llm_chain -t get_wether\nhi\n")
    assert text == (
        "NotebookError: unknown tool 'get_wether': no function of that name in the notebook; "
        "did you mean get_weather? (define it in a cell first, or pass the function itself)"
    )


def test_non_callable_tool(ip):
    text = error_line(ip, "%%llm_chain -t city\nhi\n")
    assert "tool 'city' is a str, not a function" in text


def test_unknown_model_suggests_close_ids(ip):
    text = error_line(ip, "%%llm_chain -m gtp-4.1-mini\nhi\n")
    assert text.startswith("NotebookError: unknown model 'gtp-4.1-mini': did you mean gpt-4.1-mini")
    assert "%llm_models" in text


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("openai-compatible:llama@localhost:8000/v1", "base URL 'localhost:8000/v1' for"),
        ("openai-compatible:llama@me:secret@h:1/v1", "base URL 'h:1/v1' for openai-compatible"),
        ("openai:", "model id 'openai:' names no model: write openai:MODEL_NAME"),
    ],
)
def test_bad_model_ids_and_urls_are_one_line(ip, model, expected):
    text = error_line(ip, f"%%llm_chain -m {model}\nhi\n")
    assert expected in text and "secret" not in text
    assert bodies(ip) == []  # nothing was sent


def test_base_url_without_scheme_from_the_environment(ip, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "127.0.0.1:9/v1")
    text = error_line(ip, "%%llm_chain -m gpt-4.1-mini\nhi\n")
    assert "needs http:// or https://, e.g. 'http://127.0.0.1:9/v1'" in text


def test_missing_key_is_one_line(ip, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    text = error_line(ip, "%%llm_chain -m gpt-4.1-mini\nhi\n")
    assert text.startswith("MissingKeyError: no API key for openai: set the environment variable")
    assert "OPENAI_API_KEY" in text


def test_provider_error_is_one_line_and_keeps_its_type(ip):
    ip.server.push(Reply(status=401))
    result, cap = run(ip, "%%llm_chain -q\nhi\n")
    assert type(result.error_in_exec).__name__ == "AuthenticationError"
    assert [line for line in cap.stdout.splitlines() if line] == [
        "AuthenticationError: " + str(result.error_in_exec)
    ]


def test_unknown_approve_name(ip):
    text = error_line(ip, "%%llm_chain --approve get_wether\nhi\n")
    assert "not one of this run's tools: did you mean get_weather?" in text


def test_empty_cell(ip):
    assert "the cell has no prompt" in error_line(ip, "%%llm_chain -q\n\n")


def test_continue_unknown_or_wrong_variable(ip):
    assert "no variable 'nothere'" in error_line(ip, "%%llm_chain --continue nothere\nhi\n")
    assert "'city' is a str" in error_line(ip, "%%llm_chain --continue city\nhi\n")


def test_one_line_render_hook():
    assert NotebookError("x")._render_traceback_() == ["NotebookError: x"]
    assert OptionError("y")._render_traceback_() == ["OptionError: y"]


# -- configuration and the line magics ------------------------------------------------------------


def test_config_default_model(ip):
    ip.server.push("ok")
    ok(ip, '%config LLMMagic.default_model = "openai-chat:configured"')
    ok(ip, "%%llm_chain -q\nhi\n")
    assert bodies(ip)[0]["model"] == "configured"


def test_env_default_model_when_config_is_empty(ip, monkeypatch):
    ip.server.push("ok")
    ok(ip, '%config LLMMagic.default_model = ""')
    monkeypatch.setenv("LLM_MAGIC_MODEL", "openai-chat:from-env")
    ok(ip, "%%llm_chain -q\nhi\n")
    assert bodies(ip)[0]["model"] == "from-env"


def test_config_history_window_and_max_steps(ip):
    ok(ip, "%config LLMMagic.history_window = 7")
    ok(ip, "%config LLMMagic.max_steps = 2")
    from llm_magic.notebook.config import get_config

    defaults = get_config().defaults()
    assert defaults["history"] == 7 and defaults["max_steps"] == 2
    assert parse_line("", defaults).chain.max_steps == 2


def test_llm_config_masks_keys(ip, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-supersecretvalue9876")
    _, cap = ok(ip, "%llm_config")
    assert "sk-…9876" in cap.stdout and "supersecret" not in cap.stdout
    assert "openai-chat:test-model" in cap.stdout and "history_window" in cap.stdout
    assert mask("short") == "****" and mask(None) == "not set"


def test_llm_models_lists_models_and_keys(ip, monkeypatch):
    import llm_magic

    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.setenv("GOOGLE_API_KEY", "g-key-1234567890")
    llm_magic.register_alias("fast", "gpt-4.1-mini")
    try:
        _, cap = ok(ip, "%llm_models")
    finally:
        from llm_magic import registry

        registry.aliases.pop("fast", None)
    assert "claude-sonnet-4-6" in cap.stdout and "needs ANTHROPIC_API_KEY" in cap.stdout
    assert "OPENAI_API_KEY set" in cap.stdout
    assert "fast" in cap.stdout and "-> gpt-4.1-mini" in cap.stdout
    assert "GOOGLE_API_KEY set" in cap.stdout and "GEMINI_API_KEY set" not in cap.stdout
    assert "g-key-1234567890" not in cap.stdout


# -- the registered fallback magic ----------------------------------------------------------------


def test_fallback_magic_without_a_running_loop(ip):
    ip.server.push(Reply(calls=[Call("get_weather", {"city": "Oslo"})]), "Cold.")
    with capture_output() as cap:
        result = ip.run_cell_magic("llm_chain", "-q", "Oslo?\n")
    assert result.text == "Cold." and "get_weather ran for Oslo" in cap.stdout


def test_fallback_magic_inside_a_running_loop_uses_the_private_loop(ip):
    ip.server.push("From the private loop.")

    async def main() -> Any:
        return ip.run_cell_magic("llm_chain", "-q --no-tools", "hi\n")

    assert asyncio.run(main()).text == "From the private loop."


def test_autoawait_off_uses_the_fallback(ip):
    ip.server.push("fallback answer")
    ok(ip, "%autoawait off")
    result, _ = ok(ip, "%%llm_chain -q --no-tools\nhi\n")
    assert result.text == "fallback answer"


# -- await llm_magic.chain(...) -------------------------------------------------------------------


def test_await_chain_in_a_cell(ip):
    ip.server.push(Reply(calls=[Call("unmarked", {"x": 4})]), "Eight.", "Still eight.")
    result, _ = ok(
        ip, "r = await llm_magic.notebook.chain('double 4', tools=[unmarked], quiet=True)\nr"
    )
    assert result.text == "Eight." and result.tool_calls[0].result == 8
    again, _ = ok(ip, "await llm_magic.notebook.chain('sure?', continue_=r, tools=[], quiet=True)")
    assert len(bodies(ip)[2]["messages"]) == 5 and again.text == "Still eight."


def test_await_chain_tools_by_name_and_unknown_option(ip):
    ip.server.push("ok")
    ok(ip, "await llm_magic.notebook.chain('hi', tools=['get_weather'], quiet=True)")
    text = error_line(ip, "await llm_magic.notebook.chain('hi', tool=[unmarked])")
    assert "unknown option 'tool'; did you mean tools?" in text


async def test_cancelling_a_run_marks_it_cancelled_and_propagates(openai_server, monkeypatch):  # noqa: F811
    monkeypatch.setenv("OPENAI_API_KEY", openai_server.api_key)
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    openai_server.push(Reply(calls=[Call("sleepy", {})]), "never sent")

    started = asyncio.Event()

    async def sleepy() -> str:
        """Sleeps long."""
        started.set()
        await asyncio.sleep(10)
        return "woke"

    task = asyncio.ensure_future(
        nb_run.run_chain("go", tools=[sleepy], model="openai-chat:test-model", quiet=True)
    )
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    result = nb_state.state.last_result
    assert result is not None and result.status == "cancelled"
    assert result.tool_calls[0].status == "cancelled"
    assert result.messages[-1].role == "tool"  # the conversation stays valid
    openai_server.take_failures()
    nb_state.reset_conversation()


def test_chain_outside_ipython_imports_no_ipython(openai_server):  # noqa: F811
    code = textwrap.dedent(
        f"""
        import asyncio, sys
        import llm_magic

        def add(a: int, b: int) -> int:
            "Add."
            return a + b

        r = asyncio.run(llm_magic.chain("1+2?", tools=[add], model="openai-chat:test-model",
                                        base_url={openai_server.base_url!r}, api_key="sk-test-123"))
        print(r.text, r.tool_calls[0].result, "IPython" in sys.modules)
        """
    )
    openai_server.push(Reply(calls=[Call("add", {"a": 1, "b": 2})]), "3")
    env = {k: v for k, v in os.environ.items() if k != "LLM_MAGIC_MODEL"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["3", "3", "False"]


# -- the history window ---------------------------------------------------------------------------


def _exchange(n: int) -> list[Message]:
    call = ToolCall(f"c{n}", "f", "{}")
    return [
        Message("user", f"q{n}"),
        Message("assistant", "", [call]),
        Message("tool", tool_results=[ToolResult(f"c{n}", "f", "r")]),
        Message("assistant", f"a{n}"),
    ]


@pytest.mark.parametrize(
    ("limit", "first"),
    [(0, "q0"), (None, "q0"), (12, "q0"), (8, "q1"), (6, "q2"), (5, "q2"), (4, "q2"), (1, "q2")],
)
def test_window(limit, first):
    """A window never cuts the last exchange, even when it alone is longer than the limit."""
    messages = _exchange(0) + _exchange(1) + _exchange(2)
    got = nb_run.window(messages, limit)
    assert got[0].text == first and got[0].role == "user"
    assert not limit or len(got) <= max(limit, 4)
    assert got[-4:] == messages[-4:]


def test_continue_after_a_long_tool_run_keeps_the_last_exchange(ip):
    ip.run_cell("@tool\ndef lookup(i: int) -> int:\n    'Look up.'\n    return i\n")
    ip.server.push(*[Reply(calls=[Call("lookup", {"i": i})]) for i in range(25)])
    ip.server.push("The secret word is PINEAPPLE.")
    ok(ip, "%%llm_chain -q --max-steps 30\nLook up 0..24, then a secret word.\n")
    ip.server.push("PINEAPPLE")
    ok(ip, "%%llm_chain --continue\nWhat was the secret word?\n")
    sent = bodies(ip)[-1]["messages"]
    assert any("PINEAPPLE" in (m.get("content") or "") for m in sent)
    assert len(sent) == 53  # the whole first exchange (52 messages), then the new question


def test_await_chain_with_an_approval_callback(ip):
    ip.server.push(
        Reply(calls=[Call("get_weather", {"city": "Rome"}), Call("unmarked", {"x": 1})]), "ok"
    )
    ok(
        ip,
        "seen = []\n"
        "async def decide(record):\n"
        "    seen.append(record.name)\n"
        "    return llm_magic.Approval(record.name == 'get_weather', 'not that one')\n",
    )
    result, _ = ok(
        ip,
        "await llm_magic.notebook.chain('go', tools=[get_weather, unmarked], approve='all',"
        " approval_callback=decide, quiet=True)",
    )
    assert sorted(ip.user_ns["seen"]) == ["get_weather", "unmarked"]
    assert [c.status for c in result.tool_calls] == ["ok", "denied"]
    assert "not that one" in result.tool_calls[1].output


def test_await_chain_continue_true_uses_the_notebook_conversation(ip):
    ip.server.push("one", "two")
    ok(ip, "%%llm_chain -q --no-tools\nfirst\n")
    ok(ip, "await llm_magic.notebook.chain('second', continue_=True, tools=[], quiet=True)")
    assert [m["content"] for m in bodies(ip)[1]["messages"]] == ["first", "one", "second"]


def test_the_cell_value_renders_the_answer_as_sanitized_markdown(ip):
    """The model's raw HTML never reaches the front end: the answer is rendered here
    with raw HTML off and sanitized, not handed over as text/markdown."""
    answer = "**Rome** is warmest <img src=x onerror=alert(1)><script>alert(2)</script>"
    ip.server.push(answer)
    result, _ = ok(ip, "%%llm_chain -q\nhi\n")
    data, _ = ip.display_formatter.format(result)
    assert data["text/plain"] == answer
    assert "text/markdown" not in data
    assert "<strong>Rome</strong>" in data["text/html"]
    assert "<img" not in data["text/html"] and "<script" not in data["text/html"]
    ip.run_line_magic("unload_ext", "llm_magic")  # the formatter goes with the extension
    try:
        data, _ = ip.display_formatter.format(result)
        assert set(data) == {"text/plain"}
    finally:
        ip.run_line_magic("load_ext", "llm_magic")


def test_unload_removes_the_result_formatter(ip):
    from llm_magic import ChainResult

    html = ip.display_formatter.formatters["text/html"]
    assert ChainResult in html.type_printers
    ip.run_line_magic("unload_ext", "llm_magic")
    try:
        assert ChainResult not in html.type_printers
    finally:
        ip.run_line_magic("load_ext", "llm_magic")


# -- views attach when a run starts (llm_magic.views) -------------------------------------------

WEATHER_RUN = (
    "r = await llm_magic.chain('weather?', tools=[get_weather], model='openai-chat:test-model')"
)


def _weather_result(ip: InteractiveShell) -> None:
    ip.server.push(Reply(calls=[Call("get_weather", {"city": "Paris"})]), "Sunny.")
    ok(ip, WEATHER_RUN)


def test_a_branch_made_outside_a_running_loop_shows_when_awaited(ip):
    """Terminal IPython runs a cell without `await` with no loop: building a branch there
    shows nothing and holds nothing; awaiting it later shows its timeline."""
    import signal

    _weather_result(ip)
    handler = signal.getsignal(signal.SIGINT)
    _, cap = ok(ip, "b = r.rerun(r.tool_calls[0].id, arguments={'city': 'Rome'})")
    assert cap.stdout == "" and signal.getsignal(signal.SIGINT) is handler
    ip.server.push("Warm.")
    _, cap = ok(ip, "again = await b")
    assert ip.user_ns["again"].text == "Warm."
    assert cap.stdout.startswith("LLM openai-chat:test-model") and "get_weather" in cap.stdout
    assert signal.getsignal(signal.SIGINT) is handler  # put back when the run ended


def test_a_branch_never_awaited_leaves_no_handler_and_no_timeline(ip):
    import signal

    _weather_result(ip)
    handler = signal.getsignal(signal.SIGINT)
    _, cap = ok(
        ip,
        "await asyncio.sleep(0)  # a running loop\n"
        "b = r.fork(at=r.tool_calls[0].id, result={'temp_c': 30})",
    )
    assert cap.stdout == "" and signal.getsignal(signal.SIGINT) is handler
    assert len(ip.server.requests) == 2  # the first run's two turns: b never ran


def test_continue_shows_a_timeline_like_chain(ip):
    _weather_result(ip)
    ip.server.push("Still sunny.")
    _, cap = ok(ip, "more = await r.continue_('and tomorrow?')")
    assert ip.user_ns["more"].text == "Still sunny."
    assert cap.stdout.startswith("LLM openai-chat:test-model") and "done" in cap.stdout


def test_a_sync_api_run_shows_no_timeline(ip):
    """The sync API runs on llm_magic's private loop thread, where no view may display or
    set a SIGINT handler."""
    ip.server.push("Plain.")
    result, cap = ok(ip, "llm_magic.get_model('openai-chat:test-model').chain('hi').text()")
    assert result == "Plain." and "LLM " not in cap.stdout


def test_unload_removes_the_run_view(ip):
    from llm_magic import views
    from llm_magic.notebook.view import show_run

    assert views.factories.count(show_run) == 1
    ip.extension_manager.unload_extension("llm_magic")
    assert show_run not in views.factories
    ip.extension_manager.load_extension("llm_magic")
    assert views.factories.count(show_run) == 1


def test_chain_error_hints_name_exactly_its_own_keywords():
    """An unknown option's hint lists `chain()`'s own keywords from one tuple, which must
    follow the signature."""
    import inspect

    from llm_magic.notebook.run import _OWN_KEYWORDS, run_chain

    own = [p for p in inspect.signature(run_chain).parameters if p not in ("prompt", "options")]
    assert sorted(_OWN_KEYWORDS) == sorted(own)


def test_one_model_id_on_the_result_its_events_and_every_header(ip, monkeypatch):
    """Typed as an alias or as a bare id, run from a cell or as a branch, a model shows as
    the one resolved `prefix:model` id; the cell's header adds the alias the user typed."""
    import llm_magic
    from llm_magic import registry

    monkeypatch.setitem(registry.aliases, "fast", "openai-chat:test-model")
    ip.server.push("Hi.")
    _, cap = ok(ip, "%%llm_chain -m fast\nhello")
    assert cap.stdout.splitlines()[0] == "LLM openai-chat:test-model (fast)"
    run = nb_state.state.last_run
    assert run is not None and run.final is not None
    assert run.final.model == run.events[0].model == "openai-chat:test-model"

    ip.server.push("Again.")
    _, cap = ok(ip, "again = await llm_magic.chain('hi', model='fast')")
    assert cap.stdout.splitlines()[0] == "LLM openai-chat:test-model"
    assert ip.user_ns["again"].model == "openai-chat:test-model"

    model = llm_magic.get_async_model("fast")
    assert (model.model_id, model.given_id, model.label) == (
        "openai-chat:test-model",
        "fast",
        "openai-chat:test-model (fast)",
    )
    assert llm_magic.get_model("fast").label == model.label
