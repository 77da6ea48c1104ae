"""A websocket client that stops reading, and the gateway's side of its connection.

`StalledSocket` completes the handshake over a socket with a small receive
buffer and reads only when told (`frames`, optionally at a slow link's
rate), so the server's send queue for it fills; `server_side` finds the
gateway's `Connection` for it; `pipelined` sends many requests in one write.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct

from drizzle_gateway.transport.connection import Connection


class StalledSocket:
    """A websocket client that completes the handshake, subscribes, then stops reading."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""
        self.rate: float | None = None  # bytes a second `frames` reads at most (None: as fast as they come)

    @classmethod
    async def open(cls, port: int) -> StalledSocket:
        """Connect to 127.0.0.1:``port`` with a 4 KiB receive buffer and complete the websocket handshake."""
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
        """Send one request frame."""
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
        """The client's local port (how `server_side` finds its connection)."""
        return self.sock.getsockname()[1]


def server_side(gateway, port: int) -> Connection:
    """The gateway's connection object for the client socket bound to ``port``."""
    for connection in (session.peer for session in gateway.hub.sessions):
        if connection.ws_connection is not None and connection.ws_connection.stream.socket.getpeername()[1] == port:
            return connection
    raise AssertionError(f"no server connection for client port {port}")
async def pipelined(port: int, frames: list[dict]) -> list[dict]:
    """Send ``frames`` in one TCP write, then read as many replies."""
    sock = await StalledSocket.open(port)
    await sock.send_all(frames)
    replies = []
    async for opcode, payload in sock.frames():
        assert opcode == 0x1, (opcode, payload)
        replies.append(json.loads(payload))
        if len(replies) == len(frames):
            break
    sock.sock.close()
    return replies
