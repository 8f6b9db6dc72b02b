import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # make `tests.servers` importable

pytest_plugins = ["tests.servers.fixtures"]


def pytest_collection_modifyitems(config, items):
    """`live` tests call the real APIs: they run only when asked for (`pytest -m live`)."""
    if "live" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="calls the real provider APIs; opt in with pytest -m live")
    for item in items:
        if "live" in item.keywords:
            item.add_marker(skip)
