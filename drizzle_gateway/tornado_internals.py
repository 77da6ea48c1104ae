"""The private parts of Tornado the gateway relies on, in one place, checked at import.

`drizzle_gateway.outbox` writes websocket frames straight to a connection's
``IOStream`` and judges flow control by what that stream still holds. Tornado
has no public accessor for either fact it needs:

- how many bytes an ``IOStream`` still buffers for its socket
  (``BaseIOStream._write_buffer``, a ``_StreamBuffer`` supporting ``len()``);
- whether per-message deflate was negotiated on a websocket
  (``WebSocketProtocol13._compressor``, None when it was not).

`drizzle_gateway.frame_reader` reads frames a chunk at a time in place of
``WebSocketProtocol13._receive_frame_loop`` and hands them to its
``_handle_message``, keeping the protocol's fragment state
(``_fragmented_message_buffer`` and ``_fragmented_message_opcode``).

And `Connection` holds back reading while ``max_in_flight`` requests run;
the pongs a peer sent meanwhile wait unread behind its requests, so
Tornado's heartbeat (``periodic_ping`` checks ``_received_pong``) must not
count them as missing: `HeldReadProtocol` answers that check for it.

Importing this module checks that the installed Tornado still has all of it, and
raises ImportError naming that Tornado version if it does not: a rename in a
future Tornado must fail loudly here, not quietly switch slow-consumer
protection off. ``install_requires`` bounds Tornado to the versions tested
(``tornado>=6.3,<7``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import tornado
import tornado.ioloop
import tornado.iostream
import tornado.websocket

from .frame_reader import ChunkReader

if TYPE_CHECKING:
    from tornado.iostream import BaseIOStream
    from tornado.websocket import WebSocketProtocol

    from .connection import Connection


def _refers_to(function: Callable[..., Any], attribute: str) -> bool:
    """True when ``function``'s code refers to ``attribute`` (by its bytecode, so no source file is needed)."""
    code = getattr(function, "__code__", None)
    return code is not None and attribute in code.co_names


def missing() -> list[str]:
    """What of the layout this module relies on the installed Tornado lacks ([] when all is there)."""
    problems = []
    if not _refers_to(tornado.iostream.BaseIOStream.__init__, "_write_buffer"):
        problems.append("BaseIOStream.__init__ no longer sets _write_buffer")
    buffer = getattr(tornado.iostream, "_StreamBuffer", None)
    if buffer is None or "__len__" not in vars(buffer):
        problems.append("tornado.iostream._StreamBuffer (the write buffer) no longer supports len()")
    protocol = tornado.websocket.WebSocketProtocol13
    for attribute in ("_compressor", "_decompressor", "_fragmented_message_buffer", "_fragmented_message_opcode",
                      "_wire_bytes_in"):
        if not _refers_to(protocol.__init__, attribute):
            problems.append(f"WebSocketProtocol13.__init__ no longer sets {attribute}")
    if not _refers_to(protocol.periodic_ping, "_received_pong"):
        problems.append("WebSocketProtocol13.periodic_ping no longer checks _received_pong")
    if not _refers_to(protocol._accept_connection, "_receive_frame_loop"):
        problems.append("WebSocketProtocol13._accept_connection no longer reads frames with _receive_frame_loop")
    for method in ("_handle_message", "_abort"):
        if not callable(getattr(protocol, method, None)):
            problems.append(f"WebSocketProtocol13.{method} is gone")
    if not hasattr(tornado.websocket, "_WebSocketParams"):
        problems.append("tornado.websocket._WebSocketParams is gone")
    return problems


def check() -> None:
    """Raise ImportError naming the installed Tornado's version if it lacks what the send path reads."""
    problems = missing()
    if problems:
        raise ImportError(
            f"drizzle_gateway's websocket layer does not support Tornado {tornado.version}: " + "; ".join(problems)
            + ". It is tested with tornado>=6.3,<7; install a Tornado in that range."
        )


class HeldReadProtocol(ChunkReader):
    """Tornado's server-side websocket protocol, reading a chunk at a time, whose heartbeat excuses a held peer.

    Control frames and fragments count against the handler's frame rate (`ChunkReader.admit`).
    The heartbeat part: the handler says whether it held back reading at any time since a
    moment (``handler.reading_held_since(when)``); a pong is then counted
    as received, since it may wait unread behind the peer's requests.
    """

    handler: Connection  # what `held_read_protocol` is given

    def admit(self) -> bool:
        """A control frame or a fragment takes a token of the connection's rate (``handler.admits_frame()``)."""
        return bool(self.handler.admits_frame())

    @property
    def _received_pong(self) -> bool:
        return self._pong_seen or self.handler.reading_held_since(self._pinged_at)

    @_received_pong.setter
    def _received_pong(self, value: bool) -> None:
        self._pong_seen = value
        if not value:  # Tornado clears it as it sends a ping
            self._pinged_at = tornado.ioloop.IOLoop.current().time()


def held_read_protocol(handler: Connection) -> HeldReadProtocol | None:
    """What ``WebSocketHandler.get_websocket_protocol`` makes, as a `HeldReadProtocol`."""
    if handler.request.headers.get("Sec-WebSocket-Version") != "13":
        return None
    params = tornado.websocket._WebSocketParams(
        ping_interval=handler.ping_interval, ping_timeout=handler.ping_timeout,
        max_message_size=handler.max_message_size, compression_options=handler.get_compression_options(),
    )
    return HeldReadProtocol(handler, False, params)


def write_buffer_size(stream: BaseIOStream) -> int:
    """Bytes ``stream`` still holds for its socket (0 once it is closed)."""
    buffer = stream._write_buffer
    return len(buffer) if buffer is not None else 0


def is_compressed(protocol: WebSocketProtocol) -> bool:
    """True when per-message deflate was negotiated on this websocket (its frames must be compressed)."""
    return protocol._compressor is not None  # type: ignore[attr-defined]


check()
