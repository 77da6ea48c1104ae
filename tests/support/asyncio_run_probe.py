"""A Tornado Drizzle program run with ``asyncio.run``; prints one JSON line of what its clients saw.

``python tests/support/asyncio_run_probe.py before``: ``init_drizzle`` runs before
``asyncio.run``, given ``IOLoop.current()`` as the seed's users wrote it (a
loop that never runs: ``asyncio.run`` makes its own). ``inside``: it runs in
the main coroutine, after the server listens. Either way the program
publishes from its main coroutine, from a task of its own and from a
socket's action, and counts ``subscriptions``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import tornado.web
from tornado import gen
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop
from tornado.testing import bind_unused_port
from tornado.websocket import WebSocketClientConnection, websocket_connect

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tornado_drizzle.conf import init_drizzle  # noqa: E402
from tornado_drizzle.drizzle_web_socket import DrizzleHandler, DrizzleWebSocket  # noqa: E402
from tornado_drizzle.subscriber import publish, subscriptions  # noqa: E402


class RoomHandler(DrizzleHandler):
    @gen.coroutine
    def join(self, message):
        yield self.subscribe("room")
        return {}

    @gen.coroutine
    def shout(self, message):
        yield publish("room", {"from": "a socket"})
        return {}


ROUTES = {"room": RoomHandler}


async def ask(ws: WebSocketClientConnection, action: str, request_id: int) -> object:
    await ws.write_message(json.dumps({"resource": "room", "action": action, "request_id": request_id}))
    return json.loads(await asyncio.wait_for(ws.read_message(), 10))


async def heard(ws: WebSocketClientConnection) -> object:
    return json.loads(await asyncio.wait_for(ws.read_message(), 10))


async def main(app: tornado.web.Application, order: str) -> dict:
    sock, port = bind_unused_port()
    server = HTTPServer(app)
    server.add_sockets([sock])
    if order == "inside":
        init_drizzle(app, ROUTES, IOLoop.current())
    url = f"ws://127.0.0.1:{port}/ws"
    listener = await websocket_connect(url)
    outcome: dict = {"joined": await ask(listener, "join", 1), "counted": len(subscriptions["room"])}
    await publish("room", {"from": "main"})
    outcome["main"] = await heard(listener)
    await asyncio.create_task(publish_from_a_task())
    outcome["task"] = await heard(listener)
    shouter = await websocket_connect(url)
    outcome["shouted"] = await ask(shouter, "shout", 2)
    outcome["socket"] = await heard(listener)
    outcome["all"] = len(subscriptions["__all__"])
    listener.close()
    shouter.close()
    server.stop()
    return outcome


async def publish_from_a_task() -> None:
    await publish("room", {"from": "a task"})


if __name__ == "__main__":
    order = sys.argv[1]
    application = tornado.web.Application([(r"/ws", DrizzleWebSocket)])
    if order == "before":
        init_drizzle(application, ROUTES, IOLoop.current())
    result = asyncio.run(main(application, order))
    sys.stdout.write(json.dumps(result) + "\n")
