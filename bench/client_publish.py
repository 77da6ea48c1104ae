"""Client-published fan-out, the load side: a room of subscribers, and one client publishing bursts to it.

Each server under test (the gateway, a baseline, the gateway at another
commit) gets its own subscribers and its own publisher connection; the
publisher process takes the servers in turn, a window each, so they are
compared on the same machine at the same moment. A window is ``bursts``
bursts: ``size`` ``__publish__`` frames sent back to back on one
connection, then the wait until every subscriber holds every note (read
from the shared progress counters) and every publish is answered.
"""

from __future__ import annotations

import asyncio
import time
from multiprocessing.connection import Connection as Pipe
from typing import Any

import orjson
from picows import WSListener, WSMsgType, WSTransport

from bench.app import ROOM, note_publish
from bench.clients import Tally, open_all, server_cpu, speaks_gateway, url_for

KEYS = {"seq", "text"}
STALL = 10.0
"""Seconds without a delivery after which a burst is given up (and its shortfall reported)."""


class RoomSubscriber(WSListener):
    """One member of the room: notes must arrive in order, each once, with their two fields."""

    def __init__(self, kind: str, tally: Tally) -> None:
        self.kind = kind
        self.tally = tally
        self.ready = asyncio.get_running_loop().create_future()
        self.next_seq: int | None = None
        self.count = 0

    def on_ws_connected(self, transport: WSTransport) -> None:
        if speaks_gateway(self.kind):
            transport.send(WSMsgType.TEXT, orjson.dumps({"request_id": 1, "action": "__subscribe__",
                                                         "data": {"topic": ROOM}}))

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("closed before subscribing"))
        elif not self.tally.stopping:
            self.tally.closed += 1
            self.tally.error("connection closed during the run")

    def on_ws_frame(self, transport: WSTransport, frame) -> None:
        if frame.msg_type == WSMsgType.PING:
            transport.send_pong(frame.get_payload_as_bytes())
            return
        if frame.msg_type != WSMsgType.TEXT:
            return
        message = orjson.loads(frame.get_payload_as_bytes())
        if not self.ready.done():
            if "data" in message or message.get("hello"):
                self.ready.set_result(None)
            else:
                self.ready.set_exception(RuntimeError(f"subscribe failed: {message}"))
            return
        data = message["data"]
        seq = data["seq"]
        if self.next_seq is not None and seq != self.next_seq:
            self.tally.error(f"expected note {self.next_seq}, got {seq}")
        if data.keys() != KEYS:
            self.tally.error(f"fields {sorted(data)} != {sorted(KEYS)}")
        self.next_seq = seq + 1
        self.count += 1
        self.tally.progress[self.tally.slot] += 1


async def room_subscribers(kind: str, port: int, count: int, slot: int, progress, pipe: Pipe) -> None:
    """``count`` members of the room on one server; counts deliveries in ``progress[slot]``."""
    tally = Tally(progress, slot)
    opened = await open_all([lambda: RoomSubscriber(kind, tally)] * count, url_for(kind, port, fanout=True))
    await asyncio.wait_for(asyncio.gather(*(listener.ready for _, listener in opened)), 120)
    pipe.send("ready")
    await asyncio.get_running_loop().run_in_executor(None, pipe.recv)
    tally.stopping = True
    pipe.send({"counts": [listener.count for _, listener in opened], "errors": tally.errors,
               "error_count": tally.error_count, "closed": tally.closed})
    for transport, _ in opened:
        transport.disconnect()


class Publisher(WSListener):
    """The publishing client: sends a burst of notes back to back and collects the replies."""

    def __init__(self) -> None:
        self.transport: WSTransport | None = None
        self.request_id = 0
        self.seq = 0
        self.waiting = 0
        self.answered: asyncio.Future[None] | None = None
        self.refused: dict[str, int] = {}

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def burst(self, size: int) -> asyncio.Future[None]:
        assert self.transport is not None
        self.answered = asyncio.get_running_loop().create_future()
        self.waiting = size
        for _ in range(size):
            self.request_id += 1
            self.transport.send(WSMsgType.TEXT, orjson.dumps(note_publish(self.request_id, self.seq)))
            self.seq += 1
        return self.answered

    def on_ws_frame(self, transport: WSTransport, frame) -> None:
        if frame.msg_type != WSMsgType.TEXT:
            return
        reply = orjson.loads(frame.get_payload_as_bytes())
        if "code" in reply:
            self.refused[reply["code"]] = self.refused.get(reply["code"], 0) + 1
        self.waiting -= 1
        if self.waiting == 0 and self.answered is not None and not self.answered.done():
            self.answered.set_result(None)


async def wait_for_deliveries(progress, expected: int) -> bool:
    """Wait until the counters reach ``expected``; False if no delivery came for `STALL` seconds."""
    last, changed = sum(progress), time.monotonic()
    while last < expected:
        await asyncio.sleep(0.0005)
        now = sum(progress)
        if now != last:
            last, changed = now, time.monotonic()
        elif time.monotonic() - changed > STALL:
            return False
    return True


async def room_publisher(targets: dict[str, tuple[int, int | list[int], int]], progress: dict[str, Any],
                         pipe: Pipe) -> None:
    """One publisher connection per target ((port, server pid(s), members)); runs the windows it is asked for.

    Each ``("window", {"target", "bursts", "size"})`` answers the window's deliveries,
    seconds, server CPU seconds and problems (with ``"seconds"``: the bursts stop
    once that long has passed; with ``"interval"``: a burst starts at most every that many seconds).
    """
    publishers = {}
    for kind, (port, _, _) in targets.items():
        (_, publisher), = await open_all([Publisher], url_for(kind, port, fanout=False))
        publishers[kind] = publisher
    pipe.send("ready")
    loop = asyncio.get_running_loop()
    while True:
        command, args = await loop.run_in_executor(None, pipe.recv)
        if command == "stop":
            pipe.send({kind: publisher.refused for kind, publisher in publishers.items()})
            return
        kind = args["target"]
        _, pids, members = targets[kind]
        publisher, counters = publishers[kind], progress[kind]
        problems = []
        delivered = 0
        cpu = server_cpu(pids)
        started = time.perf_counter()
        until = time.perf_counter() + args["seconds"] if args.get("seconds") else None
        interval = args.get("interval") or 0.0
        for burst in range(args["bursts"]):
            if until is not None and time.perf_counter() > until:
                break
            pause = started + burst * interval - time.perf_counter()
            if pause > 0:
                await asyncio.sleep(pause)
            base = sum(counters)
            answered = publisher.burst(args["size"])
            if not await wait_for_deliveries(counters, base + args["size"] * members):
                problems.append(f"{base + args['size'] * members - sum(counters)} deliveries missing after a burst")
            try:
                await asyncio.wait_for(answered, STALL)
            except TimeoutError:
                problems.append(f"{publisher.waiting} publishes unanswered")
            delivered += sum(counters) - base
        seconds = time.perf_counter() - started
        pipe.send({"deliveries": delivered, "seconds": seconds, "cpu": server_cpu(pids) - cpu,
                   "problems": problems})
