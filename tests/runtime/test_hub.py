"""`runtime.hub.Hub`: the runtime of a serving gateway: its live sessions, `identify`, and the shutdown `close`.

Sessions are real ones, opened in process by `TestClient`s (or started over a
peer of the test's own where the test needs a peer that misbehaves), on a
real event loop. `close` is checked step by step: the hub refuses new work at
once, running actions get their ``timeout`` and are cancelled after it, every
session is closed with 1001, the peers get `CLOSE_HANDSHAKE_WAIT` to leave,
the broker's pending unsubscribes finish before it is closed, and a broker
that does not close is given up on after `BROKER_CLOSE_WAIT`. Over real
sockets, `Gateway.close` (the same sequence with its default timeout) is
tested in tests/test_gateway.py.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine

from drizzle_gateway import ActionError, Gateway
from drizzle_gateway.brokers import MemoryBroker
from drizzle_gateway.client import ConnectionClosed, RemoteError
from drizzle_gateway.runtime import hub as hub_module
from drizzle_gateway.runtime.auth import AuthThrottle, Credentials
from drizzle_gateway.runtime.hub import Hub
from drizzle_gateway.runtime.limits import Limits
from drizzle_gateway.runtime.peer import PeerState
from drizzle_gateway.runtime.session import Session
from drizzle_gateway.testing import TestClient
from drizzle_gateway.wire.dialect import Dialect
from tests.support.polling import wait_until
from tests.support.serve_app import make_gateway as make_test_gateway

USERS = {"ann-token": {"name": "ann"}}


class Hook:
    """An ``authenticate`` hook that knows ann by her bearer token, and counts the times it is asked."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, credentials: Credentials) -> Any:
        self.calls += 1
        return USERS.get(credentials.headers.get("Authorization", "").removeprefix("Bearer "))


def bearer(token: str, address: str = "10.0.0.1") -> Credentials:
    """The credentials of a handshake from ``address`` with a bearer ``token``."""
    request = HTTPServerRequest(start_line=RequestStartLine("GET", "/ws", "HTTP/1.1"),
                                headers=HTTPHeaders({"Host": "chat.example", "Authorization": f"Bearer {token}"}))
    request.remote_ip = address
    return Credentials(request)


def hub_with(**options: Any) -> Hub:
    """A hub over a fresh registry and memory broker, with ``options`` (``authenticate``, ``auth_throttle``)."""
    return Hub(Gateway(), MemoryBroker(), limits=Limits(), dialect=Dialect(), **options)


def refusal(call: Any) -> tuple[str, str]:
    """The code and message of the `ActionError` ``call()`` (a coroutine) raises."""
    with pytest.raises(ActionError) as refused:
        asyncio.run(call)
    return refused.value.code, refused.value.message


def test_a_hub_runs_what_it_is_given():
    registry, broker, limits, dialect, throttle = Gateway(), MemoryBroker(), Limits(), Dialect(), AuthThrottle()
    hook = Hook()
    hub = Hub(registry, broker, limits=limits, dialect=dialect, authenticate=hook, auth_throttle=throttle)
    assert (hub.registry, hub.broker, hub.limits, hub.dialect) == (registry, broker, limits, dialect)
    assert (hub.authenticate, hub.auth_throttle) == (hook, throttle)
    assert not hub.closing and hub.sessions == frozenset()


# -- sessions -------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_the_sessions_are_those_started_and_not_yet_ended(gateway):
    hub = gateway.hub
    first, second = await TestClient(gateway).connect(), await TestClient(gateway).connect()
    assert hub.sessions == {first.session, second.session}
    before = hub.sessions
    await first.close()
    assert hub.sessions == {second.session}
    assert before == {first.session, second.session}  # what `sessions` gave is a snapshot, not a live view
    hub.leave(first.session)  # leaving again changes nothing
    assert hub.sessions == {second.session}
    hub.join(second.session)  # nor does joining again
    assert hub.sessions == {second.session}
    await second.close()
    assert hub.sessions == frozenset()


# -- identify: the authenticate hook, through the throttle -------------------------------


def test_a_hub_without_a_hook_authenticates_no_one():
    assert refusal(hub_with().identify(bearer("ann-token"))) == (
        "UNAUTHENTICATED", "this gateway does not authenticate")


def test_identify_asks_the_hook_every_time_without_a_throttle():
    hook = Hook()
    hub = hub_with(authenticate=hook)
    assert asyncio.run(hub.identify(bearer("ann-token"))).user == {"name": "ann"}
    for _ in range(20):
        assert refusal(hub.identify(bearer("guess"))) == ("UNAUTHENTICATED", "the handshake's credentials were refused")
    assert hook.calls == 21


def test_identify_goes_through_the_throttle_which_spares_the_hook_once_an_address_failed_too_often():
    hook = Hook()
    hub = hub_with(authenticate=hook, auth_throttle=AuthThrottle(rate=0.001, burst=2))
    for _ in range(2):
        assert refusal(hub.identify(bearer("guess"))) == ("UNAUTHENTICATED", "the handshake's credentials were refused")
    code, message = refusal(hub.identify(bearer("ann-token")))
    assert (code, message) == ("RATE_LIMITED", "too many failed authentication attempts from this address")
    assert hook.calls == 2  # the third attempt never reached the hook
    assert asyncio.run(hub.identify(bearer("ann-token", address="10.0.0.2"))).user == {"name": "ann"}
    assert hook.calls == 3


# -- close: the shutdown sequence -------------------------------------------------------------


class NotingBroker(MemoryBroker):
    """A memory broker whose unsubscribes take a while, noting them and its close (with the sessions left)."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[str] = []
        self.hub: Hub | None = None

    async def unsubscribe(self, channel: str) -> None:
        await asyncio.sleep(0.05)
        self.log.append(f"unsubscribed {channel}")
        await super().unsubscribe(channel)

    async def close(self) -> None:
        sessions = len(self.hub.sessions) if self.hub is not None else None
        self.log.append(f"closed with {sessions} sessions")
        await super().close()


@pytest.fixture
def broker() -> NotingBroker:
    return NotingBroker()


@pytest.fixture
def gateway(broker: NotingBroker) -> Gateway:
    """The test gateway over ``broker``, which knows the hub it runs under."""
    gateway = make_test_gateway(broker=broker)
    broker.hub = gateway.hub
    return gateway


async def ended(client: TestClient) -> ConnectionClosed:
    """How ``client``'s connection ended (it must end within 5 s)."""
    with pytest.raises(ConnectionClosed) as closed:
        await client.next_event(timeout=5)
    return closed.value


@pytest.mark.gen_test
async def test_close_refuses_new_work_finishes_running_actions_closes_sessions_then_the_broker(gateway, broker):
    hub = gateway.hub
    busy, idle = await TestClient(gateway).connect(), await TestClient(gateway).connect()
    await idle.subscribe("chat.lobby")
    running = asyncio.ensure_future(busy.call("lab", "sleep", {"seconds": 0.2, "tag": "last"}))
    await wait_until(lambda: busy.session.tasks, 5)
    closing = asyncio.ensure_future(hub.close(5))
    await wait_until(lambda: hub.closing, 5)
    with pytest.raises(RemoteError) as refused:
        await idle.ping()
    assert refused.value.code == "SHUTTING_DOWN"
    assert await running == {"tag": "last"}  # answered before its session was closed
    await closing
    for client in (busy, idle):
        gone = await ended(client)
        assert (gone.code, gone.reason, gone.should_reconnect) == (1001, "server shutting down", True)
    assert hub.sessions == frozenset()
    assert broker.log == ["unsubscribed chat.lobby", "closed with 0 sessions"]


@pytest.mark.gen_test
async def test_requests_read_in_the_turn_the_shutdown_begins_get_their_time_too(gateway):
    client = await TestClient(gateway).connect()
    first = asyncio.ensure_future(client.call("lab", "sleep", {"seconds": 0.01, "tag": "first"}))
    second = asyncio.ensure_future(client.call("lab", "sleep", {"seconds": 0.2, "tag": "second"}))
    await asyncio.sleep(0)  # both sent in one turn: the first starts at once, the second on the next turn
    await gateway.hub.close(5)
    assert await first == {"tag": "first"} and await second == {"tag": "second"}


@pytest.mark.gen_test
async def test_a_restart_closes_with_1012_and_refuses_latecomers_with_it(gateway, broker):
    hub = gateway.hub
    client = await TestClient(gateway).connect()
    running = asyncio.ensure_future(client.call("lab", "sleep", {"seconds": 0.2, "tag": "in flight"}))
    await wait_until(lambda: client.session.tasks, 5)
    await hub.close(5, restart=True)
    assert await running == {"tag": "in flight"}
    gone = await ended(client)
    assert (gone.code, gone.reason, gone.should_reconnect) == (1012, "server restarting", True)
    with pytest.raises(ConnectionClosed) as late:
        await TestClient(gateway).connect()
    assert late.value.code == 1012


class Peer:
    """A peer of the test's own that answers the close frame ``answer_after`` seconds later, or never (None)."""

    request = None

    def __init__(self, answer_after: float | None) -> None:
        self.answer_after = answer_after
        self.state = PeerState.OPEN
        self.session: Session | None = None
        self.asked: list[tuple[int | None, str | None]] = []

    def send_frame(self, frame: Any) -> bool:
        return False

    async def drained(self) -> None:
        return None

    async def released(self) -> None:
        return None

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        self.asked.append((code, reason))
        self.state = PeerState.CLOSING
        if self.answer_after is not None:
            asyncio.get_running_loop().call_later(self.answer_after, self.gone)

    def gone(self) -> None:
        self.state = PeerState.CLOSED
        assert self.session is not None
        self.session.end()


def started(hub: Hub, peer: Peer) -> Session:
    """A session of ``hub`` over ``peer``, started."""
    session = peer.session = Session(hub, peer)
    session.start()
    return session


async def timed_close(hub: Hub, timeout: float = 0) -> float:
    """The seconds ``hub.close(timeout)`` takes."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    await hub.close(timeout)
    return loop.time() - start


@pytest.mark.gen_test
async def test_actions_still_running_at_the_deadline_are_cancelled_even_where_the_peer_never_leaves(
        gateway, monkeypatch, caplog):
    monkeypatch.setattr(hub_module, "CLOSE_HANDSHAKE_WAIT", 0.1)
    caplog.set_level(logging.WARNING, logger="drizzle_gateway")
    deaf = started(gateway.hub, Peer(answer_after=None))  # its session never ends, so never cancels on its own
    deaf.receive('{"request_id": 1, "resource": "lab", "action": "sleep", "data": {"seconds": 30, "tag": "t"}}')
    (task,) = deaf.tasks
    took = await timed_close(gateway.hub, timeout=0.05)
    assert took < 2  # the action's 30 s were not waited for
    assert task.cancelled()
    assert [r.getMessage() for r in caplog.records if r.name == "drizzle_gateway"] == [
        "shutdown: cancelling 1 actions still running after 0.05s"]
    deaf.end()


@pytest.mark.gen_test
async def test_close_waits_for_the_peers_to_answer_and_no_longer(gateway, broker):
    hub = gateway.hub
    slow = started(hub, Peer(answer_after=0.2))
    took = await timed_close(hub)
    assert 0.19 <= took < hub_module.CLOSE_HANDSHAKE_WAIT  # until the peer left, not the whole wait
    assert slow.peer.asked == [(1001, "server shutting down")]
    assert hub.sessions == frozenset() and broker.log == ["closed with 0 sessions"]


@pytest.mark.gen_test
async def test_a_peer_that_never_answers_is_waited_for_close_handshake_wait_then_the_broker_closes(
        gateway, broker, monkeypatch):
    monkeypatch.setattr(hub_module, "CLOSE_HANDSHAKE_WAIT", 0.3)
    hub = gateway.hub
    deaf = started(hub, Peer(answer_after=None))
    took = await timed_close(hub)
    assert 0.29 <= took < 2
    assert deaf.peer.asked == [(1001, "server shutting down")]
    assert hub.sessions == {deaf}  # it never left; the hub went on without it
    assert broker.log == ["closed with 1 sessions"]
    deaf.end()


class StuckBroker(MemoryBroker):
    """A memory broker whose close never returns."""

    async def close(self) -> None:
        await asyncio.Event().wait()


@pytest.mark.gen_test
@pytest.mark.parametrize("broker", [StuckBroker()])
async def test_a_broker_that_does_not_close_is_given_up_on_after_broker_close_wait(gateway, monkeypatch, caplog):
    monkeypatch.setattr(hub_module, "BROKER_CLOSE_WAIT", 0.2)
    caplog.set_level(logging.WARNING, logger="drizzle_gateway")
    took = await timed_close(gateway.hub)
    assert 0.19 <= took < 2
    assert [r.getMessage() for r in caplog.records if r.name == "drizzle_gateway"] == [
        "shutdown: the broker did not close within 0.2s"]
