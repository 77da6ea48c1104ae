"""Slow readers: one on a 300 KB/s link and one that never reads, on a busy channel.

The flow gateway (``bulk``, a 256 KiB send queue, 1 s ``send_timeout``;
``publish_wait`` 0.2 s) publishes about 3 MB/s of ~1 KB events, more than
the slow link carries. docs/security.md ("Slow readers"): each slow reader
holds the publisher at most ``publish_wait`` and is closed with 4008 within
``send_timeout`` of its congestion; the fast subscriber gets every event in
order; the bystander, subscribed to nothing, pings through it all.
"""

from __future__ import annotations

import asyncio

import pytest

from drizzle_gateway.wire.dialect import CloseCode
from tests.support.bulk_subscriber import BulkSubscriber
from tests.support.bystander import Bystander, logger
from tests.support.flow import (
    SLACK,
    SLOW_LINK,
    Publisher,
    Watch,
    close_code,
    hold_limits,
    keep_reading,
    read_to,
    subscribed_stalled,
)
from tests.support.serve_app import make_flow_gateway

pytestmark = pytest.mark.adversarial

RATE = 3000
"""Events a second the publisher sends (~1 KB each): about ten times the slow link."""


HELD = hold_limits()
"""The flow gateway's limits (a 256 KiB send queue, 1 s for a congested reader to drain it), a short publish_wait."""


@pytest.fixture
def gateway():
    """A ``bulk`` topic with the `HELD` limits."""
    return make_flow_gateway(limits=HELD)


@pytest.mark.gen_test(timeout=30)
async def test_a_slow_and_a_stalled_reader_are_closed_while_the_fast_one_and_the_bystander_go_on(
        gateway, ws_url, http_port, connect):
    limits = HELD
    fast = BulkSubscriber(ws_url)
    await fast.subscribe("bulk")
    reading = keep_reading(fast)
    slow, slow_outbox = await subscribed_stalled(gateway, http_port)
    slow.rate = SLOW_LINK
    slow_reading = asyncio.ensure_future(close_code(slow))
    stalled, stalled_outbox = await subscribed_stalled(gateway, http_port)
    watches = [Watch(slow_outbox), Watch(stalled_outbox)]
    publisher = Publisher(gateway)
    async with Bystander(await connect(), "slow readers: 300 KB/s and stalled, 3 MB/s published") as watch:
        await publisher.run(limits.send_timeout + 4, rate=RATE,
                            until=lambda: [w() for w in watches] and all(w.closed_at is not None for w in watches))
    await watch.check()

    for each in watches:
        assert each.congested_at is not None and each.closed_at is not None, "a slow reader was never closed"
        assert each.closed_at - each.congested_at <= limits.send_timeout + SLACK
    assert publisher.longest <= limits.publish_wait + SLACK, publisher.longest
    slow.rate = None  # closed: read the rest at once, to see the close code
    assert await asyncio.wait_for(slow_reading, 10) == CloseCode.SLOW_CONSUMER
    assert await asyncio.wait_for(close_code(stalled), 10) == CloseCode.SLOW_CONSUMER
    assert await read_to(fast, reading, publisher.seq) == list(range(publisher.seq))  # every event, in order
    logger.info("slow readers: %d events published, the longest publish %.0f ms; closed %.2f s and %.2f s after "
                "their congestion", publisher.seq, publisher.longest * 1000,
                *(each.closed_at - each.congested_at for each in watches))
    fast.close()
