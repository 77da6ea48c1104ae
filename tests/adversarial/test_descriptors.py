"""Descriptors: connections up to and past the process's open-files limit while the bystander pings.

The gateway runs as ``drizzle-gateway serve`` in a child process whose
``RLIMIT_NOFILE`` is `LIMIT` (tests/support/nofile.py's launcher). The
attacker opens twice that many TCP connections; the process must never hold
more descriptors than its limit, log running out once (an ERROR line by
design, no traceback), keep serving the bystander's open connection, and
accept again once the attacker lets go.
"""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
import time

import pytest

from drizzle_gateway.client import Client
from tests.support.bystander import Bystander, logger
from tests.support.nofile import LIMIT, log_text, serve_with_nofile
from tests.support.ports import free_port, wait_for_port

pytestmark = pytest.mark.adversarial

HELD = 1.0
"""Seconds the bystander pings while the process is out of descriptors."""


def descriptors(pid: int) -> int:
    """The descriptors process ``pid`` holds."""
    return len(os.listdir(f"/proc/{pid}/fd"))


@pytest.mark.timeout(60)
@pytest.mark.gen_test(timeout=50)
async def test_connections_past_the_descriptor_limit_leave_the_bystander_served():
    port = free_port()
    with tempfile.TemporaryFile("w+") as log:
        server = serve_with_nofile(LIMIT, LIMIT, port, log)
        sockets: list[socket.socket] = []
        try:
            wait_for_port(port, timeout=30, process=server)
            url = f"ws://127.0.0.1:{port}/ws"
            async with Client(url) as bystander:
                async with Bystander(bystander, f"descriptors: {2 * LIMIT} connections, limit {LIMIT}") as watch:
                    loop = asyncio.get_running_loop()
                    most = 0
                    for _ in range(2 * LIMIT):  # twice what the process may hold; the rest wait in the backlog
                        sock = socket.socket()
                        sock.setblocking(False)
                        await loop.sock_connect(sock, ("127.0.0.1", port))
                        sockets.append(sock)
                        most = max(most, descriptors(server.pid))
                    deadline = time.monotonic() + 10
                    while "out of file descriptors" not in log_text(log) and time.monotonic() < deadline:
                        await asyncio.sleep(0.05)
                    held_until = time.monotonic() + HELD
                    while time.monotonic() < held_until:  # out of descriptors: the bystander pings meanwhile
                        most = max(most, descriptors(server.pid))
                        await asyncio.sleep(0.05)
                await watch.check()
                assert log_text(log).count("out of file descriptors") == 1  # once however long it lasts
                assert most <= LIMIT, most
                for sock in sockets:
                    sock.close()
                sockets.clear()
                async with Client(url) as late:  # accepted again once descriptors are free
                    assert await asyncio.wait_for(late.ping(), 10) == "pong"
            text = log_text(log)
            logger.info("descriptors: at most %d of %d held", most, LIMIT)
            assert "accepting connections again after" in text
            assert "Traceback" not in text
        finally:
            for sock in sockets:
                sock.close()
            server.terminate()
            server.wait(10)
