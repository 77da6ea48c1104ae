"""The send path: each connection's ordered queue of outgoing frames, with flow control.

A published event is encoded once per view; `Frame` then builds its
websocket frame (header + UTF-8 payload; server frames are unmasked) once,
and the same bytes are queued on every subscriber's `Outbox`. Queued frames
are joined and handed to the connection's Tornado ``IOStream`` once per
event-loop turn (`Flusher`), instead of one ``write_message`` (utf-8 encode,
header build, a task) per frame per connection. A reply with nothing queued
ahead of it, answered in the step that read its request (`Flusher.direct`),
is written at once: batching would only delay it. Replies answered later
are flushed together, once per turn.

Where per-message compression was negotiated, frames go through Tornado's
``write_message``, which compresses per connection.

Flow control is judged over time, never by the bytes queued at one instant.
An outbox counts what it holds plus what the ``IOStream`` still buffers for
the socket. Above ``limit`` bytes (the high-water mark) it is *congested*:
it hands everything to the stream at once and watches the write, until the
stream has written what it was given and at most ``limit / 2`` (the
low-water mark) waits behind it. Meanwhile the peer's own requests await
`Outbox.drained`, and publishers await `Outbox.released`, which also
resolves once the peer has held them for ``hold`` seconds in this
congestion: a burst slows its producer instead of closing its readers, and
no one slow reader sets a channel's pace. Past its hold, events wait for the
peer in the outbox, shared with the other subscribers. A peer that stays
congested for ``timeout`` seconds, or has more than ``cap`` bytes waiting
when an event is queued, cannot keep up: it is closed with
`CloseCode.SLOW_CONSUMER` and its queue is dropped.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import TYPE_CHECKING

from tornado.iostream import StreamClosedError
from tornado.websocket import WebSocketClosedError

from ..runtime.flusher import Flusher
from ..wire.dialect import CloseCode
from ..wire.frame import Frame, text_frame
from .log_context import user_label
from .tornado_internals import is_compressed, write_buffer_size, write_now

if TYPE_CHECKING:
    from tornado.websocket import WebSocketHandler

logger = logging.getLogger("drizzle_gateway")

class Outbox:
    """One connection's outgoing frames, in order; congested above ``limit`` bytes.

    ``timeout`` is how long a peer may stay congested before it is closed as
    a slow consumer, ``hold`` how long it may hold publishers each time it is
    congested, ``cap`` the most it may have waiting when an event is queued
    (None: never, always, no cap).
    """

    __slots__ = ("handler", "limit", "low", "cap", "timeout", "hold", "flusher", "closed", "congested", "holding",
                 "_stream", "_compressed", "_pending", "_pending_bytes", "_buffered_then", "_waiters", "_held",
                 "_deadline", "_hold_end")

    def __init__(self, handler: WebSocketHandler, limit: float, flusher: Flusher, timeout: float | None = None,
                 hold: float | None = None, cap: float | None = None) -> None:
        self.handler = handler
        self.limit = limit
        self.low = limit / 2
        self.cap = cap if cap is not None else math.inf
        self.timeout = timeout
        self.hold = hold
        self.flusher = flusher
        self.closed = False
        self.congested = False
        self.holding = False  # congested, and publishers still wait for it
        protocol = handler.ws_connection
        assert protocol is not None and protocol.stream is not None  # made in `open`: the handshake is done
        self._stream = protocol.stream
        self._compressed = is_compressed(protocol)  # compressed connections go through write_message
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._buffered_then = 0  # what the stream held when the first pending frame was queued (see `send`)
        self._waiters: list[asyncio.Future[None]] | None = None  # in `drained`: until relieved (made when needed)
        self._held: list[asyncio.Future[None]] | None = None  # in `released`: until relieved or the hold is spent
        self._deadline: asyncio.TimerHandle | None = None
        self._hold_end: asyncio.TimerHandle | None = None

    @property
    def queued_bytes(self) -> int:
        """Bytes waiting for this peer: in the outbox and in the stream's write buffer."""
        return self._pending_bytes + self._buffered()

    def _buffered(self) -> int:
        return write_buffer_size(self._stream)

    def send(self, frame: str | Frame) -> bool:
        """Queue one text frame; True when its producer should wait (see `drained` and `released`).

        A reply (a str) is answered by whether the peer is congested; an
        event (a `Frame`) by whether the peer still holds publishers. A
        closed connection drops the frame silently.
        """
        if self.closed:
            return False
        if self._compressed:
            return self._send_compressed(frame)
        if isinstance(frame, Frame):
            reply, wire = False, frame.wire
        else:
            reply, wire = True, text_frame(frame.encode())
        if self.congested:  # frames wait here, still shared with other outboxes, for the stream to take them
            if not reply and self._pending_bytes + len(wire) + self._buffered() > self.cap:
                self.overflow(f"more than {self.cap:.0f} bytes waiting")
                return False
            self._pending.append(wire)
            self._pending_bytes += len(wire)
            return reply or self.holding
        if reply and not self._pending and self.flusher.direct:
            # Answered as its frame was read, with nothing queued ahead of it: it goes out now, as the echo's would.
            written = self._write(wire)
            if written is not None and self._buffered() > self.limit:
                self._congest(written)
            return self.congested
        if not self._pending:
            self.flusher.schedule(self)
            # Until the flush the stream only drains: what it held now bounds it (one look per turn, not per frame).
            self._buffered_then = self._buffered()
        self._pending.append(wire)
        self._pending_bytes += len(wire)
        if self._pending_bytes + self._buffered_then > self.limit:
            # Hand it over now. Events congest the peer at once: what follows waits here, shared with the other
            # subscribers, not copied into each stream. Replies are the peer's own: congested if the socket balks.
            written = self._flush()
            if not reply or (written is not None and self._buffered() > self.limit):
                self._congest(written)
        return self.congested

    def _send_compressed(self, frame: str | Frame) -> bool:
        if isinstance(frame, Frame):
            reply, text = False, frame.text
        else:
            reply, text = True, frame
        if self.congested and not reply and self._buffered() + len(text) > self.cap:
            self.overflow(f"more than {self.cap:.0f} bytes waiting")
            return False
        try:
            written = self.handler.write_message(text)
        except WebSocketClosedError:
            self.drop()
            return False
        if self.congested:
            written.add_done_callback(self._written)
        elif self._buffered() > self.limit:
            self._congest(written)
        return self.congested and (reply or self.holding)

    async def drained(self) -> None:
        """Wait until this outbox is relieved (read down to the low-water mark) or closed; at once if it is."""
        if not self.congested or self.closed:
            return
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        await waiter

    async def released(self) -> None:
        """Wait until this outbox no longer holds publishers: relieved, closed, or its ``hold`` spent."""
        if not self.holding or self.closed:
            return
        waiter = asyncio.get_running_loop().create_future()
        if self._held is None:
            self._held = []
        self._held.append(waiter)
        await waiter

    def flush(self) -> None:
        """Hand everything queued to the stream in one write (a congested outbox waits for the stream)."""
        if not self.congested:
            self._flush()

    def finish(self) -> None:
        """Hand everything queued to the stream, congested or not (a close frame follows)."""
        self._flush()

    def _flush(self) -> asyncio.Future[None] | None:
        pending = self._pending
        if not pending or self.closed:
            return None
        self._pending = []
        self._pending_bytes = 0
        return self._write(pending[0] if len(pending) == 1 else b"".join(pending))

    def _write(self, data: bytes) -> asyncio.Future[None] | None:
        """Write to the socket, through the stream if it must wait (`write_now`).

        None when the socket took ``data`` at once or the connection is closing; else a future that
        resolves once the stream has written the rest.
        """
        protocol = self.handler.ws_connection
        if protocol is None or protocol.is_closing():  # nothing may follow a close frame
            self.drop()
            return None
        try:
            return write_now(self._stream, data)
        except StreamClosedError:
            self.drop()
            return None

    # -- congestion ---------------------------------------------------------

    def _congest(self, written: asyncio.Future[None] | None) -> None:
        """Above the mark: wait for the stream's progress, and start the hold and the slow-consumer clocks."""
        if written is None:  # the connection is closing; nothing will drain
            return
        self.congested = self.holding = True
        written.add_done_callback(self._written)
        loop = asyncio.get_running_loop()
        if self.timeout is not None:
            self._deadline = loop.call_later(self.timeout, self._stalled)
        if self.hold is not None:
            self._hold_end = loop.call_later(self.hold, self._release)

    def _written(self, written: asyncio.Future[None]) -> None:
        """A watched write has reached the socket: relieved below the low mark, or hand over what waited."""
        if not self.congested or self.closed:
            return
        if written.cancelled() or written.exception() is not None:
            self.drop()
            return
        if self.queued_bytes <= self.low:
            self._relieve()
            newest = self._flush()
            if newest is not None and self.queued_bytes > self.limit:
                self._congest(newest)
        elif self._pending:  # the socket took everything it was given: give it what waited, and watch that
            newest = self._flush()
            if newest is not None:
                newest.add_done_callback(self._written)
            else:  # the socket took that at once too (or the connection is closing): nothing is left
                self._relieve()
        # else: a later watched write (compressed connections) still holds bytes; its callback decides

    def _release(self) -> None:
        """The hold is spent: publishers go on without this peer (its queue may grow to the cap)."""
        self._hold_end = None
        self.holding = False
        held, self._held = self._held, None
        for waiter in held or ():
            if not waiter.done():
                waiter.set_result(None)

    def _relieve(self) -> None:
        """Below the low mark (or closed): wake whoever waits in `drained` or `released`."""
        self.congested = False
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if self._hold_end is not None:
            self._hold_end.cancel()
        self._release()
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def _stalled(self) -> None:
        self._deadline = None
        if self.congested and not self.closed:
            self.overflow(f"congested for {self.timeout}s")

    def drop(self) -> None:
        """Forget what is queued and wake whoever waits in `drained` or `released` (the connection is gone)."""
        self.closed = True
        self._pending = []
        self._pending_bytes = 0
        self._relieve()

    def overflow(self, why: str = "stopped reading") -> None:
        """Drop the queue and close the connection as a slow consumer (``why`` goes to the log)."""
        address = self.handler.request.remote_ip  # the client's, behind a trusted proxy too (`Connection`)
        logger.warning("closing a slow consumer (%s): %s", address, why,  # maybe in another connection's context
                       extra={"client": address, "user": user_label(getattr(self.handler, "user", None))})
        self.drop()
        try:
            self.handler.close(CloseCode.SLOW_CONSUMER, "slow consumer: cannot keep up")
        except (WebSocketClosedError, StreamClosedError):
            pass
