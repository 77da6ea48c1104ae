"""The private parts of Tornado the gateway relies on, in one place, checked at import.

This is the one module that names Tornado's private members (``PRIVATE_NAMES``);
every other module reaches them through the names below, and
``tests/test_fences.py`` fails if one names them itself. Tornado has no public
accessor for what these give:

- `write_buffer_size`: how many bytes an ``IOStream`` still buffers for its
  socket (``BaseIOStream._write_buffer``, a ``_StreamBuffer`` supporting
  ``len()``), by which `drizzle_gateway.transport.outbox` judges flow control;
- `write_now`: a write handed straight to the socket when the stream holds
  nothing for it (``_write_buffer`` empty), sparing ``IOStream.write``'s future
  and buffer bookkeeping; what the socket does not take goes to ``write``;
- `slim_queues`: an ``IOStream``'s two write queues (``_write_futures`` and
  its ``_StreamBuffer``'s ``_buffers``, each a ``collections.deque``) moved to
  short lists, which cost 72 bytes empty where a deque costs 760: a tenth of
  what an idle connection holds (a queue that grows long becomes a deque again);
- `is_compressed`: whether per-message deflate was negotiated on a websocket
  (``WebSocketProtocol13._compressor``, None when it was not);
- `Protocol13`: Tornado's server-side websocket protocol with the members a
  reader needs under public names. `drizzle_gateway.transport.frame_reader` reads frames
  a chunk at a time in place of ``_receive_frame_loop`` (`receive_frames`) and
  hands them to ``_handle_message`` (`handle_message`), keeping the fragment
  state (``_fragmented_message_buffer`` and ``_fragmented_message_opcode``);
  and `Connection` holds back reading while ``max_in_flight`` requests run, so
  Tornado's heartbeat (``periodic_ping`` checks ``_received_pong``) asks
  `pong_received`, which the connection's protocol answers;
- `websocket_params` (``_WebSocketParams``) and `websocket_mask`
  (``tornado.util._websocket_mask``), what Tornado's own protocol is built and
  unmasks frames with;
- `connection_handler` and `register_listener`: what ``TCPServer.add_sockets``
  does with a listening socket (``_handle_connection``, ``_sockets``,
  ``_handlers``), for `drizzle_gateway.transport.server`' own accept loop.

Importing this module checks that the installed Tornado still has all of it, and
raises ImportError naming that Tornado version and what it lacks if it does not:
a rename in a future Tornado must fail loudly here, not quietly switch slow-consumer
protection off. ``install_requires`` bounds Tornado to the versions tested
(``tornado>=6.3,<7``).
"""

from __future__ import annotations

import collections
import socket
from collections.abc import Callable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any

import tornado
import tornado.iostream
import tornado.tcpserver
import tornado.util
import tornado.websocket

if TYPE_CHECKING:
    from asyncio import Future

    from tornado.iostream import BaseIOStream
    from tornado.tcpserver import TCPServer
    from tornado.websocket import WebSocketHandler, WebSocketProtocol

SUPPORTED = "tornado>=6.3,<7"
"""The Tornado versions this module is tested with (``install_requires`` says the same)."""

PRIVATE_NAMES = frozenset({
    "_write_buffer", "_StreamBuffer", "_compressor", "_decompressor", "_fragmented_message_buffer",
    "_fragmented_message_opcode", "_wire_bytes_in", "_received_pong", "_receive_frame_loop",
    "_accept_connection", "_handle_message", "_abort", "_WebSocketParams", "_websocket_mask",
    "_handle_connection", "_sockets", "_handlers", "_write_futures", "_buffers",
})
"""Every private Tornado name the package relies on; only this module names them."""


def _refers_to(function: Callable[..., Any] | None, attribute: str) -> bool:
    """True when ``function``'s code refers to ``attribute`` (by its bytecode, so no source file is needed)."""
    code = getattr(function, "__code__", None)
    return code is not None and attribute in code.co_names


def missing() -> list[str]:
    """What of the layout this module relies on the installed Tornado lacks ([] when all is there)."""
    problems = []
    if not _refers_to(tornado.iostream.BaseIOStream.__init__, "_write_buffer"):
        problems.append("BaseIOStream.__init__ no longer sets _write_buffer")
    if not _refers_to(tornado.iostream.BaseIOStream.__init__, "_write_futures"):
        problems.append("BaseIOStream.__init__ no longer sets _write_futures")
    buffer = getattr(tornado.iostream, "_StreamBuffer", None)
    if buffer is None or "__len__" not in vars(buffer):
        problems.append("tornado.iostream._StreamBuffer (the write buffer) no longer supports len()")
    elif not _refers_to(buffer.__init__, "_buffers"):
        problems.append("tornado.iostream._StreamBuffer.__init__ no longer sets _buffers")
    protocol = tornado.websocket.WebSocketProtocol13
    for attribute in ("_compressor", "_decompressor", "_fragmented_message_buffer", "_fragmented_message_opcode",
                      "_wire_bytes_in", "_received_pong"):
        if not _refers_to(protocol.__init__, attribute):
            problems.append(f"WebSocketProtocol13.__init__ no longer sets {attribute}")
    if not _refers_to(protocol.periodic_ping, "_received_pong"):
        problems.append("WebSocketProtocol13.periodic_ping no longer checks _received_pong")
    if not _refers_to(getattr(protocol, "_accept_connection", None), "_receive_frame_loop"):
        problems.append("WebSocketProtocol13._accept_connection no longer reads frames with _receive_frame_loop")
    for method in ("_receive_frame_loop", "_handle_message", "_abort"):
        if not callable(getattr(protocol, method, None)):
            problems.append(f"WebSocketProtocol13.{method} is gone")
    if not hasattr(tornado.websocket, "_WebSocketParams"):
        problems.append("tornado.websocket._WebSocketParams is gone")
    if not callable(getattr(tornado.util, "_websocket_mask", None)):
        problems.append("tornado.util._websocket_mask is gone")
    server = tornado.tcpserver.TCPServer
    if not callable(getattr(server, "_handle_connection", None)):
        problems.append("TCPServer._handle_connection is gone")
    for attribute in ("_sockets", "_handlers"):
        if not _refers_to(server.__init__, attribute):
            problems.append(f"TCPServer.__init__ no longer sets {attribute}")
    return problems


def check() -> None:
    """Raise ImportError naming the installed Tornado's version and what it lacks, if it lacks any of it."""
    problems = missing()
    if problems:
        raise ImportError(
            f"drizzle_gateway's websocket layer does not support Tornado {tornado.version}: " + "; ".join(problems)
            + f". It is tested with {SUPPORTED}; install a Tornado in that range."
        )


check()  # before anything below reads what may be missing

websocket_mask: Callable[[bytes, bytes], bytes] = tornado.util._websocket_mask
"""``websocket_mask(mask, data)``: ``data`` XORed with the 4-byte ``mask``, as Tornado unmasks frames."""


class Protocol13(tornado.websocket.WebSocketProtocol13):
    """Tornado's server-side websocket protocol, with the private members a frame reader needs under public names.

    A subclass reads the peer's frames by overriding `receive_frames` and judges
    Tornado's heartbeat by overriding `pong_received` and `set_pong_received`;
    by default both are Tornado's own.
    """

    __slots__ = ("_pong_seen",)  # beside Tornado's own attributes, whose instance dict stays a small shared-key one

    def _receive_frame_loop(self) -> Coroutine[Any, Any, None]:
        return self.receive_frames()  # handed on, not awaited here: one coroutine frame less per connection

    def receive_frames(self) -> Coroutine[Any, Any, None]:
        """Read and handle the peer's frames until the connection ends (Tornado's own reader unless overridden)."""
        return super()._receive_frame_loop()

    @property
    def _received_pong(self) -> bool:
        return self.pong_received()

    @_received_pong.setter
    def _received_pong(self, value: bool) -> None:
        self.set_pong_received(value)

    def pong_received(self) -> bool:
        """Whether a pong counts as received since the last ping (Tornado's heartbeat closes the connection if not)."""
        return self._pong_seen

    def set_pong_received(self, value: bool) -> None:
        """What Tornado records: True as a pong arrives, False as it sends a ping."""
        self._pong_seen = value

    @property
    def inflates(self) -> bool:
        """True when per-message deflate was negotiated: the peer's frames arrive compressed."""
        return self._decompressor is not None

    def count_bytes_in(self, size: int) -> None:
        """Count ``size`` bytes read from the socket in Tornado's wire statistics."""
        self._wire_bytes_in += size

    def abort_connection(self) -> None:
        """Close the stream at once, without a closing handshake (Tornado's reaction to a protocol violation)."""
        self._abort()

    def handle_message(self, opcode: int, data: bytes) -> Future[None] | None:
        """Hand a whole message (or a control frame) to Tornado, which acts on it as its own reader would."""
        return self._handle_message(opcode, data)

    @property
    def fragments(self) -> bytearray | None:
        """The payload of a fragmented message read so far (None outside one)."""
        return self._fragmented_message_buffer

    @fragments.setter
    def fragments(self, value: bytearray | None) -> None:
        self._fragmented_message_buffer = value

    @property
    def fragments_opcode(self) -> int:
        """The opcode of the fragmented message being read (its first frame's)."""
        # Tornado types _fragmented_message_opcode as None (inferred from its initial value); it holds an int.
        return self._fragmented_message_opcode  # type: ignore[return-value]

    @fragments_opcode.setter
    def fragments_opcode(self, value: int) -> None:
        self._fragmented_message_opcode = value  # type: ignore[assignment]  # see above: an int


def websocket_params(handler: WebSocketHandler) -> tornado.websocket._WebSocketParams:
    """The parameters ``WebSocketHandler.get_websocket_protocol`` builds Tornado's protocol with."""
    return tornado.websocket._WebSocketParams(
        ping_interval=handler.ping_interval, ping_timeout=handler.ping_timeout,
        max_message_size=handler.max_message_size, compression_options=handler.get_compression_options(),
    )


def write_buffer_size(stream: BaseIOStream) -> int:
    """Bytes ``stream`` still holds for its socket (0 once it is closed)."""
    buffer = stream._write_buffer
    return len(buffer) if buffer is not None else 0


def write_now(stream: BaseIOStream, data: bytes) -> Future[None] | None:
    """Write ``data`` to ``stream``'s socket; None when the socket took it all at once.

    When the stream holds nothing for its socket, ``data`` goes straight to
    the socket's ``send``. Whatever was not taken (all of it, when the
    stream holds bytes ahead of it) goes through ``stream.write``, whose
    future is returned: it resolves once the stream has written it. A send
    that fails is left to ``stream.write`` too, which meets the error again
    and closes the stream as Tornado does. Plain sockets only: a TLS stream
    always goes through ``write``. Raises ``StreamClosedError`` as
    ``write`` does.
    """
    sock = stream.socket if type(stream) is tornado.iostream.IOStream else None
    if sock is not None and not stream._write_buffer:
        try:
            sent = sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            return stream.write(data)
        if sent == len(data):
            return None
        if sent:
            data = memoryview(data)[sent:]  # type: ignore[assignment]  # IOStream.write takes any bytes-like
    return stream.write(data)


SHORT_QUEUE = 16
"""A write queue holds up to this many entries as a list; past that, its owner gets a deque in its place."""


class _Queue(list[Any]):
    """The part of ``collections.deque`` an ``IOStream`` uses for a write queue, on a list while it is short.

    An idle connection's queues are empty and a busy one's hold a few
    entries (a write's future until the socket takes it; a large write's
    view until it is sent), so taking the first off a short list costs no
    more than off a deque. A queue that grows past `SHORT_QUEUE` (many
    writes waiting on a slow socket) hands its entries to a deque that
    takes the list's place, so draining it never costs quadratic time.
    """

    __slots__ = ("_owner", "_name")

    def __init__(self, entries: Iterable[Any], owner: object, name: str) -> None:
        super().__init__(entries)
        self._owner = owner  # what holds this queue, as its attribute ``name``
        self._name = name

    def append(self, entry: Any) -> None:
        """Add ``entry`` at the end (past `SHORT_QUEUE` entries, to the deque that replaces this list)."""
        if len(self) < SHORT_QUEUE:
            super().append(entry)
            return
        setattr(self._owner, self._name, collections.deque((*self, entry)))
        self.clear()

    def popleft(self) -> Any:
        """Remove and return the first entry."""
        return self.pop(0)


def slim_queues(stream: BaseIOStream) -> None:
    """Move ``stream``'s write queues from deques (760 bytes each, empty) to short lists (72), keeping their entries.

    For plain and TLS streams whose writes go through ``IOStream.write``;
    a compressed websocket writes a frame at a time and keeps Tornado's deques.
    """
    stream._write_futures = _Queue(stream._write_futures, stream, "_write_futures")  # type: ignore[assignment]
    buffer = stream._write_buffer
    if buffer is not None:
        buffer._buffers = _Queue(buffer._buffers, buffer, "_buffers")  # type: ignore[assignment]


def is_compressed(protocol: WebSocketProtocol) -> bool:
    """True when per-message deflate was negotiated on this websocket (its frames must be compressed)."""
    return protocol._compressor is not None  # type: ignore[attr-defined]


def connection_handler(server: TCPServer) -> Callable[[socket.socket, Any], None]:
    """What ``server`` does with an accepted connection and its address (``TCPServer.add_sockets`` hands it on)."""
    return server._handle_connection


def register_listener(server: TCPServer, sock: socket.socket, stop: Callable[[], None]) -> None:
    """Record a listening socket as ``TCPServer.add_sockets`` does: ``server.stop()`` calls ``stop`` and closes it."""
    server._sockets[sock.fileno()] = sock
    server._handlers[sock.fileno()] = stop
