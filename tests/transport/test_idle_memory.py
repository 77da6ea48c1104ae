"""An idle connection holds no more memory than a bare Tornado websocket's (README, "Performance").

Most connections of a gateway are idle most of the time, so what one holds
bounds how many a process can keep. The same server serves the gateway and
a bare Tornado echo handler; a client in another process opens connections
to each, and ``tracemalloc`` counts what the server allocated per
connection while they stay open.
"""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import tracemalloc

import pytest
import tornado.web
from tornado.websocket import WebSocketHandler

from tests.support.polling import wait_until

CONNECTIONS = 200

CLIENT = """
import asyncio, sys
from tornado.websocket import websocket_connect

async def main(url, count):
    held = [await websocket_connect(url) for _ in range(count)]
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    for connection in held:
        connection.close()

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


class Bare(WebSocketHandler):
    """Tornado's websocket handler as its documentation writes one: it echoes."""

    open_now: set[Bare] = set()

    def open(self) -> None:
        Bare.open_now.add(self)

    def on_message(self, message: str | bytes) -> None:
        self.write_message(message)

    def on_close(self) -> None:
        Bare.open_now.discard(self)


@pytest.fixture
def app(gateway) -> tornado.web.Application:
    return tornado.web.Application([*gateway.routes(), ("/bare", Bare)])


async def held_per_connection(url: str, count: int, open_now) -> float:
    """Bytes the server allocated, and still holds, per connection while ``count`` idle ones are open."""
    gc.collect()
    before = tracemalloc.take_snapshot()
    client = await asyncio.create_subprocess_exec(sys.executable, "-c", CLIENT, url, str(count),
                                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert client.stdin is not None and client.stdout is not None
    try:
        assert (await asyncio.wait_for(client.stdout.readline(), 60)).strip() == b"ready"
        await wait_until(lambda: open_now() >= count, 10)
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        client.stdin.write(b"\n")
        await asyncio.wait_for(client.wait(), 30)
    await wait_until(lambda: open_now() == 0, 10)
    return sum(stat.size_diff for stat in after.compare_to(before, "filename")) / count


@pytest.mark.gen_test(timeout=120)
async def test_an_idle_gateway_connection_holds_no_more_than_a_bare_tornado_one(http_server, http_port, gateway):
    sessions = lambda: len(gateway.hub.sessions)  # noqa: E731
    bare = lambda: len(Bare.open_now)  # noqa: E731
    gateway_url, bare_url = f"ws://127.0.0.1:{http_port}/ws", f"ws://127.0.0.1:{http_port}/bare"
    tracemalloc.start()
    try:
        for url, open_now in ((gateway_url, sessions), (bare_url, bare)):  # first connections fill caches
            await held_per_connection(url, 5, open_now)
        ours = await held_per_connection(gateway_url, CONNECTIONS, sessions)
        tornados = await held_per_connection(bare_url, CONNECTIONS, bare)
    finally:
        tracemalloc.stop()
    assert tornados > 5000  # what is measured is a connection's state (Tornado's is about 13 KB)
    assert ours <= tornados, f"an idle gateway connection holds {ours:.0f} bytes, a bare Tornado one {tornados:.0f}"
