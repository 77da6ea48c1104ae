"""`runtime.session.Session`: what one connection holds (subscriptions) and lets go, in process and on close."""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import logging
import time

import pytest

from drizzle_gateway import Gateway, Resource, action
from drizzle_gateway.client import RemoteError
from drizzle_gateway.runtime.fanout import View
from drizzle_gateway.runtime.limits import Limits
from drizzle_gateway.runtime.pacing import COSTLY_STEP
from drizzle_gateway.runtime.session import Session
from tests.support.polling import wait_until
from tests.support.serve_app import make_gateway as make_test_gateway

MESSAGE = {"author": {"name": "ada"}, "text": "hello"}


@pytest.mark.gen_test
@pytest.mark.gateway_options(limits=Limits(max_subscriptions=2))
async def test_subscriptions_per_connection_are_capped(test_client):
    client = await test_client()
    await client.subscribe("chat.a")
    await client.subscribe("chat.b")
    await client.subscribe("chat.a")  # again: still two
    with pytest.raises(RemoteError) as refused:
        await client.subscribe("chat.c")
    assert refused.value.code == "LIMIT_EXCEEDED"
    assert refused.value.details == {"limit": "max_subscriptions", "max": 2}
    await client.unsubscribe("chat.a")
    assert await client.subscribe("chat.c") == {"topic": "chat.c"}


async def assert_closing_drops_subscriptions(gateway, open_client) -> None:
    """A client that closes leaves its channels; the others still hear them."""
    client, other = await open_client(), await open_client()
    await client.subscribe("alerts")
    await client.subscribe("chat.a")
    await other.subscribe("alerts")
    assert gateway.hub.fanout.subscribers("alerts") == 2
    await client.close()
    # a socket's close reaches the server a little later
    await wait_until(lambda: gateway.hub.fanout.subscribers("alerts") == 1, 2)
    assert gateway.hub.fanout.subscribers("chat.a") == 0
    await gateway.publish("alerts", MESSAGE)
    assert (await other.next_event(2)).data == MESSAGE


@pytest.mark.gen_test
async def test_closing_a_connection_removes_its_subscriptions(gateway, test_client):
    await assert_closing_drops_subscriptions(gateway, test_client)


# -- over a real socket: the websocket's close ends the session ------------------------------------


@pytest.mark.gen_test
async def test_a_closed_socket_leaves_its_channels(gateway, connect):
    await assert_closing_drops_subscriptions(gateway, connect)


# -- when replies go out ----------------------------------------------------------------------------


class RecordingTransport:
    """A transport that keeps the frames it is given, in order."""

    request = None

    def __init__(self) -> None:
        self.frames: list[str] = []

    def send_frame(self, frame) -> bool:
        self.frames.append(frame)
        return False

    async def drained(self) -> None:
        return None

    def close(self, code=None, reason=None) -> None:
        self.frames.append(f"closed {code}")


@pytest.mark.gen_test
@pytest.mark.gateway_options(limits=Limits(cpu_share=None))  # a slow first step (a busy machine) is not paced here
async def test_a_request_that_never_waits_is_answered_before_the_next_frame_is_read(gateway):
    transport = RecordingTransport()
    session = Session(gateway.hub, transport)
    session.start()
    try:
        assert session.receive('{"request_id": 1, "resource": "lab", "action": "plain"}') is None
        assert transport.frames == ['{"request_id":1,"data":{"kind":"plain","data":null}}']
        assert session.tasks == frozenset()  # nothing left running
        # One that waits answers later, from its own task.
        assert session.receive('{"request_id": 2, "resource": "lab", "action": "sleep", '
                               '"data": {"seconds": 0.01, "tag": "t"}}') is None
        await asyncio.sleep(0)  # a second request of the turn starts on the next
        assert len(transport.frames) == 1 and len(session.tasks) == 1
        await asyncio.wait_for(asyncio.gather(*session.tasks), 5)
        assert transport.frames[1] == '{"request_id":2,"data":{"tag":"t"}}'
    finally:
        session.end()


class BrokenTransport(RecordingTransport):
    """A transport whose send fails: the request ends with that error, in its first step."""

    def send_frame(self, frame) -> bool:
        raise ValueError("the transport broke")


@pytest.mark.gateway_options(limits=Limits(cpu_share=None))  # a slow first step (a busy machine) is not paced here
def test_a_request_failing_in_its_first_step_leaves_no_cyclic_garbage(gateway, caplog):
    async def garbage_after_failed_request() -> int:
        session = Session(gateway.hub, BrokenTransport())
        session.start()
        gc.collect()
        gc.disable()
        try:
            assert session.receive('{"request_id": 1, "resource": "lab", "action": "plain"}') is None
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            assert session.tasks == frozenset()
            return gc.collect()
        finally:
            gc.enable()
            session.end()

    with caplog.at_level(logging.ERROR):
        assert asyncio.run(garbage_after_failed_request()) == 0  # freed by reference counting alone
    (failure,) = [r for r in caplog.records if "failed in its first step" in r.getMessage()]
    assert isinstance(failure.exc_info[1], ValueError)  # reported, as an unretrieved task error would be


# -- pacing: a costly request pauses its connection (limits.cpu_share) ------------------------------

COSTLY_FRAME = json.dumps({"request_id": 1, "resource": "todos", "action": "create",
                           "data": {"title": "t", "tags": [1] * (Limits().max_items - 1)}})
"""A request whose items all fail validation: several ms of the loop, over `pacing.COSTLY_STEP`."""


@pytest.mark.gen_test
async def test_a_costly_request_pauses_its_connection_for_three_times_its_cost(gateway):
    transport = RecordingTransport()
    session = Session(gateway.hub, transport)
    session.start()
    loop = asyncio.get_running_loop()
    try:
        began = loop.time()
        paused = session.receive(COSTLY_FRAME)
        spent = loop.time() - began  # at least what the pacer charged: intake and first step
        assert spent > COSTLY_STEP
        assert json.loads(transport.frames[0])["code"] == "INVALID_DATA"  # answered at once, then paused
        assert paused is not None and not paused.done()
        # A frame read meanwhile is not started before the pause ends: three times the cost (cpu_share 1/4).
        resume_at = session.pacer.resume_at
        assert began + 3 * COSTLY_STEP < resume_at <= began + 4 * spent
        await asyncio.wait_for(paused, 5)
        assert loop.time() >= resume_at
        assert session.receive('{"request_id": 2, "resource": "lab", "action": "plain"}') is None
        assert json.loads(transport.frames[1]) == {"request_id": 2, "data": {"kind": "plain", "data": None}}
    finally:
        session.end()


class CostlyThenSlow(Resource):
    """An action whose first step holds the loop past `COSTLY_STEP`, then waits: paced, and in flight a while."""

    name = "costly"

    @action()
    async def run(self, data):
        state = self.gateway.state
        state["running"] = state.get("running", 0) + 1
        state["most"] = max(state.get("most", 0), state["running"])
        until = time.perf_counter() + 2 * COSTLY_STEP
        while time.perf_counter() < until:
            pass
        try:
            await asyncio.sleep(0.15)
        finally:
            state["running"] -= 1
        return None


@pytest.mark.gen_test(timeout=20)
async def test_costly_requests_that_wait_are_held_at_max_in_flight_as_well_as_paced():
    gateway = Gateway([CostlyThenSlow], limits=Limits(rate=None, max_in_flight=2))
    transport = RecordingTransport()
    session = Session(gateway.hub, transport)
    session.start()
    try:
        for n in range(6):  # read as a connection's reader would: each time the session lets it
            held = session.receive(json.dumps({"request_id": n, "resource": "costly", "action": "run"}))
            if held is not None:
                await asyncio.wait_for(held, 5)
        await wait_until(lambda: len(transport.frames) == 6, 5)
    finally:
        session.end()
    assert gateway.state["most"] == 2  # a pause after each costly step did not let a third one in


class SlowMember(RecordingTransport):
    """A subscriber that takes ``seconds`` to be handed each event, as thousands of members together would."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def send_frame(self, frame) -> bool:
        time.sleep(self.seconds)  # the loop is held, as a long delivery holds it
        return super().send_frame(frame)

    async def released(self) -> None:
        return None


@pytest.mark.gen_test
async def test_handing_a_publish_to_its_subscribers_is_not_charged_to_the_publisher(gateway):
    transport = RecordingTransport()
    session = Session(gateway.hub, transport)
    session.start()
    member = SlowMember(4 * COSTLY_STEP)
    try:
        def publish(request_id: int) -> asyncio.Future | None:
            return session.receive(json.dumps({"request_id": request_id, "action": "__publish__",
                                               "data": {"topic": "chat.a", "payload": MESSAGE}}))

        warm = publish(1)  # the first use of the topic's schemas compiles them: that step may be costly
        if warm is not None:
            await asyncio.wait_for(warm, 5)
        await asyncio.sleep(0)  # a new loop turn: the next request is its first, started at once (FirstOfTurn)
        await gateway.hub.fanout.add(member, "chat.a", View(gateway.hub.dialect, None))
        assert publish(2) is None  # answered in its first step, and not paused
        assert [json.loads(frame)["request_id"] for frame in transport.frames] == [1, 2]
        assert len(member.frames) == 1  # the delivery held the loop for 4 x COSTLY_STEP ...
        assert not session.pacer.paused()  # ... which the publisher is not charged for
    finally:
        session.end()
        gateway.hub.fanout.discard(member, "chat.a")


@pytest.mark.gen_test
async def test_a_frame_read_while_paused_starts_when_the_pause_ends(gateway):
    transport = RecordingTransport()
    session = Session(gateway.hub, transport)
    session.start()
    loop = asyncio.get_running_loop()
    try:
        session.pacer.charge(0.02)  # as a 20 ms request would: paused for 60 ms
        resume_at = session.pacer.resume_at
        waiting = session.receive('{"request_id": 1, "resource": "lab", "action": "plain"}')
        assert waiting is not None and transport.frames == []  # read, not started
        await asyncio.wait_for(waiting, 5)
        assert loop.time() >= resume_at
        assert json.loads(transport.frames[0])["request_id"] == 1
    finally:
        session.end()


@pytest.mark.gen_test
async def test_cheap_requests_never_pause_and_cpu_share_none_never_does(gateway):
    transport = RecordingTransport()
    session = Session(gateway.hub, transport)
    session.start()
    ticks = itertools.count()
    session.pacer.clock = lambda: next(ticks) * 50e-6  # each step 50 µs: cheap, whatever else the machine runs
    try:
        for request_id in range(200):  # cheap: never charged
            session.receive(json.dumps({"request_id": request_id, "resource": "lab", "action": "plain"}))
        await wait_until(lambda: len(transport.frames) == 200, 5)  # the first ran at once, the others as tasks
        assert sorted(json.loads(frame)["request_id"] for frame in transport.frames) == list(range(200))
        assert session.pacer.resume_at == float("-inf")
    finally:
        session.end()
    unpaced = Session(make_test_gateway(limits=Limits(cpu_share=None)).hub, RecordingTransport())
    unpaced.start()
    try:
        assert unpaced.receive(COSTLY_FRAME) is None
    finally:
        unpaced.end()
