"""The server side of a scenario, run in its own process and driven over a pipe."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import resource
import time
from multiprocessing.connection import Connection as Pipe
from typing import Any

from bench.app import GatewayServer, SocketIOServer, TornadoServer, padded_text, tick
from drizzle_gateway import Limits
from tests.support.procstat import peak_rss_bytes, rss_bytes

logger = logging.getLogger("bench")

PROGRESS_POLL = 0.0002


def raise_fd_limit() -> None:
    """Allow thousands of sockets in this process."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(hard, 65536), max(hard, 65536)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


KINDS = ("gateway", "gateway-no-metrics", "gateway-no-busy-poll", "tornado", "picows", "socketio")
"""The servers a scenario can run: the gateway (its defaults: metrics on, busy polling), two variants, the baselines."""


def make(kind: str, options: dict[str, Any]):
    if kind == "gateway":
        return GatewayServer(**options)
    if kind == "gateway-no-metrics":
        return GatewayServer(metrics=False, **options)
    if kind == "gateway-no-busy-poll":
        return GatewayServer(limits=Limits(rate=None, busy_poll=None), **options)
    if kind == "tornado":
        return TornadoServer()
    if kind == "picows":
        from bench.picows_server import PicowsServer

        return PicowsServer()
    if kind == "socketio":
        return SocketIOServer()
    raise ValueError(kind)


async def listen(kind: str, server, port: int) -> None:
    if kind == "socketio":
        from aiohttp import web

        runner = web.AppRunner(server.app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, backlog=4096).start()
    elif kind == "picows":
        await server.listen(port)
    else:
        server.app.listen(port, "127.0.0.1", backlog=4096)


class Publisher:
    """Publishes numbered ticks with a window of messages not yet received by every client."""

    def __init__(self, server, progress) -> None:
        self.server = server
        self.progress = progress
        self.seq = 0
        self.rss_before_bursts: int | None = None

    def received(self) -> int:
        return sum(self.progress)

    async def run(self, count: int, window: int, burst: int, stall: float) -> dict[str, Any]:
        """Publish ``count`` ticks; give up waiting once no client has received anything for ``stall`` s."""
        subscribers = self.server.subscribers()
        base = self.received()
        started, cpu = time.monotonic(), time.process_time()
        for i in range(count):
            await self.server.publish(tick(self.seq, time.monotonic()))
            self.seq += 1
            if (i + 1) % burst == 0:
                await asyncio.sleep(0)
                await self.wait_until(base + (i + 1 - window) * subscribers, stall)
        await self.wait_until(base + count * subscribers, stall)
        elapsed = time.monotonic() - started
        return {"seconds": elapsed, "cpu": time.process_time() - cpu, "subscribers": subscribers,
                "published": count, "received": self.received() - base}

    async def burst(self, count: int, frame_bytes: int, stall: float) -> dict[str, Any]:
        """Publish ``count`` ticks of about ``frame_bytes`` each, awaiting only ``publish``, as a server loop would.

        The gateway's ``publish`` waits while subscribers are congested; bare
        Tornado's ``write_message`` never waits (it buffers without a bound).
        Then wait until every subscriber has read every tick, or until no
        client has received anything for ``stall`` s.
        """
        text = padded_text(frame_bytes)
        subscribers = self.server.subscribers()
        base = self.received()
        if self.rss_before_bursts is None:
            gc.collect()
            self.rss_before_bursts = rss_bytes()
        started, cpu = time.monotonic(), time.process_time()
        for _ in range(count):
            await self.server.publish(tick(self.seq, time.monotonic(), text))
            self.seq += 1
        publishing = time.monotonic() - started
        await self.wait_until(base + count * subscribers, stall)
        elapsed = time.monotonic() - started
        return {"seconds": elapsed, "publish_seconds": publishing, "cpu": time.process_time() - cpu,
                "subscribers": subscribers, "subscribers_after": self.server.subscribers(), "published": count,
                "received": self.received() - base,
                "peak_rss_growth": peak_rss_bytes() - self.rss_before_bursts}

    async def wait_until(self, received: int, stall: float) -> None:
        last, changed = self.received(), time.monotonic()
        while last < received:
            await asyncio.sleep(PROGRESS_POLL)
            now = self.received()
            if now != last:
                last, changed = now, time.monotonic()
            elif time.monotonic() - changed > stall:
                return


async def serve(kind: str, port: int, pipe: Pipe, progress, options: dict[str, Any]) -> None:
    server = make(kind, options)
    await listen(kind, server, port)
    publisher = Publisher(server, progress)
    loop = asyncio.get_running_loop()
    pipe.send("listening")
    while True:
        command, args = await loop.run_in_executor(None, pipe.recv)
        if command == "stop":
            pipe.send(None)
            return
        if command == "rss":
            gc.collect()
            pipe.send(rss_bytes())
        elif command == "subscribers":
            pipe.send(server.subscribers())
        elif command == "publish":
            pipe.send(await publisher.run(**args))
        elif command == "burst":
            pipe.send(await publisher.burst(**args))


def main(kind: str, port: int, progress, options: dict[str, Any], pipe: Pipe) -> None:
    """Process entry point."""
    raise_fd_limit()
    logging.basicConfig(level=logging.WARNING)
    profile_dir = os.environ.get("BENCH_PROFILE")  # a directory: write a cProfile of each server process there
    if not profile_dir:
        asyncio.run(serve(kind, port, pipe, progress, options))
        return
    import cProfile

    profiler = cProfile.Profile()
    profiler.runcall(asyncio.run, serve(kind, port, pipe, progress, options))
    profiler.dump_stats(os.path.join(profile_dir, f"{kind}-{os.getpid()}.prof"))
