"""Channel history in Redis: one stream per channel, its epoch and last offset beside it.

For a channel ``C`` under ``prefix``: the stream ``{prefix}h:C`` holds the
retained events (entry id ``<offset>-0``, fields ``t``: Redis time in ms,
``d``: the dumped JSON), trimmed with ``MAXLEN ~ size``; the hash
``{prefix}h:C:meta`` holds ``epoch`` and ``offset``. Both are written by
one Lua script per publish (sent as ``EVALSHA``: Redis keeps the script
once loaded), which also PUBLISHes the event on the channel's pub/sub
name, so every process sees offsets in order and agrees on them. When
Redis loses these keys (restarted without persistence, or they
expired), the next publish starts a new epoch at offset 0. A publish with
an idempotency key is checked and remembered by the same script (see
`idempotency`).

Every key has a TTL, renewed by each publish: the meta hash ``meta_ttl``
(at least the topic's ``history_ttl``), the stream the topic's
``history_ttl`` (``meta_ttl`` without one), the origin's last applied
sequence a day. A read writes nothing, except that finding where a new
subscription starts (``create``) makes the meta hash of a channel nobody
published to yet, so its first event is numbered in the epoch the
subscriber was given; that hash also expires after ``meta_ttl``.
"""

from __future__ import annotations

import hashlib
from typing import Any

from ...wire.dialect import decode
from ...wire.history import Logged, Page, Position, Retention, new_epoch
from . import idempotency
from .idempotency import Once

APPEND = """
if KEYS[4] then
  local seen = redis.call('GET', KEYS[4])
  if seen then
    return seen
  end
end
if tonumber(ARGV[7]) > 0 then
  local applied = tonumber(redis.call('GET', KEYS[3]) or '0')
  if tonumber(ARGV[7]) <= applied then
    return 0
  end
  redis.call('SET', KEYS[3], ARGV[7], 'EX', 86400)
end
local epoch = redis.call('HGET', KEYS[2], 'epoch')
if not epoch then
  epoch = ARGV[1]
  redis.call('HSET', KEYS[2], 'epoch', epoch)
end
local offset = redis.call('HINCRBY', KEYS[2], 'offset', 1)
local now = redis.call('TIME')
local ms = string.format('%d', tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000))
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], string.format('%d-0', offset), 't', ms, 'd', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[8])
local position = epoch .. ':' .. string.format('%d', offset)
redis.call('PUBLISH', ARGV[5], ARGV[6] .. ' #' .. position .. ' ' .. ARGV[2])
local record = ARGV[9] .. ' ' .. position
if KEYS[4] then
  redis.call('SET', KEYS[4], record, 'PX', ARGV[10])
end
return record
"""
"""KEYS: stream, meta, the origin's last applied sequence, and the publish's idempotency key if it has one.
ARGV: epoch if new, data, size, the stream's ttl ms, pub/sub name, origin, sequence (0: not numbered), the meta
hash's ttl ms, the publish's token, the idempotency window ms.

Returns the publish's record, ``<token> <epoch>:<offset>``, or 0 for a skipped resend. A batch resent after a
connection failure (Redis may have applied it before the failure) is applied once: each broker numbers its
publishes, and the script skips a number it has applied already (remembered for a day). A publish with an
idempotency key is applied unless the key holds a record: then that record (the first publish's) is the answer
and nothing is written or published. The record is set in the same script that numbers and publishes the
event, so no failure can leave one done without the other: either the event was published and its key
remembers it, or neither happened and a retry publishes it."""

READ = """
local epoch = redis.call('HGET', KEYS[2], 'epoch')
if not epoch then
  epoch = ARGV[1]
  if tonumber(ARGV[4]) > 0 then
    redis.call('HSET', KEYS[2], 'epoch', epoch, 'offset', 0)
    redis.call('PEXPIRE', KEYS[2], ARGV[4])
  end
end
local offset = redis.call('HGET', KEYS[2], 'offset') or '0'
local now = redis.call('TIME')
local ms = string.format('%d', tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000))
local since = tonumber(ARGV[2])
local count = tonumber(ARGV[3])
local entries
if count == 0 then
  entries = {}
elseif since >= 0 then
  entries = redis.call('XRANGE', KEYS[1], string.format('%d-0', since + 1), '+', 'COUNT', count)
else
  entries = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', count)
end
return {epoch, offset, ms, entries}
"""
"""KEYS: stream, meta. ARGV: epoch if new, since offset (-1: none), count (0: position only), and the meta
hash's ttl ms when a missing one is to be made (``create``; 0: make none, answer the new epoch unkept)."""

APPEND_SHA = hashlib.sha1(APPEND.encode()).hexdigest()
"""What Redis names `APPEND` in its script cache: publishes send ``EVALSHA`` with it, not the script's text."""

LOGGED_MARK = ord("#")
"""A pub/sub payload whose body starts with ``#`` carries ``#<epoch>:<offset> <json>`` (JSON never starts so)."""


def keys(prefix: str, channel: str) -> list[str]:
    """The stream and meta keys of ``channel``."""
    stream = f"{prefix}h:{channel}"
    return [stream, stream + ":meta"]


META_TTL = 86400.0
"""Seconds a channel's meta hash (its epoch and offset) outlives its last publish, by default."""


def meta_ttl_ms(retention: Retention, meta_ttl: float) -> int:
    """The meta hash's TTL: ``meta_ttl``, and never shorter than the stream's."""
    return int(max(meta_ttl, retention.ttl or 0) * 1000)


def append_args(prefix: str, channel: str, body: bytes, retention: Retention, origin: str,
                sequence: int, meta_ttl: float = META_TTL, once: Once | None = None) -> list[Any]:
    """The arguments of `EVAL APPEND`, from the number of keys on; ``once``: the publish's idempotency key."""
    stream_ttl_ms = int((retention.ttl or meta_ttl) * 1000)
    stream, meta = keys(prefix, channel)
    names = [stream, meta, f"{meta}:applied:{origin}"]
    if once is not None:
        names.append(idempotency.key_name(prefix, channel, once.key))
    return [len(names), *names, new_epoch(), body, retention.size, stream_ttl_ms, prefix + channel, origin,
            sequence, meta_ttl_ms(retention, meta_ttl), once.token if once is not None else "",
            once.window_ms if once is not None else 0]


def read_args(prefix: str, channel: str, since: int | None, count: int, retention: Retention,
              create: bool, meta_ttl: float = META_TTL) -> list[Any]:
    """The arguments of `EVAL READ`, from the number of keys on; ``create``: make a missing meta hash."""
    return [2, *keys(prefix, channel), new_epoch(), -1 if since is None else since, count,
            meta_ttl_ms(retention, meta_ttl) if create else 0]


def parse_logged(body: bytes) -> tuple[Position, bytes]:
    """``#<epoch>:<offset> <json>`` -> (position, json); ValueError when malformed."""
    head, _, payload = body.partition(b" ")
    epoch, _, offset = head[1:].partition(b":")
    return Position(epoch.decode(), int(offset)), payload


def page(answer: list, retention: Retention, since: Position | None, limit: int | None,
         newer_than: float | None = None) -> Page:
    """A `Page` from `READ`'s answer: expired entries (and those stamped before ``newer_than``, unix time) dropped."""
    epoch, offset, now_ms, entries = answer
    position = Position(_text(epoch), int(offset))
    if since is None:
        entries = list(reversed(entries))
    oldest = int(now_ms) - int(retention.ttl * 1000) if retention.ttl else None
    if newer_than is not None:
        oldest = max(oldest or 0, int(newer_than * 1000) - 1)
    events = []
    for entry_id, fields in entries:
        values = _fields(fields)
        if oldest is not None and int(values[b"t"]) <= oldest:
            continue
        events.append(Logged(int(_text(entry_id).partition("-")[0]), decode(values[b"d"])))
    if since is None:
        return Page(position, events[-limit:] if limit else events)
    if since.epoch != position.epoch or since.offset > position.offset:
        return Page(position, events[-limit:] if limit else events, complete=False)
    complete = since.offset == position.offset or bool(events and events[0].offset == since.offset + 1)
    return Page(position, events[:limit] if limit else events, complete)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _fields(flat: list | dict) -> dict[bytes, bytes]:
    if isinstance(flat, dict):
        return flat
    return dict(zip(flat[::2], flat[1::2], strict=True))
