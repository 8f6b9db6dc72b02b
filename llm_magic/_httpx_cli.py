"""httpx, imported without its command-line client until that is run.

`import httpx` runs `from ._main import main` (httpx's CLI) whenever `click` is installed, and
that imports click and pygments' lexers: 15-30 ms of CPU, a tenth of the first chain's budget
in a kernel (issue 15.5), for a command line llm_magic never runs. Imported first by
`llm_magic/__init__.py`: while httpx loads, `httpx._main` is a stand-in whose `main` imports
the real module and runs it, so `httpx.main()` and the `httpx` command still work; once httpx
is loaded the stand-in is gone, and `import httpx._main` loads the real module. Nothing is done
when httpx is already imported.
"""

from __future__ import annotations

import sys
import types
from typing import Any

_NAME = "httpx._main"


def _main(*args: Any, **kwargs: Any) -> Any:
    """httpx's `main`, imported when first called."""
    if sys.modules.get(_NAME) is _stand_in:
        del sys.modules[_NAME]
    try:
        from httpx._main import main
    except ImportError:  # as httpx's own fallback `main` says
        print(
            "The httpx command line client could not run because the required dependencies "
            "were not installed.\nMake sure you've installed everything with: "
            "pip install 'httpx[cli]'"
        )
        sys.exit(1)
    return main(*args, **kwargs)


_stand_in = types.ModuleType(_NAME, "a stand-in while httpx is imported (llm_magic._httpx_cli)")
_stand_in.main = _main  # type: ignore[attr-defined]

if "httpx" not in sys.modules and _NAME not in sys.modules:
    sys.modules[_NAME] = _stand_in
    try:
        import httpx  # noqa: F401
    finally:
        if sys.modules.get(_NAME) is _stand_in:
            del sys.modules[_NAME]
