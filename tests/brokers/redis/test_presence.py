"""Presence across gateway processes on one real redis-server.

The gateways are real subprocesses (``drizzle-gateway serve
tests.support.presence_app:... --redis URL``); the clients are real
websocket clients. A process killed with ``kill -9`` says nothing: its
members must leave, with leave events, on every other process within two
heartbeats (1 s each), and nothing of them may stay in Redis.
"""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from drizzle_gateway.brokers.redis.broker import RedisBroker
from drizzle_gateway.brokers.redis.presence import EXPIRY_BEATS
from drizzle_gateway.client import Client, Event, RemoteError
from drizzle_gateway.wire.presence import JOIN, LEAVE
from tests.support.polling import wait_until
from tests.support.redis_server import GatewayProcess

redis_asyncio = pytest.importorskip("redis.asyncio")

logger = logging.getLogger(__name__)

APP = "tests.support.presence_app:make_presence_gateway"
SMALL = "tests.support.presence_app:make_small_presence_gateway"
HEARTBEAT = 1.0
"""``RedisBroker``'s default ``presence_heartbeat``, which ``serve --redis`` uses."""
MEMBERS = 100


@pytest.fixture
def processes(redis_server):
    """Start gateway processes on the module's Redis (``target`` the app); all stopped after the test."""
    started: list[GatewayProcess] = []

    def start(count: int, target: str = APP) -> list[GatewayProcess]:
        fresh = [GatewayProcess(redis_server.url, target=target) for _ in range(count)]
        started.extend(fresh)
        return [process.wait_ready() for process in fresh]

    yield start
    for process in started:
        process.stop()
        process.remove_log()


@pytest.fixture
def redis_client(redis_server):
    return redis_asyncio.Redis.from_url(redis_server.url)


async def settles(check, expected, timeout: float) -> None:
    """Await ``check()`` until it returns ``expected``; fails with what it last returned after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while (value := await check()) != expected:
        assert time.monotonic() < deadline, f"{value!r} after {timeout} s, not {expected!r}"
        await asyncio.sleep(0.05)


async def changes(client: Client, kind: str, count: int, timeout: float) -> list[Event]:
    """The next ``count`` presence events of ``kind`` (others are skipped); fails after ``timeout`` seconds."""
    found: list[Event] = []
    async with asyncio.timeout(timeout):
        while len(found) < count:
            event = await client.next_event(timeout)
            if event.presence == kind:
                found.append(event)
    return found


async def presence_keys(redis_client) -> list[bytes]:
    """Every presence key in Redis: entries, counts, per-process channel sets (the process set is kept)."""
    return sorted([key async for key in redis_client.scan_iter("drizzle:p[mco]:*")])


async def members_on(gateway: GatewayProcess, channel: str, count: int, timeout: float = 10.0) -> list[Client]:
    """``count`` connections to ``gateway``, each a member ``m<i>`` of ``channel``."""
    async def member(index: int) -> Client:
        client = await Client(gateway.url, timeout=timeout).connect()
        await client.subscribe(channel, presence={"id": f"m{index}", "name": f"member {index}"})
        return client

    return list(await asyncio.gather(*(member(index) for index in range(count))))


@pytest.mark.parametrize("run", [1, 2, 3])
@pytest.mark.gen_test(timeout=90)
async def test_kill_9_of_a_process_makes_its_members_leave_everywhere_within_two_heartbeats(
        processes, open_client, redis_client, run, record_property):
    survivor, doomed = processes(2)
    channel = f"room.kill{run}"
    watcher = await open_client(survivor)
    await watcher.subscribe(channel, join_leave=True, member_fields=["name"])
    members = await members_on(doomed, channel, MEMBERS)
    joined = await changes(watcher, JOIN, MEMBERS, timeout=20)
    assert sorted(event.key for event in joined) == sorted(f"m{i}" for i in range(MEMBERS))
    assert joined[0].data == {"name": f"member {joined[0].key[1:]}"}  # selected with the watcher's member_fields
    assert len(await watcher.presence(channel)) == MEMBERS

    doomed.process.kill()  # SIGKILL: no close frame, no goodbye to Redis
    killed = time.monotonic()
    left = await changes(watcher, LEAVE, MEMBERS, timeout=10)
    elapsed = time.monotonic() - killed
    record_property("suite_summary", f"presence kill -9 run {run}: {len(left)} leaves in {elapsed:.2f} s")
    logger.warning("kill -9 run %d: %d leave events, the last %.2f s after the kill", run, len(left), elapsed)

    assert sorted(event.key for event in left) == sorted(f"m{i}" for i in range(MEMBERS))
    assert elapsed <= 2 * HEARTBEAT
    assert elapsed >= (EXPIRY_BEATS - 0.25) * HEARTBEAT  # not before it could know the process is gone
    assert await watcher.presence(channel) == []
    assert await presence_keys(redis_client) == []
    with pytest.raises(TimeoutError):  # every member left once
        await changes(watcher, LEAVE, 1, timeout=0.5)
    del members  # their process is gone: their sockets are closed


@pytest.mark.gen_test(timeout=60)
async def test_a_member_on_two_processes_stays_while_either_lives(processes, open_client, redis_client):
    first, second = processes(2)
    watcher = await open_client(first)
    await watcher.subscribe("room.both", join_leave=True)
    here = await open_client(first)
    there = await open_client(second)
    await here.subscribe("room.both", presence={"id": "ada"})
    await there.subscribe("room.both", presence={"id": "ada", "name": "other tab"})
    assert [event.key for event in await changes(watcher, JOIN, 1, timeout=5)] == ["ada"]

    async def connections() -> list[int]:
        return [member.connections for member in await watcher.presence("room.both")]

    assert await connections() == [2]
    second.process.kill()
    await settles(connections, [1], timeout=2 * HEARTBEAT + 1)
    with pytest.raises(TimeoutError):
        await changes(watcher, LEAVE, 1, timeout=0.5)  # the member still has a connection on the survivor
    (member,) = await watcher.presence("room.both")
    assert member.data == {"id": "ada"}  # its first connection's entry

    await here.close()
    (leave,) = await changes(watcher, LEAVE, 1, timeout=5)
    assert leave.key == "ada"
    assert await watcher.presence("room.both") == []
    assert await presence_keys(redis_client) == []


@pytest.mark.gen_test(timeout=60)
async def test_a_second_tab_on_another_process_announces_nothing(processes, open_client):
    first, second = processes(2)
    watcher = await open_client(first)
    await watcher.subscribe("room.tabs", join_leave=True)
    tabs = [await open_client(first), await open_client(second)]
    for tab in tabs:
        await tab.subscribe("room.tabs", presence={"id": "bob"})
    assert len(await changes(watcher, JOIN, 1, timeout=5)) == 1
    await tabs[1].close()
    await settles(lambda: _connections(watcher, "room.tabs"), [1], timeout=5)
    await tabs[0].subscribe("room.tabs", presence={"id": "bob"})  # subscribing again: the same member
    with pytest.raises(TimeoutError):
        await changes(watcher, JOIN, 1, timeout=0.5)
    await tabs[0].close()
    assert [event.key for event in await changes(watcher, LEAVE, 1, timeout=5)] == ["bob"]


async def _connections(client: Client, channel: str) -> list[int]:
    return [member.connections for member in await client.presence(channel)]


@pytest.mark.gen_test(timeout=60)
async def test_max_members_holds_over_every_process(processes, open_client):
    first, second = processes(2, target=SMALL)
    on_first = [await open_client(first) for _ in range(2)]
    on_second = [await open_client(second) for _ in range(2)]
    await on_first[0].subscribe("room.full", presence={"id": "a"})
    await on_second[0].subscribe("room.full", presence={"id": "b"})
    await on_first[1].subscribe("room.full", presence={"id": "c"})
    with pytest.raises(RemoteError) as refused:
        await on_second[1].subscribe("room.full", presence={"id": "d"})
    assert refused.value.code == "LIMIT_EXCEEDED"
    assert refused.value.details == {"limit": "max_members", "max": 3}
    await on_second[1].subscribe("room.full", presence={"id": "a"})  # a member already: another connection
    assert sorted(member.key for member in await on_first[0].presence("room.full")) == ["a", "b", "c"]
    await on_first[1].close()
    await settles(lambda: _keys(on_first[0], "room.full"), ["a", "b"], timeout=5)
    await on_second[1].subscribe("room.full", presence={"id": "d"})  # moves its connection from "a" to "d"
    assert await _keys(on_first[0], "room.full") == ["a", "b", "d"]


async def _keys(client: Client, channel: str) -> list[str]:
    return [member.key for member in await client.presence(channel)]


@pytest.mark.gen_test(timeout=60)
async def test_a_process_that_stops_gracefully_takes_its_members_at_once(processes, open_client, redis_client):
    survivor, leaving = processes(2)
    watcher = await open_client(survivor)
    await watcher.subscribe("room.drain", join_leave=True)
    await members_on(leaving, "room.drain", 5)
    await changes(watcher, JOIN, 5, timeout=10)
    stopping = asyncio.get_running_loop().run_in_executor(None, leaving.stop)
    began = time.monotonic()
    await changes(watcher, LEAVE, 5, timeout=10)
    assert time.monotonic() - began < EXPIRY_BEATS * HEARTBEAT  # the drain said so; no expiry was waited for
    await stopping
    assert await presence_keys(redis_client) == []


@pytest.mark.gen_test(timeout=30)
async def test_a_process_presumed_dead_sends_its_members_again(redis_server):
    """A live process that Redis forgot (its beats missed, or Redis lost its data) registers its members again."""
    broker = RedisBroker(redis_server.url, prefix="again:", presence_heartbeat=0.2)
    heard = []

    async def _heard() -> list:
        return heard

    broker.presence.listen(lambda channel, change: heard.append((channel, change.kind, change.key)))
    await broker.subscribe("room.x", lambda *args: None)
    try:
        assert await broker.presence.update("room.x", "ada", {"id": "ada"}, 1)
        await settles(lambda: _heard(), [("room.x", "join", "ada")], timeout=5)
        assert broker.presence.rejoins == 0
        plain = redis_asyncio.Redis.from_url(redis_server.url)
        await plain.delete("again:pm:room.x", "again:pc:room.x", "again:pp", f"again:po:{broker.origin}")
        assert await broker.presence.members("room.x") == []
        await settles(lambda: _heard(), [("room.x", "join", "ada")] * 2, timeout=5)  # announced again
        (member,) = await broker.presence.members("room.x")
        assert (member.key, member.connections) == ("ada", 1)
        assert broker.presence.rejoins == 1  # counted (drizzle_presence_rejoins_total)
    finally:
        await broker.close()


@pytest.mark.gen_test(timeout=30)
async def test_heartbeats_redis_does_not_take_are_counted(redis_server):
    """Redis frozen: each beat times out and is counted (drizzle_presence_heartbeats_failed_total); then they go on."""
    broker = RedisBroker(redis_server.url, prefix="frozen:", presence_heartbeat=0.2, timeout=0.1)
    await broker.subscribe("room.y", lambda *args: None)
    try:
        assert await broker.presence.update("room.y", "bob", {"id": "bob"}, 1)
        assert broker.presence.beats_failed == 0
        redis_server.freeze()
        try:
            await wait_until(lambda: broker.presence.beats_failed >= 3, 5)
        finally:
            redis_server.thaw()
        failed, ticks = broker.presence.beats_failed, broker.presence.ticks
        await wait_until(lambda: broker.presence.ticks >= ticks + 2, 10)
        assert broker.presence.beats_failed <= failed + 1  # the one under way as Redis came back, at most
        (member,) = await broker.presence.members("room.y")
        assert (member.key, member.connections) == ("bob", 1)
    finally:
        await broker.close()
