"""`Identity`: who a connection is, and until when.

The ``authenticate`` hook returns a plain user (who never expires) or an
`Identity` saying when the user's credentials end and, optionally, what
names the user across tokens (``key``). A connection whose identity ends
is closed with `CloseCode.TOKEN_EXPIRED` unless it sent ``__auth__`` again
in time with a token of the same user (a refresh).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class Identity:
    """A user, until ``expires_at``; what an ``authenticate`` hook may return instead of the user itself.

    ``expires_at`` is unix seconds (int or float) or a `datetime` (a naive
    one is read as UTC); None (or infinity): never. ``key`` names the user across
    tokens: a refresh is accepted when the new identity's `key` equals the
    old one's. It defaults to the user itself (compared with ``==``), so
    give one (a user id) when the hook builds a new user object per token
    that does not compare equal.
    """

    user: Any
    expires_at: float | datetime | None = None
    key: Any = None

    def __post_init__(self) -> None:
        if self.user is None:
            raise ValueError("an Identity needs a user (return None from the hook to refuse)")
        expires = self.expires_at
        if expires is None or isinstance(expires, datetime):
            return
        if isinstance(expires, bool) or not isinstance(expires, int | float) or math.isnan(expires):
            raise TypeError(f"expires_at must be unix seconds, a datetime or None, not {expires!r}")

    @property
    def deadline(self) -> float | None:
        """``expires_at`` as unix seconds, or None when the identity never expires."""
        expires = self.expires_at
        if isinstance(expires, datetime):
            return (expires if expires.tzinfo is not None else expires.replace(tzinfo=UTC)).timestamp()
        return None if expires is None or expires == math.inf else float(expires)

    @property
    def who(self) -> Any:
        """What a refresh must match: ``key``, or the user itself when no key was given."""
        return self.user if self.key is None else self.key

    def same_user(self, other: Identity) -> bool:
        """Whether ``other`` names the same user (equal `who`)."""
        try:
            return bool(self.who == other.who)
        except Exception:  # a user object whose == fails is not the same user
            return False

    def remaining(self, now: float | None = None) -> float | None:
        """Seconds until the identity ends (``now``: unix seconds, by default ``time.time()``); None: never."""
        deadline = self.deadline
        if deadline is None:
            return None
        return deadline - (time.time() if now is None else now)


def identity_of(found: Any) -> Identity:
    """The hook's answer as an `Identity`: a plain user is one that never expires."""
    return found if isinstance(found, Identity) else Identity(found)
