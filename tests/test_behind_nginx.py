"""The README's nginx site, run as written in front of a real gateway process.

The site is the README's ``nginx`` block with two ports changed and nothing
else: the upstream's (``server 127.0.0.1:8888;``, the gateway's port) and
the one nginx listens on (``listen 80;``). The gateway runs as
``drizzle-gateway serve ... --trusted-proxy 127.0.0.1 --log-format json``,
once reading ``X-Forwarded-For`` and once ``Forwarded``. It throttles
failed authentications at `proxied_app.BURST` per address.

Each client binds its socket to a loopback address of its own (127.0.0.2,
127.0.0.3...), which is the address nginx sees as ``$remote_addr`` and
the gateway should see as the client. nginx itself connects from 127.0.0.1,
the trusted proxy.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from drizzle_gateway.client import Client
from tests.support.handshakes import handshake_status
from tests.support.logged_lines import Lines
from tests.support.nginx import Nginx
from tests.support.ports import free_port, wait_for_port
from tests.support.proxied_app import BURST

ROOT = Path(__file__).resolve().parent.parent
COMMAND = str(Path(sys.executable).with_name("drizzle-gateway"))
UPSTREAM = "server 127.0.0.1:8888;"  # placeholder: the gateway's port
LISTEN = "listen 80;"  # placeholder: nginx's port


def readme_site() -> str:
    """The README's nginx block, exactly as written."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("### Behind a reverse proxy"):text.index("### TLS")]
    [block] = re.findall(r"```nginx\n(.*?)```", section, re.S)
    return block


@dataclass
class Stack:
    """nginx on ``port`` in front of a gateway process on ``gateway_port``, whose JSON log lines are ``log``."""

    port: int
    gateway_port: int
    log: Lines

    def access(self, client: str, count: int) -> list[dict]:
        """The first ``count`` access lines of handshakes the gateway counted as ``client``'s."""
        lines = self.log.matching(lambda line: f'"client": "{client}"' in line and "tornado.access" in line, count)
        return [json.loads(line) for line in lines]

    def entries(self) -> list[dict]:
        return [json.loads(line) for line in self.log.lines]


@pytest.fixture(scope="module", params=["X-Forwarded-For", "Forwarded"])
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    site = readme_site()
    assert site.count(UPSTREAM) == 1 and site.count(LISTEN) == 1
    port, gateway_port = free_port(), free_port()
    site = site.replace(UPSTREAM, f"server 127.0.0.1:{gateway_port};").replace(LISTEN, f"listen 127.0.0.1:{port};")
    nginx = Nginx(site, tmp_path_factory.mktemp("nginx"))
    gateway = subprocess.Popen([COMMAND, "serve", "tests.support.proxied_app:make_gateway", "--port", str(gateway_port),
                                "--trusted-proxy", "127.0.0.1", "--forwarded-header", request.param,
                                "--log-format", "json"],
                               cwd=ROOT, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    log = Lines(gateway)
    try:
        wait_for_port(gateway_port, timeout=20, process=gateway)
        nginx.start(port)
        yield Stack(port, gateway_port, log)
    finally:
        nginx.stop()
        gateway.terminate()
        assert gateway.wait(timeout=10) == 0


def wrong_token(port: int) -> str:
    """The gateway's websocket URL through 127.0.0.1:``port``, with a token it refuses in the query."""
    return f"ws://127.0.0.1:{port}/ws?token=wrong"


def spoof(n: int) -> dict[str, str]:
    """Headers a client forges, naming another address at each attempt."""
    return {"X-Forwarded-For": f"198.51.100.{n}", "Forwarded": f"for=198.51.100.{n}", "X-Real-IP": f"198.51.100.{n}"}


def status(entry: dict) -> int:
    return int(entry["message"].split()[0])


@pytest.mark.gen_test(timeout=30)
async def test_a_websocket_client_is_served_through_nginx(stack):
    async with Client(f"ws://127.0.0.1:{stack.port}/ws?token=ann-token") as ann:
        assert await ann.ping() == "pong"
        assert (await ann.call("lab", "whoami"))["user"]["name"] == "ann"
        await ann.subscribe("chat.lobby")
        await ann.publish("chat.lobby", {"author": {"name": "ann"}, "text": "hi"})
        assert (await ann.next_event(5)).data["text"] == "hi"


@pytest.mark.gen_test(timeout=30)
async def test_clients_behind_nginx_are_throttled_and_logged_at_their_own_addresses(stack):
    first = [await handshake_status(wrong_token(stack.port), None, "127.0.0.2") for _ in range(BURST + 1)]
    assert first == [101] * BURST + [429]
    assert await handshake_status(wrong_token(stack.port), None, "127.0.0.3") == 101  # not throttled by the first
    access = stack.access("127.0.0.2", BURST + 1)
    assert [status(entry) for entry in access] == first
    assert all("GET /ws?token=[redacted] (127.0.0.2)" in entry["message"] for entry in access)
    assert status(stack.access("127.0.0.3", 1)[0]) == 101


@pytest.mark.gen_test(timeout=30)
async def test_a_client_forging_forwarded_headers_through_nginx_gains_nothing(stack):
    attempts = [await handshake_status(wrong_token(stack.port), spoof(n), "127.0.0.4") for n in range(BURST + 1)]
    assert attempts == [101] * BURST + [429]  # counted at the address nginx saw, whatever it forged
    assert [status(entry) for entry in stack.access("127.0.0.4", BURST + 1)] == attempts
    assert not [entry for entry in stack.entries() if "198.51.100" in entry.get("client", "")]


@pytest.mark.gen_test(timeout=30)
async def test_a_client_forging_forwarded_headers_straight_to_the_gateway_gains_nothing(stack):
    url = wrong_token(stack.gateway_port)
    attempts = [await handshake_status(url, spoof(n), "127.0.0.5") for n in range(BURST + 1)]
    assert attempts == [101] * BURST + [429]  # its peer is not a trusted proxy: its headers are not read
    access = stack.access("127.0.0.5", BURST + 1)
    assert [status(entry) for entry in access] == attempts
    assert all("(127.0.0.5)" in entry["message"] for entry in access)
    assert not [entry for entry in stack.entries() if "198.51.100" in entry.get("client", "")]
