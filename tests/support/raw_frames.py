"""Websocket frames by hand: client frames built byte by byte, played over a raw socket, server frames split.

`TornadoWrites` sends one message the way Tornado itself does, and `first_frame`
reads the first frame a server sends whole: the reference the gateway's own
frames are compared with byte for byte.
"""

from __future__ import annotations

import asyncio
import base64
import os
import struct

from tornado.websocket import WebSocketHandler

TEXT, BINARY, CONTINUATION, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA


def frame(opcode: int, payload: bytes, fin: bool = True, rsv: int = 0, masked: bool = True) -> bytes:
    """One client frame, masked with a random key unless ``masked`` is false."""
    head = (0x80 if fin else 0) | rsv | opcode
    size = len(payload)
    mask_bit = 0x80 if masked else 0
    if size < 126:
        header = bytes((head, mask_bit | size))
    elif size <= 0xFFFF:
        header = struct.pack("!BBH", head, mask_bit | 126, size)
    else:
        header = struct.pack("!BBQ", head, mask_bit | 127, size)
    if not masked:
        return header + payload
    key = os.urandom(4)
    return header + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


async def play(port: int, path: str, script: bytes, cuts: list[int]) -> bytes:
    """Send ``script`` in the pieces ``cuts`` make, then a close frame; what the server sent until it closed."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 101"), head
    received = asyncio.ensure_future(reader.read())  # until the server closes
    try:
        start = 0
        for cut in [*cuts, len(script)]:
            writer.write(script[start:cut])
            await writer.drain()
            await asyncio.sleep(0)  # give the server a chance to read this piece on its own
            start = cut
        writer.write(frame(CLOSE, struct.pack("!H", 1000)))
        await writer.drain()
    except OSError:  # the server already closed: what it read so far is what counts
        pass
    try:
        return await asyncio.wait_for(received, 10)
    except OSError:
        return b""
    finally:
        writer.close()


def server_frames(data: bytes) -> list[tuple[int, bytes]]:
    """The (opcode, payload) of each unmasked frame a server sent (payloads under 64 KiB)."""
    frames, at = [], 0
    while at < len(data):
        opcode, length, at = data[at] & 0x0F, data[at + 1] & 0x7F, at + 2
        if length == 126:
            length, at = struct.unpack_from("!H", data, at)[0], at + 2
        frames.append((opcode, data[at:at + length]))
        at += length
    return frames


def text_of(size: int) -> str:
    """A text whose UTF-8 form is exactly ``size`` bytes, with two- and three-byte characters in it."""
    return "é€a" * (size // 6) + "a" * (size % 6)


class TornadoWrites(WebSocketHandler):
    """Sends one message of ``?size=`` bytes (`text_of`) the way Tornado itself does: ``write_message``."""

    def open(self) -> None:
        self.write_message(text_of(int(self.get_argument("size"))))


async def first_frame(port: int, path: str) -> bytes:
    """The complete first frame (header and payload) the server sends after a handshake without extensions."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 101"), head
        assert b"sec-websocket-extensions" not in head.lower()  # no compression: the raw path applies
        start = await asyncio.wait_for(reader.readexactly(2), 10)
        length, extended = start[1] & 0x7F, b""
        if length == 126:
            extended = await reader.readexactly(2)
            length = struct.unpack("!H", extended)[0]
        elif length == 127:
            extended = await reader.readexactly(8)
            length = struct.unpack("!Q", extended)[0]
        payload = await asyncio.wait_for(reader.readexactly(length), 10)
        return start + extended + payload
    finally:
        writer.close()
