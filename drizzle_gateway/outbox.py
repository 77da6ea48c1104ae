"""The send path: each connection's bounded queue of outgoing frames.

A published event is encoded once per view; `Frame` then builds its
websocket frame (header + UTF-8 payload; server frames are unmasked) once,
and the same bytes are queued on every subscriber's `Outbox`. Queued frames
are joined and handed to the connection's Tornado ``IOStream`` once per
event-loop turn (`Flusher`), instead of one ``write_message`` (utf-8 encode,
header build, a task) per frame per connection. A reply with nothing queued
ahead of it is written at once: batching would only delay it.

Where per-message compression was negotiated, frames go through Tornado's
``write_message``, which compresses per connection.

Flow control: an outbox counts what it holds plus what the ``IOStream``
still buffers for the socket. A peer that stops reading lets that grow;
past ``limit`` bytes the connection is closed with `CloseCode.SLOW_CONSUMER`
and its queue is dropped, so a stalled client costs at most about ``limit``
bytes and never holds back anyone else.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from typing import TYPE_CHECKING

from tornado.iostream import StreamClosedError
from tornado.websocket import WebSocketClosedError

from .protocol import CloseCode

if TYPE_CHECKING:
    from tornado.websocket import WebSocketHandler

logger = logging.getLogger("drizzle_gateway")

_FIN_TEXT = 0x81


def text_frame(payload: bytes) -> bytes:
    """An unmasked, final websocket text frame carrying ``payload`` (RFC 6455 section 5.2)."""
    size = len(payload)
    if size < 126:
        header = bytes((_FIN_TEXT, size))
    elif size <= 0xFFFF:
        header = struct.pack("!BBH", _FIN_TEXT, 126, size)
    else:
        header = struct.pack("!BBQ", _FIN_TEXT, 127, size)
    return header + payload


class Frame:
    """One text frame going to many connections: its wire bytes are built once, on first use."""

    __slots__ = ("text", "_wire")

    def __init__(self, text: str) -> None:
        self.text = text
        self._wire: bytes | None = None

    @property
    def wire(self) -> bytes:
        """The complete websocket frame (header + UTF-8 payload)."""
        if self._wire is None:
            self._wire = text_frame(self.text.encode())
        return self._wire


class Flusher:
    """Writes the outboxes that received frames during this event-loop turn, once each."""

    def __init__(self) -> None:
        self._dirty: list[Outbox] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def schedule(self, outbox: Outbox) -> None:
        """Flush ``outbox`` at the end of this loop turn."""
        loop = asyncio.get_running_loop()
        if not self._dirty or loop is not self._loop:  # a loop that stopped before flushing left work behind
            self._loop = loop
            loop.call_soon(self._flush)
        self._dirty.append(outbox)

    def _flush(self) -> None:
        dirty, self._dirty = self._dirty, []
        for outbox in dirty:
            outbox.flush()


class Outbox:
    """One connection's outgoing frames, in order, bounded to ``limit`` bytes."""

    __slots__ = ("handler", "limit", "flusher", "closed", "_stream", "_compressed", "_pending", "_pending_bytes")

    def __init__(self, handler: WebSocketHandler, limit: int, flusher: Flusher) -> None:
        self.handler = handler
        self.limit = limit
        self.flusher = flusher
        self.closed = False
        protocol = handler.ws_connection
        self._stream = protocol.stream
        # Tornado keeps its per-message-deflate state privately; compressed connections use write_message.
        self._compressed = getattr(protocol, "_compressor", None) is not None
        self._pending: list[bytes] = []
        self._pending_bytes = 0

    @property
    def queued_bytes(self) -> int:
        """Bytes waiting for this peer: in the outbox and in the stream's write buffer."""
        return self._pending_bytes + self._buffered()

    def _buffered(self) -> int:
        # IOStream has no public accessor for this; its buffer object supports len().
        buffer = getattr(self._stream, "_write_buffer", None)
        return len(buffer) if buffer is not None else 0

    def send(self, frame: str | Frame) -> None:
        """Queue one text frame; a closed connection drops it silently."""
        if self.closed:
            return
        if self._compressed:
            self._send_compressed(frame.text if isinstance(frame, Frame) else frame)
            return
        if isinstance(frame, Frame):
            wire = frame.wire
        else:
            wire = text_frame(frame.encode())
            if not self._pending:  # a reply with nothing queued ahead of it goes out now, as the echo's would
                self._write(wire)
                if self._buffered() > self.limit:
                    self.overflow()
                return
        self._pending_bytes += len(wire)
        if self._pending_bytes + self._buffered() > self.limit:
            self.overflow()
            return
        if not self._pending:
            self.flusher.schedule(self)
        self._pending.append(wire)

    def _send_compressed(self, text: str) -> None:
        try:
            self.handler.write_message(text)
        except WebSocketClosedError:
            self.closed = True
            return
        if self._buffered() > self.limit:
            self.overflow()

    def flush(self) -> None:
        """Hand everything queued to the stream in one write."""
        pending = self._pending
        if not pending or self.closed:
            return
        self._pending = []
        self._pending_bytes = 0
        self._write(pending[0] if len(pending) == 1 else b"".join(pending))

    def _write(self, data: bytes) -> None:
        protocol = self.handler.ws_connection
        if protocol is None or protocol.is_closing():  # nothing may follow a close frame
            self.closed = True
            return
        try:
            self._stream.write(data)
        except StreamClosedError:
            self.closed = True

    def overflow(self) -> None:
        """Drop the queue and close the connection as a slow consumer."""
        logger.warning("closing a slow consumer (%s): more than %d bytes queued",
                       self.handler.request.remote_ip, self.limit)
        self.closed = True
        self._pending = []
        self._pending_bytes = 0
        try:
            self.handler.close(CloseCode.SLOW_CONSUMER, "slow consumer: send queue overflowed")
        except (WebSocketClosedError, StreamClosedError):
            pass
