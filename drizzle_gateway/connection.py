"""One websocket connection: reads frames, runs requests, owns subscriptions."""

from __future__ import annotations

import asyncio
import logging
import math
from typing import TYPE_CHECKING, Any

from tornado.ioloop import IOLoop
from tornado.websocket import WebSocketHandler, WebSocketProtocol

from .auth import Credentials
from .errors import ActionError, ErrorCode
from .fanout import Joined, View
from .history import Position
from .limits import TokenBucket
from .outbox import Frame, Outbox
from .protocol import SUBPROTOCOL, CloseCode, InvalidFrame, Protocol, Request
from .tornado_internals import held_read_protocol

if TYPE_CHECKING:
    from .gateway import Gateway

logger = logging.getLogger("drizzle_gateway")

INTERNAL_ERROR_TEXT = "internal error; the server log has the details"


class Connection(WebSocketHandler):
    """The Tornado handler behind the gateway's websocket route.

    Each request runs as its own task, so a slow action never holds back
    the replies of others. With ``limits.max_in_flight`` requests running,
    the socket is not read until one finishes: pipelined requests wait in
    TCP's buffers (backpressure), they are never refused. Subscriptions
    live exactly as long as the socket.
    """

    gateway: Gateway
    protocol: Protocol

    def initialize(self, gateway: Gateway, protocol: Protocol | None = None) -> None:
        self.gateway = gateway
        self.protocol = protocol or gateway.protocol
        self.user: Any = None
        self.channels: set[str] = set()
        self._tasks: set[asyncio.Task] = set()
        limits = gateway.limits
        self._bucket = TokenBucket(limits.rate, limits.burst_size) if limits.rate else None
        self._auth_deadline: object | None = None
        self._slot_free: asyncio.Future | None = None
        self._held_since: float | None = None  # reading held back since (loop time), or None
        self._released_at = float("-inf")
        self.outbox: Outbox | None = None

    @property
    def tasks(self) -> frozenset[asyncio.Task]:
        """The requests of this connection still running."""
        return frozenset(self._tasks)

    # -- limits Tornado enforces ------------------------------------------------

    @property
    def max_message_size(self) -> int:
        """Frames above ``limits.max_frame_bytes`` close the socket with 1009."""
        return self.gateway.limits.frame_bytes

    @property
    def ping_interval(self) -> float | None:
        """Seconds between server pings (``limits.ping_interval``); None or 0: no pings."""
        return self.gateway.limits.ping_interval

    @property
    def ping_timeout(self) -> float | None:
        """Seconds a peer has to answer a ping before it is disconnected."""
        return self.gateway.limits.ping_timeout

    # -- Tornado hooks ------------------------------------------------------

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        """Speak ``drizzle.v1`` when asked; a client that asks for none is served too."""
        return SUBPROTOCOL if SUBPROTOCOL in subprotocols else None

    def check_origin(self, origin: str) -> bool:
        """Apply the gateway's origin policy."""
        return self.gateway.allows_origin(origin, self.request)

    async def get(self, *args: str, **kwargs: str) -> None:
        """Check the Host and the Origin, authenticate from the handshake (with ``authenticate``), upgrade.

        A refused Host gets 400 and a refused origin 403 before the
        ``authenticate`` hook runs; an address that failed authentication
        too often gets 429 with ``Retry-After``.
        """
        if not self.gateway.allows_host(self.request):
            self.set_status(400)
            self.finish("Host not allowed")
            return
        origin = self.request.headers.get("Origin")
        same_origin = self.request.headers.get("Sec-Fetch-Site") in ("same-origin", "none")
        if origin is not None and not same_origin and not self.check_origin(origin):
            self.set_status(403)
            self.finish("Cross origin websockets not allowed")
            return
        if self.gateway.authenticate is not None and not self.gateway.closing:
            try:
                await self.authenticate()
            except ActionError as exc:  # the client may still send __auth__ before auth_timeout
                if exc.code == ErrorCode.RATE_LIMITED:
                    self.set_status(429)
                    self.set_header("Retry-After", str(math.ceil(exc.details["retry_after"])))
                    self.finish(exc.message)
                    return
        await super().get(*args, **kwargs)

    def open(self, *args: str, **kwargs: str) -> None:
        if self.gateway.closing:
            self.close(CloseCode.GOING_AWAY, "server shutting down")
            return
        self.set_nodelay(True)  # the outbox already coalesces small frames per loop turn; Nagle would only delay
        limits = self.gateway.limits
        self.outbox = Outbox(self, limits.queue_bytes, self.gateway.flusher, limits.send_timeout)
        self.gateway.connections.add(self)
        if self.gateway.authenticate is not None and self.user is None and limits.auth_timeout is not None:
            delay = limits.auth_timeout
            self._auth_deadline = IOLoop.current().call_later(delay, self._auth_expired)

    def on_message(self, message: str | bytes) -> asyncio.Future | None:
        """Start the frame's request; while ``max_in_flight`` run, return a future Tornado waits for."""
        try:
            request = self._parse(message)
        except InvalidFrame as exc:
            request, request_id, refusal = None, exc.request_id, self._throttled() or exc
        else:
            request_id, refusal = request.request_id, self._refusal()
        if refusal is not None:
            self.send_frame(self.protocol.error(request_id, refusal))
            return
        task = asyncio.ensure_future(self._serve(request))
        self._tasks.add(task)
        task.add_done_callback(self._request_done)
        limit = self.gateway.limits.max_in_flight
        if limit is not None and len(self._tasks) >= limit:
            # Tornado reads no further frame until this resolves: TCP pushes back on the client.
            loop = asyncio.get_running_loop()
            self._slot_free = loop.create_future()
            self._held_since = loop.time()
            return self._slot_free
        return None

    def _request_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        waiting = self._slot_free
        if waiting is not None and not waiting.done():
            self._slot_free = None
            self._held_since, self._released_at = None, asyncio.get_running_loop().time()
            waiting.set_result(None)

    def reading_held_since(self, when: float) -> bool:
        """Whether reading was held back (``max_in_flight``) at any time since loop time ``when``.

        Pongs wait unread behind held requests, so the heartbeat excuses such a peer.
        """
        return self._held_since is not None or self._released_at >= when

    def get_websocket_protocol(self) -> WebSocketProtocol | None:
        """Tornado's protocol, with a heartbeat that excuses a peer whose frames are held unread."""
        return held_read_protocol(self)

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        """Close the websocket after the frames already queued for it."""
        if self.outbox is not None:
            self.outbox.finish()
        super().close(code, reason)

    def on_close(self) -> None:
        if self.outbox is not None:
            self.outbox.drop()
        if self._slot_free is not None and not self._slot_free.done():
            self._slot_free.set_result(None)
        if self._auth_deadline is not None:
            IOLoop.current().remove_timeout(self._auth_deadline)
        self.gateway.connections.discard(self)
        for task in self._tasks:
            task.cancel()
        for channel in self.channels:
            self.gateway.fanout.discard(self, channel)
        self.channels.clear()

    # -- authentication ---------------------------------------------------------

    async def authenticate(self, token: str | None = None) -> Any:
        """Ask the gateway's ``authenticate`` hook who this is; UNAUTHENTICATED when refused.

        Without ``token`` the hook sees the handshake only. On success ``user``
        is set and the unauthenticated-close deadline is lifted.
        """
        self.user = await self.gateway.identify(Credentials(self.request, token))
        if self._auth_deadline is not None:
            IOLoop.current().remove_timeout(self._auth_deadline)
            self._auth_deadline = None
        return self.user

    def _auth_expired(self) -> None:
        self._auth_deadline = None
        if self.user is None:
            self.close(CloseCode.UNAUTHENTICATED, "not authenticated in time")

    # -- requests -----------------------------------------------------------

    def _parse(self, message: str | bytes) -> Request:
        """The dialect's parse, then the shape limits (depth, keys); raises `InvalidFrame`."""
        request = self.protocol.parse(message)
        limits = self.gateway.limits
        if not isinstance(message, str) or limits.may_exceed_shape(message):
            problem = limits.shape_error(request.raw)
            if problem is not None:
                raise InvalidFrame(problem, request.request_id)
        return request

    def _throttled(self) -> ActionError | None:
        """RATE_LIMITED if this frame is over the connection's rate, else None (every frame counts)."""
        if self._bucket is None:
            return None
        wait = self._bucket.take()
        if not wait:
            return None
        return ActionError(ErrorCode.RATE_LIMITED, "too many requests; slow down", {"retry_after": round(wait, 3)})

    def _refusal(self) -> ActionError | None:
        """Why a well-formed request cannot run now, or None (rate, shutdown)."""
        throttled = self._throttled()
        if throttled is not None:
            return throttled
        if self.gateway.closing:
            return ActionError(ErrorCode.SHUTTING_DOWN, "server is shutting down; reconnect")
        return None

    async def _serve(self, request: Request) -> None:
        timeout = self.gateway.limits.action_timeout
        try:
            deadline = asyncio.timeout(timeout)
            try:
                async with deadline:
                    result = await self.gateway.call(self, request)
            except TimeoutError:
                if not deadline.expired():
                    raise
                raise ActionError(ErrorCode.TIMEOUT, f"the action took longer than {timeout}s and was cancelled",
                                  {"timeout": timeout}) from None
            frame = self.protocol.reply(request.request_id, result)
        except ActionError as exc:
            frame = self.protocol.error(request.request_id, exc)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("request %r (%s.%s) failed", request.request_id, request.resource, request.action)
            frame = self.protocol.error(
                request.request_id, ActionError(ErrorCode.INTERNAL_ERROR, INTERNAL_ERROR_TEXT)
            )
        if self.send_frame(frame):
            await self.drained()  # a peer that does not read its replies holds its in-flight slots

    # -- sending ------------------------------------------------------------

    def send_frame(self, frame: str | Frame) -> bool:
        """Queue one encoded text frame; True when the peer is congested (await `drained`).

        Frames go out in order through the connection's `Outbox`; a peer
        that stays congested for ``limits.send_timeout`` is closed as a slow
        consumer. A closed socket drops the frame silently; a socket refused
        at open (the gateway is shutting down) has no outbox and sends nothing.
        """
        return self.outbox.send(frame) if self.outbox is not None else False

    async def drained(self) -> None:
        """Wait until the peer has read down to ``limits.send_queue_bytes`` (or is closed)."""
        if self.outbox is not None:
            await self.outbox.drained()

    # -- subscriptions ------------------------------------------------------

    async def subscribe(self, channel: str, fields: list[str] | tuple[str, ...] | None = None) -> str:
        """Listen to a concrete ``channel``; events flow once this returns."""
        await self.join(channel, fields)
        return channel

    async def join(self, channel: str, fields: list[str] | tuple[str, ...] | None = None,
                   since: Position | None = None) -> Joined | None:
        """Listen to a concrete ``channel``; on a channel with history, say where the subscription began.

        With ``since`` (an earlier position of this client) the events
        missed since then are sent first; `Joined.recovered` says whether
        they could be. Returns None on channels without history.
        """
        topic, _ = self.gateway.find_topic(channel)
        limit = self.gateway.limits.max_subscriptions
        if limit is not None and channel not in self.channels and len(self.channels) >= limit:
            raise ActionError(ErrorCode.LIMIT_EXCEEDED, "too many subscriptions on this connection",
                              {"limit": "max_subscriptions", "max": limit})
        view = View(self.protocol, topic.select(fields))
        fanout = self.gateway.fanout
        joined = None
        try:
            if topic.history is None:
                await fanout.add(self, channel, view)
            else:
                joined = await fanout.add_logged(self, channel, view, topic.history, since)
        except BaseException:  # refused, timed out or cancelled mid-join (e.g. a replay): not subscribed
            fanout.discard(self, channel)
            self.channels.discard(channel)
            raise
        if self.ws_connection is None:  # closed while joining
            fanout.discard(self, channel)
            self.channels.discard(channel)
        else:
            # Subscribing again (other fields) swaps the view in place: the channel is never left, so no
            # event falls between the old view and the new one.
            fanout.keep_only(self, channel, view)
            self.channels.add(channel)
        return joined

    async def unsubscribe(self, channel: str) -> bool:
        """Stop listening to ``channel``; False if this connection was not listening."""
        if channel not in self.channels:
            return False
        self.channels.discard(channel)
        self.gateway.fanout.discard(self, channel)
        return True
