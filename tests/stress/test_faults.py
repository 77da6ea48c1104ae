"""The invariant stress suite: two gateway processes on one redis-server, faults injected mid-stream.

Each scenario runs four subscribers (two per gateway, each on two
``stress.{room}`` channels with history) and one publisher per gateway,
injects its fault after a second of traffic, goes on for 1.5 s more, then
checks (see `tests.stress.harness.run_scenario`): per subscriber every
offset exactly once in order or inside an announced loss, no duplicate,
nothing after an acknowledged unsubscribe, every subscriber at the end of
every channel, no leaked session, subscription, task or descriptor in the
gateways, no Redis key without a TTL but the history's own, every close code
documented. Run with ``pytest -m stress tests/stress -n 0`` (see README).
"""

from __future__ import annotations

import asyncio

import pytest

from drizzle_gateway.client import Client
from tests.stress.harness import Cluster, RecordingClient, Run, _blocking, message, redis_leftovers, run_scenario

pytestmark = [pytest.mark.stress, pytest.mark.timeout(150)]

OUTAGE = 1.5
"""Seconds a killed Redis stays down, or a link stays cut."""
FREEZE = 3.0
"""Seconds Redis stays stopped (SIGSTOP): longer than the broker's 1 s timeout, and 150 events per channel
(more than the 20-event history) are published meanwhile."""
LATENCY = 0.3
"""Seconds each chunk is held, each way, while a link is slowed (under the broker's 1 s timeout)."""
SLOW_FOR = 3.0
CHURN_ROUNDS = 40
"""Connect/disconnect rounds, and pipelined subscribe/unsubscribe pairs per gateway: bounded in count."""


async def kill_redis(run: Run) -> None:
    """``kill -9`` the redis-server, leave it down `OUTAGE` seconds, start it again on the same port."""
    await _blocking(run.cluster.redis.kill)
    await asyncio.sleep(OUTAGE)
    await _blocking(run.cluster.redis.start)


async def freeze_redis(run: Run) -> None:
    """SIGSTOP the redis-server for `FREEZE` seconds, then SIGCONT."""
    run.cluster.redis.freeze()
    try:
        await asyncio.sleep(FREEZE)
    finally:
        run.cluster.redis.thaw()


async def restart_gateways(run: Run) -> None:
    """SIGTERM each gateway in turn and start it again; its subscribers move to the other, then back."""
    for index in range(len(run.cluster.gateways)):
        code = await run.cluster.stop_gateway(index)
        assert code == 0, f"gateway {index} exited with {code} on SIGTERM"
        await run.cluster.start_gateway(index)


async def cut_links(run: Run) -> None:
    """Cut each gateway's link to Redis in turn (connections closed, new ones refused) for `OUTAGE` seconds."""
    for proxy in run.cluster.proxies:
        proxy.cut(OUTAGE)
        await asyncio.sleep(OUTAGE + 0.5)


async def slow_links(run: Run) -> None:
    """Add `LATENCY` each way to both gateways' links to Redis for `SLOW_FOR` seconds."""
    for proxy in run.cluster.proxies:
        proxy.delay(LATENCY)
    try:
        await asyncio.sleep(SLOW_FOR)
    finally:
        for proxy in run.cluster.proxies:
            proxy.delay(0.0)


async def steady(run: Run) -> None:
    """No fault: three seconds of traffic (for the churn scenarios)."""
    await asyncio.sleep(3.0)


async def connect_churn(run: Run) -> None:
    """Subscribers that connect, subscribe to the run's channels, read a moment and leave, `CHURN_ROUNDS` times."""
    for round_ in range(CHURN_ROUNDS):
        if run.stop.is_set():
            return
        client = await run.subscriber(f"churn{round_}", round_ % len(run.cluster.gateways), keep=False)
        await asyncio.sleep(0.05)
        await client.close()


async def pipelined_churn(run: Run) -> None:
    """Per gateway, `CHURN_ROUNDS` bursts of ``__subscribe__`` + ``__unsubscribe__`` pairs, all sent back to back.

    Each burst names the run's channels (the gateway listens to them already) and its lonely channels
    (there the subscribe makes the gateway subscribe in Redis, and the unsubscribe arrives meanwhile).
    """

    async def churn(index: int) -> None:
        client = RecordingClient(f"pipe{index}", run.cluster.urls()[index], run.checker, timeout=5.0)
        await client.connect()
        run.others.append(client)
        for _ in range(CHURN_ROUNDS):
            if run.stop.is_set():
                return
            await asyncio.gather(*(
                client.request({"action": action, "data": {"topic": channel}})
                for channel in [*run.channels, *run.lonely] for action in ("__subscribe__", "__unsubscribe__")))
            await asyncio.sleep(0.02)  # events flow between bursts

    await asyncio.gather(*(churn(index) for index in range(len(run.cluster.gateways))))


SCENARIOS = {
    "redis-kill9": (kill_redis, None, False),
    "redis-kill9-aof": (kill_redis, None, True),
    "redis-sigstop": (freeze_redis, None, False),
    "gateway-sigterm": (restart_gateways, None, False),
    "link-cut": (cut_links, None, False),
    "link-slow": (slow_links, None, False),
    "connect-churn": (steady, connect_churn, False),
    "pipelined-churn": (steady, pipelined_churn, False),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.gen_test(timeout=140)
async def test_delivery_invariants_hold_through(scenario):
    fault, extra, appendonly = SCENARIOS[scenario]
    cluster = Cluster(appendonly=appendonly)
    try:
        await cluster.start()
        outcome = await run_scenario(cluster, scenario.replace("-", ""), fault, extra)
    finally:
        await cluster.close()
    assert not outcome.problems, outcome.table()


@pytest.mark.gen_test(timeout=60)
async def test_channels_with_a_history_ttl_leave_no_redis_key_without_a_ttl():
    """Subscribing to (and publishing on) rooms of a topic with ``history_ttl`` leaves only keys that expire.

    Rooms are named by clients, so a key that never expires per room is a key per name a client thinks of.
    """
    cluster = Cluster()
    try:
        await cluster.start(count=1)
        client = await Client(cluster.urls()[0]).connect()
        rooms = [f"stressttl.room{n}" for n in range(20)]
        for room in rooms:
            await client.subscribe(room)
        for room in rooms[:5]:
            await client.publish(room, message("p", 1))
            assert (await client.next_event()).offset == 1
        for room in rooms:
            await client.unsubscribe(room)
        await client.close()
        counts = await cluster.settled(0, cluster.baselines[0])
        leftovers = await redis_leftovers(cluster, 1)
    finally:
        await cluster.close()
    assert counts["sessions"] == 1 and not counts["fanout_channels"], counts
    assert leftovers == []
