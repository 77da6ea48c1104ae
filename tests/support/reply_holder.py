"""A TCP proxy on 127.0.0.1 in front of a server, that can hold back what the server answers, then cut the links.

It runs on the test's event loop. `ReplyHolder.hold` stops passing the
server's bytes on to the client (they are dropped), so a request reaches
the server but its reply never reaches the client; `ReplyHolder.cut` then
closes every link, as a dropped connection would. New links pass
everything, both ways.
"""

from __future__ import annotations

import asyncio
import contextlib

from tests.support.ports import free_port

_CHUNK = 65536


class ReplyHolder:
    """Forwards ``127.0.0.1:port`` to ``127.0.0.1:target_port``."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._held: set[asyncio.StreamWriter] = set()  # client sides that get nothing from the server now

    async def start(self) -> ReplyHolder:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        return self

    def hold(self) -> None:
        """From now on, drop what the server sends on the links open now."""
        self._held = {writer for writer in self._writers if writer.get_extra_info("peername")[1] != self.target_port}

    def cut(self) -> None:
        """Close every open link."""
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()
        self._held.clear()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        self.cut()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, upstream_writer}
        await asyncio.gather(self._pump(reader, upstream_writer), self._pump(upstream_reader, writer),
                             return_exceptions=True)
        for each in (writer, upstream_writer):
            each.close()
            self._writers.discard(each)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while chunk := await reader.read(_CHUNK):
                if writer in self._held:
                    continue
                writer.write(chunk)
                await writer.drain()
        writer.close()
