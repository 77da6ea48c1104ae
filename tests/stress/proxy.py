"""A TCP proxy on 127.0.0.1 between a gateway and its Redis, that can cut the link or slow it down.

It runs on the test's event loop. `Proxy.cut` closes every connection and
refuses new ones for a while; `Proxy.delay` holds every chunk, both ways,
for a fixed latency before passing it on (the order of bytes is kept).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from tests.support.ports import free_port

logger = logging.getLogger("drizzle_gateway")

_CHUNK = 65536


class Proxy:
    """Forwards ``127.0.0.1:port`` to ``127.0.0.1:target_port``."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.latency = 0.0
        self.cuts = 0
        self._refuse_until = 0.0
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.Task] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    def url(self, db: int = 0) -> str:
        """The Redis URL that goes through this proxy."""
        return f"redis://127.0.0.1:{self.port}/{db}"

    async def start(self) -> Proxy:
        """Listen."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        return self

    async def close(self) -> None:
        """Stop listening and close every link; returns once they are gone."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        self._drop_all()
        if self._links:
            await asyncio.wait(list(self._links), timeout=5)

    def cut(self, seconds: float) -> None:
        """Close every open link now and refuse new ones (accept, then close) for ``seconds``."""
        self.cuts += 1
        self._refuse_until = asyncio.get_running_loop().time() + seconds
        self._drop_all()

    def delay(self, seconds: float) -> None:
        """From now on, hold every chunk ``seconds`` before passing it on (0: no latency)."""
        self.latency = seconds

    @property
    def links(self) -> int:
        """How many client connections are open through the proxy."""
        return len(self._links)

    def _drop_all(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        if loop.time() < self._refuse_until:
            writer.transport.abort()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", self.target_port), 2.0)
        except (OSError, TimeoutError):
            writer.transport.abort()
            return
        self._writers.update((writer, upstream_writer))
        task = asyncio.current_task()
        assert task is not None
        self._links.add(task)
        try:
            await asyncio.gather(self._pump(reader, upstream_writer), self._pump(upstream_reader, writer))
        finally:
            self._links.discard(task)
            for end in (writer, upstream_writer):
                self._writers.discard(end)
                end.transport.abort()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copy one direction, each chunk held ``latency`` seconds after it was read, in order."""
        loop = asyncio.get_running_loop()
        held: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def release() -> None:
            while True:
                due, chunk = await held.get()
                if not chunk:
                    return
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(chunk)
                await writer.drain()

        releaser = asyncio.ensure_future(release())
        try:
            while not releaser.done():
                try:
                    chunk = await reader.read(_CHUNK)
                except (OSError, ConnectionError):
                    chunk = b""
                held.put_nowait((loop.time() + self.latency, chunk))
                if not chunk:
                    break
            with contextlib.suppress(OSError, ConnectionError):
                await releaser
        finally:
            releaser.cancel()
            writer.transport.abort()
