"""The send path: frames built once, written in order, bounded per connection (slow consumers)."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import os
import socket
import struct

import pytest
import tornado.web
from marshmallow import Schema, fields
from tornado.websocket import websocket_connect

from drizzle_gateway import Topic
from drizzle_gateway.connection import Connection
from drizzle_gateway.protocol import CloseCode
from tests.support.resources import chat

MAX_PUBLISHED = 20_000  # ~20 MB in all, far more than the kernel's socket buffers hold
AFTER_CLOSE = 1000  # published once the stalled reader is closed, for the others to read on
BODY = "ünïcødé " * 120  # ~1 KB a message


class Bulk(Schema):
    seq = fields.Int(required=True)
    body = fields.Str(required=True)


bulk = Topic("bulk", Bulk)


class StalledSocket:
    """A websocket client that completes the handshake, subscribes, then stops reading."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""
        self.rate: float | None = None  # bytes a second `frames` reads at most (None: as fast as they come)

    @classmethod
    async def open(cls, port: int) -> StalledSocket:
        loop = asyncio.get_running_loop()
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        await loop.sock_sendall(sock, (
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        stalled = cls(sock)
        while b"\r\n\r\n" not in stalled.buffer:
            stalled.buffer += await loop.sock_recv(sock, 4096)
        head, _, stalled.buffer = stalled.buffer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        return stalled

    async def send(self, frame: dict) -> None:
        await self.send_all([frame])

    async def send_all(self, frames: list[dict]) -> None:
        """Send every frame in one write, as a client pipelining requests would."""
        data = b"".join(self._masked(json.dumps(frame).encode()) for frame in frames)
        await asyncio.get_running_loop().sock_sendall(self.sock, data)

    async def answer_close(self, payload: bytes) -> None:
        """Answer the server's close frame with its own code, as a client that reads it at last does."""
        await asyncio.get_running_loop().sock_sendall(self.sock, self._masked(payload[:2], opcode=0x8))

    @staticmethod
    def _masked(payload: bytes, opcode: int = 0x1) -> bytes:
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        if len(payload) < 126:
            return bytes((0x80 | opcode, 0x80 | len(payload))) + mask + masked
        return struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, len(payload)) + mask + masked

    async def frames(self):
        """Every frame the server sent, in order: (opcode, payload), up to its close frame or the socket's end.

        While ``rate`` is set, the socket is read in small chunks at that many bytes a second (a slow link).
        """
        loop = asyncio.get_running_loop()
        started, read = loop.time(), 0
        while True:
            frame = self._parse()
            if frame is not None:
                yield frame
                if frame[0] == 0x8:  # the server sends nothing after its close frame
                    return
                continue
            if self.rate is not None:
                await asyncio.sleep(max(0.0, started + read / self.rate - loop.time()))
            chunk = await asyncio.wait_for(loop.sock_recv(self.sock, 1 << 16 if self.rate is None else 4096), 15)
            if not chunk:
                return
            read += len(chunk)
            self.buffer += chunk

    def _parse(self) -> tuple[int, bytes] | None:
        data = self.buffer
        if len(data) < 2:
            return None
        opcode, size, offset = data[0] & 0x0F, data[1] & 0x7F, 2
        if size == 126:
            if len(data) < 4:
                return None
            size, offset = struct.unpack("!H", data[2:4])[0], 4
        elif size == 127:
            if len(data) < 10:
                return None
            size, offset = struct.unpack("!Q", data[2:10])[0], 10
        if len(data) < offset + size:
            return None
        self.buffer = data[offset + size:]
        return opcode, data[offset:offset + size]

    def port(self) -> int:
        return self.sock.getsockname()[1]


def server_side(gateway, port: int) -> Connection:
    """The gateway's connection object for the client socket bound to ``port``."""
    for connection in (session.transport for session in gateway.sessions):
        if connection.ws_connection is not None and connection.ws_connection.stream.socket.getpeername()[1] == port:
            return connection
    raise AssertionError(f"no server connection for client port {port}")


@pytest.mark.timeout(120)
@pytest.mark.gen_test(timeout=110)
async def test_slow_consumer_is_closed_and_others_get_every_message(gateway, connect, http_port, server_errors):
    gateway.limits = dataclasses.replace(gateway.limits, send_queue_bytes=256 * 1024, send_timeout=1.0)
    gateway.add_topic(bulk)
    reader = await connect()
    await reader.subscribe("bulk")
    stalled = await StalledSocket.open(http_port)
    await stalled.send({"request_id": 1, "action": "__subscribe__", "data": {"topic": "bulk"}})
    await asyncio.sleep(0.2)  # the subscription is in place; from now on this client never reads
    slow = server_side(gateway, stalled.port())
    fast = next(s.transport for s in gateway.sessions if s.transport is not slow)
    assert gateway.fanout.subscribers("bulk") == 2

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
    async with asyncio.timeout(5):  # the server lets go of the slow one
        while gateway.fanout.subscribers("bulk") != 1:
            await asyncio.sleep(0.01)
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
