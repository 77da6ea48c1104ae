"""Reading a websocket's frames a chunk at a time, rather than three reads per frame.

Tornado's reader asks its ``IOStream`` for each frame's header, then its mask,
then its payload. A frame that arrives whole is thus read in three steps, and
the first leaves bytes behind in the stream, which makes the stream stop and
restart listening to its socket (two selector updates) on every frame.
`ChunkReader` takes whatever the socket holds (``read_bytes(partial=True)``),
parses every complete frame in it, and reads exactly what is missing of a
frame that was cut short. Each frame then goes to Tornado's own handling
(`Protocol13.handle_message`), so what a frame does (text, binary, ping,
pong, close) is Tornado's doing, unchanged.

The checks are Tornado's, in its order (RFC 6455): reserved bits, a control
frame over 125 bytes or fragmented, a continuation with nothing to continue,
or a new message inside a fragmented one abort the connection; a message
over ``max_message_size`` closes it with 1009 before its payload is read.
Beyond Tornado (RFC 6455, 5.1): an unmasked frame from the client closes the
connection with 1002. Every frame that is not a whole message (a control
frame, a fragment that does not end its message) is offered to `admit`
first; a frame it refuses closes the connection with 1008.
Connections that negotiated per-message compression keep Tornado's reader.
At most one chunk (64 KiB) is read ahead of the frame being handled, so a
handler that holds back reading still pushes back on its peer through TCP.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from tornado.iostream import StreamClosedError

from .tornado_internals import Protocol13, websocket_mask

if TYPE_CHECKING:
    from asyncio import Future

CHUNK_BYTES = 65536
"""The most a single read takes from the socket."""

_FIN, _RESERVED, _OPCODE, _CONTROL = 0x80, 0x70, 0x0F, 0x08
_MASKED, _LENGTH = 0x80, 0x7F
_U16, _U64 = struct.Struct("!H").unpack_from, struct.Struct("!Q").unpack_from
_YIELD_EVERY = 256 * 1024  # as Tornado: let other connections run after this much work (bytes, 1 KiB per frame)
_FRAME_COST = 1024


class ChunkReader(Protocol13):
    """Tornado's websocket protocol, reading its peer's frames a chunk at a time (see the module)."""

    __slots__ = ("frames_ahead",)

    frames_ahead: bool
    """Whether more of the chunk follows the message being handled: its reply may wait to go out with theirs."""

    def receive_frames(self) -> Coroutine[Any, Any, None]:
        """Read and handle the peer's frames a chunk at a time, until the connection ends."""
        self.frames_ahead = False
        if self.inflates:  # compressed frames: Tornado's reader, which inflates them
            return super().receive_frames()
        return self._receive_chunks()

    async def _receive_chunks(self) -> None:
        """Read, parse and handle frames until the peer closes (one coroutine: it lives as long as the connection)."""
        try:
            stream = self.stream
            assert stream is not None
            unparsed = b""  # the start of a frame whose header is not complete yet
            work = 0
            read_since_turn = False  # a message was handled since this reader last let a loop turn pass
            while not self.client_terminated:
                chunk = await stream.read_bytes(CHUNK_BYTES, partial=True)
                self.count_bytes_in(len(chunk))
                data = unparsed + chunk if unparsed else chunk
                at = 0
                while not self.client_terminated:
                    have = len(data) - at
                    if have < 2:
                        break
                    head, second = data[at], data[at + 1]
                    length, header = second & _LENGTH, 2
                    if length == 126:
                        if have < 4:
                            break
                        length, header = _U16(data, at + 2)[0], 4
                    elif length == 127:
                        if have < 10:
                            break
                        length, header = _U64(data, at + 2)[0], 10
                    if not self._acceptable(head, second, length):
                        return
                    masked = second & _MASKED
                    if masked:
                        header += 4
                    end = at + header + length
                    if end > len(data):  # the mask or payload is cut short: read exactly what is missing
                        rest = await stream.read_bytes(end - len(data))
                        self.count_bytes_in(len(rest))
                        data, end, at = data[at:] + rest, end - at, 0
                    payload = data[at + header:end]
                    if masked:
                        payload = websocket_mask(data[at + header - 4:at + header], payload)
                    at = end
                    self.frames_ahead = len(data) - at >= 2  # another frame (or its start) was read with this one
                    handled = self._frame(head, payload)
                    if handled is not None:
                        await handled
                    elif head & _OPCODE < _CONTROL:
                        read_since_turn = True
                    work += _FRAME_COST + header + length
                    if work >= _YIELD_EVERY:
                        work = 0
                        await asyncio.sleep(0)
                unparsed = data[at:]
                if read_since_turn:  # every whole frame of the chunk is handled: the next turn reads on
                    read_since_turn = False
                    if not self.settle():
                        await next_turn()
        except StreamClosedError:
            self.abort_connection()
        finally:
            self.handler.on_ws_connection_close(self.close_code, self.close_reason)

    def reads_ahead(self) -> bool:
        """Whether this reader handles every frame already read before letting a loop turn pass.

        When it does, a handler need not hold reading back for a turn after each message (see
        `next_turn`): it is held back once the frames in hand run out. Compressed connections keep
        Tornado's reader, which reads on as soon as a message's handler returns.
        """
        return not self.inflates

    def settle(self) -> bool:
        """The chunk's messages are handled: True to read on at once, False to let a loop turn pass first.

        Always False here; a subclass may finish what the chunk started and send its replies first.
        """
        return False

    def admit(self) -> bool:
        """Whether one more frame that is not a whole message may be handled (always; subclasses may count)."""
        return True

    def _refuse(self, code: int, reason: str) -> None:
        self.close(code, reason)
        self.abort_connection()

    def _acceptable(self, head: int, second: int, length: int) -> bool:
        """Whether a frame with this header may be read; if not, the connection is aborted or closed (1002, 1009)."""
        if head & _RESERVED or (head & _CONTROL and second & _LENGTH >= 126):
            self.abort_connection()  # no extension was negotiated; control frames carry at most 125 bytes
            return False
        if not second & _MASKED:
            self._refuse(1002, "client frames must be masked")
            return False
        fragments = self.fragments
        if length + (len(fragments) if fragments is not None else 0) > self.params.max_message_size:
            self._refuse(1009, "message too big")
            return False
        return True

    def _frame(self, head: int, payload: bytes) -> Future[None] | None:
        """Hand a complete message to Tornado (`handle_message`); collect fragments until the final one."""
        opcode = head & _OPCODE
        final = head & _FIN
        if (opcode & _CONTROL or not final) and not self.admit():
            self._refuse(1008, "too many frames")
            return None
        if opcode & _CONTROL:  # may come between the fragments of a message
            if not final:
                self.abort_connection()
                return None
            return self.handle_message(opcode, payload)
        fragments = self.fragments
        if opcode == 0:  # a continuation
            if fragments is None:
                self.abort_connection()
                return None
            fragments.extend(payload)
            if not final:
                return None
            opcode, payload = self.fragments_opcode, bytes(fragments)
            self.fragments = None
        elif fragments is not None:  # a new message before the fragmented one ended
            self.abort_connection()
            return None
        elif not final:
            self.fragments_opcode = opcode
            self.fragments = bytearray(payload)
            return None
        return self.handle_message(opcode, payload)


def next_turn() -> asyncio.Future[None]:
    """A future done on the next loop turn (a callback resolves it, so the waiter resumes a turn later).

    Reading a socket straight after a message would often find nothing and park it in epoll; a
    turn later the peer's next frame has often arrived and is read at once. Frames already read
    are handled first (`ChunkReader.reads_ahead`): pipelined requests and publishes from one peer
    then start together and share one flush of what they send.
    """
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    loop.call_soon(_resolve, future)
    return future


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
