"""Flow control over real sockets: bursts slow publishers down, only readers that stop are closed.

The readers share the event loop with the gateway, the hardest case: a
publisher that never yields would starve them. Stalled readers are raw
sockets that stop reading after their subscription's reply; they hold no
memory of their own, so this process's resident memory is the gateway's.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import time

import pytest
from tornado.websocket import websocket_connect

from drizzle_gateway import Limits, Resource, action
from drizzle_gateway.wire.dialect import CloseCode
from tests.support.bulk_subscriber import BulkSubscriber
from tests.support.flow import (
    SLACK,
    SLOW_LINK,
    Publisher,
    Watch,
    close_code,
    hold_limits,
    keep_reading,
    publish_paced,
    read_to,
    subscribed_stalled,
)
from tests.support.polling import wait_until
from tests.support.procstat import rss_bytes
from tests.support.resources import Lab
from tests.support.serve_app import make_flow_gateway
from tests.support.stalled_socket import StalledSocket, server_side

HELD = hold_limits()
"""The flow gateway's limits with a short publish_wait."""

HELD_2S = hold_limits(send_timeout=2.0)
"""`HELD`, with 2 s for a congested reader to drain its queue."""


@pytest.fixture
def gateway(gateway_options):
    """A ``bulk`` topic; a 256 KiB send queue and 1 s for a congested reader to drain it (unless
    ``gateway_options`` say otherwise)."""
    return make_flow_gateway(**gateway_options)


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


@pytest.mark.timeout(120)
@pytest.mark.gen_test(timeout=110)
async def test_stalled_readers_are_closed_in_bounded_time_and_memory(gateway, http_server, http_port,
                                                                     slow_consumer_warnings):
    limits, count, body = gateway.limits, 200, "z" * 8000
    loop = asyncio.get_running_loop()
    gc.collect()
    # This process's resident memory (the gateway runs in it; stalled readers hold nothing), before any
    # stalled reader and after each round.
    baseline, after = rss_bytes(), []
    for round_ in range(2):
        stalled = [await StalledSocket.open(http_port) for _ in range(count)]
        for sock in stalled:
            await sock.send({"request_id": 1, "action": "__subscribe__", "data": {"topic": "bulk"}})
            assert await anext(sock.frames()) == (0x1, b'{"request_id":1,"data":{"topic":"bulk"}}')
        # From here on none of them reads. The kernel's socket buffers take a few MB each first.
        outboxes = [session.peer.outbox for session in gateway.hub.sessions]
        sampled: list[asyncio.Future] = []
        started = loop.time()
        seq = 0
        while loop.time() - started < limits.send_timeout + 10:  # a server loop awaiting only publish
            await gateway.publish("bulk", {"seq": seq, "body": body})
            seq += 1
            if not sampled and any(outbox.closed for outbox in outboxes):  # read a few at once, to see the code
                sampled = [asyncio.ensure_future(close_code(sock)) for sock in stalled[:5]]
            if all(outbox.closed for outbox in outboxes):
                break
        took = loop.time() - started
        after.append(rss_bytes())
        assert all(outbox.closed for outbox in outboxes), f"round {round_}: not every stalled reader was closed"
        assert took < limits.send_timeout + 10  # congested within a few MB each, closed send_timeout later
        assert await asyncio.gather(*sampled) == [CloseCode.SLOW_CONSUMER] * 5
        assert len(slow_consumer_warnings()) == count * (round_ + 1)
        for sock in stalled:
            sock.sock.close()
        del outboxes, stalled, sampled
        await wait_until(lambda: not gateway.hub.sessions, 10)  # the server lets go of them
        gc.collect()
    bound = count * limits.send_queue_bytes
    # Each round may cost about one send queue per stalled reader; a second round must not add to the first
    # (two rounds' worth would pass 2 x bound). The allocator decides which round the cost shows in.
    growth = [rss - baseline for rss in after]
    assert max(growth) <= 1.5 * bound, growth


@pytest.mark.gen_test(timeout=30)
@pytest.mark.gateway_options(resources=[Lab], limits=Limits(ping_interval=None, max_in_flight=1))
async def test_a_ping_sent_before_reading_was_held_and_released_counts_as_answered(http_server, http_port, gateway):
    sock = await StalledSocket.open(http_port)  # never answers a ping
    connection = server_side(gateway, sock.port())
    protocol = connection.ws_connection
    protocol.set_pong_received(False)  # a ping goes out: its time is noted
    await sock.send_all([{"request_id": n, "resource": "lab", "action": "sleep", "data": {"seconds": 0.2, "tag": "x"}}
                         for n in range(2)])  # the second waits unread behind the first (max_in_flight=1)
    frames = sock.frames()
    assert [json.loads((await anext(frames))[1])["request_id"] for _ in range(2)] == [0, 1]
    await wait_until(lambda: not connection.session.reading_held_since(float("inf")), 5)  # released again
    assert protocol.pong_received()  # no pong came, but reading was held since the ping: it may wait unread
    sock.sock.close()


class Big(Resource):
    """Replies far larger than the send queue."""

    name = "big"

    @action()
    def blob(self, data):
        """4 MB of text."""
        return "x" * (4 * 1024 * 1024)


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("gateway_options", [
    {"resources": [Big], "limits": Limits(send_queue_bytes=64 * 1024, send_timeout=send_timeout,
                                          max_frame_bytes=None, max_in_flight=3)} for send_timeout in (1.0, None)],
    ids=["send_timeout=1.0", "send_timeout=None"])
async def test_a_client_that_reads_its_huge_replies_stays_served(gateway_options, http_server, http_port):
    ws = await websocket_connect(f"ws://127.0.0.1:{http_port}/ws", max_message_size=1 << 30)
    for request_id in range(3):  # each reply congests the connection; the client reads them all
        ws.write_message(json.dumps({"request_id": request_id, "resource": "big", "action": "blob"}))
    assert [json.loads(await ws.read_message())["request_id"] for _ in range(3)] == [0, 1, 2]
    await asyncio.sleep(1.5)  # past send_timeout: a reader that read everything is not judged slow ...
    ws.write_message(json.dumps({"request_id": 9, "action": "__ping__"}))
    assert json.loads(await asyncio.wait_for(ws.read_message(), 5)) == {"request_id": 9, "data": "pong"}
    assert ws.close_code is None  # ... and its in-flight slots were given back
    ws.close()


@pytest.mark.gen_test(timeout=30)
@pytest.mark.gateway_options(resources=[Lab], limits=Limits(ping_interval=0.3, ping_timeout=0.3, max_in_flight=1))
async def test_pongs_held_behind_requests_do_not_time_the_client_out(http_server, http_port):
    ws = await websocket_connect(f"ws://127.0.0.1:{http_port}/ws")  # answers pings by itself
    for request_id in range(3):  # each waits unread behind the one running, for longer than the ping timeout
        ws.write_message(json.dumps({"request_id": request_id, "resource": "lab", "action": "sleep",
                                     "data": {"seconds": 0.7, "tag": str(request_id)}}))
    replies = [await ws.read_message() for _ in range(3)]
    assert None not in replies, f"closed: {ws.close_code} {ws.close_reason}"
    assert [json.loads(reply)["request_id"] for reply in replies] == [0, 1, 2]
    ws.close()


# -- no one slow reader sets a channel's pace ------------------------------------------------------------

FAST_READER_KEEPS = 0.5  # docs/security.md: beside a slow reader, a fast one keeps at least half its rate


def arrived_between(reader: BulkSubscriber, start: float, end: float) -> int:
    """Events ``reader`` read between perf_counter times ``start`` and ``end``."""
    return sum(1 for at, _ in reader.arrivals if start <= at < end)


@pytest.mark.adversarial  # compares the fast reader's rates alone and beside the slow one: run serially
@pytest.mark.gen_test(timeout=40)
@pytest.mark.gateway_options(limits=HELD_2S)
async def test_a_reader_on_a_slow_link_does_not_set_the_fast_readers_pace(gateway, ws_url, http_port,
                                                                        slow_consumer_warnings, caplog):
    limits = HELD_2S
    fast = BulkSubscriber(ws_url)
    await fast.subscribe("bulk")
    publisher, seconds = Publisher(gateway), 2.0
    reading = keep_reading(fast)

    async def rate(until=lambda: False) -> float:
        """The fast reader's events a second while the publisher runs for ``seconds``."""
        start = time.perf_counter()
        await publisher.run(seconds, until=until)
        return arrived_between(fast, start, start + seconds) / seconds

    before = await rate()  # the fast reader alone
    slow, outbox = await subscribed_stalled(gateway, http_port)
    slow.rate = SLOW_LINK
    slow_reading = asyncio.ensure_future(close_code(slow))
    watch = Watch(outbox)
    beside = await rate(until=watch)  # the same, beside the slow reader
    after = await rate()  # alone again: the machine's load drifts, so the two alone runs frame the other
    alone = (before + after) / 2
    logging.getLogger(__name__).info(
        "fast reader: %.0f events/s alone (%.0f before, %.0f after), %.0f events/s beside a %d B/s reader (%.2fx)",
        alone, before, after, beside, SLOW_LINK, beside / alone)

    assert beside >= FAST_READER_KEEPS * alone, (before, beside, after)
    assert publisher.longest <= limits.publish_wait + SLACK, publisher.longest
    assert watch.congested_at is not None and watch.closed_at is not None, "the slow reader was never closed"
    assert watch.closed_at - watch.congested_at <= limits.send_timeout + SLACK
    slow.rate = None  # closed: read the rest at once, to see the close code within its grace time
    assert await asyncio.wait_for(slow_reading, 10) == CloseCode.SLOW_CONSUMER
    assert await read_to(fast, reading, publisher.seq) == list(range(publisher.seq))  # every event, in order
    assert len(slow_consumer_warnings()) == 1
    fast.close()


@pytest.mark.gen_test(timeout=30)
@pytest.mark.gateway_options(limits=HELD_2S)
async def test_a_reader_that_never_reads_holds_publishers_at_most_publish_wait(gateway, ws_url, http_port,
                                                                              slow_consumer_warnings):
    limits = HELD_2S
    fast = BulkSubscriber(ws_url)
    await fast.subscribe("bulk")
    stalled, outbox = await subscribed_stalled(gateway, http_port)
    watch = Watch(outbox)
    publisher = Publisher(gateway)
    reading = keep_reading(fast)
    await publisher.run(limits.send_timeout + 3, until=lambda: watch() or watch.closed_at is not None)

    assert watch.closed_at is not None, "the stalled reader was never closed"
    assert publisher.longest <= limits.publish_wait + SLACK, publisher.longest
    assert watch.congested_at is not None and watch.closed_at - watch.congested_at <= limits.send_timeout + SLACK
    assert await asyncio.wait_for(close_code(stalled), 10) == CloseCode.SLOW_CONSUMER
    assert await read_to(fast, reading, publisher.seq) == list(range(publisher.seq))
    assert len(slow_consumer_warnings()) == 1
    fast.close()


# Serially, with the adversarial suite: a reader that never reads sees its 4008 only if it reads before Tornado
# gives up the closing handshake (5 s after the close), and beside two busy workers reading the fast reader's
# events first took longer than that once.
@pytest.mark.adversarial
@pytest.mark.gen_test(timeout=30)
@pytest.mark.gateway_options(limits=HELD_2S)
async def test_a_new_stalled_reader_every_second_does_not_stall_the_channel(gateway, ws_url, http_port,
                                                                            slow_consumer_warnings):
    limits = HELD_2S
    fast = BulkSubscriber(ws_url)
    await fast.subscribe("bulk")
    publisher, stalled = Publisher(gateway), []

    async def open_stalled_readers() -> None:
        for _ in range(4):
            stalled.append(await subscribed_stalled(gateway, http_port))
            await asyncio.sleep(1.0)

    reading = keep_reading(fast)
    started = time.perf_counter()
    opening = asyncio.ensure_future(open_stalled_readers())
    await publisher.run(4.5)
    await opening
    ended = time.perf_counter()

    assert publisher.longest <= limits.publish_wait + SLACK, publisher.longest
    seqs = await read_to(fast, reading, publisher.seq)
    assert seqs == list(range(publisher.seq))
    stamps = [started] + [at for at, _ in fast.arrivals if at <= ended] + [ended]
    longest_gap = max(later - earlier for earlier, later in zip(stamps, stamps[1:], strict=False))
    assert longest_gap <= limits.publish_wait + SLACK, longest_gap  # the fast reader kept receiving
    async with asyncio.timeout(limits.send_timeout + 5):  # each stalled reader is closed 4008
        codes = [await close_code(sock) for sock, _ in stalled]
    assert codes == [CloseCode.SLOW_CONSUMER] * 4
    assert len(slow_consumer_warnings()) == 4
    fast.close()


@pytest.mark.gen_test(timeout=40)
@pytest.mark.gateway_options(limits=HELD)
async def test_a_reader_that_reads_but_stays_behind_is_closed_after_send_timeout(gateway, ws_url, http_port,
                                                                                 slow_consumer_warnings, caplog):
    limits = HELD
    slow, outbox = await subscribed_stalled(gateway, http_port)
    slow.rate = SLOW_LINK
    slow_reading = asyncio.ensure_future(close_code(slow))
    watch = Watch(outbox)
    publisher = Publisher(gateway)
    await publisher.run(10, until=lambda: watch() or watch.congested_at is not None)  # a burst fills its buffers
    # Then a steady stream at twice what it reads: its queue grows more slowly than the cap allows for in
    # send_timeout, and every write it finishes drains it a little.
    await publisher.run(limits.send_timeout + 3, rate=2 * SLOW_LINK / 1000,
                        until=lambda: watch() or watch.closed_at is not None)

    assert publisher.longest <= limits.publish_wait + SLACK, publisher.longest
    assert watch.closed_at is not None, "a reader that stays behind was never closed"
    assert watch.congested_at is not None and watch.closed_at - watch.congested_at <= limits.send_timeout + SLACK
    assert slow_consumer_warnings() == [f"closing a slow consumer (127.0.0.1): congested for {limits.send_timeout}s"]
    # logged from a timer, outside the connection's context: the record names its client itself
    assert [record.client for record in caplog.records if "slow consumer" in record.getMessage()] == ["127.0.0.1"]
    slow.rate = None
    assert await asyncio.wait_for(slow_reading, 10) == CloseCode.SLOW_CONSUMER
