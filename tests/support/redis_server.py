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
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support.ports import free_port, wait_for_port

REPO = Path(__file__).resolve().parents[2]
REQUIRED = os.environ.get("DRIZZLE_REQUIRE_REDIS") == "1"


def no_redis(reason: str) -> None:
    """Skip (or fail, when redis is required) the current test."""
    if REQUIRED:
        pytest.fail(f"{reason} (DRIZZLE_REQUIRE_REDIS=1)")
    pytest.skip(reason)


class RedisServer:
    """A throw-away redis-server on a loopback port, without persistence unless ``appendonly``.

    With ``appendonly`` every write is fsynced to the append-only file before
    Redis answers (``--appendfsync always``), so a kill -9 loses nothing.
    """

    def __init__(self, appendonly: bool = False) -> None:
        self.appendonly = appendonly
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
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             *(("--appendonly", "yes", "--appendfsync", "always") if self.appendonly else ("--appendonly", "no")),
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
    """``drizzle-gateway serve tests.support.serve_app:make_unthrottled_gateway --redis URL`` in a subprocess."""

    DEFAULT_TARGET = "tests.support.serve_app:make_unthrottled_gateway"

    def __init__(self, redis_url: str, *extra: str, target: str = DEFAULT_TARGET) -> None:
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

    async def stopped(self) -> int | None:
        """`stop`, awaited in an executor: the loop's own clients answer the close frames, so no wait for them."""
        return await asyncio.get_running_loop().run_in_executor(None, self.stop)

    def remove_log(self) -> None:
        Path(self.log.name).unlink(missing_ok=True)


@contextmanager
def gateway_processes(redis_url: str, count: int, target: str = GatewayProcess.DEFAULT_TARGET) -> Iterator[list]:
    """``count`` ready `GatewayProcess` instances on one Redis; stopped (and their logs removed) on exit."""
    processes = [GatewayProcess(redis_url, target=target) for _ in range(count)]
    try:
        for process in processes:
            process.wait_ready()
        yield processes
    finally:
        for process in processes:
            process.stop()
            process.remove_log()


async def command_calls(observer: Any) -> dict[str, int]:
    """How many times Redis ran each command (``INFO commandstats``), by lower-case name; ``observer``: asyncio."""
    stats = await observer.info("commandstats")
    return {name.removeprefix("cmdstat_"): value["calls"] for name, value in stats.items()}
