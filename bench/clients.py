"""Load generators (picows), each run in its own process: fan-out subscribers and request loops."""

from __future__ import annotations

import asyncio
import time
from multiprocessing.connection import Connection as Pipe
from typing import Any

import orjson
from picows import WSListener, WSMsgType, WSTransport, ws_connect

from bench.app import REQUESTS, SELECTIONS, order_request
from bench.server import raise_fd_limit
from tests.support.procstat import process_cpu

CONNECT_BATCH = 100
LATENCY_EVERY = 7


def speaks_gateway(kind: str) -> bool:
    """Whether a server kind is the gateway (``gateway``, ``gateway-no-metrics``, ``gateway@REF``), not a baseline."""
    return kind.startswith("gateway")


class Subscriber(WSListener):
    """One fan-out subscriber: checks that ticks arrive complete, in order, with the fields asked for."""

    def __init__(self, kind: str, fields: tuple[str, ...] | None, tally: Tally) -> None:
        self.kind = kind
        self.fields = fields
        self.keys = set(fields) if fields else {"seq", "ts", "user", "room", "text", "score"}
        self.tally = tally
        self.ready = asyncio.get_running_loop().create_future()
        self.next_seq: int | None = None
        self.count = 0
        self.close_code: int | None = None

    def on_ws_connected(self, transport: WSTransport) -> None:
        if speaks_gateway(self.kind):
            data: dict[str, Any] = {"topic": "feed"}
            if self.fields:
                data["fields"] = list(self.fields)
            transport.send(WSMsgType.TEXT, orjson.dumps({"request_id": 1, "action": "__subscribe__", "data": data}))

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("closed before subscribing"))
        elif not self.tally.stopping:
            self.tally.closed += 1
            self.tally.error(f"connection closed during the run (close code {self.close_code})")

    def on_ws_frame(self, transport: WSTransport, frame) -> None:
        if frame.msg_type == WSMsgType.PING:
            transport.send_pong(frame.get_payload_as_bytes())
            return
        if frame.msg_type == WSMsgType.CLOSE:
            self.close_code = frame.get_close_code()
            transport.disconnect()
            return
        payload = frame.get_payload_as_bytes()
        if not self.ready.done():
            self._handshake(transport, payload)
            return
        if self.kind == "socketio":
            if payload == b"2":
                transport.send(WSMsgType.TEXT, b"3")
                return
            if not payload.startswith(b"42"):
                return
            data = orjson.loads(payload[2:])[1]
        else:
            data = orjson.loads(payload)["data"]
        seq = data["seq"]
        if self.next_seq is not None and seq != self.next_seq:
            self.tally.error(f"expected seq {self.next_seq}, got {seq}")
        if data.keys() != self.keys:
            self.tally.error(f"fields {sorted(data)} != {sorted(self.keys)}")
        self.next_seq = seq + 1
        self.count += 1
        if seq % LATENCY_EVERY == 0:
            self.tally.latencies.append(time.monotonic() - data["ts"])
        self.tally.progress[self.tally.slot] += 1

    def _handshake(self, transport: WSTransport, payload: bytes) -> None:
        if self.kind == "socketio":
            if payload.startswith(b"0{"):
                transport.send(WSMsgType.TEXT, b"40")
                return
            if not payload.startswith(b"40"):
                return
        elif speaks_gateway(self.kind):
            reply = orjson.loads(payload)
            if "data" not in reply:
                self.ready.set_exception(RuntimeError(f"subscribe failed: {reply}"))
                return
        self.ready.set_result(None)


class Tally:
    """What one client process saw."""

    def __init__(self, progress, slot: int) -> None:
        self.progress = progress
        self.slot = slot
        self.errors: list[str] = []
        self.error_count = 0
        self.latencies: list[float] = []
        self.stopping = False
        self.closed = 0  # connections the server closed while subscribed

    def error(self, text: str) -> None:
        self.error_count += 1
        if len(self.errors) < 10:
            self.errors.append(text)


def url_for(kind: str, port: int, fanout: bool) -> str:
    if kind == "socketio":
        return f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"
    return f"ws://127.0.0.1:{port}/ws" + ("?fanout=1" if fanout and not speaks_gateway(kind) else "")


async def open_all(factories, url: str) -> list[tuple[WSTransport, Any]]:
    opened = []
    for start in range(0, len(factories), CONNECT_BATCH):
        batch = factories[start:start + CONNECT_BATCH]
        opened += await asyncio.gather(*(ws_connect(f, url, websocket_handshake_timeout=60) for f in batch))
    return opened


async def subscribers(kind: str, port: int, count: int, first: int, selections: bool, slot: int, progress,
                      pipe: Pipe) -> None:
    tally = Tally(progress, slot)
    factories = []
    for i in range(count):
        fields = SELECTIONS[(first + i) % len(SELECTIONS)] if selections else None
        factories.append(lambda fields=fields: Subscriber(kind, fields, tally))
    opened = await open_all(factories, url_for(kind, port, fanout=True))
    await asyncio.wait_for(asyncio.gather(*(listener.ready for _, listener in opened)), 120)
    pipe.send("ready")
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, pipe.recv)
    tally.stopping = True
    pipe.send({"counts": [listener.count for _, listener in opened], "errors": tally.errors,
               "error_count": tally.error_count, "latencies": tally.latencies, "closed": tally.closed})
    for transport, _ in opened:
        transport.disconnect()


async def idle(kind: str, port: int, count: int, pipe: Pipe) -> None:
    """Open ``count`` connections and hold them, doing nothing."""
    opened = await open_all([WSListener] * count, url_for(kind, port, fanout=False))
    pipe.send("ready")
    await asyncio.get_running_loop().run_in_executor(None, pipe.recv)
    pipe.send({"open": sum(not t.is_disconnected for t, _ in opened)})
    for transport, _ in opened:
        transport.disconnect()


class Requester(WSListener):
    """Keeps ``depth`` requests of ``action`` (a key of `bench.app.REQUESTS`) in flight; checks each reply.

    ``send`` tops the requests in flight up to ``depth``, back to back; each reply sends one more.
    """

    def __init__(self, run: RequestRun, action: str = "orders.create", depth: int = 1) -> None:
        self.run = run
        self.frame, self.right = REQUESTS[action]
        self.depth = depth
        self.request_id = 0
        self.sent: dict[int, float] = {}  # request_id -> when it was sent, for the requests not yet answered
        self.transport: WSTransport | None = None

    @property
    def in_flight(self) -> bool:
        return bool(self.sent)

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def send(self) -> None:
        while len(self.sent) < self.depth:
            self.request_id += 1
            self.sent[self.request_id] = time.perf_counter()
            self.transport.send(WSMsgType.TEXT, orjson.dumps(self.frame(self.request_id)))

    def on_ws_frame(self, transport: WSTransport, frame) -> None:
        if frame.msg_type != WSMsgType.TEXT:
            if frame.msg_type == WSMsgType.CLOSE:
                self.run.error("connection closed")
                transport.disconnect()
            return
        reply = orjson.loads(frame.get_payload_as_bytes())
        sent = self.sent.pop(reply.get("request_id"), None)
        if sent is None or not self.right(reply.get("data", {})):
            self.run.error(f"wrong reply {reply}")
        else:
            self.run.done(time.perf_counter() - sent)
        if self.run.running:
            self.send()


class RequestRun:
    def __init__(self) -> None:
        self.running = True
        self.measuring = False
        self.count = 0
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.error_count = 0
        self.refused: dict[str, int] = {}  # error replies by code

    def error(self, text: str) -> None:
        self.error_count += 1
        if len(self.errors) < 10:
            self.errors.append(text)

    def refuse(self, code: str) -> None:
        self.refused[code] = self.refused.get(code, 0) + 1

    def done(self, took: float) -> None:
        if self.measuring:
            self.count += 1
            self.latencies.append(took)


async def measure(run: RequestRun, seconds: float, repeats: int,
                  server_pid: int | None = None) -> list[dict[str, float]]:
    """Round trips/s and latency percentiles over ``repeats`` windows of ``seconds``.

    With ``server_pid``, also the CPU seconds that server process used in each window.
    """
    return [await window(run, seconds, server_pid) for _ in range(repeats)]


def server_cpu(pids: int | list[int] | None) -> float:
    """CPU seconds the server's processes (one pid, or a supervisor's workers) have used so far."""
    if not pids:
        return 0.0
    return sum(process_cpu(pid) for pid in (pids if isinstance(pids, list) else [pids]))


async def window(run: RequestRun, seconds: float, server_pid: int | list[int] | None = None) -> dict[str, float]:
    """Round trips/s, latency percentiles and (with ``server_pid``: one, or several) server CPU seconds."""
    run.count, run.latencies = 0, []
    run.measuring = True
    started = time.perf_counter()
    cpu = server_cpu(server_pid)
    await asyncio.sleep(seconds)
    run.measuring = False
    elapsed = time.perf_counter() - started
    latencies = sorted(run.latencies)
    return {"rps": run.count / elapsed, "count": run.count, "p50": percentile(latencies, 50),
            "p90": percentile(latencies, 90), "p99": percentile(latencies, 99),
            "cpu": server_cpu(server_pid) - cpu if server_pid else float("nan")}


async def requests(kind: str, port: int, count: int, warmup: float, seconds: float, repeats: int,
                   pipe: Pipe, action: str = "orders.create", announce: bool = False,
                   server_pid: int | None = None, depth: int = 1) -> None:
    """``count`` connections each keeping ``depth`` ``action`` requests in flight (``server_pid``: see `measure`).

    ``announce`` sends "started" once every connection has its first request out (`bench.profile` waits for it).
    """
    run = RequestRun()
    opened = await open_all([lambda: Requester(run, action, depth)] * count, url_for(kind, port, fanout=False))
    for _, listener in opened:
        listener.send()
    if announce:
        pipe.send("started")
    await asyncio.sleep(warmup)
    rounds = await measure(run, seconds, repeats, server_pid)
    run.running = False
    await asyncio.sleep(0.2)
    pipe.send({"rounds": rounds, "errors": run.errors, "error_count": run.error_count})
    for transport, _ in opened:
        transport.disconnect()


async def paired_requests(targets: dict[str, tuple[int, int | list[int]]], count: int, warmup: float,
                          seconds: float, repeats: int, pipe: Pipe, action: str = "orders.create",
                          depth: int = 1) -> None:
    """The requests scenario against several servers at once, their windows taking turns.

    ``targets`` maps a server kind to its (port, pid or pids). Each gets ``count``
    connections, each keeping ``depth`` requests in flight; in each of
    ``repeats`` rounds every server has one window
    of ``seconds`` (after ``warmup`` of load) while the others' connections
    are idle, the order flipping from round to round. A machine that slows
    down for a while then slows both alike, where back-to-back runs of
    several windows each would charge it to one.
    """
    loads = {}
    for kind, (port, _) in targets.items():
        run = RequestRun()
        run.running = False
        loads[kind] = run, await open_all([lambda run=run: Requester(run, action, depth)] * count,
                                          url_for(kind, port, fanout=False))
    rounds: dict[str, list] = {kind: [] for kind in targets}
    order = list(targets)
    for _ in range(repeats):
        for kind in order:
            run, opened = loads[kind]
            run.running = True
            for _, listener in opened:
                listener.send()
            await asyncio.sleep(warmup)
            rounds[kind].append(await window(run, seconds, targets[kind][1]))
            run.running = False
            async with asyncio.timeout(10):  # the last replies of the window, before the other server's turn
                while any(listener.in_flight for _, listener in opened):
                    await asyncio.sleep(0.001)
        order.reverse()
    pipe.send({kind: {"rounds": rounds[kind], "errors": run.errors, "error_count": run.error_count}
               for kind, (run, _) in loads.items()})
    for _, opened in loads.values():
        for transport, _ in opened:
            transport.disconnect()


class PipelinedRequester(WSListener):
    """Keeps ``depth`` requests in flight: sends ``depth`` at once, then one more per reply."""

    def __init__(self, run: RequestRun, depth: int) -> None:
        self.run = run
        self.depth = depth
        self.request_id = 0
        self.sent: dict[int, float] = {}  # request_id -> when it was sent, for the requests not yet answered
        self.transport: WSTransport | None = None

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def fill(self) -> None:
        while len(self.sent) < self.depth:
            self.request_id += 1
            self.sent[self.request_id] = time.perf_counter()
            self.transport.send(WSMsgType.TEXT, orjson.dumps(order_request(self.request_id)))

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if self.run.running:
            self.run.error("connection closed during the run")

    def on_ws_frame(self, transport: WSTransport, frame) -> None:
        if frame.msg_type != WSMsgType.TEXT:
            if frame.msg_type == WSMsgType.CLOSE:
                self.run.error(f"connection closed by the server (close code {frame.get_close_code()})")
                transport.disconnect()
            return
        reply = orjson.loads(frame.get_payload_as_bytes())
        sent = self.sent.pop(reply.get("request_id"), None)
        if sent is None:
            self.run.error(f"reply to no request in flight: {reply}")
        elif "code" in reply:
            self.run.refuse(reply["code"])
        elif reply.get("data", {}).get("total") != 28.5:
            self.run.error(f"wrong reply {reply}")
        else:
            self.run.done(time.perf_counter() - sent)
        if self.run.running:
            self.fill()


async def pipelined(kind: str, port: int, count: int, depth: int, warmup: float, seconds: float, repeats: int,
                    drain: float, pipe: Pipe) -> None:
    """``count`` connections each keeping ``depth`` requests in flight; then every request must be answered."""
    run = RequestRun()
    opened = await open_all([lambda: PipelinedRequester(run, depth)] * count, url_for(kind, port, fanout=False))
    for _, listener in opened:
        listener.fill()
    await asyncio.sleep(warmup)
    rounds = await measure(run, seconds, repeats)
    run.running = False
    deadline = time.monotonic() + drain  # the requests still in flight must all be answered, within a bound
    while any(listener.sent for _, listener in opened) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    pipe.send({"rounds": rounds, "errors": run.errors, "error_count": run.error_count, "refused": run.refused,
               "sent": sum(listener.request_id for _, listener in opened),
               "unanswered": sum(len(listener.sent) for _, listener in opened)})
    for transport, _ in opened:
        transport.disconnect()


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(len(values) * pct / 100))]


def main(role: str, kwargs: dict[str, Any], pipe: Pipe) -> None:
    """Process entry point."""
    raise_fd_limit()
    from bench.client_publish import room_publisher, room_subscribers

    target = {"subscribers": subscribers, "idle": idle, "requests": requests, "paired_requests": paired_requests,
              "pipelined": pipelined, "room_subscribers": room_subscribers, "room_publisher": room_publisher}[role]
    try:
        asyncio.run(target(pipe=pipe, **kwargs))
    except Exception as exc:  # report, so the harness fails with the reason
        pipe.send({"crash": repr(exc)})
        raise
