"""Running out of file descriptors: the gateway raises its limit, and when it runs out anyway
it logs once, does not spin, serves its open connections and accepts again later."""

from __future__ import annotations

import asyncio
import resource
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from drizzle_gateway.client import Client
from drizzle_gateway.transport.server import raise_descriptor_limit
from tests.support.nofile import LIMIT, log_text, serve_with_nofile
from tests.support.polling import wait_until
from tests.support.ports import free_port, wait_for_port
from tests.support.procstat import process_cpu

ROOT = Path(__file__).resolve().parent.parent.parent


def test_raise_descriptor_limit_lifts_the_soft_limit_to_the_hard_one():
    script = ("import resource; resource.setrlimit(resource.RLIMIT_NOFILE, (256, 1024));"
              "from drizzle_gateway.transport.server import raise_descriptor_limit as r; print(r(), "
              "resource.getrlimit(resource.RLIMIT_NOFILE)[0])")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert out.stdout.split() == ["1024", "1024"], out.stderr
    assert raise_descriptor_limit() == resource.getrlimit(resource.RLIMIT_NOFILE)[0]


@pytest.mark.gen_test(timeout=60)
async def test_serve_logs_the_connection_capacity_after_raising_the_limit():
    port = free_port()
    with tempfile.TemporaryFile("w+") as log:
        server = serve_with_nofile(256, 2048, port, log)
        try:
            wait_for_port(port, timeout=30, process=server)  # the port is bound before the gateway starts serving
            await wait_until(lambda: "open-files limit" in log_text(log), 30)
        finally:
            server.terminate()
            server.wait(10)
        assert "open-files limit 2048: room for about 2016 connections" in log_text(log)


@pytest.mark.timeout(90)
@pytest.mark.gen_test(timeout=80)
async def test_out_of_descriptors_logs_once_does_not_spin_and_recovers():
    port = free_port()
    with tempfile.TemporaryFile("w+") as log:
        server = serve_with_nofile(LIMIT, LIMIT, port, log)
        sockets: list[socket.socket] = []
        try:
            wait_for_port(port, timeout=30, process=server)
            client = await Client(f"ws://127.0.0.1:{port}/ws").connect()
            loop = asyncio.get_running_loop()
            for _ in range(2 * LIMIT):  # twice what the process may hold; the rest wait in the backlog
                sock = socket.socket()
                sock.setblocking(False)
                await loop.sock_connect(sock, ("127.0.0.1", port))
                sockets.append(sock)
            await wait_until(lambda: "out of file descriptors" in log_text(log), 10)
            busy_before = process_cpu(server.pid)
            await asyncio.sleep(1)  # a gateway spinning on accept() would burn most of this second
            spent = process_cpu(server.pid) - busy_before
            assert spent < 0.25, f"the gateway spun: {spent:.2f}s of CPU in 1s"
            assert await client.ping() == "pong"  # the open connection is still served
            assert log_text(log).count("out of file descriptors") == 1
            assert "Traceback" not in log_text(log)

            for sock in sockets:  # descriptors free up
                sock.close()
            sockets.clear()
            late = await asyncio.wait_for(Client(f"ws://127.0.0.1:{port}/ws").connect(), 10)
            assert await late.ping() == "pong"
            assert "accepting connections again after" in log_text(log)
            await late.close()
            await client.close()
        finally:
            for sock in sockets:
                sock.close()
            server.terminate()
            server.wait(10)


