"""The send path: each connection's ordered queue of outgoing frames, with flow control.

A published event is encoded once per view; `Frame` then builds its
websocket frame (header + UTF-8 payload; server frames are unmasked) once,
and the same bytes are queued on every subscriber's `Outbox`. Queued frames
are joined and handed to the connection's Tornado ``IOStream`` once per
event-loop turn (`Flusher`), instead of one ``write_message`` (utf-8 encode,
header build, a task) per frame per connection. A reply with nothing queued
ahead of it is written at once: batching would only delay it.

Where per-message compression was negotiated, frames go through Tornado's
``write_message``, which compresses per connection.

Flow control is judged over time, never by the bytes queued at one instant.
An outbox counts what it holds plus what the ``IOStream`` still buffers for
the socket. Above ``limit`` bytes (the high-water mark) it is *congested*:
it hands everything to the stream at once and watches the write; whoever
produced the frames (a publisher, a request) may await `Outbox.drained`,
which resolves when the stream has written down to the mark, so a burst
slows its producer instead of closing its readers. A peer that stays
congested for ``timeout`` seconds has stopped reading: it is closed with
`CloseCode.SLOW_CONSUMER` and its queue is dropped, so a stalled client
costs about ``limit`` bytes (plus what producers had already handed over)
and holds nobody back for longer than ``timeout``.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from typing import TYPE_CHECKING

from tornado.iostream import StreamClosedError
from tornado.websocket import WebSocketClosedError

from .protocol import CloseCode
from .tornado_internals import is_compressed, write_buffer_size

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
    """One connection's outgoing frames, in order; congested above ``limit`` bytes.

    ``timeout`` is how long a congested peer has to read down to ``limit``
    before it is closed as a slow consumer (None: never).
    """

    __slots__ = ("handler", "limit", "timeout", "flusher", "closed", "congested", "_stream", "_compressed",
                 "_pending", "_pending_bytes", "_waiters", "_deadline")

    def __init__(self, handler: WebSocketHandler, limit: float, flusher: Flusher, timeout: float | None = None) -> None:
        self.handler = handler
        self.limit = limit
        self.timeout = timeout
        self.flusher = flusher
        self.closed = False
        self.congested = False
        protocol = handler.ws_connection
        self._stream = protocol.stream
        self._compressed = is_compressed(protocol)  # compressed connections go through write_message
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._waiters: list[asyncio.Future] = []
        self._deadline: asyncio.TimerHandle | None = None

    @property
    def queued_bytes(self) -> int:
        """Bytes waiting for this peer: in the outbox and in the stream's write buffer."""
        return self._pending_bytes + self._buffered()

    def _buffered(self) -> int:
        return write_buffer_size(self._stream)

    def send(self, frame: str | Frame) -> bool:
        """Queue one text frame; True when the outbox is now congested (see `drained`).

        A closed connection drops the frame silently.
        """
        if self.closed:
            return False
        if self._compressed:
            return self._send_compressed(frame.text if isinstance(frame, Frame) else frame)
        reply = not isinstance(frame, Frame)
        wire = text_frame(frame.encode()) if reply else frame.wire
        if not self.congested and reply and not self._pending:
            # A reply with nothing queued ahead of it goes out now, as the echo's would.
            written = self._write(wire)
            if written is not None and self._buffered() > self.limit:
                self._congest(written)
            return self.congested
        if not self._pending and not self.congested:
            self.flusher.schedule(self)
        self._pending.append(wire)  # while congested, frames wait here, still shared with other outboxes
        self._pending_bytes += len(wire)
        if not self.congested and self._pending_bytes + self._buffered() > self.limit:
            self._congest(self._flush())
        return self.congested

    def _send_compressed(self, text: str) -> bool:
        try:
            written = self.handler.write_message(text)
        except WebSocketClosedError:
            self.drop()
            return False
        if self.congested:
            written.add_done_callback(self._written)
        elif self._buffered() > self.limit:
            self._congest(written)
        return self.congested

    async def drained(self) -> None:
        """Wait until this outbox is below its high-water mark (or closed); at once if it is."""
        if not self.congested or self.closed:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        await waiter

    def flush(self) -> None:
        """Hand everything queued to the stream in one write (a congested outbox waits for the stream)."""
        if not self.congested:
            self._flush()

    def finish(self) -> None:
        """Hand everything queued to the stream, congested or not (a close frame follows)."""
        self._flush()

    def _flush(self) -> asyncio.Future | None:
        pending = self._pending
        if not pending or self.closed:
            return None
        self._pending = []
        self._pending_bytes = 0
        return self._write(pending[0] if len(pending) == 1 else b"".join(pending))

    def _write(self, data: bytes) -> asyncio.Future | None:
        """Write to the stream; the future resolves once the stream has written ``data`` to the socket."""
        protocol = self.handler.ws_connection
        if protocol is None or protocol.is_closing():  # nothing may follow a close frame
            self.drop()
            return None
        try:
            return self._stream.write(data)
        except StreamClosedError:
            self.drop()
            return None

    # -- congestion ---------------------------------------------------------

    def _congest(self, written: asyncio.Future | None) -> None:
        """Above the mark: wait for the stream's progress, and start the slow-consumer clock."""
        if written is None:  # the connection is closing; nothing will drain
            return
        self.congested = True
        written.add_done_callback(self._written)
        if self.timeout is not None:
            self._deadline = asyncio.get_running_loop().call_later(self.timeout, self._stalled)

    def _written(self, written: asyncio.Future) -> None:
        """A watched write has reached the socket: relieved below the mark, or hand over what waited."""
        if not self.congested or self.closed:
            return
        if written.cancelled() or written.exception() is not None:
            self.drop()
            return
        if self.queued_bytes <= self.limit:
            self._relieve()
            newest = self._flush()
            if newest is not None and self.queued_bytes > self.limit:
                self._congest(newest)
        elif self._pending:  # the socket took everything it was given: give it what waited, and watch that
            newest = self._flush()
            if newest is not None:
                newest.add_done_callback(self._written)
        # else: a later watched write (compressed connections) still holds bytes; its callback decides

    def _relieve(self) -> None:
        """Below the mark (or closed): wake whoever waits in `drained`."""
        self.congested = False
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _stalled(self) -> None:
        self._deadline = None
        if self.congested and not self.closed:
            self.overflow()

    def drop(self) -> None:
        """Forget what is queued and wake whoever waits in `drained` (the connection is gone)."""
        self.closed = True
        self._pending = []
        self._pending_bytes = 0
        self._relieve()

    def overflow(self) -> None:
        """Drop the queue and close the connection as a slow consumer."""
        logger.warning("closing a slow consumer (%s): more than %d bytes queued for %ss",
                       self.handler.request.remote_ip, self.limit, self.timeout)
        self.drop()
        try:
            self.handler.close(CloseCode.SLOW_CONSUMER, "slow consumer: stopped reading")
        except (WebSocketClosedError, StreamClosedError):
            pass
