"""The Tornado fence: the raw send path against Tornado's own, and a loud failure if Tornado changes.

The raw send path's frames are byte for byte Tornado's (`text_frame`'s own
bytes are checked in tests/wire/test_frame.py); a Tornado that lost what the
fence relies on fails at import, naming its version; and only `tornado_internals`
names Tornado's private members (the package's source is read for any other
module naming one of them, or reaching into a private name of a tornado module).
"""

from __future__ import annotations

import ast
import asyncio
import collections
import importlib
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import tornado
import tornado.tcpserver
import tornado.util
import tornado.web
import tornado.websocket
from tornado.iostream import IOStream
from tornado.websocket import WebSocketHandler

from drizzle_gateway.runtime.flusher import Flusher
from drizzle_gateway.transport import tornado_internals
from drizzle_gateway.transport.outbox import Outbox
from drizzle_gateway.wire.frame import Frame
from tests.support.fences import breaches, named, private_library_names, problems
from tests.support.raw_frames import TornadoWrites, first_frame, text_of

ROOT = Path(__file__).resolve().parent.parent.parent
SIZES = (0, 125, 126, 65535, 65536)


class OutboxWrites(WebSocketHandler):
    """Sends the message `TornadoWrites` sends through drizzle_gateway's `Outbox`, as a reply (``?as=reply``)
    or an event."""

    def open(self) -> None:
        text = text_of(int(self.get_argument("size")))
        outbox = Outbox(self, limit=1 << 20, flusher=Flusher())
        outbox.send(text if self.get_argument("as") == "reply" else Frame(text))


@pytest.fixture
def app() -> tornado.web.Application:
    return tornado.web.Application([("/tornado", TornadoWrites), ("/outbox", OutboxWrites)])


@pytest.mark.gen_test
@pytest.mark.parametrize("size", SIZES)
async def test_the_raw_send_path_writes_tornados_frames_byte_for_byte(http_server, http_port, size):
    tornados = await first_frame(http_port, f"/tornado?size={size}")
    for sent_as in ("reply", "event"):
        assert await first_frame(http_port, f"/outbox?size={size}&as={sent_as}") == tornados, sent_as


def test_the_installed_tornado_has_what_the_send_path_reads():
    assert tornado_internals.missing() == []
    assert tornado.version_info[0] == 6  # setup.cfg: tornado>=6.3,<7


BREAKAGES = {
    "write_buffer renamed": """
        original = tornado.iostream.BaseIOStream.__init__
        def __init__(self, *args, **kwargs):
            original(self, *args, **kwargs)
        tornado.iostream.BaseIOStream.__init__ = __init__
    """,
    "write buffer's queue renamed": """
        original = tornado.iostream._StreamBuffer.__init__
        def __init__(self):
            original(self)
        tornado.iostream._StreamBuffer.__init__ = __init__
    """,
    "write buffer without len": """
        del tornado.iostream._StreamBuffer.__len__
    """,
    "compressor renamed": """
        original = tornado.websocket.WebSocketProtocol13.__init__
        def __init__(self, *args, **kwargs):
            original(self, *args, **kwargs)
        tornado.websocket.WebSocketProtocol13.__init__ = __init__
    """,
    "frame loop renamed": """
        original = tornado.websocket.WebSocketProtocol13._accept_connection
        async def _accept_connection(self, handler):
            await original(self, handler)
        tornado.websocket.WebSocketProtocol13._accept_connection = _accept_connection
    """,
}


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_a_tornado_without_them_fails_at_import_naming_its_version(breakage):
    script = "import tornado, tornado.iostream, tornado.websocket\n" + textwrap.dedent(BREAKAGES[breakage]) + (
        "import drizzle_gateway\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: drizzle_gateway's websocket layer does not support Tornado "
                           f"{tornado.version}: "), result.stderr
    assert "tornado>=6.3,<7" in last


@pytest.mark.gen_test
async def test_a_stream_with_slim_queues_writes_everything_in_order_and_resolves_every_write():
    """Small and large writes pile up behind a reader that stalls: first in the short lists, then in deques."""
    ours, theirs = socket.socketpair()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    writer, reader = IOStream(ours), IOStream(theirs)
    try:
        tornado_internals.slim_queues(writer)
        assert type(writer._write_futures) is not collections.deque  # a short list while the stream is idle
        chunks = [bytes([i % 251]) * (10 if i % 3 else 5000) for i in range(300)]  # merged small, queued large
        writes = [writer.write(chunk) for chunk in chunks]
        assert not all(write.done() for write in writes)  # the socket balked: the queues hold what waits
        # Grown past SHORT_QUEUE entries, each queue is a deque again (no quadratic draining), holding them all.
        assert type(writer._write_futures) is collections.deque and len(writer._write_futures) > 100
        assert type(writer._write_buffer._buffers) is collections.deque
        expected = b"".join(chunks)
        received = await asyncio.wait_for(reader.read_bytes(len(expected)), 10)
        assert received == expected
        await asyncio.wait_for(asyncio.gather(*writes), 10)
        assert tornado_internals.write_buffer_size(writer) == 0
    finally:
        writer.close()
        reader.close()


# -- the fence: only tornado_internals names Tornado's private members ----------------


def test_only_the_fence_names_tornados_private_members_or_reaches_into_its_private_names():
    assert "_handle_message" in tornado_internals.PRIVATE_NAMES
    assert breaches("tornado_internals.py", tornado_internals.PRIVATE_NAMES, "tornado") == {}


def test_the_scans_see_a_breach():
    """The scans above, on a module that does what only the fence may do."""
    tree = ast.parse("import tornado.util\nfrom tornado.websocket import _WebSocketParams\n"
                     "class ChunkReader:\n    def f(self):\n        self._abort()\n"
                     "        return tornado.util._websocket_mask\n")
    assert named(tree, tornado_internals.PRIVATE_NAMES) == [(2, "_WebSocketParams"), (5, "_abort"),
                                                             (6, "_websocket_mask")]
    assert sorted(private_library_names(tree, "tornado")) == [(2, "tornado.websocket._WebSocketParams"),
                                                              (6, "tornado.util._websocket_mask")]


TORNADO_LOSSES = {
    "_websocket_mask": (tornado.util, "tornado.util._websocket_mask is gone"),
    "_handle_connection": (tornado.tcpserver.TCPServer, "TCPServer._handle_connection is gone"),
    "_WebSocketParams": (tornado.websocket, "tornado.websocket._WebSocketParams is gone"),
    "_handle_message": (tornado.websocket.WebSocketProtocol13, "WebSocketProtocol13._handle_message is gone"),
}


@pytest.mark.parametrize("name", TORNADO_LOSSES)
def test_the_fence_refuses_a_tornado_without_a_name_it_relies_on(monkeypatch, name):
    owner, problem = TORNADO_LOSSES[name]
    monkeypatch.delattr(owner, name)
    with pytest.raises(ImportError) as refused:
        importlib.reload(tornado_internals)
    assert problems(str(refused.value), f"drizzle_gateway's websocket layer does not support Tornado {tornado.version}",
                    "tornado>=6.3,<7", "a Tornado") == [problem]
    monkeypatch.undo()
    assert tornado_internals.missing() == []
