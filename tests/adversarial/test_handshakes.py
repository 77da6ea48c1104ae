"""Handshakes: slowloris past the bound, half request lines, half headers and headers trickled a byte at a time.

The server is the one `Gateway.http_server` makes, with a 1 s
``handshake_timeout`` (the ``served`` fixture of tests/conftest.py); every
stalled connection must be closed, answered nothing, within the bound, while
the bystander, connected before the attack, pings through it, and a client
connecting in the middle of it is served.
"""

from __future__ import annotations

import asyncio

import pytest

from drizzle_gateway.client import Client
from tests.support.bystander import Bystander, logger
from tests.support.handshakes import HANDSHAKE_TIMEOUT, SLACK, stall

pytestmark = pytest.mark.adversarial

STALLED = 50
"""Connections of each kind of stall: half a request line, half the headers. With the trickling ones, 120 at
once: within the listen backlog (128), so the kernel drops no SYN (a dropped one is retried a second later,
which would add that second to what the attacker's clock reads)."""
TRICKLING = 20
"""Connections that send their headers a byte every `TRICKLE` seconds: never idle, never finished."""
TRICKLE = 0.1
HELD_SLACK = 0.5
"""Seconds past ``handshake_timeout`` a stalled connection may be held (the bound's timer and a busy loop)."""


async def trickle(port: int) -> float:
    """Send a handshake a byte every `TRICKLE` seconds until the server closes; the seconds it held on."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nX-Padding: {'p' * 200}\r\n"
    closed = asyncio.ensure_future(reader.read())
    try:
        for byte in request.encode():
            if closed.done():
                break
            writer.write(bytes((byte,)))
            await asyncio.wait({closed}, timeout=TRICKLE)
        assert await asyncio.wait_for(closed, HANDSHAKE_TIMEOUT + SLACK) == b""  # closed, nothing answered
        return loop.time() - started
    finally:
        closed.cancel()
        writer.close()


@pytest.mark.gen_test(timeout=30)
async def test_slowloris_past_the_bound_is_closed_in_time_while_the_bystander_pings(served):  # noqa: F811
    url = f"ws://127.0.0.1:{served}/ws"
    async with Client(url) as bystander:
        async with Bystander(bystander, f"handshakes: {2 * STALLED} stalled, {TRICKLING} trickling") as watch:
            attack = asyncio.gather(*(stall(served, b"GET /ws HT") for _ in range(STALLED)),
                                    *(stall(served, f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{served}\r\nUp".encode())
                                      for _ in range(STALLED)),
                                    *(trickle(served) for _ in range(TRICKLING)))
            await asyncio.sleep(HANDSHAKE_TIMEOUT / 2)  # the attack holds its sockets
            async with Client(url) as newcomer:  # served while it does
                assert await newcomer.ping() == "pong"
            assert not attack.done()
            held = await attack
        await watch.check()
    stalled, trickled = held[:2 * STALLED], held[2 * STALLED:]
    logger.info("handshakes: stalled held %.2f-%.2f s, trickling %.2f-%.2f s", min(stalled), max(stalled),
                min(trickled), max(trickled))
    assert HANDSHAKE_TIMEOUT * 0.9 <= min(held) and max(held) <= HANDSHAKE_TIMEOUT + HELD_SLACK
