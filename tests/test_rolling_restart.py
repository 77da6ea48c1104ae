"""A rolling restart under load: two ``drizzle-gateway serve`` processes on one redis-server, restarted in turn.

A publisher publishes numbered events on a topic with history at a steady
rate, subscribers follow it through both processes and requesters keep
requests in flight on both. Gateway A gets SIGTERM, drains (its port
closed, its running requests answered, its sockets closed with 1012) and
exits 0, its clients moving to B with jittered backoff, the subscribers
recovering ``since`` their positions; A starts again; then the same for B.
Afterwards every subscriber has every offset exactly once and in order
(with no gap: the history holds far more than the restarts miss), each
event carries the publish acknowledged for its offset, and every request
got exactly one answer.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.support.polling import eventually
from tests.support.rolling import Counting, Publisher, Requester, Subscriber
from tests.support.served import Served

logger = logging.getLogger("drizzle_gateway")

APP = "tests.support.serve_app:make_worker_gateway"
CHANNEL = "relay.rolling"
LEDGER = "relay.ledger"
"""Where each run of a requester's ``whoami.record`` publishes its number."""
PUBLISH_INTERVAL = 0.01
"""Seconds between two publishes: about 100 events a second."""
STEADY = 60
"""Events published before, between and after the restarts (however long the machine takes to publish them)."""
DEPTH = 3
"""Requests each requester keeps in flight."""
STEADY_BOUND = 60.0
"""Seconds those events may take at most."""


@pytest.mark.timeout(150)
@pytest.mark.gen_test(timeout=140)
async def test_a_rolling_restart_under_load_loses_duplicates_and_leaves_unanswered_nothing(redis_server):
    gateways = [Served(APP, "--redis", redis_server.url) for _ in range(2)]
    stopped: list[Served] = []
    try:
        for gateway in gateways:
            gateway.wait_ready()

        def urls() -> list[str]:
            return [gateway.url for gateway in gateways if gateway.process.poll() is None]

        subscribers = [Subscriber(gateways[n % 2].url, CHANNEL) for n in range(4)]
        ledger = Subscriber(gateways[1].url, LEDGER)
        publisher = Publisher(gateways[0].url, CHANNEL, PUBLISH_INTERVAL)
        requesters = [Requester(gateways[n].url, depth=DEPTH, first=1_000_000 * (n + 1)) for n in range(2)]
        stop, done = asyncio.Event(), asyncio.Event()
        tasks = [asyncio.ensure_future(subscriber.run(urls, done)) for subscriber in [*subscribers, ledger]]
        await eventually(lambda: _all_subscribed([*subscribers, ledger]), 10)
        tasks += [asyncio.ensure_future(publisher.run(urls, stop))]
        tasks += [asyncio.ensure_future(requester.run(urls, stop)) for requester in requesters]

        await _steady(tasks, publisher)
        for index in range(2):
            gateway = gateways[index]
            gateway.terminate()
            assert await gateway.exited() == 0, gateway.logs()
            stopped.append(gateway)
            gateways[index] = Served(APP, "--redis", redis_server.url, port=gateway.port)
            await asyncio.get_running_loop().run_in_executor(None, gateways[index].wait_ready)
            await _steady(tasks, publisher)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks[len(subscribers) + 1:]), 30)
        last = publisher.acked
        ran = sorted(seq for requester in requesters for seq in requester.replies)
        caught_up = await eventually(
            lambda: _async(all(s.events and s.events[-1].offset == last for s in subscribers)
                           and bool(ledger.events) and ledger.events[-1].offset == len(ran)), 20)
        done.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 30)
    finally:
        for gateway in gateways + stopped:
            gateway.kill()

    clients: list[Counting] = [s.client for s in [*subscribers, ledger]] + [publisher.client] + \
        [r.client for r in requesters]
    counts = {
        "published": last,
        "publishes refused SHUTTING_DOWN": publisher.refused,
        "publishes unanswered (socket closed first)": publisher.unanswered,
        "requests answered": sum(sum(r.replies.values()) for r in requesters),
        "requests run (ledger events)": len(ledger.events),
        "requests refused SHUTTING_DOWN": sum(r.refused for r in requesters),
        "requests unanswered (socket closed first)": sum(r.unanswered for r in requesters),
        "events delivered": [len(s.events) for s in subscribers],
        "moves": [client.moves for client in clients],
        "close codes": sorted({code for client in clients for code in client.closes}, key=str),
        "close reasons": sorted({str(reason) for client in clients for reason in client.reasons}),
    }
    logger.info("rolling restart: %s", counts)
    assert caught_up, (f"subscribers at {[s.events[-1].offset if s.events else None for s in subscribers]} "
                       f"(not {last}), the ledger at {len(ledger.events)} (not {len(ran)}): {counts}")
    assert last >= 3 * STEADY, counts
    for subscriber in subscribers:
        assert [event.gap for event in subscriber.events if event.gap is not None] == []
        assert [event.offset for event in subscriber.events] == list(range(1, last + 1)), counts
        assert [event.data["seq"] for event in subscriber.events] == list(range(1, last + 1)), counts
        assert subscriber.unrecovered == []
        assert subscriber.client.moves >= 1
    for requester in requesters:
        assert set(requester.replies.values()) == {1}, "a request answered twice"
        assert len(requester.replies) > 50, counts
    assert [event.offset for event in ledger.events] == list(range(1, len(ran) + 1)), counts
    assert sorted(event.data["seq"] for event in ledger.events) == ran, "a request run twice, or never"
    for client in clients:
        assert max(client.answers.values()) == 1, "a request id answered twice"
        unanswered = [request_id for request_id in client.sent if client.answers[request_id] == 0]
        # sent while the server's close frame was on its way: at most what a client keeps in flight, per close
        assert len(unanswered) <= DEPTH * len(client.closes), (unanswered, client.closes)
    assert counts["close codes"] == [1012], counts


async def _async(value: bool) -> bool:
    return value


async def _all_subscribed(subscribers: list[Subscriber]) -> bool:
    return all(subscriber.client.position(CHANNEL) is not None for subscriber in subscribers)


async def _steady(tasks: list[asyncio.Task], publisher: Publisher) -> None:
    """`STEADY` more events published (within `STEADY_BOUND`); a client that failed meanwhile fails the test at once."""
    target = publisher.acked + STEADY
    deadline = asyncio.get_running_loop().time() + STEADY_BOUND
    while publisher.acked < target:
        left = deadline - asyncio.get_running_loop().time()
        assert left > 0, f"{publisher.acked} events published, not {target}, in {STEADY_BOUND} s"
        finished, _ = await asyncio.wait(tasks, timeout=min(0.1, left), return_when=asyncio.FIRST_EXCEPTION)
        for task in finished:
            task.result()
