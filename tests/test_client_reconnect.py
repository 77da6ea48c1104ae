"""The Python client's ``auto_reconnect``: after a dropped link it comes back on its own, and loses nothing silently.

A real gateway on a real listening socket; links are cut at the TCP level
(as a network change would) or refused while the server is away.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
import tornado.web
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port

from drizzle_gateway import Gateway
from drizzle_gateway.client import Client, ConnectionClosed, Event
from tests.support.history import FakeClock, history_gateway, message, publish
from tests.support.polling import wait_until
from tests.support.reply_holder import ReplyHolder

QUICK = 0.3
"""``max_reconnect_delay`` of these clients: each attempt waits 0.15-0.3 s."""


class Served:
    """The gateway on a port of its own that can stop listening (connections refused) and start again."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.app = tornado.web.Application(gateway.routes())
        sock, self.port = bind_unused_port()
        self.server: HTTPServer | None = HTTPServer(self.app)
        self.server.add_sockets([sock])

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    async def stop(self) -> None:
        """Stop listening and cut every websocket without a close handshake, as a killed process would."""
        assert self.server is not None
        self.server.stop()
        await self.server.close_all_connections()
        for session in self.gateway.hub.sessions:
            session.peer.ws_connection.stream.close()  # type: ignore[attr-defined]  # a `Connection`
        self.server = None

    def start(self) -> None:
        self.server = HTTPServer(self.app)
        self.server.listen(self.port, "127.0.0.1")


@pytest.fixture
def gateway() -> Gateway:
    return history_gateway(FakeClock())


@pytest.fixture
def served(gateway, io_loop):
    served = Served(gateway)
    yield served
    if served.server is not None:
        io_loop.run_sync(served.stop)


async def reconnecting(served: Served, **options) -> Client:
    """A connected `Client` of ``served`` with ``auto_reconnect`` and quick attempts."""
    return await Client(served.url, auto_reconnect=True, max_reconnect_delay=QUICK, **options).connect()


def cut(client: Client) -> None:
    """Cut the client's TCP connection without a close handshake."""
    assert client._ws is not None and client._ws.protocol is not None
    client._ws.protocol.stream.close()


async def events(client: Client, count: int) -> list[Event]:
    return [await client.next_event(5) for _ in range(count)]


async def no_more_events(client: Client) -> None:
    with pytest.raises(TimeoutError):
        await client.next_event(0.3)


def seen(event: Event) -> tuple:
    """An event as the assertions compare it: a recovery notice, or its offset and seq."""
    if event.recovered is False:
        return ("not recovered", event.topic)
    return (event.offset, event.data["seq"])


@pytest.mark.gen_test(timeout=30)
async def test_a_cut_link_comes_back_and_every_offset_arrives_once(gateway, served):
    client = await reconnecting(served)
    try:
        await client.subscribe("feed.lobby")
        await publish(gateway, [1, 2])
        assert [seen(e) for e in await events(client, 2)] == [(1, 1), (2, 2)]
        cut(client)
        await wait_until(lambda: client.relinker.running, 5)
        await publish(gateway, [3, 4])  # before the first attempt (at least 0.15 s away): recovered with since
        await client.connected()
        await publish(gateway, [5])
        assert [seen(e) for e in await events(client, 3)] == [(3, 3), (4, 4), (5, 5)]
        await no_more_events(client)  # each offset once, and no notice: nothing was lost
        assert client.relinker.attempts == 1
    finally:
        await client.close()


@pytest.mark.gen_test(timeout=30)
async def test_what_the_history_no_longer_holds_is_announced_in_its_place(gateway, served):
    client = await reconnecting(served)
    try:
        await client.subscribe("feed.lobby")
        await publish(gateway, [1])
        assert [seen(e) for e in await events(client, 1)] == [(1, 1)]
        cut(client)
        await wait_until(lambda: client.relinker.running, 5)
        await publish(gateway, range(2, 10))  # the history keeps 5: 2-4 are gone
        await client.connected()
        await publish(gateway, [10])
        assert [seen(e) for e in await events(client, 2)] == [("not recovered", "feed.lobby"), (10, 10)]
        await no_more_events(client)
    finally:
        await client.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_topic_without_history_is_told_it_may_have_missed_events(gateway, served):
    client = await reconnecting(served)
    try:
        await client.subscribe("plain")
        await gateway.publish("plain", message(1))
        assert (await client.next_event(5)).data["seq"] == 1
        cut(client)
        await wait_until(lambda: client.relinker.running, 5)
        await gateway.publish("plain", message(2))  # nobody hears this one
        await client.connected()
        await gateway.publish("plain", message(3))
        notice, after = await events(client, 2)
        assert (notice.topic, notice.recovered, notice.data) == ("plain", False, None)
        assert (after.data["seq"], after.recovered) == (3, None)
    finally:
        await client.close()


@pytest.mark.gen_test(timeout=30)
async def test_attempts_go_on_while_the_server_is_away_and_requests_fail_fast_meanwhile(gateway, served, caplog):
    caplog.set_level(logging.WARNING, logger="drizzle_gateway.client")
    client = await reconnecting(served, timeout=5)
    try:
        await client.subscribe("feed.lobby")
        await served.stop()
        await wait_until(lambda: client.relinker.attempts >= 3, 10)  # refused, and tried again
        with pytest.raises(ConnectionClosed):
            await client.ping()
        with pytest.raises(TimeoutError):
            await client.connected(0.5)  # bounded, whatever the attempts do
        await publish(gateway, [1, 2])
        served.start()
        await client.connected()
        failed = [line for line in (record.getMessage() for record in caplog.records)
                  if "failed (ConnectionRefusedError" in line]
        assert len(failed) >= 2, failed
        assert [seen(e) for e in await events(client, 2)] == [(1, 1), (2, 2)]
        assert await client.ping() == "pong"
    finally:
        await client.close()


@pytest.mark.gen_test(timeout=30)
async def test_closing_the_client_stops_the_attempts_and_ends_its_events(gateway, served):
    client = await reconnecting(served)
    await client.subscribe("feed.lobby")
    await served.stop()
    await wait_until(lambda: client.relinker.attempts >= 1, 10)
    await wait_until(lambda: not gateway.hub.sessions, 5)  # the cut link's session has ended
    await client.close()
    assert not client.relinker.running
    assert [event async for event in client.events()] == []  # ended, not waiting for a link that will not come
    attempts = client.relinker.attempts
    served.start()
    await asyncio.sleep(QUICK * 2)  # longer than any attempt would wait: none is made
    assert not gateway.hub.sessions and client.relinker.attempts == attempts


@pytest.mark.gen_test(timeout=30)
async def test_a_close_that_reconnecting_does_not_help_ends_the_events(gateway, served):
    client = await reconnecting(served)
    try:
        await client.subscribe("feed.lobby")
        await wait_until(lambda: len(gateway.hub.sessions) == 1, 5)
        next(iter(gateway.hub.sessions)).close(1008, "policy")  # 1008: not in the reconnect table
        assert [event async for event in client.events()] == []
        assert client.close_code == 1008 and not client.relinker.running
    finally:
        await client.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_refused_token_stops_the_attempts():
    tokens = iter(["good", "bad"])
    gateway = Gateway(authenticate=lambda credentials: {"id": 1} if credentials.token == "good" else None,
                      auth_throttle=False)
    served = Served(gateway)
    client = await Client(served.url, auto_reconnect=True, max_reconnect_delay=QUICK,
                          get_token=lambda: next(tokens)).connect()
    try:
        await wait_until(lambda: len(gateway.hub.sessions) == 1, 5)
        cut(client)
        assert [event async for event in client.events()] == []  # the second token was refused: it gave up
        assert client.relinker.attempts == 1 and not client.relinker.running
    finally:
        await client.close()
        await served.stop()


@pytest.mark.gen_test(timeout=30)
async def test_the_test_client_reconnects_in_process_too(gateway, test_client):
    client = await test_client(auto_reconnect=True, max_reconnect_delay=QUICK)
    await client.subscribe("feed.lobby")
    await client.subscribe("plain")
    assert client.session is not None
    client.session.close(1012, "service restart")  # what a draining instance says
    await wait_until(lambda: client.relinker.running, 5)
    await publish(gateway, [1])
    await client.connected()
    await publish(gateway, [2])
    got = [seen(e) for e in await events(client, 3)]
    # feed.lobby knew its position from its subscribe reply: 1 is recovered; plain can recover nothing
    assert sorted(got, key=str) == sorted([(1, 1), ("not recovered", "plain"), (2, 2)], key=str)
    await no_more_events(client)


@pytest.mark.gen_test(timeout=30)
async def test_a_server_that_stops_answering_is_noticed_by_the_heartbeat_and_left(gateway, served):
    proxy = await ReplyHolder(served.port).start()
    client = await Client(f"ws://127.0.0.1:{proxy.port}/ws", auto_reconnect=True, max_reconnect_delay=QUICK,
                          ping_interval=0.2, ping_timeout=1.0).connect()
    try:
        await client.subscribe("feed.lobby")
        assert await client.ping() == "pong"
        await asyncio.sleep(1.0)  # five intervals: pings answered, the link kept
        assert not client.relinker.running and client.relinker.attempts == 0
        loop = asyncio.get_running_loop()
        held_at = loop.time()
        proxy.hold()  # the server's bytes stop reaching the client: a link that silently died
        await wait_until(lambda: client.relinker.running, 10)
        assert loop.time() - held_at <= 0.2 + 1.0 + 1  # interval + timeout (+ slack): no close handshake waited for
        assert client.close_reason == "ping timed out"
        await client.connected()  # a new link through the proxy passes everything
        await publish(gateway, [1])
        assert [seen(e) for e in await events(client, 1)] == [(1, 1)]
    finally:
        await client.close()
        await proxy.close()


@pytest.mark.gen_test(timeout=30)
async def test_an_attempt_that_fails_while_authenticating_is_tried_again():
    calls = []

    def get_token() -> str:  # the token service is down for the first reconnect only
        calls.append(len(calls))
        if len(calls) == 2:
            raise RuntimeError("token service unavailable")
        return "good"

    gateway = Gateway(topics=history_gateway(FakeClock()).topics,
                      authenticate=lambda credentials: {"id": 1} if credentials.token == "good" else None,
                      auth_throttle=False)
    served = Served(gateway)
    client = await Client(served.url, auto_reconnect=True, max_reconnect_delay=QUICK, get_token=get_token).connect()
    try:
        await client.subscribe("feed.lobby")
        cut(client)
        await wait_until(lambda: client.relinker.running, 5)
        await client.connected()
        assert (client.relinker.attempts, len(calls)) == (2, 3)  # the failed one, then the one that made it
        await publish(gateway, [1])
        assert [seen(e) for e in await events(client, 1)] == [(1, 1)]
    finally:
        await client.close()
        await served.stop()


@pytest.mark.gen_test(timeout=30)
async def test_reconnecting_by_hand_stops_the_automatic_attempts(gateway, served):
    client = await reconnecting(served)
    try:
        await client.subscribe("feed.lobby")
        cut(client)
        await wait_until(lambda: client.relinker.running, 5)
        replies = await client.reconnect()  # while the automatic attempt still waits its backoff
        assert replies["feed.lobby"]["recovered"] is True
        await wait_until(lambda: len(gateway.hub.sessions) == 1, 5)
        session = next(iter(gateway.hub.sessions))
        await asyncio.sleep(QUICK * 2)  # past the backoff: no automatic attempt replaces the caller's link
        assert gateway.hub.sessions == {session} and client.relinker.attempts == 0
        await publish(gateway, [1])
        assert [seen(e) for e in await events(client, 1)] == [(1, 1)]
    finally:
        await client.close()


class SlowHandshakes:
    """A TCP proxy that holds back the server's first bytes (its handshake answer) for ``delay`` seconds."""

    def __init__(self, target_port: int, delay: float) -> None:
        self.target_port = target_port
        self.delay = delay
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> SlowHandshakes:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter, delay: float) -> None:
            await asyncio.sleep(delay)
            while chunk := await source.read(65536):
                sink.write(chunk)
                await sink.drain()
            sink.close()

        await asyncio.gather(pump(reader, up_writer, 0), pump(up_reader, writer, self.delay), return_exceptions=True)

    async def close(self) -> None:
        assert self.server is not None
        self.server.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_connect_cancelled_during_its_handshake_leaves_no_connection_behind(gateway, served):
    proxy = await SlowHandshakes(served.port, delay=0.5).start()
    client = Client(f"ws://127.0.0.1:{proxy.port}/ws")
    connecting = asyncio.ensure_future(client.connect())
    await wait_until(lambda: len(gateway.hub.sessions) == 1, 5)  # the server has upgraded; its answer is held
    connecting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await connecting
    await wait_until(lambda: not gateway.hub.sessions, 5)  # the late connection was closed, not left open
    await proxy.close()
