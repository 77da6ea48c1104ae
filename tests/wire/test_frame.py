"""`wire.frame`: `text_frame` builds a server's websocket text frame, `Frame` builds its bytes once.

`text_frame`'s bytes are compared with the frame Tornado's own
``write_message`` puts on a real socket, at each boundary of the length
encoding (7-bit, 16-bit, 64-bit); `Frame` is checked to build them lazily
and only once, however many peers read them.
"""

from __future__ import annotations

import struct

import pytest
import tornado.web

from drizzle_gateway.wire import frame as frame_module
from drizzle_gateway.wire.frame import Frame, text_frame
from tests.support.raw_frames import TornadoWrites, first_frame, text_of

SIZES = (0, 1, 125, 126, 127, 65535, 65536)


@pytest.fixture
def app() -> tornado.web.Application:
    return tornado.web.Application([("/tornado", TornadoWrites)])


@pytest.mark.gen_test
@pytest.mark.parametrize("size", SIZES)
async def test_text_frame_is_byte_for_byte_the_frame_tornado_sends(http_server, http_port, size):
    tornados = await first_frame(http_port, f"/tornado?size={size}")
    assert text_frame(text_of(size).encode()) == tornados


LENGTH_FIELDS = {0: b"\x00", 125: b"\x7d", 126: b"\x7e\x00\x7e", 65535: b"\x7e\xff\xff",
                 65536: b"\x7f" + struct.pack("!Q", 65536)}
"""Payload size: the second byte of the header and the extended length after it (RFC 6455 section 5.2)."""


@pytest.mark.parametrize("size", LENGTH_FIELDS)
def test_text_frame_is_final_unmasked_text_with_the_shortest_length_encoding(size):
    length_field = LENGTH_FIELDS[size]
    payload = text_of(size).encode()
    built = text_frame(payload)
    assert built[0] == 0x81  # FIN, opcode 1 (text), no RSV bits
    assert built[1] & 0x80 == 0  # a server's frames are never masked
    assert built[1:1 + len(length_field)] == length_field
    assert built[1 + len(length_field):] == payload


def test_a_frame_carries_its_text_and_the_wire_bytes_of_that_text():
    text = "ünïcødé €"
    assert Frame(text).text == text
    assert Frame(text).wire == text_frame(text.encode())


def test_a_frame_builds_its_wire_bytes_lazily_and_once(monkeypatch):
    built: list[bytes] = []

    def counting(payload: bytes) -> bytes:
        built.append(payload)
        return text_frame(payload)

    monkeypatch.setattr(frame_module, "text_frame", counting)
    shared = Frame('{"topic":"chat.lobby","data":1}')
    assert built == []  # a frame nobody writes costs no bytes
    first = shared.wire
    for _ in range(1000):  # one event, a thousand subscribers
        assert shared.wire is first
    assert built == [b'{"topic":"chat.lobby","data":1}']


def test_a_frame_has_no_per_instance_dict():
    assert not hasattr(Frame("x"), "__dict__")  # one per published event: kept small with __slots__
