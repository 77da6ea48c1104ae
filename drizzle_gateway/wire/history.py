"""Channel history's values: offsets, epochs, positions, pages, and how much a topic keeps.

A channel declared with history numbers its events 1, 2, 3... (the
*offset*, monotonic and without gaps) within an *epoch*, a string that
changes whenever the numbering starts again (its history was lost). A
client that remembers ``(epoch, offset)`` can ask for what it missed.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Clock = Callable[[], float]
"""Seconds from an arbitrary origin (``time.monotonic`` unless a test injects another)."""


@dataclass(frozen=True)
class Retention:
    """How much history a topic keeps: the last ``size`` events, each for ``ttl`` seconds (None: no expiry)."""

    size: int
    ttl: float | None = None

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError("history must keep at least one event")
        if self.ttl is not None and self.ttl <= 0:
            raise ValueError("history_ttl must be positive")


@dataclass(frozen=True)
class Position:
    """Where a channel stands: its ``epoch`` and the ``offset`` of its latest event (0: none yet)."""

    epoch: str
    offset: int


@dataclass(frozen=True)
class Logged:
    """One retained event: its ``offset`` and the dumped ``data`` every subscriber gets (before ``fields``)."""

    offset: int
    data: Any


@dataclass(frozen=True)
class Page:
    """A slice of a channel's history.

    ``events`` follow ``since`` in order; ``complete`` is False when some
    events after ``since`` are gone (expired, pushed out of the ring, or
    ``since`` belongs to another epoch), so the reader cannot recover.
    """

    position: Position
    events: list[Logged] = field(default_factory=list)
    complete: bool = True


def new_epoch() -> str:
    """A fresh epoch: short, random, never reused in practice."""
    return secrets.token_hex(4)
