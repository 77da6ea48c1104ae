"""Streaming replies (`streams.relay`): items as reply frames with ``"more": true``, one end frame, over real sockets.

The generators of tests/support/streaming.py report to the gateway's
`Probe`: how many items they produced and whether their ``finally`` ran.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from drizzle_gateway import Limits
from drizzle_gateway.runtime.streams import Streams
from drizzle_gateway.testing import TestClient
from tests.support.polling import wait_until
from tests.support.procstat import rss_bytes
from tests.support.stalled_socket import StalledSocket, server_side
from tests.support.streaming import make_stream_gateway


@pytest.fixture
def gateway(gateway_options):
    return make_stream_gateway(**gateway_options)


def count(request_id, fields=None, **data) -> dict:
    frame = {"request_id": request_id, "resource": "feed", "action": "count", "data": data}
    if fields is not None:
        frame["fields"] = fields
    return frame


def cancel(request_id, stream_id) -> dict:
    return {"request_id": request_id, "action": "__cancel__", "data": {"request_id": stream_id}}


async def frames_until_end(sock, request_id) -> list[dict]:
    """The frames of ``request_id`` up to its end frame or error frame (other frames are kept too)."""
    frames = []
    while True:
        frame = await asyncio.wait_for(sock.recv(), 10)
        frames.append(frame)
        if frame.get("request_id") == request_id and (frame.get("more") is False or "code" in frame):
            return frames


# -- the frames --------------------------------------------------------------------


@pytest.mark.gen_test(timeout=20)
async def test_each_item_is_the_reply_a_one_shot_call_would_carry_then_one_end_frame(raw, gateway):
    sock = await raw()
    fields = ["n", "tag.name"]
    await sock.send(count(1, fields, upto=3, body="b"))
    frames = await frames_until_end(sock, 1)
    one_shot = [await sock.ask({**count(10 + n, fields, upto=n, body="b"), "action": "one"}) for n in range(3)]
    assert frames == [{"request_id": 1, "data": reply["data"], "more": True} for reply in one_shot] \
        + [{"request_id": 1, "more": False}]
    assert frames[0]["data"] == {"n": 0, "tag": {"name": "t0"}}
    assert gateway.state["probe"].closed == 1


@pytest.mark.gen_test(timeout=20)
async def test_the_frames_are_written_as_documented(gateway, http_server, http_port):
    sock = await StalledSocket.open(http_port)
    await sock.send(count(7, ["n"], upto=2))
    texts = []
    async for _opcode, payload in sock.frames():
        texts.append(payload)
        if len(texts) == 3:
            break
    sock.sock.close()
    assert texts == [b'{"request_id":7,"data":{"n":0},"more":true}', b'{"request_id":7,"data":{"n":1},"more":true}',
                     b'{"request_id":7,"more":false}']


@pytest.mark.gen_test(timeout=20)
async def test_a_stream_with_no_items_sends_only_its_end(raw):
    sock = await raw()
    assert await sock.ask(count("e", upto=0)) == {"request_id": "e", "more": False}


@pytest.mark.gen_test(timeout=20)
async def test_a_stream_that_ends_in_its_first_step_leaves_no_deadline_behind(gateway):
    async with TestClient(gateway) as client:
        items = [item async for item in client.stream("feed", "count", {"upto": 3})]
        assert [item["n"] for item in items] == [0, 1, 2]
        assert not gateway.hub.deadlines.watching  # else it would cancel whatever task runs requests then


@pytest.mark.gen_test(timeout=20)
async def test_bad_fields_or_data_are_refused_before_the_generator_starts(raw, gateway):
    sock = await raw()
    assert (await sock.ask(count(1, ["colour"], upto=3)))["code"] == "INVALID_FIELDS"
    assert (await sock.ask({**count(2), "data": {"upto": "many"}}))["code"] == "INVALID_DATA"
    assert gateway.state["probe"].produced == 0


# -- ending early ------------------------------------------------------------------


@pytest.mark.gen_test(timeout=20)
async def test_an_action_error_ends_the_stream_after_the_items_already_sent(raw, gateway):
    sock = await raw()
    await sock.send(count(1, ["n"], upto=5, fail_at=2))
    assert await frames_until_end(sock, 1) == [
        {"request_id": 1, "data": {"n": 0}, "more": True}, {"request_id": 1, "data": {"n": 1}, "more": True},
        {"request_id": 1, "code": "NOT_FOUND", "error": "no item 2", "details": {"n": 2}}]
    assert gateway.state["probe"].closed == 1


@pytest.mark.gen_test(timeout=20)
async def test_an_item_that_cannot_be_dumped_ends_the_stream_internal_error_and_closes_the_generator(
        raw, gateway, server_errors):
    sock = await raw()
    await sock.send(count(1, ["n"], upto=5, bad_at=1))
    frames = await frames_until_end(sock, 1)
    assert frames == [{"request_id": 1, "data": {"n": 0}, "more": True},
                      {"request_id": 1, "code": "INTERNAL_ERROR",
                       "error": "internal error; the server log has the details"}]
    assert gateway.state["probe"].closed == 1
    assert [record.getMessage() for record in server_errors()] == ["request 1 (feed.count) failed"]


@pytest.mark.gen_test(timeout=20)
async def test_cancel_closes_the_generator_and_its_end_frame_comes_before_the_cancel_reply(raw, gateway):
    probe = gateway.state["probe"]
    sock = await raw()
    await sock.send(count(1, ["n"], upto=10, hold_at=2))
    assert [await sock.recv() for _ in range(2)] == [{"request_id": 1, "data": {"n": n}, "more": True}
                                                     for n in range(2)]
    await wait_until(lambda: probe.produced == 2, 5)
    await sock.send(cancel(2, 1))
    assert [await sock.recv() for _ in range(2)] == [
        {"request_id": 1, "more": False}, {"request_id": 2, "data": {"request_id": 1, "cancelled": True}}]
    assert (probe.produced, probe.closed) == (2, 1)
    # nothing of the stream is left to cancel, and a later request is answered at once
    assert await sock.ask(cancel(3, 1)) == {"request_id": 3, "data": {"request_id": 1, "cancelled": False}}
    assert await sock.ask(cancel(4, "never")) == {"request_id": 4, "data": {"request_id": "never", "cancelled": False}}


@pytest.mark.gen_test(timeout=20)
async def test_cancel_takes_a_string_or_an_integer(raw):
    sock = await raw()
    for bad in (None, 1.5, True, [1]):
        refused = await sock.ask({"request_id": 1, "action": "__cancel__", "data": {"request_id": bad}})
        assert refused["code"] == "INVALID_DATA", bad


@pytest.mark.gen_test(timeout=20)
async def test_a_generator_that_swallows_the_cancel_is_still_stopped_and_closed(raw, gateway):
    probe = gateway.state["probe"]
    sock = await raw()
    await sock.send({**count(1, upto=5), "action": "stubborn"})
    await wait_until(lambda: gateway.hub.sessions and len(next(iter(gateway.hub.sessions)).streams) == 1, 5)
    await sock.send(cancel(2, 1))
    assert [await sock.recv() for _ in range(2)] == [
        {"request_id": 1, "more": False}, {"request_id": 2, "data": {"request_id": 1, "cancelled": True}}]
    assert (probe.produced, probe.closed) == (1, 1)  # the item it yielded after the cancel was not sent


@pytest.mark.gen_test(timeout=20)
async def test_a_request_id_of_a_running_stream_is_refused_for_another_stream(raw, gateway):
    sock = await raw()
    await sock.send(count(1, ["n"], upto=5, hold_at=0))
    await wait_until(lambda: gateway.hub.sessions and len(next(iter(gateway.hub.sessions)).streams) == 1, 5)
    refused = await sock.ask(count(1, ["n"], upto=5))
    assert refused == {"request_id": 1, "code": "VALIDATION_ERROR",
                       "error": "request_id 1 already names a running stream on this connection"}
    gateway.state["probe"].release.set()
    assert len(await frames_until_end(sock, 1)) == 6


@pytest.mark.gen_test(timeout=20)
async def test_closing_the_connection_closes_the_generator(raw, gateway):
    probe = gateway.state["probe"]
    sock = await raw()
    await sock.send(count(1, upto=5, hold_at=1))
    await sock.recv()
    sock.ws.close()
    await wait_until(lambda: probe.closed == 1, 5)
    assert probe.produced == 1


# -- time and slots ----------------------------------------------------------------


@pytest.mark.gen_test(timeout=20)
@pytest.mark.gateway_options(limits=Limits(rate=None, action_timeout=0.3))
async def test_action_timeout_bounds_the_wait_for_each_item_not_the_whole_stream(raw, gateway):
    sock = await raw()
    loop = asyncio.get_running_loop()
    started = loop.time()
    await sock.send(count(1, ["n"], upto=6, gap=0.1))  # 0.5 s in all, 0.1 s between items
    frames = await frames_until_end(sock, 1)
    assert loop.time() - started > 0.3
    assert frames[-1] == {"request_id": 1, "more": False} and len(frames) == 7
    await sock.send(count(2, ["n"], upto=6, gap=0.1, hold_at=3))  # three items, then it waits for good
    assert await frames_until_end(sock, 2) == [
        *({"request_id": 2, "data": {"n": n}, "more": True} for n in range(3)),
        {"request_id": 2, "code": "TIMEOUT", "error": "the stream sent no item for 0.3s and was cancelled",
         "details": {"timeout": 0.3}}]
    assert gateway.state["probe"].closed == 2


@pytest.mark.gen_test(timeout=20)
@pytest.mark.gateway_options(limits=Limits(rate=None, max_in_flight=2))
async def test_a_stream_holds_one_in_flight_slot_until_it_ends(gateway):
    probe = gateway.state["probe"]
    async with TestClient(gateway) as client:
        await client._send(json.dumps(count(1, upto=3, hold_at=1)))
        await client._send(json.dumps(count(2, upto=3, hold_at=1)))
        session = client.session
        await wait_until(lambda: len(session.streams) == 2, 5)
        assert len(session.tasks) == 2
        assert client._reading is not None and not client._reading.done()  # reading is held: both slots taken
        probe.release.set()
        await wait_until(lambda: client._reading.done(), 5)
        await wait_until(lambda: not session.tasks, 5)
        assert probe.closed == 2


@pytest.mark.gen_test(timeout=20)
@pytest.mark.gateway_options(limits=Limits(rate=None, shutdown_timeout=10.0))
async def test_shutdown_closes_running_generators_and_ends_their_streams_shutting_down(raw, gateway):
    probe = gateway.state["probe"]
    sock = await raw()
    await sock.send(count(1, ["n"], upto=5, hold_at=1))
    assert await sock.recv() == {"request_id": 1, "data": {"n": 0}, "more": True}
    loop = asyncio.get_running_loop()
    started = loop.time()
    await gateway.close()
    assert loop.time() - started < 5  # not the 10 s shutdown_timeout: the stream was ended at once
    assert await sock.recv() == {"request_id": 1, "code": "SHUTTING_DOWN",
                                 "error": "server is shutting down; reconnect"}
    assert probe.closed == 1


# -- flow control ------------------------------------------------------------------

ITEMS = 100_000


@pytest.mark.gen_test(timeout=120)
@pytest.mark.gateway_options(limits=Limits(rate=None, send_queue_bytes=64 * 1024, send_timeout=None,
                                           ping_interval=None))
async def test_a_reader_that_stalls_pauses_the_generator_and_gets_every_item_once_in_order_when_it_reads(
        gateway, http_server, http_port):
    probe = gateway.state["probe"]
    sock = await StalledSocket.open(http_port)
    peer = server_side(gateway, sock.port())  # its outbox is made with its first frame
    probe.watch = lambda: peer.outbox.queued_bytes if peer.outbox is not None else 0
    before = rss_bytes()
    await sock.send(count(1, ["n", "body"], upto=ITEMS, body="x" * 300))
    await wait_until(lambda: peer.outbox is not None and peer.outbox.congested, 30)
    paused_at = probe.produced
    stalled_until = asyncio.get_running_loop().time() + 1.0
    await wait_until(lambda: asyncio.get_running_loop().time() >= stalled_until or probe.produced > paused_at + 1, 5)
    grown = rss_bytes() - before
    assert probe.produced <= paused_at + 1, "the generator went on while the reader stalled"
    assert probe.produced < ITEMS // 10
    assert probe.most_waiting <= 64 * 1024 + 400  # the high-water mark plus one item
    assert grown < 8 * 1024 * 1024
    print(f"stalled: {probe.produced} of {ITEMS} items produced, at most {probe.most_waiting} bytes waiting, "
          f"RSS grew {grown / 1024:.0f} KiB")
    seen = []
    async for _opcode, payload in sock.frames():
        frame = json.loads(payload)
        if frame.get("more") is not True:
            assert frame == {"request_id": 1, "more": False}
            break
        seen.append(frame["data"]["n"])
    sock.sock.close()
    assert seen == list(range(ITEMS))
    assert probe.closed == 1


def test_streams_refuse_a_second_stream_under_one_request_id():
    streams = Streams()
    loop = asyncio.new_event_loop()
    try:
        task = loop.create_task(asyncio.sleep(0))
        streams.open(1, task)
        with pytest.raises(Exception, match="already names a running stream"):
            streams.open(1, task)
        streams.closed(1)
        streams.open(1, task)
        assert len(streams) == 1
        loop.run_until_complete(task)
    finally:
        loop.close()
