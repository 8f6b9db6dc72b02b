"""The notebook tools over the running IPython shell: its variables, its cells, and code run in
its namespace (each call approved by the user first).

`llm_magic.notebook_tools()` asks for them from the core; `%load_ext llm_magic` registers
`tools_for` as their maker. The values are described by `llm_magic.describe` (plain Python);
what is IPython's (the namespace, `In`, the shell's own names) is read here. Every tool's text is
bounded and says when it was cut; the providers' API keys found in the environment are masked.

`run_python` runs in a worker thread, as sync tools do, so the kernel stays responsive and an
interrupt or Cancel stops the run at once; the code itself is stopped at its next Python line
(KeyboardInterrupt raised in its thread; a long call into C finishes first). Its stdout and
stderr are captured for the model while it runs (process-wide: what another thread prints in
that moment is captured too). It does not go through IPython's cell machinery: no `%magics`,
no top-level `await`, nothing added to `In`/`Out`.
"""

from __future__ import annotations

import ast
import contextlib
import io
import itertools
import linecache
import threading
import traceback
from collections.abc import Iterator, Mapping
from typing import Any

from .. import describe as D
from ..errors import ConfigError, ToolArgumentsError
from ..kernel_tools import NotebookTools
from ..tools import Tool, cancel_event
from .config import get_config
from .errors import NotebookError
from .highlight import PYTHON
from .lookup import hidden_names
from .state import shell

CELL_CHARS = 4_000  # one cell's source
HISTORY_CHARS = 8_000  # the recent cells together
MAX_RECENT = 20
OUTPUT_CHARS = 4_000  # run_python's stdout, stderr and traceback, each

RUN_PYTHON_DESCRIPTION = (
    "Run Python code in the user's notebook kernel, in its namespace (variables persist), "
    "after the user approves it. Returns what it printed, the value of its last line if that "
    "is an expression, or the error's traceback."
)


def tools_for(spec: NotebookTools) -> list[Tool]:
    """The notebook tools over the running shell (the maker `%load_ext` registers)."""
    ip = shell()
    if ip is None or not isinstance(getattr(ip, "user_ns", None), dict):
        raise ConfigError("notebook_tools() needs a running IPython shell or Jupyter kernel")
    kernel = Kernel(ip)
    tools = [
        Tool.from_function(kernel.list_variables),
        Tool.from_function(kernel.describe_variable),
        Tool.from_function(kernel.read_cell),
        Tool.from_function(kernel.recent_cells),
    ]
    if spec.run_python:
        tools.append(run_python_tool(ip))
    return tools


def private_names() -> set[str]:
    """The names of `%config LLMMagic.private_names` (comma separated)."""
    value = get_config().defaults().get("private_names") or ""
    return {n.strip() for n in str(value).split(",") if n.strip()}


def visible(namespace: Mapping[str, Any], ip: Any) -> list[tuple[str, Any]]:
    """The user's variables a model may see (see `describe.shown`), IPython's own left out."""
    return D.shown(namespace, hidden_names(ip), private_names())


def context_text(names: list[str], namespace: Mapping[str, Any], ip: Any) -> str:
    """`--context df,model`: the named variables described, to follow the prompt; a name that
    does not exist or may not be shown is a NotebookError that says which."""
    shown = dict(visible(namespace, ip))
    for name in names:
        if name not in shown:
            raise NotebookError(_missing(name, namespace, shown, "--context"))
    return D.context_block((n, shown[n]) for n in names)


def _missing(name: str, namespace: Mapping[str, Any], shown: Mapping[str, Any], what: str) -> str:
    """Why `name` cannot be described: private (hidden) or not there (with close names)."""
    from .cell_options import close_names

    if name in namespace:
        return (
            f"{what}: {name!r} is hidden from the model (a name starting with _, a module, "
            "IPython's own, or private: %config LLMMagic.private_names, __llm_private__)"
        )
    close = close_names(name, list(shown))
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    return f"{what}: there is no variable {name!r} in the notebook{hint}"


class Kernel:
    """The read-only tools, bound to one shell (their docstrings are what the model reads)."""

    def __init__(self, ip: Any) -> None:
        self.ip = ip

    def list_variables(self) -> str:
        """List the variables of the user's notebook: name, type, size (items) and shape."""
        return D.listing(visible(self.ip.user_ns, self.ip))

    def describe_variable(self, name: str) -> str:
        """Describe one variable of the notebook: a table's columns, types, first rows and
        statistics; an array's shape, type and statistics; any other object's value, signature
        and documentation.

        Args:
            name: the variable's name, as list_variables shows it
        """
        shown = dict(visible(self.ip.user_ns, self.ip))
        if name not in shown:
            raise ToolArgumentsError(_missing(name, self.ip.user_ns, shown, "describe_variable"))
        return D.describe(shown[name])

    def read_cell(self, number: int) -> str:
        """The source of one notebook cell, as the user wrote it.

        Args:
            number: the cell's execution number n, as in In[n]
        """
        cells = self._cells()
        if not 1 <= number < len(cells):
            raise ToolArgumentsError(
                f"there is no cell In[{number}]; the cells run so far are In[1] to "
                f"In[{len(cells) - 1}]"
            )
        return D.bounded(f"In[{number}]:\n{cells[number]}", CELL_CHARS)

    def recent_cells(self, count: int = 5) -> str:
        """The sources of the cells the user ran last, before the one running now, oldest first.

        Args:
            count: how many cells (at most 20)
        """
        cells = self._cells()
        now = len(cells) - 1  # the running cell is stored before it runs (IPython 8 and 9)
        first = max(1, now - max(1, min(count, MAX_RECENT)))
        parts = [f"In[{n}]:\n{D.bounded(cells[n], CELL_CHARS)}" for n in range(first, now)]
        return D.bounded("\n\n".join(parts) or "no cells were run before this one", HISTORY_CHARS)

    def _cells(self) -> list[str]:
        manager = getattr(self.ip, "history_manager", None)
        cells = getattr(manager, "input_hist_raw", None)
        if cells is None:
            cells = self.ip.user_ns.get("In", [""])
        return [str(c) for c in cells]


# -- run_python -------------------------------------------------------------------------------


class CodeError(Exception):
    """The code run_python ran raised: the message is what it printed and its traceback."""


_RUNS = itertools.count(1)


def run_python_tool(ip: Any) -> Tool:
    """`run_python(code)`: always approved by the user first; stopped when the run lets it go."""
    schema = {
        "type": "object",
        "properties": {
            "code": {
                "type": "string",
                "description": "Python statements; the last line's value is returned",
                "contentMediaType": PYTHON,
            }
        },
        "required": ["code"],
        "additionalProperties": False,
    }

    def run_python(code: str) -> str:
        return run_code(ip.user_ns, code)

    return Tool.from_schema(
        "run_python",
        RUN_PYTHON_DESCRIPTION,
        schema,
        run_python,
        check=_check_code,
        requires_approval=True,
        cancellable=True,
    )


def _check_code(arguments: dict[str, Any]) -> None:
    if not isinstance(arguments.get("code"), str) or set(arguments) != {"code"}:
        raise ToolArgumentsError("run_python takes one argument, code: a string of Python")


def run_code(namespace: dict[str, Any], code: str) -> str:
    """Run `code` in `namespace` as a cell would (the last expression's value is the result);
    returns what it printed and that value, or raises CodeError with its traceback."""
    filename = f"<run_python #{next(_RUNS)}>"
    linecache.cache[filename] = (len(code), None, code.splitlines(keepends=True), filename)
    out, err = io.StringIO(), io.StringIO()
    try:
        body, last = _split(ast.parse(code, filename, "exec"))
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), _stoppable():
            exec(compile(body, filename, "exec"), namespace)
            value = eval(compile(last, filename, "eval"), namespace) if last else None
    except BaseException as exc:  # SystemExit too: the model learns the code tried to exit
        raise CodeError(_report(out, err, _user_traceback(exc, filename))) from None
    result = "" if value is None else f"result: {D.short_repr(value)}"
    return _report(out, err, result) or "done: it printed nothing and its last line has no value"


@contextlib.contextmanager
def _stoppable(poll: float = 0.1) -> Iterator[None]:
    """While the block runs in this (worker) thread, the call's `cancel_event()` raises
    KeyboardInterrupt in it, at its next Python line: a thread cannot be killed, but code
    written by a model can be told to stop. The lock keeps the exception from arriving once
    the block has ended."""
    stop, done, lock = cancel_event(), threading.Event(), threading.Lock()
    ident = threading.get_ident()

    def watch() -> None:
        while not done.is_set():
            if stop.wait(poll):
                with lock:
                    if not done.is_set():
                        _raise_in(ident, KeyboardInterrupt)
                return

    threading.Thread(target=watch, name="llm_magic-run_python-stop", daemon=True).start()
    try:
        yield
    finally:
        with lock:
            done.set()


def _raise_in(ident: int, error: type[BaseException]) -> None:
    import ctypes  # only to stop model-written code: not imported by %load_ext

    set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc
    set_async_exc(ctypes.c_ulong(ident), ctypes.py_object(error))


def _split(tree: ast.Module) -> tuple[ast.Module, ast.Expression | None]:
    """The statements to run and, when the last one is an expression, that expression."""
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = tree.body.pop()
        assert isinstance(last, ast.Expr)
        return tree, ast.Expression(last.value)
    return tree, None


def _user_traceback(exc: BaseException, filename: str) -> str:
    """The traceback from the first frame of the user's code on (none of llm_magic's)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != filename:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb)).rstrip()


def _report(out: io.StringIO, err: io.StringIO, last: str) -> str:
    parts = []
    for label, stream in (("stdout", out), ("stderr", err)):
        text = stream.getvalue()
        if text:
            parts.append(f"{label}:\n{D.bounded(text.rstrip(), OUTPUT_CHARS)}")
    if last:
        parts.append(D.bounded(last, OUTPUT_CHARS))
    return "\n".join(parts)
