"""How the shim finds its gateway: ``publish()`` and ``subscriptions`` with no state on the IOLoop."""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
import tornado.web
from tornado import gen
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop
from tornado.testing import bind_unused_port
from tornado.websocket import websocket_connect

from tests.support.polling import wait_until
from tornado_drizzle.conf import init_drizzle
from tornado_drizzle.drizzle_web_socket import DrizzleHandler, DrizzleWebSocket
from tornado_drizzle.subscriber import publish, subscriptions

ROOT = Path(__file__).resolve().parent.parent


class CountingHandler(DrizzleHandler):
    @gen.coroutine
    def get(self, message):
        return {"testkey": "testval"}

    @gen.coroutine
    def test_subscribe(self, message):
        yield self.subscribe("__test__")
        return {}

    @gen.coroutine
    def shout(self, message):
        yield publish("__all__", message["data"])


@pytest.fixture
def app(io_loop) -> tornado.web.Application:
    application = tornado.web.Application([(r"/ws", DrizzleWebSocket)])
    init_drizzle(application, {"test": CountingHandler}, io_loop)
    return application


async def ask(ws, action: str, request_id: int, data: dict | None = None) -> dict:
    frame = {"resource": "test", "action": action, "request_id": request_id}
    if data is not None:
        frame["data"] = data
    await ws.write_message(json.dumps(frame))
    return json.loads(await asyncio.wait_for(ws.read_message(), 10))


# -- init_drizzle and asyncio.run in either order --------------------------------------------------


@pytest.mark.parametrize("order", ["before", "inside"])
def test_publish_works_whichever_order_init_drizzle_and_asyncio_run_come_in(order):
    """A program of its own: the thread's first event loop must be the one ``IOLoop.current()`` makes."""
    result = subprocess.run([sys.executable, "tests/support/asyncio_run_probe.py", order], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {
        "joined": {"data": {}, "request_id": 1},
        "counted": 1,
        "main": {"from": "main"},
        "task": {"from": "a task"},
        "shouted": {"data": {}, "request_id": 2},
        "socket": {"from": "a socket"},
        "all": 2,
    }


def test_a_binding_whose_loop_has_closed_is_not_used():
    def program() -> None:
        loop = IOLoop(make_current=False)
        init_drizzle(tornado.web.Application([(r"/ws", DrizzleWebSocket)]), {"test": CountingHandler}, loop)
        loop.close()

        async def main() -> None:
            with pytest.raises(RuntimeError, match="init_drizzle"):
                publish("__all__", {})
            with pytest.raises(RuntimeError, match="init_drizzle"):
                len(subscriptions)

        asyncio.run(main())

    contextvars.copy_context().run(program)  # a program's context of its own


# -- subscriptions: a live, read-only view ---------------------------------------------------------


@pytest.mark.gen_test
async def test_subscriptions_count_sockets_as_they_connect_and_close(ws_url):
    assert subscriptions.get("__all__", []) == []
    assert "__all__" not in subscriptions and len(subscriptions) == 0
    sockets = []
    for count in range(1, 6):
        sockets.append(await websocket_connect(ws_url))
        assert len(subscriptions["__all__"]) == count
    assert all(isinstance(socket, DrizzleWebSocket) for socket in subscriptions["__all__"])

    assert await ask(sockets[0], "test_subscribe", 1) == {"data": {}, "request_id": 1}
    assert dict(subscriptions) == {"__all__": subscriptions["__all__"], "__test__": subscriptions["__test__"]}
    assert len(subscriptions["__test__"]) == 1 and subscriptions["__test__"] < subscriptions["__all__"]

    sockets.pop(0).close()
    await wait_until(lambda: len(subscriptions.get("__all__", ())) == 4, 5)  # the server sees a close a moment later
    assert "__test__" not in subscriptions
    for count in range(3, -1, -1):
        sockets.pop().close()
        await wait_until(lambda count=count: len(subscriptions.get("__all__", ())) == count, 5)
    assert "__all__" not in subscriptions and dict(subscriptions) == {}


@pytest.mark.gen_test
async def test_subscriptions_cannot_be_changed(ws_url):
    ws = await websocket_connect(ws_url)
    sockets = subscriptions["__all__"]
    with pytest.raises(TypeError):
        subscriptions["__all__"] = set()  # type: ignore[index]
    with pytest.raises(TypeError):
        del subscriptions["__all__"]  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        sockets.add(object())  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        subscriptions.table = {}  # type: ignore[attr-defined]
    assert len(subscriptions["__all__"]) == 1
    assert await ask(ws, "get", 1) == {"data": {"testkey": "testval"}, "request_id": 1}  # still served
    ws.close()


# -- two applications on one loop ----------------------------------------------------------------


@pytest.mark.gen_test
async def test_each_socket_publishes_through_its_own_applications_gateway(ws_url, caplog):
    other_app = tornado.web.Application([(r"/ws", DrizzleWebSocket)])
    sock, port = bind_unused_port()
    server = HTTPServer(other_app)
    server.add_sockets([sock])  # listening before init_drizzle, as the seed's sample does
    with caplog.at_level(logging.WARNING, logger="drizzle_gateway"):
        init_drizzle(other_app, {"test": CountingHandler}, IOLoop.current())
    assert any("init_drizzle called again" in record.getMessage() for record in caplog.records)
    try:
        first = await websocket_connect(ws_url)
        second = await websocket_connect(f"ws://127.0.0.1:{port}/ws")
        for request_id, ws, to in ((1, first, "first app"), (2, second, "second app")):
            await ws.write_message(json.dumps({"resource": "test", "action": "shout", "request_id": request_id,
                                               "data": {"to": to}}))
            frames = [json.loads(await ws.read_message()) for _ in range(2)]  # its own shout and the reply
            assert sorted(frames, key=json.dumps) == [{"data": None, "request_id": request_id}, {"to": to}]
        # Neither heard the other application's shout: the next frame of each is the reply to a new request.
        assert await ask(first, "get", 3) == {"data": {"testkey": "testval"}, "request_id": 3}
        assert await ask(second, "get", 4) == {"data": {"testkey": "testval"}, "request_id": 4}
        # Outside any socket, the newest init_drizzle of this context wins, as in the seed.
        assert subscriptions["__all__"] == {s for s in subscriptions["__all__"] if s.application is other_app}
        first.close()
        second.close()
    finally:
        server.stop()
