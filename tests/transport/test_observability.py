"""``/metrics``, ``/healthz`` and ``/readyz`` over real sockets, from a really served gateway.

The counters are asserted exactly after real requests, publishes, an
authentication refusal and a slow consumer's close; ``/readyz`` follows a
real redis-server going away and coming back, and a gateway's shutdown.
The series themselves: tests/runtime/test_metrics.py.
"""

from __future__ import annotations

import asyncio

import pytest

from drizzle_gateway import Gateway, Limits
from drizzle_gateway.brokers.redis import RedisBroker
from drizzle_gateway.runtime.metrics import BUILTIN
from drizzle_gateway.wire.dialect import CloseCode
from tests.support.gateways import listening
from tests.support.polling import eventually, wait_until
from tests.support.redis_server import RedisServer
from tests.support.scrape import fetch, labels, scrape, series
from tests.support.serve_app import make_flow_gateway
from tests.support.stalled_socket import StalledSocket


def refuse_bad(credentials) -> str | None:
    """Anyone, unless the token is ``bad``."""
    return None if credentials.token == "bad" else "someone"


@pytest.fixture
def gateway() -> Gateway:
    """A ``bulk`` topic, a small send queue (64 KiB) and an ``authenticate`` hook refusing the token ``bad``."""
    return make_flow_gateway(authenticate=refuse_bad, limits=Limits(send_queue_bytes=64 * 1024, send_timeout=1.0))


@pytest.mark.gen_test(timeout=60)
async def test_a_scrape_counts_requests_publishes_refusals_and_a_slow_consumers_close(gateway, raw, http_port):
    base = f"http://127.0.0.1:{http_port}"
    client = await raw()
    for n in (1, 2):
        assert (await client.ask({"request_id": n, "action": "__ping__"}))["data"] == "pong"
    refused = await client.ask({"request_id": 3, "action": "__auth__", "data": {"token": "bad"}})
    assert refused["code"] == "UNAUTHENTICATED", refused
    assert "error" not in await client.ask({"request_id": 4, "action": "__subscribe__", "data": {"topic": "bulk"}})
    stalled = await StalledSocket.open(http_port)
    await stalled.send({"request_id": 1, "action": "__subscribe__", "data": {"topic": "bulk"}})
    assert (await anext(stalled.frames()))[1] == b'{"request_id":1,"data":{"topic":"bulk"}}'
    assert series(await scrape(base), "drizzle_connections") == {labels(): 2.0}

    reading = asyncio.ensure_future(_read_all(client.ws))  # a client that keeps up
    published = 0
    while not series(await scrape(base), "drizzle_closes_total") and published < 2000:
        await gateway.publish("bulk", {"seq": published, "body": "x" * 8000})
        published += 1
    client.ws.close(CloseCode.NORMAL)
    assert await reading == published
    found = await eventually(lambda: _scraped_when(base, lambda f: len(series(f, "drizzle_closes_total")) == 2), 10)
    stalled.sock.close()

    assert series(found, "drizzle_closes_total") == {labels(code="4008"): 1.0, labels(code="1000"): 1.0}
    assert series(found, "drizzle_requests_total") == {
        labels(resource=BUILTIN, action="__ping__", code="OK"): 2.0,
        labels(resource=BUILTIN, action="__auth__", code="UNAUTHENTICATED"): 1.0,
        labels(resource=BUILTIN, action="__subscribe__", code="OK"): 2.0,
    }
    assert series(found, "drizzle_auth_refusals_total") == {labels(): 1.0}
    assert series(found, "drizzle_auth_throttled_total") == {labels(): 0.0}
    assert series(found, "drizzle_publishes_total") == {labels(topic="bulk"): float(published)}
    delivered = series(found, "drizzle_deliveries_total")[labels(topic="bulk")]
    assert published < delivered <= 2 * published  # every event to the reader, some to the stalled one
    assert series(found, "drizzle_connections") == {labels(): 0.0}
    assert series(found, "drizzle_broker_up") == {labels(): 1.0}


async def _read_all(ws) -> int:
    """Read every frame until the socket closes; how many events came."""
    events = 0
    while (text := await ws.read_message()) is not None:
        events += text.startswith('{"topic"')
    return events


async def _scraped_when(base: str, condition):
    found = await scrape(base)
    return found if condition(found) else None


@pytest.mark.gen_test(timeout=30)
async def test_healthz_serves_and_readyz_turns_503_while_the_gateway_closes(gateway, raw, http_port):
    base = f"http://127.0.0.1:{http_port}"
    assert await fetch(base + "/healthz") == (200, "ok\n")
    assert await fetch(base + "/readyz") == (200, "ready\n")
    client = await raw()
    await client.send({"request_id": 1, "action": "__subscribe__", "data": {"topic": "bulk"}})
    await client.recv()
    closing = asyncio.ensure_future(gateway.close(timeout=5))
    await wait_until(lambda: gateway.hub.closing, 5)
    assert await fetch(base + "/readyz") == (503, "shutting down\n")
    assert await fetch(base + "/healthz") == (200, "ok\n")
    assert series(await scrape(base), "drizzle_draining") == {labels(): 1.0}
    await closing


@pytest.mark.gen_test(timeout=60)
async def test_readyz_follows_the_redis_server_and_the_metrics_count_its_reconnect():
    server = RedisServer().start()
    gateway = Gateway(broker=RedisBroker(server.url, timeout=0.5))
    try:
        async with listening(gateway) as ws_url:
            base = ws_url.removeprefix("ws://").removesuffix("/ws")
            base = f"http://{base}"
            assert await eventually(lambda: _status(base + "/readyz", 200), 10)  # the first probe connects
            assert series(await scrape(base), "drizzle_broker_up") == {labels(): 1.0}
            server.kill()
            assert await eventually(lambda: _status(base + "/readyz", 503), 10)
            assert await fetch(base + "/readyz") == (503, "broker unreachable\n")
            assert series(await scrape(base), "drizzle_broker_up") == {labels(): 0.0}
            assert await fetch(base + "/healthz") == (200, "ok\n")
            server.start()
            assert await eventually(lambda: _status(base + "/readyz", 200), 10)
            found = await scrape(base)
            assert series(found, "drizzle_broker_up") == {labels(): 1.0}
            assert series(found, "drizzle_broker_reconnects_total") == {labels(): 1.0}
            assert series(found, "drizzle_presence_heartbeats_failed_total") == {labels(): 0.0}
            presence = gateway.broker.presence  # its counting is tested in tests/brokers/redis/test_presence.py
            presence.beats_failed, presence.rejoins = 3, 2
            found = await scrape(base)
            assert series(found, "drizzle_presence_heartbeats_failed_total") == {labels(): 3.0}
            assert series(found, "drizzle_presence_rejoins_total") == {labels(): 2.0}
            await gateway.close()
    finally:
        server.stop()


async def _status(url: str, expected: int) -> bool:
    return (await fetch(url))[0] == expected


@pytest.mark.gen_test
async def test_metrics_false_serves_no_metrics_route():
    gateway = Gateway(metrics=False)
    async with listening(gateway) as ws_url:
        base = "http://" + ws_url.removeprefix("ws://").removesuffix("/ws")
        assert (await fetch(base + "/metrics"))[0] == 404
        assert await fetch(base + "/healthz") == (200, "ok\n")
