"""Real redis-server and gateway processes for the scale-out tests.

Tests start their own ``redis-server`` on a free loopback port (never a
Redis they did not start), and may kill and restart it. Without the
binary they skip with the reason, unless ``DRIZZLE_REQUIRE_REDIS=1``
(set in CI), where they fail instead.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
REQUIRED = os.environ.get("DRIZZLE_REQUIRE_REDIS") == "1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 10.0, process: subprocess.Popen | None = None) -> None:
    """Block until something accepts connections on 127.0.0.1:``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout}s")


def no_redis(reason: str) -> None:
    """Skip (or fail, when redis is required) the current test."""
    if REQUIRED:
        pytest.fail(f"{reason} (DRIZZLE_REQUIRE_REDIS=1)")
    pytest.skip(reason)


class RedisServer:
    """A throw-away redis-server on a loopback port, without persistence."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            no_redis("redis-server is not installed (apt-get install redis-server)")
        self.binary = binary
        self.port = free_port()
        self.workdir = tempfile.mkdtemp(prefix="drizzle-redis-")
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start (or restart) the server on the same port."""
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.workdir, "--protected-mode", "yes", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_port(self.port, process=self.process)
        except (RuntimeError, TimeoutError) as exc:
            self.stop()
            no_redis(f"redis-server did not start: {exc}")
        return self

    def kill(self) -> None:
        """Kill the server abruptly (SIGKILL), as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        self.process = None

    def freeze(self) -> None:
        """Stop the server (SIGSTOP): connections stay open, nothing answers."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """Resume a frozen server (SIGCONT)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        shutil.rmtree(self.workdir, ignore_errors=True)


class GatewayProcess:
    """``drizzle-gateway serve tests.serve_app:make_unthrottled_gateway --redis URL`` in a subprocess."""

    def __init__(self, redis_url: str, *extra: str, target: str = "tests.serve_app:make_unthrottled_gateway") -> None:
        self.port = free_port()
        self.log = tempfile.NamedTemporaryFile(prefix="drizzle-gw-", suffix=".log", delete=False)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "drizzle_gateway.cli", "serve", target, "--port", str(self.port),
             "--redis", redis_url, "--log-level", "INFO", *extra],
            cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT,
        )

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def wait_ready(self) -> GatewayProcess:
        wait_for_port(self.port, timeout=30, process=self.process)
        return self

    def logs(self) -> str:
        return Path(self.log.name).read_text()

    def stop(self) -> int | None:
        """SIGTERM, as an orchestrator would; the exit code (None if it had to be killed)."""
        code: int | None = self.process.poll()
        if code is None:
            self.process.terminate()
            try:
                code = self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return code

    def remove_log(self) -> None:
        Path(self.log.name).unlink(missing_ok=True)


async def eventually(check, timeout: float, interval: float = 0.05):
    """Await ``check()`` until it returns a truthy value; the value, or None at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await check()
        if value or loop.time() >= deadline:
            return value
        await asyncio.sleep(interval)


class BareSubscriber:
    """A minimal websocket subscriber that reads frames in bulk.

    The 1,000-subscriber test receives a million events; a full client per
    subscriber would spend the test's time decoding them one by one. This
    one does the real handshake, sends one ``__subscribe__`` frame, and then
    only splits the byte stream into frames, keeping their payloads (and
    answering the server's heartbeat pings).
    """

    def __init__(self, url: str) -> None:
        host_port = url.split("://", 1)[1].split("/", 1)[0]
        self.host, port = host_port.rsplit(":", 1)
        self.port = int(port)
        self.path = "/" + url.split("://", 1)[1].split("/", 1)[1]
        self.payloads: list[bytes] = []
        self._buffer = bytearray()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def subscribe(self, topic: str) -> None:
        """Handshake, subscribe, and wait for the subscription's reply."""
        import base64
        import json

        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        key = base64.b64encode(os.urandom(16)).decode()
        self._writer.write(
            f"GET {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Protocol: drizzle.v1\r\n\r\n".encode()
        )
        head = await self._reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        request = json.dumps({"request_id": 1, "action": "__subscribe__", "data": {"topic": topic}}).encode()
        assert len(request) < 126
        # A client frame must be masked; an all-zero mask leaves the payload as it is.
        self._writer.write(bytes([0x81, 0x80 | len(request)]) + b"\0\0\0\0" + request)
        reply = json.loads((await self.frames(1))[0])
        assert reply == {"request_id": 1, "data": {"topic": topic}}, reply
        self.payloads.clear()

    async def frames(self, count: int) -> list[bytes]:
        """Read until ``count`` text frames have arrived in all; all payloads so far."""
        assert self._reader is not None
        while len(self.payloads) < count:
            chunk = await self._reader.read(1 << 16)
            if not chunk:
                raise ConnectionError(f"closed after {len(self.payloads)} frames")
            self._buffer += chunk
            self._split()
        return self.payloads

    def _split(self) -> None:
        buffer, start, size = self._buffer, 0, len(self._buffer)
        while size - start >= 2:
            length, offset = buffer[start + 1] & 0x7F, start + 2
            if length == 126:
                if size - offset < 2:
                    break
                length, offset = int.from_bytes(buffer[offset:offset + 2], "big"), offset + 2
            elif length == 127:
                if size - offset < 8:
                    break
                length, offset = int.from_bytes(buffer[offset:offset + 8], "big"), offset + 8
            if size - offset < length:
                break
            payload = bytes(buffer[offset:offset + length])
            if buffer[start] == 0x89:  # the server's heartbeat ping: answer it with a (masked) pong
                assert self._writer is not None
                self._writer.write(bytes([0x8A, 0x80 | len(payload)]) + b"\0\0\0\0" + payload)
            else:
                assert buffer[start] == 0x81, f"expected a final text frame, got opcode byte {buffer[start]:#x}"
                self.payloads.append(payload)
            start = offset + length
        del buffer[:start]

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


@pytest.fixture(scope="module")
def redis_server():
    """A redis-server of the test module's own, stopped after the module."""
    server = RedisServer().start()
    yield server
    server.stop()
