"""Flow control over real sockets: bursts slow publishers down, only readers that stop are closed.

The readers share the event loop with the gateway, the hardest case: a
publisher that never yields would starve them. Stalled readers are raw
sockets that stop reading after their subscription's reply; they hold no
memory of their own, so this process's resident memory is the gateway's.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import struct
from pathlib import Path

import pytest

from bench.bulk_subscriber import BulkSubscriber
from drizzle_gateway.client import Client
from drizzle_gateway.protocol import CloseCode
from tests.serve_app import make_flow_gateway
from tests.test_outbox import StalledSocket


@pytest.fixture
def gateway():
    """A ``bulk`` topic; a 256 KiB send queue and 1 s for a congested reader to drain it."""
    return make_flow_gateway()


@pytest.fixture
def slow_consumer_warnings(caplog):
    caplog.set_level(logging.WARNING, logger="drizzle_gateway")
    return lambda: [r.getMessage() for r in caplog.records if "slow consumer" in r.getMessage()]


@pytest.mark.gen_test(timeout=60)
async def test_a_server_burst_of_6_mb_closes_no_fast_reader(gateway, ws_url,
                                                                              slow_consumer_warnings):
    readers = [BulkSubscriber(ws_url) for _ in range(5)]
    await asyncio.gather(*(reader.subscribe("bulk") for reader in readers))
    published, body = 2000, "x" * 3000  # 6 MB, against a 256 KiB send queue
    reading = asyncio.gather(*(reader.frames(published) for reader in readers))
    for seq in range(published):
        await gateway.publish("bulk", {"seq": seq, "body": body})  # awaiting only publish, as a server loop would
    await reading
    for reader in readers:
        assert [int(payload.split(b'"seq":')[1].split(b",")[0].rstrip(b"}")) for payload in reader.payloads] \
            == list(range(published))
        reader.close()
    assert not slow_consumer_warnings()


async def publish_paced(client: Client, first: int, count: int, rate: float, body: str) -> None:
    """Publish ``count`` numbered messages to ``bulk``, ``rate`` a second, each awaiting its reply."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    for n in range(count):
        await client.publish("bulk", {"seq": first + n, "body": body})
        await asyncio.sleep(max(0.0, start + (n + 1) / rate - loop.time()))


@pytest.mark.gen_test(timeout=60)
async def test_eight_client_publishers_within_their_limits_close_no_fast_reader(gateway, ws_url, connect,
                                                                                 slow_consumer_warnings):
    readers = [BulkSubscriber(ws_url) for _ in range(3)]
    await asyncio.gather(*(reader.subscribe("bulk") for reader in readers))
    publishers = [await connect() for _ in range(8)]
    per_publisher, body = 160, "y" * 1000  # 80 msg/s of 1 KB each, for 2 s
    reading = asyncio.gather(*(reader.frames(8 * per_publisher) for reader in readers))

    await asyncio.gather(*(publish_paced(client, i * per_publisher, per_publisher, 80, body)
                           for i, client in enumerate(publishers)))
    await reading
    for reader in readers:
        assert len(reader.payloads) == 8 * per_publisher
        reader.close()
    assert not slow_consumer_warnings()


def rss_bytes() -> int:
    """This process's resident memory (the gateway under test runs in it; stalled readers hold nothing)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def close_code(stalled: StalledSocket) -> int | None:
    """Read what the server sent until the socket ends; the close frame's code."""
    async for opcode, payload in stalled.frames():
        if opcode == 0x8:
            return struct.unpack("!H", payload[:2])[0]
    return None


@pytest.mark.timeout(120)
@pytest.mark.gen_test(timeout=110)
async def test_stalled_readers_are_closed_in_bounded_time_and_memory(gateway, http_server, http_port,
                                                                     slow_consumer_warnings):
    limits, count, body = gateway.limits, 200, "z" * 8000
    loop = asyncio.get_running_loop()
    growth: list[int] = []
    for round_ in range(2):
        stalled = [await StalledSocket.open(http_port) for _ in range(count)]
        for sock in stalled:
            await sock.send({"request_id": 1, "action": "__subscribe__", "data": {"topic": "bulk"}})
            assert await anext(sock.frames()) == (0x1, b'{"request_id":1,"data":{"topic":"bulk"}}')
        # From here on none of them reads. The kernel's socket buffers take a few MB each first.
        outboxes = [connection.outbox for connection in gateway.connections]
        gc.collect()
        before, sampled = rss_bytes(), []
        started = loop.time()
        for seq in range(2000):  # at most 16 MB to each; a server loop awaiting only publish
            await gateway.publish("bulk", {"seq": seq, "body": body})
            if not sampled and any(outbox.closed for outbox in outboxes):  # read a few at once, to see the code
                sampled = [asyncio.ensure_future(close_code(sock)) for sock in stalled[:5]]
            if all(outbox.closed for outbox in outboxes):
                break
        took = loop.time() - started
        growth.append(rss_bytes() - before)
        assert all(outbox.closed for outbox in outboxes), f"round {round_}: not every stalled reader was closed"
        assert took < limits.send_timeout + 10  # congested within a few MB each, closed send_timeout later
        assert await asyncio.gather(*sampled) == [CloseCode.SLOW_CONSUMER] * 5
        assert len(slow_consumer_warnings()) == count * (round_ + 1)
        for sock in stalled:
            sock.sock.close()
        del outboxes, stalled, sampled
        async with asyncio.timeout(10):  # the server lets go of them
            while gateway.connections:
                await asyncio.sleep(0.05)
        gc.collect()
    bound = count * limits.send_queue_bytes
    assert growth[0] <= 1.5 * bound, growth
    assert growth[1] <= 0.5 * bound, growth  # the second round mostly reuses what the first freed
