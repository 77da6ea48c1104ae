"""Attacks on the handshake: connections that never finish sending their request are closed in bounded time.

The server is the one `Gateway.http_server` makes (as ``drizzle-gateway serve``
does), listening on 127.0.0.1; the attackers are raw TCP sockets.
"""

from __future__ import annotations

import asyncio
import logging
import statistics

import pytest

from drizzle_gateway import Gateway
from drizzle_gateway.client import Client
from drizzle_gateway.runtime.limits import Limits
from tests.support.handshakes import HANDSHAKE_TIMEOUT, SLACK, stall
from tests.support.polling import wait_until

logger = logging.getLogger("drizzle_gateway.tests")

STALLED = 50


@pytest.mark.adversarial  # 100 sockets held open and their timing: in the serial step, beside no other test
@pytest.mark.gen_test(timeout=20)
async def test_stalled_handshakes_are_closed_within_the_timeout_while_others_are_served(served):
    opened: list[None] = []
    half_line = [stall(served, b"GET /ws HT", lambda: opened.append(None)) for _ in range(STALLED)]
    half_headers = [stall(served, f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{served}\r\nUpgrade: webs".encode(),
                          lambda: opened.append(None)) for _ in range(STALLED)]
    attack = asyncio.gather(*half_line, *half_headers)
    await wait_until(lambda: len(opened) == 2 * STALLED, 5)  # the attackers connect first
    async with Client(f"ws://127.0.0.1:{served}/ws") as bystander:  # served while the attack holds its sockets
        assert await bystander.ping() == "pong"
        assert not attack.done()
    held = await attack
    logger.info("stalled handshakes held for %.2f s median, %.2f-%.2f s", statistics.median(held), min(held), max(held))
    assert len(held) == 2 * STALLED
    assert HANDSHAKE_TIMEOUT * 0.9 <= min(held) and max(held) <= HANDSHAKE_TIMEOUT + SLACK


@pytest.mark.gen_test(timeout=20)
async def test_a_slow_request_body_is_closed_within_the_timeout(served):
    held = await stall(served, f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{served}\r\nContent-Length: 1000\r\n\r\n"
                               f"x".encode())
    assert HANDSHAKE_TIMEOUT * 0.9 <= held <= HANDSHAKE_TIMEOUT + SLACK


def test_server_options_apply_the_handshake_timeout():
    gateway = Gateway(limits=Limits(handshake_timeout=3.5))
    assert gateway.server_options() == {"idle_connection_timeout": 3.5, "body_timeout": 3.5}
    server = gateway.http_server(xheaders=True)
    assert (server.conn_params.header_timeout, server.conn_params.body_timeout, server.xheaders) == (3.5, 3.5, True)
    assert Gateway(limits=Limits(handshake_timeout=None)).server_options() == {}
