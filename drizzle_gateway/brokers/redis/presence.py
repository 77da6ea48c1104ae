"""Presence in Redis: members per channel, counted per process, and processes that stop beating leave.

For a channel ``C`` under ``prefix``: the hash ``{prefix}pm:C`` maps each
member key to its dumped entry (JSON), and ``{prefix}pc:C`` maps it to its
connections per process (JSON ``{"<process>": n}``). The sorted set
``{prefix}pp`` holds every taking-part process with the Redis time (ms)
it was last heard; the set ``{prefix}po:<process>`` the channels it has
members on. One Lua script (`UPDATE`) sets a process's count of a member
and, when the member's total goes from 0 or to 0, PUBLISHes its join or
leave on the channel's pub/sub name, so every process hears each change
once, in the order Redis applied them.

Each process beats every ``heartbeat / 4`` seconds (`TICK`): it renews
its time in ``pp`` and removes every process not heard from for
`EXPIRY_BEATS` (1.5) heartbeats, with leave events for the members that
had no connection elsewhere. A process killed with ``kill -9`` has its
members leave everywhere within 1.75 heartbeats plus Redis's and the
loop's latency: within 2 heartbeats. A live process is presumed dead only
when it misses five beats in a row (its loop held for 1.25 heartbeats). A process that finds itself gone
from ``pp`` (it was presumed dead, or Redis lost its data) sends all of
its counts again, so its members come back (with join events). On a
graceful close a process removes itself at once.

The scripts name keys they compute from ``prefix``: presence needs a
single Redis (not a cluster).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from ...wire.codec import decode, encode
from ...wire.presence import Member, change_of
from ..base import BrokerUnavailable, PresenceListener
from .link import REDIS_ERRORS, Link

logger = logging.getLogger("drizzle_gateway")

PRESENCE_MARK = ord("@")
"""The byte after a pub/sub message's origin that marks a presence change (``{"e", "k", "d"}`` JSON follows)."""

EXPIRY_BEATS = 1.5
"""Heartbeats after which a process not heard from is gone and its members leave."""

TICKS_PER_BEAT = 4
"""How many times a heartbeat a process renews its time and looks for processes that are gone."""

_REAP = """
local function reap(prefix, procs, gone, header)
  local of = prefix .. 'po:' .. gone
  local left = 0
  for _, channel in ipairs(redis.call('SMEMBERS', of)) do
    local ck, dk = prefix .. 'pc:' .. channel, prefix .. 'pm:' .. channel
    local all = redis.call('HGETALL', ck)
    for i = 1, #all, 2 do
      local key, counts = all[i], cjson.decode(all[i + 1])
      if counts[gone] then
        counts[gone] = nil
        if next(counts) == nil then
          local data = redis.call('HGET', dk, key) or '{}'
          redis.call('HDEL', dk, key)
          redis.call('HDEL', ck, key)
          redis.call('PUBLISH', prefix .. channel,
                     header .. '@{"e":"leave","k":' .. cjson.encode(key) .. ',"d":' .. data .. '}')
          left = left + 1
        else
          redis.call('HSET', ck, key, cjson.encode(counts))
        end
      end
    end
  end
  redis.call('DEL', of)
  redis.call('ZREM', procs, gone)
  return left
end
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""

UPDATE = _REAP + """
local key, proc, count, max = ARGV[1], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local new = redis.call('ZADD', KEYS[4], now(), proc)
local raw = redis.call('HGET', KEYS[2], key)
local counts = {}
if raw then counts = cjson.decode(raw) end
if count > 0 then
  if not raw then
    if max > 0 and redis.call('HLEN', KEYS[1]) >= max then
      return {0, new}
    end
    redis.call('HSET', KEYS[1], key, ARGV[2])
    redis.call('PUBLISH', ARGV[7], ARGV[8] .. '@{"e":"join","k":' .. cjson.encode(key) .. ',"d":' .. ARGV[2] .. '}')
  end
  counts[proc] = count
  redis.call('HSET', KEYS[2], key, cjson.encode(counts))
  redis.call('SADD', KEYS[3], ARGV[6])
  return {1, new}
end
if ARGV[9] == '1' then
  redis.call('SREM', KEYS[3], ARGV[6])
end
if not raw or not counts[proc] then
  return {1, new}
end
counts[proc] = nil
if next(counts) == nil then
  local data = redis.call('HGET', KEYS[1], key) or '{}'
  redis.call('HDEL', KEYS[1], key)
  redis.call('HDEL', KEYS[2], key)
  redis.call('PUBLISH', ARGV[7], ARGV[8] .. '@{"e":"leave","k":' .. cjson.encode(key) .. ',"d":' .. data .. '}')
else
  redis.call('HSET', KEYS[2], key, cjson.encode(counts))
end
return {1, new}
"""
"""KEYS: the channel's entries, its counts, the process's channels, the processes. ARGV: key, entry JSON,
process, connections, max members (0: none), channel, pub/sub name, origin header, whether the process has no
other member on the channel. Returns {accepted, whether the process was unknown (it must send all its counts)}."""

TICK = _REAP + """
local procs, proc, prefix, header = KEYS[1], ARGV[1], ARGV[3], ARGV[4]
if ARGV[5] == 'gone' then
  return {1, reap(prefix, procs, proc, header)}
end
local known = redis.call('ZSCORE', procs, proc)
local t = now()
redis.call('ZADD', procs, t, proc)
local left = 0
for _, gone in ipairs(redis.call('ZRANGEBYSCORE', procs, '-inf', t - tonumber(ARGV[2]), 'LIMIT', 0, 16)) do
  if gone ~= proc then
    left = left + reap(prefix, procs, gone, header)
  end
end
if known then
  return {1, left}
end
return {0, left}
"""
"""KEYS: the processes. ARGV: process, expiry (ms), prefix, origin header, "gone" to remove the process itself.
Returns {whether the process was known, how many members left}."""


class RedisPresence:
    """One process's presence in Redis: its counts, sent in order by one writer, and its heartbeat.

    ``start`` connects the broker (called on first use). ``heartbeat``
    (seconds) sets how soon the members of a process that is gone leave
    (within 2 heartbeats); ``timeout`` bounds how long an update waits for
    Redis before its subscription goes on (the count is sent once Redis answers).
    """

    def __init__(self, link: Link, *, prefix: str, origin: str, heartbeat: float, timeout: float,
                 start: Callable[[], None]) -> None:
        if heartbeat <= 0:
            raise ValueError("presence_heartbeat must be a positive number of seconds")
        self._link = link
        self.prefix = prefix
        self.origin = origin
        self.heartbeat = heartbeat
        self.timeout = timeout
        self._start_broker = start
        self._header = f"{origin} "
        self._listener: PresenceListener | None = None
        self._local: dict[tuple[str, str], tuple[dict[str, Any], int, int | None]] = {}
        self._keys: dict[str, set[str]] = {}  # per channel: the members with connections here
        self._dirty: dict[tuple[str, str], list[asyncio.Future[bool]]] = {}
        self._wake: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.ticks = 0
        self.beats_failed = 0
        """Heartbeats Redis did not take (unreachable, or too slow for ``timeout``): missed five in a row,
        the other processes presume this one dead."""
        self.rejoins = 0
        """Times Redis no longer knew this process (presumed dead, or its data lost) and its members were sent again."""

    def listen(self, listener: PresenceListener) -> None:
        """Hand ``listener`` every change; from now on this process beats and removes the processes that are gone."""
        self._listener = listener
        self._run()

    @property
    def expiry(self) -> float:
        """Seconds after which a process not heard from is gone."""
        return EXPIRY_BEATS * self.heartbeat

    async def update(self, channel: str, key: str, data: dict[str, Any], connections: int,
                     max_members: int | None = None) -> bool:
        """Send this process's count of ``key`` (in order, after the earlier ones); False when refused (full).

        While Redis does not answer within ``timeout`` the count is taken
        as accepted and sent when Redis is back.
        """
        place = (channel, key)
        self._local[place] = (data, connections, max_members)
        keys = self._keys.setdefault(channel, set())
        if connections > 0:
            keys.add(key)
        else:
            keys.discard(key)
            if not keys:
                del self._keys[channel]
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._dirty.setdefault(place, []).append(done)
        self._run()
        assert self._wake is not None
        self._wake.set()
        try:
            async with asyncio.timeout(self.timeout):
                return await asyncio.shield(done)
        except TimeoutError:
            return True

    async def members(self, channel: str) -> list[Member]:
        """The members of ``channel`` now, by key; `BrokerUnavailable` while Redis cannot be reached."""
        self._start_broker()
        assert self._link.publisher is not None
        try:
            async with self._link.publisher.pipeline(transaction=True) as pipe:
                pipe.hgetall(f"{self.prefix}pm:{channel}")
                pipe.hgetall(f"{self.prefix}pc:{channel}")
                entries, counts = await self._link.bounded(pipe.execute())
        except REDIS_ERRORS as exc:
            raise BrokerUnavailable(f"redis at {self._link.where()} cannot be reached ({type(exc).__name__})") \
                from exc
        found = []
        for raw_key, raw_data in entries.items():
            key = raw_key.decode()
            per_process = decode(counts.get(raw_key, b"{}"))
            found.append(Member(key, decode(raw_data), sum(per_process.values()) if per_process else 0))
        return sorted(found, key=lambda member: member.key)

    def handle(self, channel: str, payload: bytes) -> None:
        """One change PUBLISHed on ``channel`` (the JSON after the mark): hand it to the listener."""
        try:
            change = change_of(decode(payload))
        except ValueError:
            change = None
        if change is None:
            logger.warning("ignored a presence message on %s that is not one", channel)
            return
        if self._listener is not None:
            try:
                self._listener(channel, change)
            except Exception:
                logger.exception("delivering a presence change on %s failed", channel)

    # -- the writer and the heartbeat --------------------------------------------

    def _run(self) -> None:
        if self._tasks or self._link.closed:
            return
        self._start_broker()
        self._wake = asyncio.Event()
        self._tasks = [asyncio.ensure_future(self._write()), asyncio.ensure_future(self._beat())]

    def _resend_all(self) -> None:
        """Redis does not know this process (any more): send every count again."""
        for place, (_, connections, _) in self._local.items():
            if connections > 0:
                self._dirty.setdefault(place, [])
        if self._wake is not None:
            self._wake.set()

    async def _write(self) -> None:
        """Send the counts that changed, each at its latest, in pipelined batches; retry while Redis is away."""
        assert self._wake is not None
        delay = self._link.reconnect_min
        while not self._link.closed:
            await self._wake.wait()
            self._wake.clear()
            while self._dirty and not self._link.closed:
                batch, self._dirty = self._dirty, {}
                try:
                    results = await self._send(batch)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - Redis is away: keep the counts, send them later
                    logger.debug("presence: redis did not take %d counts (%s); retrying", len(batch), exc)
                    for place, waiters in batch.items():
                        self._dirty.setdefault(place, []).extend(waiters)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self._link.reconnect_max)
                    continue
                delay = self._link.reconnect_min
                unknown = False
                for (place, waiters), (accepted, new) in zip(batch.items(), results, strict=True):
                    unknown = unknown or bool(new)
                    current = self._local.get(place)
                    if current is not None and current[1] <= 0 and place not in self._dirty:
                        del self._local[place]
                    for waiter in waiters:
                        if not waiter.done():
                            waiter.set_result(bool(accepted))
                if unknown:
                    self._resend_all()

    async def _send(self, batch: dict[tuple[str, str], list[asyncio.Future[bool]]]) -> list[Any]:
        publisher = self._link.publisher
        assert publisher is not None
        procs = f"{self.prefix}pp"
        async with publisher.pipeline(transaction=False) as pipe:
            for channel, key in batch:
                data, connections, max_members = self._local[(channel, key)]
                alone = "1" if connections <= 0 and channel not in self._keys else "0"
                pipe.eval(UPDATE, 4, f"{self.prefix}pm:{channel}", f"{self.prefix}pc:{channel}",
                          f"{self.prefix}po:{self.origin}", procs, key, encode(data), self.origin,
                          max(connections, 0), max_members or 0, channel, self.prefix + channel, self._header,
                          alone)
            results: list[Any] = await self._link.bounded(pipe.execute())
        return results

    async def _beat(self) -> None:
        """Every ``heartbeat / 4``: renew this process's time, remove the processes that are gone."""
        interval = self.heartbeat / TICKS_PER_BEAT
        while not self._link.closed:
            try:
                known, _ = await self._tick("")
                self.ticks += 1
                if not known and self._local:
                    logger.warning("presence: redis did not know this process; sending its members again")
                    self.rejoins += 1
                    self._resend_all()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis is away: beat again later
                self.beats_failed += 1
                logger.debug("presence: heartbeat failed (%s)", exc)
            await asyncio.sleep(interval)

    async def _tick(self, mode: str) -> tuple[int, int]:
        publisher = self._link.publisher
        assert publisher is not None
        known, left = await self._link.bounded(publisher.eval(
            TICK, 1, f"{self.prefix}pp", self.origin, int(self.expiry * 1000), self.prefix, self._header, mode))
        return int(known), int(left)

    async def close(self) -> None:
        """Stop beating; remove this process's members from Redis (their leaves announced), within ``timeout``."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=self.timeout)
            try:
                await self._tick("gone")
            except Exception as exc:  # noqa: BLE001 - Redis is away: the others find this process gone
                logger.debug("presence: could not remove this process's members (%s)", exc)
