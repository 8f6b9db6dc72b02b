"""Every notebook in notebooks/ executes top to bottom in a real kernel (nbclient).

Until the embedded local model lands in CI, the model is the loopback OpenAI-compatible server,
scripted with the replies the notebook's cells need; the notebooks themselves never name a model
(they use whatever LLM_MAGIC_MODEL names), so the same files run against a real provider.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import nbformat  # noqa: E402
from jupyter_client.kernelspec import KernelSpecManager  # noqa: E402
from jupyter_client.manager import KernelManager  # noqa: E402
from nbclient import NotebookClient  # noqa: E402

from tests.kernel_harness import KERNEL_NAME, kernel_env, write_kernelspec  # noqa: E402
from tests.servers import Call, OpenAIServer, Reply  # noqa: E402

pytestmark = pytest.mark.kernel

QUICKSTART = ROOT / "notebooks" / "quickstart.ipynb"

QUICKSTART_SCRIPT = [
    # %%llm_chain --tools get_weather --out paris
    Reply(calls=[Call("get_weather", {"city": "Paris"})]),
    Reply(text="It is 21 °C and sunny in Paris."),
    # await llm_magic.chain(..., tools=[get_weather, travel_time])
    Reply(
        calls=[
            Call("get_weather", {"city": "Rome"}),
            Call("travel_time", {"origin": "Paris", "destination": "Rome"}),
        ]
    ),
    Reply(text="Rome: 26 °C and sunny."),
    # %%llm_chain --continue paris --tools get_weather,travel_time
    Reply(calls=[Call("travel_time", {"origin": "Paris", "destination": "Rome"})]),
    Reply(text="About 11 hours."),
    # await llm_magic.chain(..., continue_=rome)
    Reply(calls=[Call("get_weather", {"city": "Oslo", "unit": "c"})]),
    Reply(text="Oslo: 9 °C."),
    # %%llm_chain (marked tools only: the async_tool_is pair)
    Reply(calls=[Call("city_facts", {"city": "Paris"})]),
    Reply(text="Paris has 20 arrondissements."),
]


def execute(
    path: Path, env: dict[str, str], tmp_path: Path, timeout: int = 120
) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    specs = KernelSpecManager(kernel_dirs=[str(write_kernelspec(tmp_path / "kernels"))])
    km = KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=specs)
    client = NotebookClient(
        nb,
        km=km,
        timeout=timeout,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute(env=kernel_env(env), cwd=str(path.parent))
    nbformat.write(nb, tmp_path / path.name)  # kept for a look when a test fails
    return nb


def outputs_text(cell: nbformat.NotebookNode) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out["output_type"] == "stream":
            parts.append(out["text"])
        elif "data" in out:
            parts.append(str(out["data"].get("text/plain", "")))
    return "".join(parts)


def tool_messages(request) -> list[dict]:
    return [m for m in request.body["messages"] if m["role"] == "tool"]


def test_quickstart_runs_against_loopback(tmp_path: Path) -> None:
    with OpenAIServer(QUICKSTART_SCRIPT) as server:
        env = {
            "LLM_MAGIC_MODEL": "openai-chat:test-model",
            "OPENAI_API_KEY": server.api_key,
            "OPENAI_BASE_URL": server.base_url,
        }
        nb = execute(QUICKSTART, env, tmp_path)
        requests = list(server.requests)
        assert server.failures == []
        assert server.pending == 0

    errors = [
        out for cell in nb.cells for out in cell.get("outputs", []) if out["output_type"] == "error"
    ]
    assert errors == []
    assert len(requests) == len(QUICKSTART_SCRIPT)
    assert all(r.body["model"] == "test-model" for r in requests)

    code = [c for c in nb.cells if c.cell_type == "code"]
    chain_cell = next(c for c in code if c.source.startswith("%%llm_chain --tools get_weather"))
    # print() inside the sync tool (run in a worker thread) landed in the chain's cell
    assert "get_weather ran for Paris" in outputs_text(chain_cell)
    # the cell's value is the answer
    assert "It is 21 °C and sunny in Paris." in outputs_text(chain_cell)

    # each tool call happened and its result went back to the model
    assert '"temperature": 21' in tool_messages(requests[1])[0]["content"]
    rome_results = [m["content"] for m in tool_messages(requests[3])]
    assert any('"temperature": 26' in c for c in rome_results)
    assert any("11 hours by train" in c for c in rome_results)  # the async tool

    # --continue paris: the earlier Paris exchange is sent again
    continued = [m.get("content") for m in requests[4].body["messages"]]
    assert continued[0] == "What is the weather in Paris? Use the tool."
    assert continued[-1].startswith("How long does the train")
    # continue_=rome
    oslo = [m.get("content") for m in requests[6].body["messages"]]
    assert oslo[0] == "What is the weather in Rome? Use the tool."
    assert '"temperature": 9' in tool_messages(requests[7])[-1]["content"]

    # every run's output ended as the static timeline: reopened without a kernel (JupyterLab,
    # nbconvert, GitHub), each shows its timeline, never a widget view with no model behind it
    chains = [c for c in code if "%%llm_chain" in c.source or "await llm_magic.chain(" in c.source]
    for cell in chains:
        shown = [
            o
            for o in cell.outputs
            if "llm-magic-timeline" in o.get("data", {}).get("text/html", "")
        ]
        assert len(shown) == 1, cell.source
    saved = json.dumps(nb)
    assert "application/vnd.jupyter.widget-view+json" not in saved
    assert "text/markdown" not in saved  # the answer is never raw Markdown with the model's HTML

    # no --tools: the marked functions only (the async_tool_is pair), its async side ran
    offered = [t["function"]["name"] for t in requests[8].body["tools"]]
    assert offered == ["city_facts"]
    assert "arrondissements" in tool_messages(requests[9])[0]["content"]


@pytest.mark.parametrize(
    ("kind", "model", "env_prefix"),
    [("anthropic", "claude-test", "ANTHROPIC"), ("gemini", "gemini-test", "GEMINI")],
)
def test_quickstart_runs_on_anthropic_and_gemini_wire_formats(
    tmp_path: Path, kind: str, model: str, env_prefix: str
) -> None:
    """`%%llm_chain` and `await chain()` with claude-*/gemini-* models, by base-URL configuration."""
    from tests.servers import make_server

    with make_server(kind, QUICKSTART_SCRIPT) as server:
        env = {
            "LLM_MAGIC_MODEL": model,
            f"{env_prefix}_API_KEY": server.api_key,
            f"{env_prefix}_BASE_URL": server.base_url,
        }
        nb = execute(QUICKSTART, env, tmp_path)
        assert server.failures == []
        assert server.pending == 0
        requests = list(server.requests)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert errors == []
    assert server.api_key not in json.dumps(nb)  # %llm_config masks it; nothing else shows it
    assert len(requests) == len(QUICKSTART_SCRIPT)
    code = [c for c in nb.cells if c.cell_type == "code"]
    chain_cell = next(c for c in code if c.source.startswith("%%llm_chain --tools get_weather"))
    assert "It is 21 °C and sunny in Paris." in outputs_text(chain_cell)
    # the tool's result went back in this provider's own form
    sent = json.dumps(requests[1].body)
    assert ("tool_result" if kind == "anthropic" else "functionResponse") in sent
    assert "temperature" in sent


MCP_NOTEBOOK = ROOT / "notebooks" / "mcp.ipynb"


@pytest.mark.local_model
@pytest.mark.timeout(1200)
def test_mcp_notebook_runs_on_the_local_model(tmp_path: Path) -> None:
    """notebooks/mcp.ipynb: an MCP server (notebooks/servers/units.py, stdio) next to a notebook
    function, on the embedded local model. The model is tiny: the checks are about the mechanics
    (the server's tools offered and called, its calls recorded with its name), not its answers."""
    import psutil

    nb = execute(MCP_NOTEBOOK, {}, tmp_path, timeout=600)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert errors == []
    code = [c for c in nb.cells if c.cell_type == "code"]
    calls = outputs_text(next(c for c in code if c.source.startswith("for call in converted")))
    assert calls.startswith("units units_"), calls  # an MCP tool call, recorded with its server
    listing = outputs_text(next(c for c in code if c.source == "%llm_mcp"))
    assert "units  [ready]" in listing and "units_celsius_to_fahrenheit" in listing
    removed = outputs_text(code[-1])
    assert "stopped and removed" in removed
    leftovers = [
        p.pid
        for p in psutil.process_iter(["cmdline"])
        if "servers/units.py" in " ".join(p.info["cmdline"] or [])
    ]
    assert leftovers == []


VARIABLES_NOTEBOOK = ROOT / "notebooks" / "variables.ipynb"
VARIABLES_SCRIPT = [
    # %%llm_chain --tools notebook --max-steps 1 --out seen
    Reply(calls=[Call("list_variables", {}), Call("describe_variable", {"name": "sales"})]),
    Reply(text="You have sales and threshold."),
    # %%llm_chain --no-tools --context sales
    Reply(text="north"),
]


def test_variables_notebook_runs_against_loopback(tmp_path: Path) -> None:
    """notebooks/variables.ipynb, scripted: what the tools and `--context` sent the model."""
    with OpenAIServer(VARIABLES_SCRIPT) as server:
        env = {
            "LLM_MAGIC_MODEL": "openai-chat:test-model",
            "OPENAI_API_KEY": server.api_key,
            "OPENAI_BASE_URL": server.base_url,
        }
        nb = execute(VARIABLES_NOTEBOOK, env, tmp_path)
        requests = list(server.requests)
        assert server.failures == [] and server.pending == 0
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert errors == []
    listing, described = (m["content"] for m in tool_messages(requests[1]))
    assert [line.split()[0] for line in listing.splitlines()[1:]] == ["sales", "threshold"]
    assert described.startswith("pandas.DataFrame: 4 rows × 3 columns")
    (context,) = requests[2].body["messages"]
    assert "## sales\npandas.DataFrame: 4 rows × 3 columns" in context["content"]
    assert "tok-123" not in json.dumps([r.body for r in requests])
    code = [c for c in nb.cells if c.cell_type == "code"]
    status = outputs_text(next(c for c in code if c.source.startswith("print(seen.status")))
    assert status.startswith("max_steps ['list_variables', 'describe_variable']")


@pytest.mark.local_model
@pytest.mark.timeout(1200)
def test_variables_notebook_runs_on_the_local_model(tmp_path: Path) -> None:
    """notebooks/variables.ipynb on the embedded local model. The model is tiny: the checks are
    that it called one of the notebook tools and that every run completed, not what it said."""
    nb = execute(VARIABLES_NOTEBOOK, {}, tmp_path, timeout=600)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert errors == []
    code = [c for c in nb.cells if c.cell_type == "code"]
    status = outputs_text(next(c for c in code if c.source.startswith("print(seen.status")))
    first = status.splitlines()[0]
    assert first.split()[0] in ("done", "max_steps"), status
    notebook_tools = ("list_variables", "describe_variable", "read_cell", "recent_cells")
    assert any(name in first for name in notebook_tools), status


IMAGES = ROOT / "notebooks" / "images.ipynb"
SEEN = "I was sent {images}: April is the best month, March the weakest."
IMAGES_SCRIPT = [
    # %%llm_chain --tools plot_sales: the tool draws, the server decodes the figure it got
    Reply(calls=[Call("plot_sales", {})]),
    Reply(text=SEEN),
    # %%llm_chain --attach fig, `{fig}` in a prompt, attachments=[fig]
    Reply(text=SEEN),
    Reply(text=SEEN),
    Reply(text=SEEN),
]


def test_images_notebook_sends_the_figures_the_model_answers_from(tmp_path: Path) -> None:
    """notebooks/images.ipynb on the Anthropic wire format: a matplotlib figure a tool returns
    goes inside its tool_result, attached and `{fig}` figures in the user turn; the server
    decodes each PNG (400x300 at figsize 4x3, dpi 100) and answers with the size it read, and
    the saved notebook keeps the image in its static timeline."""
    from tests.servers import AnthropicServer

    with AnthropicServer(IMAGES_SCRIPT) as server:
        env = {
            "LLM_MAGIC_MODEL": "claude-sonnet-4-6",
            "ANTHROPIC_API_KEY": server.api_key,
            "ANTHROPIC_BASE_URL": server.base_url,
            "MPLBACKEND": "Agg",
        }
        nb = execute(IMAGES, env, tmp_path)
        assert server.failures == []
        assert server.pending == 0
        requests = list(server.requests)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert errors == []
    assert [[i[:3] for i in r.images] for r in requests] == [
        [],
        [("image/png", 400, 300)],  # the tool's figure, in its tool_result
        [("image/png", 400, 300)],  # --attach fig
        [("image/png", 400, 300)],  # {fig}
        [("image/png", 400, 300)],  # attachments=[fig]
    ]
    assert requests[1].images[0][3].startswith("messages.2.content.0.content.1")  # tool_result
    code = [c for c in nb.cells if c.cell_type == "code"]
    answer = "I was sent image/png 400x300: April is the best month"
    answered = [c for c in code if answer in outputs_text(c)]
    assert len(answered) == 4
    placeholder = requests[3].body["messages"][-1]["content"][-1]["text"]
    assert placeholder == "Is anything odd in [image: fig, attached]?"
    saved = [
        o["data"]["text/html"] for c in code for o in c.outputs if "text/html" in o.get("data", {})
    ]
    tool_run = next(h for h in saved if "plot_sales" in h)
    assert 'class="llm-media"' in tool_run and "data:image/png;base64," in tool_run
