"""The notebook tools in a headless IPython shell, against the loopback server: `--tools notebook`
(and `notebook+run`), what the model reads of the variables and cells, what it never reads
(hidden, modules, private), `run_python` always asking first, and `--context`. A real kernel's
run is in tests/kernel/test_notebook_tools_kernel.py."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from IPython.core.interactiveshell import InteractiveShell  # noqa: E402
from IPython.utils.capture import capture_output  # noqa: E402

import llm_magic  # noqa: E402
from llm_magic.errors import ConfigError  # noqa: E402
from llm_magic.notebook import render  # noqa: E402
from llm_magic.notebook import state as nb_state  # noqa: E402
from llm_magic.notebook.highlight import code_arguments  # noqa: E402
from llm_magic.notebook.shell_tools import run_code, run_python_tool  # noqa: E402
from llm_magic.records import ToolCallRecord  # noqa: E402
from tests.servers import Call, Reply  # noqa: E402
from tests.servers.fixtures import openai_server  # noqa: E402, F401

VARIABLES_CELL = """
import pandas as pd
sales = pd.DataFrame({"region": ["north", "south", "east"], "units": [120, 80, 45]})
threshold = 50
_scratch = "hidden by its underscore"
api_token = "tok-do-not-show"

class Vault:
    __llm_private__ = True
    def __repr__(self):
        return "Vault(gold)"

vault = Vault()
"""


@pytest.fixture
def ip(openai_server, monkeypatch):  # noqa: F811
    monkeypatch.setenv("OPENAI_API_KEY", openai_server.api_key)
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    for var in ("LLM_MAGIC_MODEL", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    shell = InteractiveShell.instance()
    before = set(shell.user_ns)
    shell.config.pop("LLMMagic", None)
    shell.extension_manager.load_extension("llm_magic")
    shell.run_cell('%config LLMMagic.default_model = "openai-chat:test-model"').raise_error()
    shell.run_cell('%config LLMMagic.private_names = "api_token"').raise_error()
    shell.run_cell(VARIABLES_CELL, store_history=True).raise_error()
    nb_state.reset_conversation()
    shell.server = openai_server
    yield shell
    shell.extension_manager.unload_extension("llm_magic")
    shell.config.pop("LLMMagic", None)
    for name in set(shell.user_ns) - before:
        del shell.user_ns[name]
    nb_state.reset_conversation()


def ok(ip: InteractiveShell, cell: str) -> tuple[Any, Any]:
    with capture_output() as cap:
        result = ip.run_cell(cell, store_history=True)
    assert result.error_in_exec is None and result.error_before_exec is None, cap.stdout
    return result.result, cap


def tool_outputs(body: dict) -> list[str]:
    return [m["content"] for m in body["messages"] if m["role"] == "tool"]


def offered(body: dict) -> list[str]:
    return [t["function"]["name"] for t in body.get("tools", [])]


def test_tools_notebook_offers_the_read_only_tools_and_notebook_run_adds_run_python(ip):
    ip.server.push("a", "b")
    ok(ip, "%%llm_chain -q --tools notebook\nWhat is there?\n")
    ok(ip, "%%llm_chain -q -t notebook+run\nWhat is there?\n")
    first, second = (r.body for r in ip.server.requests)
    read_only = ["list_variables", "describe_variable", "read_cell", "recent_cells"]
    assert offered(first) == read_only
    assert offered(second) == [*read_only, "run_python"]
    code = next(t for t in second["tools"] if t["function"]["name"] == "run_python")
    assert code["function"]["parameters"]["required"] == ["code"]


def test_a_notebook_function_named_notebook_stays_the_tool_it_was(ip):
    ok(ip, "def notebook(page: int) -> str:\n    'A page of the notebook.'\n    return 'p'\n")
    ip.server.push("a")
    ok(ip, "%%llm_chain -q --tools notebook\nRead.\n")
    assert offered(ip.server.requests[0].body) == ["notebook"]


def test_the_model_lists_and_describes_variables_but_never_hidden_or_private_ones(ip):
    ip.server.push(
        Reply(calls=[Call("list_variables", {}), Call("describe_variable", {"name": "sales"})]),
        Reply(calls=[Call("describe_variable", {"name": "vault"})]),
        "North sold most.",
    )
    result, _ = ok(ip, "%%llm_chain -q --tools notebook\nWhich region sold most?\n")
    assert result.status == "done" and result.text == "North sold most."
    listing, described = tool_outputs(ip.server.requests[1].body)
    assert listing.splitlines()[0].split() == ["name", "type", "size", "shape"]
    names = [line.split()[0] for line in listing.splitlines()[1:]]
    # not _scratch, api_token (private_names), vault and Vault (__llm_private__), pd (a
    # module), nor IPython's own In, Out, get_ipython, exit, quit
    assert names == ["sales", "threshold"]
    assert described.startswith("pandas.DataFrame: 3 rows × 2 columns")
    assert "north" in described and "120" in described and "mean" in described
    (refused,) = tool_outputs(ip.server.requests[2].body)[2:]
    assert refused.startswith("error: ") and "hidden from the model" in refused
    assert "gold" not in refused


def test_cells_are_read_by_number_and_the_recent_ones_before_this_cell(ip):
    cells = ip.history_manager.input_hist_raw
    setup = max(n for n in range(len(cells)) if "sales = pd.DataFrame" in cells[n])
    ip.server.push(
        Reply(calls=[Call("read_cell", {"number": setup}), Call("recent_cells", {"count": 2})]),
        Reply(calls=[Call("read_cell", {"number": 100_000})]),
        "Read.",
    )
    ok(ip, "threshold = 60")
    ok(ip, "%%llm_chain -q --tools notebook\nWhat did I run?\n")
    one, recent = tool_outputs(ip.server.requests[1].body)
    assert one == f"In[{setup}]:\n{cells[setup]}"
    chain_cell = len(cells) - 1
    assert cells[chain_cell].startswith("%%llm_chain")
    assert recent.startswith(f"In[{chain_cell - 2}]:\n")
    assert recent.endswith(f"\n\nIn[{chain_cell - 1}]:\nthreshold = 60")
    assert "%%llm_chain" not in recent
    missing = tool_outputs(ip.server.requests[2].body)[-1]
    assert "there is no cell In[100000]; the cells run so far are In[1] to In[" in missing


def test_context_describes_the_named_variables_after_the_prompt(ip):
    ip.server.push("seen")
    ok(ip, "%%llm_chain -q --no-tools --context sales,threshold\nSummarise.\n")
    (message,) = ip.server.requests[0].body["messages"]
    prompt = message["content"]
    assert prompt.startswith("Summarise.\n\nVariables of the user's Python session, described:")
    assert "## sales\npandas.DataFrame: 3 rows × 2 columns" in prompt
    assert "## threshold\nint: 50" in prompt


@pytest.mark.parametrize(
    ("name", "why"),
    [("vault", "hidden from the model"), ("api_token", "hidden"), ("sale", "did you mean sales")],
)
def test_context_refuses_private_or_unknown_names_in_one_line(ip, name, why):
    with capture_output() as cap:
        result = ip.run_cell(f"%%llm_chain -q --no-tools --context {name}\nhi\n")
    assert result.error_in_exec is not None
    assert why in cap.stdout and "gold" not in cap.stdout and "tok-do" not in cap.stdout
    assert ip.server.requests == []


def test_run_python_asks_even_when_the_run_approves_nothing(ip):
    """Quiet, there is no timeline to ask in: the call is denied, with the reason."""
    ip.server.push(Reply(calls=[Call("run_python", {"code": "threshold = 0"})]), "Denied.")
    result, _ = ok(ip, "%%llm_chain -q --tools notebook+run\nReset it.\n")
    assert result.tool_calls[0].status == "denied"
    assert ip.user_ns["threshold"] == 50


def test_run_python_approved_runs_in_the_namespace_and_reports_output_and_errors(ip):
    ip.server.push(
        Reply(
            calls=[
                Call("run_python", {"code": "print('units', sales.units.sum())\nbig = 2\nbig * 21"})
            ]
        ),
        Reply(calls=[Call("run_python", {"code": "def f():\n    return 1 / 0\nf()"})]),
        "Done.",
    )
    ok(ip, "async def yes(record):\n    return llm_magic.Approval(True)\nimport llm_magic\n")
    result, _ = ok(
        ip,
        "await llm_magic.notebook.chain('go', tools=[llm_magic.notebook_tools(run_python=True)],"
        " approval_callback=yes, quiet=True)",
    )
    ran, failed = result.tool_calls
    assert ran.status == "ok" and ran.output == "stdout:\nunits 245\nresult: 42"
    assert ip.user_ns["big"] == 2
    assert failed.status == "error"
    assert (
        "line 2, in f" in failed.output and "ZeroDivisionError: division by zero" in failed.output
    )
    assert "llm_magic" not in failed.output.split("Traceback", 1)[1]  # the user's frames only


def test_run_python_that_never_ends_is_stopped_when_the_run_lets_it_go(ip):
    """A model's endless loop: the call times out, its thread is told to stop and does."""
    ip.server.push(
        Reply(calls=[Call("run_python", {"code": "n = 0\nwhile True:\n    n += 1"})]), "Gave up."
    )
    ok(ip, "async def yes(record):\n    return llm_magic.Approval(True)\nimport llm_magic\n")
    result, _ = ok(
        ip,
        "await llm_magic.notebook.chain('go', tools=[llm_magic.notebook_tools(run_python=True)],"
        " approval_callback=yes, quiet=True, tool_timeout=0.5)",
    )
    (call,) = result.tool_calls
    assert call.status == "error" and call.output == "error: run_python timed out after 0.5 s"
    assert call.thread == "stopped"
    assert ip.user_ns["n"] > 0
    assert result.status == "done"


def test_run_code_keeps_its_output_bounded_and_masks_keys(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-proj-secret-value-999")
    ns: dict[str, Any] = {}
    out = run_code(ns, "import os\nprint('x' * 10_000)\nos.environ['OPENAI_API_KEY']")
    assert "more characters not shown]" in out
    assert "sk-proj-secret-value-999" not in out and "***" in out
    assert run_code(ns, "y = 1") == "done: it printed nothing and its last line has no value"
    with pytest.raises(Exception, match="SyntaxError"):
        run_code(ns, "def (")


def test_the_approval_card_shows_run_pythons_code_highlighted():
    tool = run_python_tool(type("Shell", (), {"user_ns": {}})())
    assert tool.options.requires_approval and tool.options.cancellable
    assert code_arguments(tool.schema) == ["code"]
    rec = ToolCallRecord("c1", "run_python", "{}", 1, arguments={"code": "for i in x:  # <b>"})
    card = render.approval_args_html(rec, code_arguments(tool.schema))
    assert 'class="llm-code"' in card and "--jp-mirror-editor-keyword-color" in card
    assert ">for</span>" in card and "&lt;b&gt;" in card and "<b>" not in card
    plain = render.approval_args_html(rec)
    assert "llm-code" not in plain and "for i in x:" in plain


def test_notebook_tools_outside_the_extension_say_to_load_it(ip):
    ip.extension_manager.unload_extension("llm_magic")
    try:
        with pytest.raises(ConfigError, match="%load_ext llm_magic"):
            asyncio.run(llm_magic.notebook_tools().list_tools())
    finally:
        ip.extension_manager.load_extension("llm_magic")
