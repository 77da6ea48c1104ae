"""The send path: frames built once, written in order, bounded per connection (slow consumers)."""

from __future__ import annotations

import asyncio
import json
import struct

import pytest
import tornado.web
from marshmallow import Schema, fields
from tornado.websocket import websocket_connect

from drizzle_gateway import Limits, Topic
from drizzle_gateway.runtime.session import Session
from drizzle_gateway.transport.connection import Connection
from drizzle_gateway.transport.outbox import Outbox
from drizzle_gateway.wire.dialect import CloseCode
from tests.support.polling import wait_until
from tests.support.resources import chat
from tests.support.selects import watching
from tests.support.stalled_socket import StalledSocket, server_side

MAX_PUBLISHED = 20_000  # ~20 MB in all, far more than the kernel's socket buffers hold
AFTER_CLOSE = 1000  # published once the stalled reader is closed, for the others to read on
BODY = "ünïcødé " * 120  # ~1 KB a message


class Bulk(Schema):
    seq = fields.Int(required=True)
    body = fields.Str(required=True)


bulk = Topic("bulk", Bulk)


@pytest.mark.timeout(120)
@pytest.mark.gen_test(timeout=110)
@pytest.mark.gateway_options(limits=Limits(send_queue_bytes=256 * 1024, send_timeout=1.0))
async def test_slow_consumer_is_closed_and_others_get_every_message(gateway, connect, http_port, server_errors):
    gateway.add_topic(bulk)
    reader = await connect()
    await reader.subscribe("bulk")
    stalled = await StalledSocket.open(http_port)
    await stalled.send({"request_id": 1, "action": "__subscribe__", "data": {"topic": "bulk"}})
    # subscribed and answered (the request's task is done): from now on this client never reads
    await wait_until(lambda: gateway.hub.fanout.subscribers("bulk") == 2
                     and not any(session.tasks for session in gateway.hub.sessions), 5)
    slow = server_side(gateway, stalled.port())
    fast = next(s.peer for s in gateway.hub.sessions if s.peer is not slow)
    assert gateway.hub.fanout.subscribers("bulk") == 2

    async def read_after_close() -> list[tuple[int, bytes]]:
        return [frame async for frame in stalled.frames()]

    peak, reading, seq, closed_at = 0, None, 0, None
    while closed_at is None or seq < closed_at + AFTER_CLOSE:
        assert seq < MAX_PUBLISHED, "the stalled reader was never closed"
        await gateway.publish(bulk, {"seq": seq, "body": BODY})
        peak = max(peak, slow.outbox.queued_bytes)
        if slow.outbox.closed and closed_at is None:  # closed: now read, to see the close code within its grace time
            closed_at, reading = seq, asyncio.ensure_future(read_after_close())
        if seq % 20 == 19:  # publish no faster than the well-behaved reader reads
            await asyncio.sleep(0)
            while fast.outbox.queued_bytes > 64 * 1024:
                await asyncio.sleep(0.001)
        seq += 1
    published = seq

    received = [await reader.next_event() for _ in range(published)]
    assert [event.data["seq"] for event in received] == list(range(published))
    assert all(event.data["body"] == BODY for event in received)
    assert peak <= gateway.limits.queue_cap  # past its hold its queue grows, never beyond the cap
    assert await reader.ping() == "pong"  # the well-behaved client is still served

    frames = await reading
    close = [payload for opcode, payload in frames if opcode == 0x8]
    assert close and struct.unpack("!H", close[0][:2])[0] == CloseCode.SLOW_CONSUMER == 4008
    events = [json.loads(payload) for opcode, payload in frames if opcode == 0x1][1:]  # after the reply
    assert len(events) <= closed_at + 1 < published  # none published after the close reached it
    assert [e["data"]["seq"] for e in events] == list(range(len(events)))  # what did arrive is in order
    await stalled.answer_close(close[0])
    await wait_until(lambda: gateway.hub.fanout.subscribers("bulk") == 1, 5)  # the server lets go of the slow one
    assert not server_errors()


@pytest.mark.gen_test
async def test_frames_of_every_length_and_text_arrive_intact(connect):
    client = await connect()
    for size in (0, 1, 100, 125, 126, 1000, 65535, 65536, 200_000):
        text = ("é€😀a" * (size // 4 + 1))[:size]
        assert await client.call("lab", "plain", {"text": text}) == {"kind": "plain", "data": {"text": text}}


@pytest.mark.gen_test
async def test_replies_and_events_keep_their_order(connect):
    client = await connect()
    await client.subscribe("chat.lobby")
    message = {"author": {"name": "bo"}, "text": "hi"}
    replies = await asyncio.gather(*(
        client.call("lab", "announce", {"room": "lobby", "message": {**message, "seq": i}}) for i in range(30)))
    assert replies == [{"sent": True}] * 30
    assert [(await client.next_event()).data["seq"] for _ in range(30)] == list(range(30))


class CompressedConnection(Connection):
    def get_compression_options(self):
        return {}


@pytest.fixture
def app(request, gateway):
    if "compressed" in request.node.name:
        return tornado.web.Application([("/ws", CompressedConnection, {"gateway": gateway})])
    return tornado.web.Application(gateway.routes())


@pytest.mark.gen_test
async def test_compressed_connections_get_events_and_replies(gateway, ws_url):
    ws = await websocket_connect(ws_url, compression_options={})
    assert ws.protocol._compressor is not None  # per-message deflate was negotiated
    await ws.write_message(json.dumps({"request_id": 1, "action": "__subscribe__", "data": {"topic": "chat.x"}}))
    assert json.loads(await ws.read_message()) == {"request_id": 1, "data": {"topic": "chat.x"}}
    await gateway.publish(chat, {"author": {"name": "ñ"}, "text": "zip " * 20}, room="x")
    assert json.loads(await ws.read_message())["data"]["author"] == {"name": "ñ"}
    ws.close()


@pytest.mark.gen_test
async def test_frames_queued_before_a_server_close_go_out_first(gateway, raw):
    ws = await raw()
    assert (await ws.ask({"request_id": 1, "action": "__subscribe__", "data": {"topic": "chat.z"}}))["data"]
    for seq in range(3):
        await gateway.publish(chat, {"author": {"name": "a"}, "text": "t", "seq": seq}, room="z")

    async def read_to_the_close() -> list[int]:  # reading as it comes, the client answers the close at once
        seqs = [(await ws.recv())["data"]["seq"] for _ in range(3)]
        assert await ws.ws.read_message() is None and ws.ws.close_code == 1001
        return seqs

    reading = asyncio.ensure_future(read_to_the_close())
    await gateway.close()  # same loop turn: the three events are still queued
    assert await reading == [0, 1, 2]


@pytest.mark.gen_test
async def test_pipelined_replies_go_out_in_one_write(http_server, http_port, monkeypatch):
    sock = await StalledSocket.open(http_port)
    writes: list[bytes] = []
    wrote = Outbox._write

    def counted(outbox: Outbox, data: bytes):
        writes.append(bytes(data))
        return wrote(outbox, data)

    monkeypatch.setattr(Outbox, "_write", counted)
    await sock.send_all([{"request_id": n, "resource": "lab", "action": "plain"} for n in range(8)])  # one write
    frames = sock.frames()
    assert [json.loads((await anext(frames))[1])["request_id"] for _ in range(8)] == list(range(8))
    # Read together, answered together: the first reply too waits for the seven read with it.
    assert len(writes) == 1, [len(data) for data in writes]
    sock.sock.close()


@pytest.fixture
def turns(io_loop):
    with watching(io_loop.asyncio_loop) as selects:
        yield selects


@pytest.fixture
def turn_of_reads_and_writes(monkeypatch, turns):
    """The turn (`Selects.count`) each request frame was read in, and each write of replies was made in, by socket."""
    reads: dict[int, list[int]] = {}
    writes: dict[int, list[int]] = {}
    receive, wrote = Session.receive, Outbox._write

    def received(session: Session, message, more=False):
        reads.setdefault(id(session.peer), []).append(turns.count)
        return receive(session, message, more)

    def counted(outbox: Outbox, data: bytes):
        writes.setdefault(id(outbox.handler), []).append(turns.count)
        return wrote(outbox, data)

    monkeypatch.setattr(Session, "receive", received)
    monkeypatch.setattr(Outbox, "_write", counted)
    return reads, writes


async def pipelined_round(sockets: list[StalledSocket], round_: int) -> None:
    """Each socket sends 8 requests in one write, all before any is read; then reads its 8 replies."""
    ids = [round_ * 8 + n for n in range(8)]
    for sock in sockets:
        await sock.send_all([{"request_id": n, "resource": "lab", "action": "plain"} for n in ids])
    for sock in sockets:
        frames = sock.frames()
        assert [json.loads((await anext(frames))[1])["request_id"] for _ in ids] == ids


@pytest.mark.gen_test
async def test_a_client_alone_has_its_pipelined_replies_written_in_the_turn_that_read_them(
        gateway, http_server, http_port, turn_of_reads_and_writes):
    reads, writes = turn_of_reads_and_writes
    sock = await StalledSocket.open(http_port)
    await pipelined_round([sock], 0)
    assert len(reads) == 1 and reads.keys() == writes.keys()
    (read,), (wrote,) = reads.values(), writes.values()
    assert len(set(read)) == 1 and len(wrote) == 1  # one chunk, one write
    assert wrote[0] > read[0]  # its first busy turn: the batch waited for the next turn, the write for its flush
    await pipelined_round([sock], 1)
    assert len(set(read[8:])) == 1 and len(wrote) == 2
    assert wrote[1] == read[8]  # the last busy turn was its alone: answered in the turn that read them
    sock.sock.close()


@pytest.mark.gen_test
async def test_clients_busy_together_have_their_pipelined_replies_written_a_turn_later(
        gateway, http_server, http_port, turn_of_reads_and_writes):
    reads, writes = turn_of_reads_and_writes
    sockets = [await StalledSocket.open(http_port), await StalledSocket.open(http_port)]
    for round_ in range(3):
        await pipelined_round(sockets, round_)
    assert len(reads) == 2 and reads.keys() == writes.keys()
    for peer, read in reads.items():
        wrote = writes[peer]
        assert len(read) == 24 and len(wrote) == 3  # each round: one chunk, one write, on each socket
        for round_ in range(3):
            assert wrote[round_] > read[round_ * 8]  # with the other client's, on the next turn
    assert len({turn for read in reads.values() for turn in read}) == 3  # both were read in each round's turn
    for sock in sockets:
        sock.sock.close()


@pytest.mark.timeout(60)
@pytest.mark.gen_test(timeout=50)
@pytest.mark.gateway_options(limits=Limits(send_queue_bytes=64 * 1024, send_timeout=3.0, publish_wait=0.05))
async def test_a_congested_reader_that_reads_again_is_relieved_and_gets_every_event(gateway, http_server, http_port):
    """What waited in the outbox goes out once the peer reads; a socket that takes it whole relieves the peer."""
    gateway.add_topic(bulk)
    stalled = await StalledSocket.open(http_port)
    await stalled.send({"request_id": 1, "action": "__subscribe__", "data": {"topic": "bulk"}})
    await wait_until(lambda: gateway.hub.fanout.subscribers("bulk") == 1
                     and not any(session.tasks for session in gateway.hub.sessions), 5)
    slow = server_side(gateway, stalled.port())
    seq = 0
    while not slow.outbox.congested:  # the kernel's buffers fill first, then the stream's
        assert seq < MAX_PUBLISHED, "the stalled reader never congested"
        await gateway.publish(bulk, {"seq": seq, "body": BODY})
        seq += 1
    for _ in range(100):  # about 100 KB more waits in the outbox, past the hold
        await gateway.publish(bulk, {"seq": seq, "body": BODY})
        seq += 1
    assert slow.outbox.congested and slow.outbox.queued_bytes > slow.outbox.low

    events: list[int] = []

    async def read() -> None:
        async for opcode, payload in stalled.frames():
            message = json.loads(payload)
            if opcode == 0x1 and "topic" in message:
                events.append(message["data"]["seq"])
                if len(events) == seq:
                    return

    await asyncio.wait_for(read(), 20)
    assert events == list(range(seq))
    await wait_until(lambda: not slow.outbox.congested, 2)  # well within send_timeout: relieved, not closed
    assert not slow.outbox.closed
