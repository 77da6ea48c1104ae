"""drizzle_gateway.serving: ``serve`` drains on SIGTERM; ``--workers N`` serves one port from N processes.

Every gateway here is a real ``drizzle-gateway serve`` subprocess; the
workers share a real redis-server the test module starts.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket

import pytest

from drizzle_gateway.client import Client, RemoteError
from drizzle_gateway.runtime.limits import Limits
from drizzle_gateway.serving import DRAIN_MARGIN, UNBOUNDED_ACTIONS, drain_bound
from tests.support.polling import eventually
from tests.support.scrape import fetch, labels, samples, series
from tests.support.served import Served, ended, free_ports

WORKER_APP = "tests.support.serve_app:make_worker_gateway"


def test_drain_bound_covers_the_running_actions_the_close_handshakes_and_the_broker():
    assert drain_bound(Limits(shutdown_timeout=10.0)) == 10.0 + 2.0 + 5.0 + DRAIN_MARGIN
    assert drain_bound(Limits(shutdown_timeout=None, action_timeout=3.0)) == 3.0 + 7.0 + DRAIN_MARGIN
    assert drain_bound(Limits(shutdown_timeout=None, action_timeout=None)) == UNBOUNDED_ACTIONS + 7.0 + DRAIN_MARGIN


def refused(port: int) -> bool:
    """Whether a TCP connection to 127.0.0.1:``port`` is refused."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


@pytest.mark.gen_test(timeout=60)
async def test_sigterm_closes_the_port_answers_running_requests_then_closes_every_socket_with_1012():
    metrics_port = free_ports(1)
    served = Served("tests.support.serve_app:make_gateway", "--metrics-port", str(metrics_port)).wait_ready()
    try:
        busy, idle = await Client(served.url).connect(), await Client(served.url).connect()
        running = asyncio.ensure_future(busy.call("lab", "sleep", {"seconds": 3.0, "tag": "in flight"}))
        assert await busy.ping() == "pong"  # read after the sleep on the same socket: the sleep runs
        served.terminate()
        ready = f"http://127.0.0.1:{metrics_port}/readyz"
        assert await eventually(lambda: _status_is(ready, 503), 10), "/readyz does not say it is draining"
        assert refused(served.port), "the websocket's port still takes connections while draining"
        with pytest.raises(RemoteError) as late:
            await idle.ping()
        assert late.value.code == "SHUTTING_DOWN"
        assert await running == {"tag": "in flight"}
        for client in (busy, idle):
            closed = await ended(client)
            assert (closed.code, closed.reason, closed.should_reconnect) == (1012, "server restarting", True)
        assert await served.exited() == 0
        await served.logged(r"draining 2 open, 1 requests in flight$")
        await served.logged(r"drained in \d+\.\d s$")
    finally:
        served.kill()


async def _status_is(url: str, status: int) -> bool:
    try:
        return (await fetch(url))[0] == status
    except OSError:
        return False


async def pid_of(client: Client) -> int:
    return (await client.call("whoami", "pid"))["pid"]


async def clients_on(url: str, pids: int, tries: int = 60) -> dict[int, list[Client]]:
    """Clients connected to ``url`` until ``pids`` different processes answered; by process id."""
    found: dict[int, list[Client]] = {}
    for _ in range(tries):
        client = await Client(url).connect()
        found.setdefault(await pid_of(client), []).append(client)
        if len(found) >= pids:
            return found
    raise AssertionError(f"only {sorted(found)} answered in {tries} connections")


@pytest.mark.gen_test(timeout=90)
async def test_workers_share_the_port_publish_across_processes_and_each_serves_its_own_metrics(redis_server):
    first_metrics = free_ports(2)
    served = Served(WORKER_APP, "--workers", "2", "--redis", redis_server.url,
                    "--metrics-port", str(first_metrics)).wait_ready()
    opened: list[Client] = []
    try:
        await served.logged(r"supervising 2 workers \(pids (\d+), (\d+)\)")
        by_pid = await clients_on(served.url, 2)
        opened.extend(client for clients in by_pid.values() for client in clients)
        (a, on_a), (b, on_b) = sorted(by_pid.items())
        listener, speaker = on_a[0], on_b[0]
        await listener.subscribe("chat.workers")
        await speaker.publish("chat.workers", {"author": {"name": "b"}, "text": "across"})
        assert (await listener.next_event(10)).data["text"] == "across"

        calls = len(opened)  # one whoami.pid each
        scraped = [samples((await fetch(f"http://127.0.0.1:{port}/metrics"))[1])
                   for port in (first_metrics, first_metrics + 1)]
        answered = [series(found, "drizzle_requests_total")[labels(resource="whoami", action="pid", code="OK")]
                    for found in scraped]
        assert all(count >= 1 for count in answered) and sum(answered) == calls
        connections = [series(found, "drizzle_connections")[frozenset()] for found in scraped]
        assert sum(connections) == len(opened)

        os.kill(a, signal.SIGKILL)
        await served.logged(rf"worker \d \(pid {a}\) killed by SIGKILL; restarting it in")
        for client in on_a:
            dropped = await ended(client)
            assert dropped.code is None and dropped.should_reconnect  # no close frame from a killed process
        started = await served.logged(r"worker \d started \(pid (\d+)\)", count=3)
        new = int(started[-1].group(1))
        await served.logged(rf"\[{new}\]: drizzle_gateway listening on")
        reborn = await clients_on(served.url, 2)
        opened.extend(client for clients in reborn.values() for client in clients)
        assert sorted(reborn) == sorted([b, new])

        served.terminate()
        for client in [*on_b, *(client for pid, clients in reborn.items() for client in clients)]:
            closed = await ended(client)
            assert closed.code == 1012, (closed.code, closed.reason)
        assert await served.exited() == 0
        await served.logged(r"all workers stopped")
    finally:
        for client in opened:
            await client.close()
        served.kill()
