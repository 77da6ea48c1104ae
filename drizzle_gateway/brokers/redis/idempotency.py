"""Idempotency keys in Redis: where a key lives, the script of a keyed publish without history, the answers.

A publish carrying idempotency key ``K`` on channel ``C`` sets
``{prefix}i:C:K`` to its *record* for the window (``PX``), in the same
script that publishes it: ``<token>`` for a channel without history (the
`ONCE` script here), ``<token> <epoch>:<offset>`` with history (the
`streams` APPEND script). The token is unique to the publish, so the
publisher tells its own record (a resend of a batch Redis had applied)
from another publish's (a duplicate). A key holding a record makes the
script answer that record and publish nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from ...wire.history import Position
from ..base import Receipt

ONCE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('PUBLISH', ARGV[3], ARGV[4])
  return ARGV[1]
end
return redis.call('GET', KEYS[1])
"""
"""KEYS: the idempotency key. ARGV: the publish's token, the window ms, the pub/sub name, the message.
Sets the key and PUBLISHes the message, atomically, unless the key holds a record; answers the record."""

ONCE_SHA = hashlib.sha1(ONCE.encode()).hexdigest()
"""What Redis names `ONCE` in its script cache: keyed publishes send ``EVALSHA`` with it, not the script's text."""


@dataclass(frozen=True)
class Once:
    """The idempotency part of one publish: its ``key``, a ``token`` unique to it, the window in ms."""

    key: str
    token: str
    window_ms: int


def key_name(prefix: str, channel: str, key: str) -> str:
    """The Redis key that remembers idempotency key ``key`` on ``channel`` (keys hold no ``:``)."""
    return f"{prefix}i:{channel}:{key}"


def once_args(prefix: str, channel: str, message: bytes, once: Once) -> list[Any]:
    """The arguments of `EVAL ONCE` (or ``EVALSHA``), from the number of keys on; ``message``: what pub/sub carries."""
    return [1, key_name(prefix, channel, once.key), once.token, once.window_ms, prefix + channel, message]


def receipt(answer: Any, token: str) -> Receipt | None:
    """The `Receipt` a script's record says (None for a skipped resend: 0).

    A record with another token than ``token`` is an earlier publish's:
    this one is a duplicate.
    """
    if not answer:
        return None
    record = answer.decode() if isinstance(answer, bytes) else str(answer)
    recorded, _, where = record.partition(" ")
    position = None
    if where:
        epoch, _, offset = where.rpartition(":")
        position = Position(epoch, int(offset))
    return Receipt(position, duplicate=recorded != token)
