"""The Tornado handler behind the gateway's websocket route: Tornado frames in and out of a `Session`."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Coroutine
from collections.abc import Set as AbstractSet
from typing import Any, Protocol

from tornado.websocket import WebSocketClosedError, WebSocketHandler, WebSocketProtocol

from ..runtime.hub import Hub
from ..runtime.peer import PeerState
from ..runtime.session import Session
from ..wire.dialect import SUBPROTOCOL, CloseCode, Dialect
from ..wire.errors import ActionError, ErrorCode
from ..wire.frame import Frame
from . import log_context
from .client_address import TrustedProxies
from .frame_reader import ChunkReader, next_turn
from .handshake import HandshakePolicy
from .outbox import Outbox
from .tornado_internals import is_compressed, slim_queues, websocket_params

logger = logging.getLogger("drizzle_gateway")


class Served(Protocol):
    """What a connection needs of its gateway: the runtime it joins and the handshake's policy."""

    @property
    def hub(self) -> Hub:
        """The gateway's runtime (built when serving starts)."""

    @property
    def handshake(self) -> HandshakePolicy:
        """Which hosts and origins may connect."""

    @property
    def trusted_proxies(self) -> TrustedProxies:
        """Which direct peers may say who the client is (see `drizzle_gateway.transport.client_address`)."""


class HeldReadProtocol(ChunkReader):
    """Tornado's server-side websocket protocol, reading a chunk at a time, whose heartbeat excuses a held peer.

    Control frames and fragments count against the handler's frame rate (`ChunkReader.admit`).
    The heartbeat part: the handler says whether it held back reading at any time since a
    moment (``handler.reading_held_since(when)``); a pong is then counted
    as received, since it may wait unread behind the peer's requests.
    """

    __slots__ = ("_pinged_at",)
    handler: Connection  # what `held_read_protocol` is given

    def admit(self) -> bool:
        """A control frame or a fragment takes a token of the connection's rate (``handler.admits_frame()``)."""
        return bool(self.handler.admits_frame())

    def settle(self) -> bool:
        """The chunk's requests ran and their replies went out, when this client alone keeps the loop busy."""
        return self.handler.settle()

    def pong_received(self) -> bool:
        """A pong arrived since the last ping, or reading was held back meanwhile (it may wait unread)."""
        return super().pong_received() or self.handler.reading_held_since(self._pinged_at)

    def set_pong_received(self, value: bool) -> None:
        """Tornado's record of a pong; as it clears it to send a ping, the ping's time is noted."""
        super().set_pong_received(value)
        if not value:  # Tornado clears it as it sends a ping
            self._pinged_at = asyncio.get_running_loop().time()  # the session's clock (IOLoop's is the wall clock)

    # -- the hub's heartbeat: one timer for every connection, in place of Tornado's ping task per connection --

    def start_pinging(self) -> None:
        """Join the hub's `Heartbeat` when it pings as this connection would (else Tornado's own ping task)."""
        beat = self.handler.hub.heartbeat
        if beat is not None and beat.interval == self.ping_interval and beat.timeout == self.ping_timeout:
            beat.add(self)
        else:
            super().start_pinging()

    def send_heartbeat(self) -> bool:
        """Ping the peer, as Tornado's ping task would; False once the connection is closing."""
        if self.is_closing():
            return False
        self.set_pong_received(False)
        try:
            self.write_ping(b"")
        except WebSocketClosedError:
            return False
        return True

    def heartbeat_answered(self) -> bool:
        """Whether the last ping counts as answered (`pong_received`)."""
        return self.pong_received()

    def heartbeat_missed(self) -> None:
        """No answer within the ping timeout: close, as Tornado's ping task does."""
        self.close(reason="ping timed out")

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        """Tornado's close, which also leaves the heartbeat."""
        super().close(code, reason)
        beat = self.handler.hub.heartbeat
        if beat is not None:
            beat.discard(self)


def held_read_protocol(handler: Connection) -> HeldReadProtocol | None:
    """What ``WebSocketHandler.get_websocket_protocol`` makes, as a `HeldReadProtocol`."""
    if handler.request.headers.get("Sec-WebSocket-Version") != "13":
        return None
    return HeldReadProtocol(handler, False, websocket_params(handler))


class Connection(WebSocketHandler):
    """Adapts one websocket to its `Session`: the handshake checks, frames, the send queue, the close.

    The session holds what the connection has (user, subscriptions, running
    requests); this class only speaks Tornado. Frames go out in order
    through an `Outbox` that watches for a peer that stops reading.

    ``address`` is the client's address: the socket's peer, or behind a
    trusted proxy the address it forwarded (`TrustedProxies`). The
    handshake's ``request.remote_ip`` is set to it too, so Tornado's access
    line and the ``authenticate`` hook see the client rather than the proxy.
    Log lines written while the connection runs name it (`log_context`).
    """

    # The gateway's own attributes in slots, beside Tornado's in the instance dict: that dict then stays
    # a small shared-key one (CPython shares at most 30 keys per class), about 1.3 KiB less per connection.
    __slots__ = ("gateway", "hub", "address", "state", "session", "outbox", "sent_close_code")
    gateway: Served
    session: Session

    def initialize(self, gateway: Served, protocol: Dialect | None = None) -> None:
        self.gateway = gateway
        self.hub = gateway.hub
        self.address = gateway.trusted_proxies.client_address(self.request)
        self.request.remote_ip = self.address
        self.state = PeerState.CONNECTING
        self.session = Session(self.hub, self, protocol)
        self.outbox: Outbox | None = None
        self.sent_close_code: int | None = None  # the code this side closed with first, if it did

    # -- what the session holds, seen from the socket (Tornado Drizzle handlers use these) --

    @property
    def user(self) -> Any:
        """The authenticated user, or None."""
        return self.session.user

    @property
    def channels(self) -> AbstractSet[str]:
        """The channels this socket listens to."""
        return self.session.channels

    async def subscribe(self, channel: str, fields: list[str] | tuple[str, ...] | None = None) -> str:
        """Listen to a concrete ``channel`` (see `Session.subscribe`)."""
        return await self.session.subscribe(channel, fields)

    async def unsubscribe(self, channel: str) -> bool:
        """Stop listening to ``channel`` (see `Session.unsubscribe`)."""
        return await self.session.unsubscribe(channel)

    # -- limits Tornado enforces ------------------------------------------------

    @property
    def max_message_size(self) -> int:
        """Frames above ``limits.max_frame_bytes`` close the socket with 1009."""
        return self.hub.limits.frame_bytes

    @property
    def ping_interval(self) -> float | None:
        """Seconds between server pings (``limits.ping_interval``); None or 0: no pings."""
        return self.hub.limits.ping_interval

    @property
    def ping_timeout(self) -> float | None:
        """Seconds a peer has to answer a ping before it is disconnected."""
        return self.hub.limits.ping_timeout

    # -- Tornado hooks ------------------------------------------------------

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        """Speak ``drizzle.v1`` when asked; a client that asks for none is served too."""
        return SUBPROTOCOL if SUBPROTOCOL in subprotocols else None

    def check_origin(self, origin: str) -> bool:
        """Apply the gateway's origin policy."""
        return self.gateway.handshake.allows_origin(origin, self.request)

    def get(self, *args: str, **kwargs: str) -> Coroutine[Any, Any, None]:
        """Check the Host and the Origin, authenticate from the handshake (with ``authenticate``), upgrade.

        A refused Host gets 400 and a refused origin 403 before the
        ``authenticate`` hook runs; an address that failed authentication
        too often gets 429 with ``Retry-After``. Without the hook, what
        Tornado's upgrade returns is handed on rather than awaited here: it
        lasts as long as the connection, and one coroutine less is kept.
        """
        log_context.bind(self)
        if not self.gateway.handshake.allows_host(self.request):
            self.set_status(400)
            self.finish("Host not allowed")
            return _done()
        origin = self.request.headers.get("Origin")
        same_origin = self.request.headers.get("Sec-Fetch-Site") in ("same-origin", "none")
        if origin is not None and not same_origin and not self.check_origin(origin):
            self.set_status(403)
            self.finish("Cross origin websockets not allowed")
            return _done()
        if self.hub.authenticate is not None and not self.hub.closing:
            return self._authenticate_then_upgrade(args, kwargs)
        return super().get(*args, **kwargs)

    async def _authenticate_then_upgrade(self, args: tuple[str, ...], kwargs: dict[str, str]) -> None:
        try:
            await self.session.authenticate()
        except ActionError as exc:  # the client may still send __auth__ before auth_timeout
            if exc.code == ErrorCode.RATE_LIMITED:
                self.set_status(429)
                self.set_header("Retry-After", str(math.ceil(exc.details["retry_after"])))
                self.finish(exc.message)
                return
        await super().get(*args, **kwargs)

    def open(self, *args: str, **kwargs: str) -> Awaitable[None] | None:  # as Tornado's: subclasses may await
        if self.hub.closing:
            self.close(*self.hub.farewell)
            return None
        self.state = PeerState.OPEN
        self.set_nodelay(True)  # the outbox already coalesces small frames per loop turn; Nagle would only delay
        protocol = self.ws_connection
        if protocol is not None and protocol.stream is not None and not is_compressed(protocol):
            slim_queues(protocol.stream)  # idle connections are most of them: their stream holds no empty deques
        self.session.start()
        return None

    def on_message(self, message: str | bytes) -> asyncio.Future | None:
        """Hand the frame to the session; Tornado reads the next frame once the returned future is done.

        The first request of a loop turn runs its first step now
        (`Session.receive`), so one that never waits has its reply written
        before this returns. While ``max_in_flight`` requests run, the future
        is done when one finishes: TCP then pushes back on the client, and
        pipelined requests wait rather than being refused. Otherwise the
        frames already read are handled at once, and the socket is read again
        a loop turn later (`frame_reader.next_turn`), when the peer's next
        frame has often arrived; or at once, after `settle` answered them.
        The loop polls its sockets for a moment before it sleeps
        (`Hub.busy_poll`), so a peer's next request is read as soon as it comes.
        """
        poll = self.hub.busy_poll
        if poll is not None:
            poll.touch()
        protocol = self.ws_connection
        chunked = protocol if isinstance(protocol, ChunkReader) else None
        held = self.session.receive(message, chunked is not None and chunked.frames_ahead)
        if held is not None:
            return held
        if chunked is not None and chunked.reads_ahead():
            return None
        return next_turn()

    def reading_held_since(self, when: float) -> bool:
        """Whether reading was held back (``max_in_flight``) at any time since loop time ``when``."""
        return self.session.reading_held_since(when)

    def settle(self) -> bool:
        """A chunk of pipelined requests was read: when this client alone keeps the loop busy, answer them now.

        Their requests run at once (`Session.settle`) and their replies go
        to the socket in one write; the reader then reads on without
        waiting for a loop turn. False otherwise: the requests run with the
        turn's batch, and the replies go out with its flush.
        """
        if not self.session.settle():
            return False
        if self.outbox is not None:
            self.outbox.flush()
        return True

    def admits_frame(self) -> bool:
        """Whether a frame that is not a whole message (ping, pong, fragment) is within ``limits.rate``.

        It takes a token from the session's bucket, as every request frame does; the reader
        closes the connection with 1008 when there is none (there is no request to refuse).
        """
        return self.session.throttled() is None

    def get_websocket_protocol(self) -> WebSocketProtocol | None:
        """Tornado's protocol, with a heartbeat that excuses a peer whose frames are held unread."""
        return held_read_protocol(self)

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        """Close the websocket after the frames already queued for it."""
        if self.state is not PeerState.CLOSED:
            self.state = PeerState.CLOSING
        if self.sent_close_code is None:
            self.sent_close_code = code if code is not None else CloseCode.NORMAL
        if self.outbox is not None:
            self.outbox.finish()
        super().close(code, reason)

    def on_close(self) -> None:
        self.state = PeerState.CLOSED
        if self.hub.metrics is not None:  # the code this side sent, else the peer's (None: no close frame)
            self.hub.metrics.closed(self.sent_close_code or self.close_code)
        if self.outbox is not None:
            self.outbox.drop()
        self.session.end()

    # -- sending ------------------------------------------------------------

    def send_frame(self, frame: str | Frame) -> bool:
        """Queue one encoded text frame; True when its producer should wait (`drained`, `released`).

        Frames go out in order through the connection's `Outbox`; a peer
        that stays congested for ``limits.send_timeout``, or falls more than
        ``limits.queue_cap`` bytes behind, is closed as a slow consumer. A
        closed socket drops the frame silently; a socket refused at open
        (the gateway is shutting down) sends nothing.
        """
        outbox = self.outbox
        if outbox is None:  # made on the first frame: an idle connection never needs one
            if self.state is not PeerState.OPEN:
                return False
            limits = self.hub.limits
            outbox = self.outbox = Outbox(self, limits.queue_bytes, self.hub.flusher, limits.send_timeout,
                                          limits.publish_wait, limits.queue_cap)
        return outbox.send(frame)

    async def drained(self) -> None:
        """Wait until the peer has read down to half of ``limits.send_queue_bytes`` (or is closed)."""
        if self.outbox is not None:
            await self.outbox.drained()

    async def released(self) -> None:
        """Wait until the peer no longer holds publishers: drained, closed, or ``limits.publish_wait`` spent."""
        if self.outbox is not None:
            await self.outbox.released()


async def _done() -> None:
    """What `Connection.get` returns for a handshake it answered itself."""
