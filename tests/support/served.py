"""``drizzle-gateway serve`` in a subprocess on a free port, with its log in a file the test reads as it grows."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from drizzle_gateway.client import Client, ConnectionClosed
from tests.support.ports import free_port, wait_for_port
from tests.support.redis_server import REPO


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive loopback ports nobody listens on right now."""
    for _ in range(100):
        first = free_port()
        if first + count - 1 > 65535:
            continue
        taken = []
        try:
            for port in range(first, first + count):
                sock = socket.socket()
                taken.append(sock)
                sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for sock in taken:
                sock.close()
        return first
    raise RuntimeError(f"no {count} consecutive free ports")


class Served:
    """``drizzle-gateway serve TARGET --port P ARGS...``; ``stop`` sends SIGTERM and returns the exit status."""

    def __init__(self, target: str, *args: str, port: int | None = None) -> None:
        self.port = port if port is not None else free_port()
        self.log = tempfile.NamedTemporaryFile(prefix="drizzle-served-", suffix=".log", delete=False)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "drizzle_gateway.cli", "serve", target, "--port", str(self.port), *args],
            cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def wait_ready(self, timeout: float = 30.0) -> Served:
        wait_for_port(self.port, timeout=timeout, process=self.process)
        return self

    def logs(self) -> str:
        return Path(self.log.name).read_text()

    async def logged(self, pattern: str, timeout: float = 10.0, count: int = 1) -> list[re.Match[str]]:
        """The log's matches of ``pattern`` once there are ``count``; fails after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            found = list(re.finditer(pattern, self.logs(), flags=re.MULTILINE))
            if len(found) >= count:
                return found
            if time.monotonic() >= deadline:
                raise AssertionError(f"the log has {len(found)} lines matching {pattern!r} after {timeout}s, "
                                     f"not {count}:\n{self.logs()}")
            await asyncio.sleep(0.05)

    def terminate(self) -> None:
        """SIGTERM, as an orchestrator sends it."""
        self.process.send_signal(signal.SIGTERM)

    async def exited(self, timeout: float = 30.0) -> int:
        """The exit status, awaited off the loop (its clients answer the close frames meanwhile)."""
        return await asyncio.get_running_loop().run_in_executor(None, lambda: self.process.wait(timeout))

    def kill(self) -> None:
        """Make sure it is gone, and its log too."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        Path(self.log.name).unlink(missing_ok=True)


async def ended(client: Client, timeout: float = 20.0) -> ConnectionClosed:
    """How ``client``'s connection ended (its events are skipped); fails if it does not end within ``timeout``."""
    async with asyncio.timeout(timeout):
        while True:
            try:
                await client.next_event(timeout)
            except ConnectionClosed as closed:
                return closed
