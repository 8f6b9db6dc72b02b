"""When and where a run started: what the log notes on the run's loop as the run starts.

Kept apart from `capture` (which reads a finished run on the writer thread) so that watching a
run costs no import of the saved run's records until a run is written.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Clock:
    """The wall-clock time of one monotonic instant, to turn event times into Unix times."""

    wall: float
    mono: float

    def unix(self, mono: float) -> float:
        return self.wall + (mono - self.mono)


@dataclass(frozen=True)
class Where:
    """The notebook and cell a run started from, when the notebook layer knows them."""

    notebook: str | None = None
    cell: str | None = None
