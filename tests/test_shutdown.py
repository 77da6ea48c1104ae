"""Graceful shutdown: in-process `Gateway.close` and SIGTERM on ``drizzle-gateway serve``."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from drizzle_gateway.client import Client, ConnectionClosed, RemoteError
from tests.support.polling import wait_until
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parent.parent


async def in_flight(gateway) -> None:
    """Wait (5 s at most) until some session of ``gateway`` has a request in flight."""
    await wait_until(lambda: any(session.tasks for session in gateway.hub.sessions), 5)


@pytest.mark.gen_test
async def test_close_finishes_in_flight_actions_then_closes_with_1001(gateway, connect):
    busy = await connect()
    idle = await connect()
    pending = asyncio.ensure_future(busy.call("lab", "sleep", {"seconds": 0.5, "tag": "last"}))
    await in_flight(gateway)
    closing = asyncio.ensure_future(gateway.close(timeout=5))
    await wait_until(lambda: gateway.hub.closing, 5)
    with pytest.raises(RemoteError) as refused:
        await idle.ping()
    assert refused.value.code == "SHUTTING_DOWN"
    assert await pending == {"tag": "last"}
    await closing
    for client in (busy, idle):
        with pytest.raises(ConnectionClosed) as closed:
            await client.next_event(timeout=5)
        assert closed.value.code == 1001 and closed.value.should_reconnect
    late = await connect()
    with pytest.raises(ConnectionClosed) as refused_socket:
        await late.next_event(timeout=5)
    assert refused_socket.value.code == 1001


@pytest.mark.gen_test
async def test_close_cancels_actions_still_running_at_the_deadline(gateway, connect):
    client = await connect()
    pending = asyncio.ensure_future(client.call("lab", "sleep", {"seconds": 30, "tag": "never"}))
    await in_flight(gateway)
    await gateway.close(timeout=0.2)
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(pending, 5)
    assert closed.value.code == 1001


async def wait_listening(port: int, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert server.poll() is None, "server exited early"
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        return
    raise AssertionError("server did not listen")


@pytest.mark.gen_test(timeout=60)
async def test_sigterm_on_serve_drains_and_exits(tmp_path):
    port = free_port()
    command = Path(sys.executable).with_name("drizzle-gateway")
    server = subprocess.Popen(
        [str(command), "serve", "tests.support.serve_app:make_gateway", "--port", str(port)],
        cwd=ROOT, stderr=open(tmp_path / "server.log", "w"), env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        await wait_listening(port, server)
        async with Client(f"ws://127.0.0.1:{port}/ws") as client:
            pending = asyncio.ensure_future(client.call("lab", "sleep", {"seconds": 1.0, "tag": "drained"}))
            await wait_until(lambda: client._pending, 5)  # the call is sent ...
            assert await client.ping() == "pong"  # ... and the server read it before this ping: it is in flight
            server.send_signal(signal.SIGTERM)
            assert await pending == {"tag": "drained"}
            with pytest.raises(ConnectionClosed) as closed:
                await client.next_event(timeout=10)
            assert closed.value.code == 1001
        deadline = time.monotonic() + 15
        while server.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert server.returncode == 0
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", port)
    finally:
        if server.poll() is None:
            server.kill()
        server.wait()
    log = (tmp_path / "server.log").read_text()
    assert "Traceback" not in log and " ERROR " not in log
