"""Tools the person chose to always allow, for the rest of the kernel session.

"Always allow" on an approval card (as VS Code and jupyter-ai offer) approves the call and every
later call of that tool, in any run of this kernel, without a card; each live timeline's header
lists these tools with a button that revokes the choice. Nothing is written anywhere: a new
kernel asks again.
"""

from __future__ import annotations

_allowed: set[str] = set()


def allow(name: str) -> None:
    _allowed.add(name)


def revoke(name: str) -> None:
    _allowed.discard(name)


def allows(name: str) -> bool:
    return name in _allowed


def allowed() -> list[str]:
    """The tools always allowed, sorted (what the header lists)."""
    return sorted(_allowed)
