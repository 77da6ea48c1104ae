"""The idempotency keys one process remembers: a bounded table that forgets each key after the window."""

from __future__ import annotations

import time
from collections import OrderedDict

from ..wire.history import Clock
from .base import IDEMPOTENCY_KEYS, IDEMPOTENCY_WINDOW, Receipt


class SeenKeys:
    """Per (channel, key), the `Receipt` of the publish that first carried it, for ``window`` seconds.

    At most ``max_entries`` are kept: beyond that the least recently
    published are forgotten early (a repeat of one of them would be
    delivered again). ``clock`` times the window (tests inject one).
    """

    def __init__(self, window: float = IDEMPOTENCY_WINDOW, max_entries: int = IDEMPOTENCY_KEYS,
                 clock: Clock = time.monotonic) -> None:
        if not window > 0:
            raise ValueError(f"idempotency_window must be positive, got {window!r}")
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ValueError(f"idempotency_keys must be a positive integer, got {max_entries!r}")
        self.window = window
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[tuple[str, str], tuple[float, Receipt]] = OrderedDict()  # oldest first

    def __len__(self) -> int:
        """Keys held (some may have expired and not been swept yet)."""
        return len(self._entries)

    def seen(self, channel: str, key: str) -> Receipt | None:
        """The first publish's receipt, marked as a duplicate, while ``key`` is remembered on ``channel``."""
        entry = self._entries.get((channel, key))
        if entry is None:
            return None
        expires, receipt = entry
        if self._clock() >= expires:
            del self._entries[(channel, key)]
            return None
        return Receipt(receipt.position, duplicate=True)

    def remember(self, channel: str, key: str, receipt: Receipt) -> None:
        """Hold ``key``'s receipt for the window (a later position replaces an unknown one)."""
        now = self._clock()
        self._entries[(channel, key)] = (now + self.window, receipt)
        self._entries.move_to_end((channel, key))
        self._sweep(now)

    def _sweep(self, now: float) -> None:
        """Forget the expired keys at the front, then the oldest beyond ``max_entries``."""
        entries = self._entries
        while entries:
            oldest = next(iter(entries))
            if entries[oldest][0] > now and len(entries) <= self.max_entries:
                return
            del entries[oldest]
