"""Redis keys: a client naming thousands of fresh rooms (subscribe, unsubscribe, ``__history__``, publish).

The gateway runs in process on a `RedisBroker` whose ``meta_ttl`` is
`META_TTL` seconds, against a real redis-server the module starts. The
README's table of keys is the bound: a subscription to a channel nobody
published to makes one meta hash, a publish a stream, a meta hash, the
publishing process's applied-sequence key and its idempotency key (the
client sends one with every publish), ``__history__`` nothing; every key
has a TTL, so what a client made Redis hold is gone after it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from drizzle_gateway import Gateway, Limits, Topic
from tests.support.bystander import Bystander, logger
from tests.support.polling import eventually
from tests.support.resources import Message

pytestmark = pytest.mark.adversarial
redis = pytest.importorskip("redis")
RedisBroker = pytest.importorskip("drizzle_gateway.brokers.redis.broker").RedisBroker

PREFIX = "adv:"
META_TTL = 3.0
"""The broker's ``meta_ttl`` here (a day by default), so the keys' end is seen within the test."""
APPLIED_TTL = 86_400
"""README: a publishing process's applied-sequence key lives a day."""
SUBSCRIBED, READ, PUBLISHED = 1000, 1000, 100
"""Fresh rooms the attacker subscribes to (and leaves), reads the history of, and publishes one event to."""
BATCH = 32
"""Requests the attacker keeps in flight: the default ``max_in_flight``."""


@pytest.fixture
def gateway(redis_server, io_loop) -> Gateway:
    """Rooms with history on Redis, with no per-connection rate limit, so one client pushes thousands of rooms."""
    gw = Gateway(topics=[Topic("feed.{room}", Message, history=100, client_publish=True)],
                 broker=RedisBroker(redis_server.url, prefix=PREFIX, meta_ttl=META_TTL,
                                    idempotency_window=META_TTL),
                 limits=Limits(rate=None))
    yield gw
    io_loop.run_sync(gw.close)


async def in_batches(call: Callable[[int], Awaitable[Any]], count: int) -> list[Any]:
    """``call(n)`` for each n below ``count``, `BATCH` at a time; their answers in order."""
    answers: list[Any] = []
    for start in range(0, count, BATCH):
        answers += await asyncio.gather(*(call(n) for n in range(start, min(start + BATCH, count))))
    return answers


async def keys_and_ttls(client) -> dict[str, int]:
    """Every key under `PREFIX`, with its TTL in milliseconds (-1: none); a key that expired meanwhile is left out."""
    found = {}
    async for key in client.scan_iter(match=f"{PREFIX}*", count=1000):
        ttl = await client.pttl(key)
        if ttl != -2:  # -2: gone between the scan and the question (it expired, as it should)
            found[key.decode()] = ttl
    return found


@pytest.mark.timeout(90)
@pytest.mark.gen_test(timeout=80)
async def test_thousands_of_fresh_rooms_leave_only_documented_keys_and_each_expires(gateway, connect, redis_server):
    inspect = redis.asyncio.Redis.from_url(redis_server.url)
    await inspect.flushdb()
    bystander, attacker = await connect(), await connect()
    message = {"author": {"name": "mallory"}, "text": "x"}
    try:
        async with Bystander(bystander, f"redis keys: {SUBSCRIBED + READ + PUBLISHED} fresh rooms") as watch:
            async def join_and_leave(n: int) -> int:
                offset = (await attacker.subscribe(f"feed.s{n}"))["offset"]
                await attacker.unsubscribe(f"feed.s{n}")
                return offset

            assert set(await in_batches(join_and_leave, SUBSCRIBED)) == {0}
            pages = await in_batches(lambda n: attacker.request(
                {"action": "__history__", "data": {"topic": f"feed.r{n}"}}), READ)
            assert {(page["offset"], len(page["events"])) for page in pages} == {(0, 0)}
            await in_batches(lambda n: attacker.publish(f"feed.p{n}", message), PUBLISHED)
            assert await eventually(lambda: _count(inspect, "h:feed.p*:meta:applied:*", PUBLISHED), 10)
        await watch.check()

        origin = gateway.broker.origin
        suffixes = ("", ":meta", f":meta:applied:{origin}")  # a published room's stream, meta hash, applied key
        expected = {f"{PREFIX}h:feed.s{n}:meta" for n in range(SUBSCRIBED)} | {
            f"{PREFIX}h:feed.p{n}{suffix}" for n in range(PUBLISHED) for suffix in suffixes}
        held = await keys_and_ttls(inspect)
        keyed = {key for key in held if key.startswith(f"{PREFIX}i:")}  # one idempotency key per publish
        assert sorted(key.rpartition(":")[0] for key in keyed) == sorted(f"{PREFIX}i:feed.p{n}"
                                                                       for n in range(PUBLISHED))
        held = {key: ttl for key, ttl in held.items() if key not in keyed}
        # Nothing for the rooms only read, at most one key per room only joined (the first may have expired
        # already), and each published room's three.
        assert set(held) <= expected and {key for key in expected if "feed.p" in key} <= set(held)
        for key, ttl in (held | await keys_and_ttls(inspect)).items():
            bound = APPLIED_TTL * 1000 if ":applied:" in key else META_TTL * 1000  # the window, for keyed ones
            assert 0 < ttl <= bound, (key, ttl)

        async def only_applied_left() -> bool:
            return set(await keys_and_ttls(inspect)) == {key for key in expected if ":applied:" in key}

        assert await eventually(only_applied_left, META_TTL + 5), "keys outlived meta_ttl"
        logger.info("redis keys: %d held after the attack, %d a meta_ttl later (the applied-sequence keys)",
                    len(held), PUBLISHED)
    finally:
        await inspect.aclose()


async def _count(client, pattern: str, count: int) -> bool:
    """Whether exactly ``count`` keys under `PREFIX` match ``pattern``."""
    return len([key async for key in client.scan_iter(match=PREFIX + pattern, count=1000)]) == count
