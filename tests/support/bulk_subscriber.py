"""A minimal websocket subscriber for load: splits frames in bulk, stamps their arrival.

A full client per subscriber would spend a fan-out run decoding events one
by one. This one does the real handshake, sends one ``__subscribe__``
frame, and then only splits the byte stream into frames, keeping their
payloads (and answering the server's heartbeat pings). The 1,000-subscriber
scale-out test and the Redis bench share it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time

_TEXT, _PING, _PONG = 0x81, 0x89, 0x8A


def _masked(opcode: int, payload: bytes) -> bytes:
    """A short client frame; an all-zero mask leaves the payload as it is."""
    assert len(payload) < 126
    return bytes([opcode, 0x80 | len(payload)]) + b"\0\0\0\0" + payload


class BulkSubscriber:
    """One websocket subscribed to one topic; ``arrivals`` holds (perf_counter, payload) per event."""

    def __init__(self, url: str) -> None:
        address, path = url.split("://", 1)[1].split("/", 1)
        self.host, port = address.rsplit(":", 1)
        self.port, self.path = int(port), "/" + path
        self.arrivals: list[tuple[float, bytes]] = []
        self._buffer = bytearray()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    @property
    def payloads(self) -> list[bytes]:
        """The event frames' payloads, in arrival order."""
        return [payload for _, payload in self.arrivals]

    async def subscribe(self, topic: str) -> None:
        """Handshake, subscribe, and wait for the subscription's reply."""
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        key = base64.b64encode(os.urandom(16)).decode()
        self._writer.write(
            f"GET {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Protocol: drizzle.v1\r\n\r\n".encode())
        head = await self._reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise RuntimeError(f"websocket handshake refused: {head[:80]!r}")
        request = json.dumps({"request_id": 1, "action": "__subscribe__", "data": {"topic": topic}}).encode()
        self._writer.write(_masked(_TEXT, request))
        await self.frames(1)
        reply = json.loads(self.arrivals[0][1])
        if reply.get("request_id") != 1 or (reply.get("data") or {}).get("topic") != topic:  # history adds keys
            raise RuntimeError(f"subscription refused: {reply}")
        self.arrivals.clear()

    async def frames(self, count: int) -> list[tuple[float, bytes]]:
        """Read until ``count`` text frames have arrived in all; all arrivals so far."""
        assert self._reader is not None
        while len(self.arrivals) < count:
            chunk = await self._reader.read(1 << 16)
            if not chunk:
                raise ConnectionError(f"closed after {len(self.arrivals)} frames")
            self._buffer += chunk
            self._split(time.perf_counter())
        return self.arrivals

    def _split(self, now: float) -> None:
        buffer, start, size = self._buffer, 0, len(self._buffer)
        while size - start >= 2:
            length, offset = buffer[start + 1] & 0x7F, start + 2
            if length == 126:
                if size - offset < 2:
                    break
                length, offset = int.from_bytes(buffer[offset:offset + 2], "big"), offset + 2
            elif length == 127:
                if size - offset < 8:
                    break
                length, offset = int.from_bytes(buffer[offset:offset + 8], "big"), offset + 8
            if size - offset < length:
                break
            opcode, payload = buffer[start], bytes(buffer[offset:offset + length])
            if opcode == _PING:
                assert self._writer is not None
                self._writer.write(_masked(_PONG, payload))
            elif opcode == _TEXT:
                self.arrivals.append((now, payload))
            else:
                raise RuntimeError(f"expected a final text frame, got opcode byte {opcode:#x}")
            start = offset + length
        del buffer[:start]

    def close(self) -> None:
        """Drop the connection."""
        if self._writer is not None:
            self._writer.close()
