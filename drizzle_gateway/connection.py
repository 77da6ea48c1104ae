"""One websocket connection: reads frames, runs requests, owns subscriptions."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from tornado.websocket import WebSocketClosedError, WebSocketHandler

from .eager import start
from .errors import ActionError, ErrorCode
from .fanout import View
from .outbox import Frame, Outbox
from .protocol import SUBPROTOCOL, InvalidFrame, Protocol, Request

if TYPE_CHECKING:
    from .gateway import Gateway

logger = logging.getLogger("drizzle_gateway")

INTERNAL_ERROR_TEXT = "internal error; the server log has the details"


class Connection(WebSocketHandler):
    """The Tornado handler behind the gateway's websocket route.

    Each request runs as its own task, so a slow action never holds back
    the replies of others. Subscriptions live exactly as long as the socket.
    """

    gateway: Gateway
    protocol: Protocol

    def initialize(self, gateway: Gateway, protocol: Protocol | None = None) -> None:
        self.gateway = gateway
        self.protocol = protocol or gateway.protocol
        self.user: Any = None
        self.channels: set[str] = set()
        self._tasks: set[asyncio.Task] = set()
        self.outbox: Outbox | None = None

    # -- Tornado hooks ------------------------------------------------------

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        """Speak ``drizzle.v1`` when asked; a client that asks for none is served too."""
        return SUBPROTOCOL if SUBPROTOCOL in subprotocols else None

    def check_origin(self, origin: str) -> bool:
        """Apply the gateway's origin policy."""
        return self.gateway.allows_origin(origin, self.request)

    def open(self, *args: str, **kwargs: str) -> None:
        self.set_nodelay(True)  # the outbox already coalesces small frames per loop turn; Nagle would only delay
        self.outbox = Outbox(self, self.gateway.send_queue_bytes, self.gateway.flusher)
        self.gateway.connections.add(self)

    def on_message(self, message: str | bytes) -> None:
        try:
            request = self.protocol.parse(message)
        except InvalidFrame as exc:
            self.send_frame(self.protocol.error(exc.request_id, exc))
            return
        task = start(self._serve(request))  # most requests finish here, without a task
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        """Close the websocket after the frames already queued for it."""
        if self.outbox is not None:
            self.outbox.flush()
        super().close(code, reason)

    def on_close(self) -> None:
        self.gateway.connections.discard(self)
        for task in self._tasks:
            task.cancel()
        for channel in self.channels:
            self.gateway.fanout.discard(self, channel)
        self.channels.clear()

    # -- requests -----------------------------------------------------------

    async def _serve(self, request: Request) -> None:
        try:
            result = await self.gateway.call(self, request)
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
        self.send_frame(frame)

    # -- sending ------------------------------------------------------------

    def send_frame(self, frame: str | Frame) -> None:
        """Queue one encoded text frame; a closed socket drops it silently.

        Frames go out in order through the connection's bounded `Outbox`; a
        peer that lets it overflow is closed as a slow consumer.
        """
        if self.outbox is not None:
            self.outbox.send(frame)
            return
        if self.ws_connection is None or self.ws_connection.is_closing():
            return
        try:
            self.write_message(frame.text if isinstance(frame, Frame) else frame)
        except WebSocketClosedError:
            pass

    # -- subscriptions ------------------------------------------------------

    async def subscribe(self, channel: str, fields: list[str] | tuple[str, ...] | None = None) -> str:
        """Listen to a concrete ``channel``; events flow once this returns."""
        topic, _ = self.gateway.find_topic(channel)
        view = View(self.protocol, topic.select(fields))
        if channel in self.channels:
            self.gateway.fanout.discard(self, channel)
        await self.gateway.fanout.add(self, channel, view)
        if self.ws_connection is None:  # closed while joining
            self.gateway.fanout.discard(self, channel)
        else:
            self.channels.add(channel)
        return channel

    async def unsubscribe(self, channel: str) -> bool:
        """Stop listening to ``channel``; False if this connection was not listening."""
        if channel not in self.channels:
            return False
        self.channels.discard(channel)
        self.gateway.fanout.discard(self, channel)
        return True
