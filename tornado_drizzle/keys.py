"""Subscription keys: Tornado Drizzle's untyped channels, any non-empty string."""

from __future__ import annotations

from typing import Any

from drizzle_gateway import ActionError, ErrorCode, Topic

ALL = "__all__"
"""The key every DrizzleWebSocket is subscribed to when it opens."""


def check_key(key: Any) -> str:
    """Return ``key`` if it can name a channel; else raise VALIDATION_ERROR for this request."""
    if not isinstance(key, str) or not key:
        raise ActionError(ErrorCode.VALIDATION_ERROR, f"subscription key must be a non-empty string, not {key!r}")
    return key


class AnyKey(Topic):
    """An untyped topic whose channels are all non-empty strings (``__test__``, ``room.1``, ``a/b``).

    Tornado Drizzle keys are free-form, so they cannot be a drizzle.v1
    topic pattern, whose parameters exclude dots and slashes. As in the
    seed, only handlers subscribe sockets; ``drizzle.v1`` clients may not
    ``__subscribe__`` to a key by themselves.
    """

    def __init__(self) -> None:
        super().__init__("*", None, client_subscribe=False,
                         description="Tornado Drizzle subscription keys: any non-empty string")

    def match(self, name: str) -> dict[str, str] | None:
        """Every non-empty string is a channel of this topic."""
        return {} if isinstance(name, str) and name else None
