import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # make `tests.servers` importable

pytest_plugins = ["tests.servers.fixtures"]


@pytest.fixture(scope="session", autouse=True)
def _run_log_in_tmp(tmp_path_factory):
    """Runs are logged by default: the tests' runs go to a database in the session's tmp
    directory, never into the user's data directory. Session-wide, so that the kernels and
    subprocesses tests start (module fixtures included) inherit it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LLM_MAGIC_LOG_PATH", str(tmp_path_factory.getbasetemp() / "log.db"))
        yield


def pytest_collection_modifyitems(config, items):
    """`live` tests call the real APIs: they run only when asked for (`pytest -m live`)."""
    if "live" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="calls the real provider APIs; opt in with pytest -m live")
    for item in items:
        if "live" in item.keywords:
            item.add_marker(skip)
