"""`runtime.peer`: the `PeerState` a session's peer is in, as the two peers move through it.

Each peer is recorded as it runs: the websocket `Connection` on a real Tornado
server on a loopback port (a subclass that notes every state it is put in),
and the in-process link under a `TestClient`. Both only move forward
(CONNECTING, OPEN, CLOSING, CLOSED, skipping some): CONNECTING while the
handshake (and the ``authenticate`` hook) runs, OPEN once frames flow,
CLOSING when the server asked to close (what was queued still goes out),
CLOSED once gone (frames are dropped). A peer refused during shutdown never
opens.
"""

from __future__ import annotations

from typing import Any

import pytest
import tornado.web
from tornado.websocket import websocket_connect

from drizzle_gateway import Gateway, testing
from drizzle_gateway.client import ConnectionClosed
from drizzle_gateway.runtime.auth import Credentials
from drizzle_gateway.runtime.peer import PeerState
from drizzle_gateway.testing import TestClient
from drizzle_gateway.transport.connection import Connection
from drizzle_gateway.wire.dialect import decode
from drizzle_gateway.wire.frame import Frame
from tests.support.polling import wait_until

CONNECTING, OPEN, CLOSING, CLOSED = PeerState.CONNECTING, PeerState.OPEN, PeerState.CLOSING, PeerState.CLOSED
ORDER = list(PeerState)
EVENT = '{"topic":"chat.lobby","data":{"text":"last words"}}'


def forward(journey: list[PeerState]) -> bool:
    """True when ``journey`` only moves forward through `PeerState`."""
    steps = [ORDER.index(state) for state in journey]
    return steps == sorted(set(steps))


def test_the_states_in_their_order():
    assert ORDER == [CONNECTING, OPEN, CLOSING, CLOSED]


def test_forward_sees_a_peer_going_back():
    assert forward([CONNECTING, OPEN, CLOSED])
    assert not forward([CONNECTING, OPEN, CONNECTING])
    assert not forward([OPEN, OPEN])


# -- the websocket Connection, on a real server ---------------------------------------------


JOURNEYS: list[list[PeerState]] = []
"""The states each connection of the test server went through, one list per connection (`journeys`)."""


class Noting:
    """An ``authenticate`` hook that lets everyone in, noting the states the newest peer of ``journeys`` went
    through so far."""

    def __init__(self, journeys: list[list[PeerState]]) -> None:
        self.journeys = journeys
        self.seen: list[list[PeerState]] = []

    def __call__(self, credentials: Credentials) -> dict:
        self.seen.append(list(self.journeys[-1]))
        return {"name": "ann"}


noting_connections = Noting(JOURNEYS)


class RecordedConnection(Connection):
    """A `Connection` that notes, in its own list among ``journeys``, every state it is put in."""

    def initialize(self, gateway: Gateway, journeys: list[list[PeerState]]) -> None:
        self.journey: list[PeerState] = []
        journeys.append(self.journey)
        super().initialize(gateway)

    @property
    def state(self) -> PeerState:
        return self.journey[-1]

    @state.setter
    def state(self, value: PeerState) -> None:
        self.journey.append(value)


@pytest.fixture
def journeys() -> list[list[PeerState]]:
    """`JOURNEYS`, empty at the start of the test."""
    JOURNEYS.clear()
    return JOURNEYS


@pytest.fixture
def app(gateway: Gateway, journeys: list[list[PeerState]]) -> tornado.web.Application:
    return tornado.web.Application([("/ws", RecordedConnection, {"gateway": gateway, "journeys": journeys})])


def only_peer(gateway: Gateway) -> Any:
    """The peer of the gateway's one session."""
    (session,) = gateway.hub.sessions
    return session.peer


@pytest.mark.gen_test
async def test_a_connection_is_open_once_connected_and_closed_once_the_client_leaves(gateway, connect, journeys):
    client = await connect()
    assert await client.ping() == "pong"
    peer = only_peer(gateway)
    assert peer.state is OPEN and journeys == [[CONNECTING, OPEN]]
    await client.close()
    await wait_until(lambda: peer.state is CLOSED, 5)
    assert journeys == [[CONNECTING, OPEN, CLOSED]]  # the client asked: the server never was CLOSING


@pytest.mark.gen_test
@pytest.mark.gateway_options(authenticate=noting_connections)
async def test_a_connection_is_connecting_while_the_handshake_authenticates(connect, journeys):
    noting_connections.seen.clear()
    await connect(headers={"Authorization": "Bearer t"})
    assert noting_connections.seen == [[CONNECTING]]
    assert journeys == [[CONNECTING, OPEN]]


@pytest.mark.gen_test
async def test_a_connection_the_server_closes_is_closing_and_still_sends_what_was_queued(gateway, ws_url, journeys):
    ws = await websocket_connect(ws_url)
    await wait_until(lambda: gateway.hub.sessions, 5)
    peer = only_peer(gateway)
    peer.send_frame(Frame(EVENT))  # an event: queued until the end of the loop turn
    peer.close(4000, "bye")
    assert peer.state is CLOSING
    assert await ws.read_message() == EVENT  # queued before the close: it still goes out
    assert await ws.read_message() is None
    assert (ws.close_code, ws.close_reason) == (4000, "bye")
    await wait_until(lambda: peer.state is CLOSED, 5)
    assert journeys == [[CONNECTING, OPEN, CLOSING, CLOSED]]


@pytest.mark.gen_test
async def test_a_closed_connection_drops_frames(gateway, connect):
    client = await connect()
    await client.ping()
    peer = only_peer(gateway)
    await client.close()
    await wait_until(lambda: peer.state is CLOSED, 5)
    assert peer.send_frame(Frame(EVENT)) is False  # nothing to wait for ...
    assert peer.outbox.queued_bytes == 0  # ... and nothing kept
    await peer.drained()
    await peer.released()


@pytest.mark.gen_test
async def test_a_connection_refused_during_shutdown_never_opens(gateway, ws_url, journeys):
    await gateway.close(timeout=0)
    ws = await websocket_connect(ws_url)
    assert await ws.read_message() is None
    assert ws.close_code == 1001
    await wait_until(lambda: journeys and journeys[-1][-1] is CLOSED, 5)
    assert journeys == [[CONNECTING, CLOSING, CLOSED]]


# -- the in-process link under a TestClient -------------------------------------------------


@pytest.fixture
def links(monkeypatch) -> list[list[PeerState]]:
    """The states each `TestClient` link went through, one list per link."""
    journeys: list[list[PeerState]] = []

    class RecordedLink(testing._InProcess):
        def __init__(self, client: TestClient, request: Any) -> None:
            self.journey: list[PeerState] = []
            journeys.append(self.journey)
            super().__init__(client, request)

        @property
        def state(self) -> PeerState:
            return self.journey[-1]

        @state.setter
        def state(self, value: PeerState) -> None:
            self.journey.append(value)

    monkeypatch.setattr(testing, "_InProcess", RecordedLink)
    return journeys


@pytest.mark.gen_test
async def test_a_test_clients_link_opens_on_connect_and_closes_with_the_client(gateway, links):
    client = await TestClient(gateway).connect()
    assert await client.ping() == "pong"
    peer = client.session.peer
    assert peer.state is OPEN and links == [[CONNECTING, OPEN]]
    await client.close()
    assert peer.state is CLOSED and links == [[CONNECTING, OPEN, CLOSED]]
    assert not gateway.hub.sessions


@pytest.mark.gen_test
async def test_a_test_clients_link_is_connecting_while_it_authenticates(links):
    hook = Noting(links)
    gateway = Gateway(authenticate=hook)
    async with TestClient(gateway, headers={"Authorization": "Bearer t"}):
        pass
    assert hook.seen == [[CONNECTING]]
    assert links == [[CONNECTING, OPEN, CLOSED]]


@pytest.mark.gen_test
async def test_a_link_the_server_closes_is_closed_for_the_client_and_drops_frames(gateway, links):
    delivered: list[str] = []

    def noting(text: str) -> Any:
        delivered.append(text)
        return decode(text)

    client = await TestClient(gateway, loads=noting).connect()
    peer = client.session.peer
    peer.send_frame(Frame(EVENT))
    assert delivered == [EVENT]
    client.session.close(4000, "bye")
    assert peer.state is CLOSED
    with pytest.raises(ConnectionClosed) as closed:
        await client.next_event(timeout=1)  # the event, then the close
        await client.next_event(timeout=1)
    assert (closed.value.code, closed.value.reason) == (4000, "bye")
    assert peer.send_frame(EVENT) is False
    assert delivered == [EVENT]  # dropped
    assert links == [[CONNECTING, OPEN, CLOSED]]


@pytest.mark.gen_test
async def test_a_link_refused_during_shutdown_never_opens(gateway, links):
    await gateway.close(timeout=0)
    with pytest.raises(ConnectionClosed) as refused:
        await TestClient(gateway).connect()
    assert refused.value.code == 1001
    assert links == [[CONNECTING, CLOSED]]


@pytest.mark.gen_test
async def test_every_journey_recorded_only_moves_forward(gateway, connect, links, journeys):
    """Many connections and links opened and closed both ways: each peer's states only move forward."""
    for _ in range(3):
        over_socket = await connect()
        await over_socket.ping()
        in_process = await TestClient(gateway).connect()
        for session in gateway.hub.sessions:
            session.close(4000, "bye")
        await wait_until(lambda: not gateway.hub.sessions, 5)
        await in_process.close()
    assert len(journeys) == len(links) == 3
    assert all(map(forward, journeys + links)), journeys + links
