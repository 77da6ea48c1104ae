"""Soak run: many connections making requests while a topic publishes steadily.

``python -m bench.soak`` starts a gateway in a child process (default limits),
opens ``--connections`` websocket clients that each call an action every
``--request-interval`` seconds, subscribes ``--subscribers`` of them to a
topic the server publishes on at ``--rate`` messages a second, and samples
the server's RSS every ``--sample`` seconds for ``--duration`` seconds.
It reports request and event counts, errors, and RSS after warm-up.
Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

import tornado.web
from marshmallow import Schema, fields

from drizzle_gateway import Gateway, Resource, Topic, action
from drizzle_gateway.client import Client, ConnectionClosed, RemoteError
from tests.support.ports import free_port

logger = logging.getLogger("drizzle_gateway.soak")

TOPIC = "ticks"


class Tick(Schema):
    seq = fields.Int(required=True)
    at = fields.Float(required=True)
    text = fields.Str(required=True)


class EchoInput(Schema):
    n = fields.Int(required=True)
    text = fields.Str(required=True)


class EchoOutput(Schema):
    n = fields.Int()
    text = fields.Str()
    length = fields.Int()


class Soak(Resource):
    """A stateless action, so memory can only grow if the gateway leaks."""

    name = "soak"

    @action(EchoInput, EchoOutput)
    async def echo(self, data: dict) -> dict:
        """Answer with the input and its text's length."""
        return {"n": data["n"], "text": data["text"], "length": len(data["text"])}


# -- server (child process) ----------------------------------------------------


async def publish_steadily(gateway: Gateway, rate: float) -> None:
    """Publish ``rate`` messages a second on the ticks topic, catching up after hiccups."""
    start = time.monotonic()
    seq = 0
    while True:
        due = int((time.monotonic() - start) * rate)
        for _ in range(min(due - seq, 50)):  # bounded bursts: requests are served in between
            seq += 1
            await gateway.publish(TOPIC, {"seq": seq, "at": time.time(), "text": "tick"})
        await asyncio.sleep(0.005)


async def serve(port: int, rate: float) -> None:
    """Serve the soak gateway on loopback and publish until killed."""
    gateway = Gateway([Soak], [Topic(TOPIC, Tick)], title="soak")
    tornado.web.Application(gateway.routes()).listen(port, address="127.0.0.1")
    logger.info("soak server on port %d", port)
    await publish_steadily(gateway, rate)


# -- load (parent process) -----------------------------------------------------


@dataclass
class Tally:
    """What the clients saw."""

    requests: int = 0
    request_errors: dict[str, int] = field(default_factory=dict)
    wrong_replies: int = 0
    events: int = 0
    first_seq: int = 0
    last_seq: int = 0
    gaps: int = 0
    closed: int = 0
    latencies: list[float] = field(default_factory=list)

    def error(self, kind: str) -> None:
        self.request_errors[kind] = self.request_errors.get(kind, 0) + 1


def rss_kib(pid: int) -> int:
    """Resident set size of process ``pid`` in KiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def requester(client: Client, interval: float, stop: float, tally: Tally) -> None:
    await asyncio.sleep(random.uniform(0, interval))
    n = 0
    while time.monotonic() < stop:
        n += 1
        sent = time.monotonic()
        try:
            reply = await client.call("soak", "echo", {"n": n, "text": "x" * (n % 50)})
        except RemoteError as exc:
            tally.error(exc.code)
        except ConnectionClosed:
            tally.closed += 1
            return
        except TimeoutError:
            tally.error("client timeout")
        else:
            tally.requests += 1
            tally.latencies.append(time.monotonic() - sent)
            if reply != {"n": n, "text": "x" * (n % 50), "length": n % 50}:
                tally.wrong_replies += 1
        await asyncio.sleep(interval)


async def listener(client: Client, stop: float, tally: Tally) -> None:
    last = None
    while time.monotonic() < stop:
        try:
            event = await client.next_event(timeout=5)
        except TimeoutError:
            continue
        except ConnectionClosed:
            tally.closed += 1
            return
        seq = event.data["seq"]
        if last is not None and seq != last + 1:
            tally.gaps += 1
        if last is None and (not tally.first_seq or seq < tally.first_seq):
            tally.first_seq = seq
        last = seq
        tally.last_seq = max(tally.last_seq, seq)
        tally.events += 1


async def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise SystemExit(f"soak server did not listen on port {port}")


async def load(args: argparse.Namespace, pid: int) -> tuple[Tally, list[tuple[float, int]]]:
    """Open the clients, run the load for the duration, sample RSS; return what was seen."""
    url = f"ws://127.0.0.1:{args.port}/ws"
    tally = Tally()
    clients: list[Client] = []
    for start in range(0, args.connections, 100):
        batch = [Client(url, timeout=15).connect() for _ in range(start, min(start + 100, args.connections))]
        clients.extend(await asyncio.gather(*batch))
    logger.info("%d connections open; server RSS %d KiB", len(clients), rss_kib(pid))
    for client in clients[: args.subscribers]:
        await client.subscribe(TOPIC)
    began = time.monotonic()
    stop = began + args.duration
    tasks = [asyncio.ensure_future(requester(c, args.request_interval, stop, tally)) for c in clients]
    tasks += [asyncio.ensure_future(listener(c, stop, tally)) for c in clients[: args.subscribers]]
    samples: list[tuple[float, int]] = []
    while time.monotonic() < stop:
        samples.append((time.monotonic() - began, rss_kib(pid)))
        logger.info("t=%4.0fs rss=%6d KiB requests=%d events=%d errors=%s closed=%d", samples[-1][0],
                    samples[-1][1], tally.requests, tally.events, tally.request_errors, tally.closed)
        await asyncio.sleep(min(args.sample, max(stop - time.monotonic(), 0)))
    samples.append((time.monotonic() - began, rss_kib(pid)))
    await asyncio.gather(*tasks)
    await asyncio.gather(*(c.close() for c in clients))
    return tally, samples


def report(args: argparse.Namespace, tally: Tally, samples: list[tuple[float, int]], server_errors: int) -> str:
    """The figures, as markdown."""
    warm = [rss for t, rss in samples if t >= args.warmup] or [samples[-1][1]]
    latencies = sorted(tally.latencies) or [0.0]
    published = tally.last_seq - tally.first_seq + 1 if tally.last_seq else 0
    lines = [
        f"soak: {args.connections} connections, a request every {args.request_interval}s each, "
        f"topic at {args.rate:g} msg/s to {args.subscribers} subscribers, {args.duration:g}s",
        f"requests answered: {tally.requests} ({tally.requests / args.duration:.0f}/s), "
        f"wrong replies: {tally.wrong_replies}, error frames: {tally.request_errors or 0}, "
        f"sockets closed: {tally.closed}",
        f"request latency: median {statistics.median(latencies) * 1000:.1f} ms, "
        f"p99 {latencies[int(len(latencies) * 0.99)] * 1000:.1f} ms",
        f"events received: {tally.events} by {args.subscribers} subscribers; published meanwhile: {published} "
        f"({published / args.duration:.0f} msg/s); sequence gaps: {tally.gaps}",
        f"server ERROR log lines: {server_errors}",
        f"server RSS after {args.warmup:g}s warm-up: first {warm[0] / 1024:.1f} MiB, "
        f"min {min(warm) / 1024:.1f}, max {max(warm) / 1024:.1f}, last {warm[-1] / 1024:.1f} MiB",
        "RSS samples (s: MiB): " + ", ".join(f"{t:.0f}: {rss / 1024:.1f}" for t, rss in samples),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Run the soak (or, with ``--serve``, be its server)."""
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of load")
    parser.add_argument("--rate", type=float, default=500.0, help="topic messages per second")
    parser.add_argument("--subscribers", type=int, default=10, help="connections subscribed to the topic")
    parser.add_argument("--request-interval", type=float, default=2.0, help="seconds between a connection's calls")
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds before RSS is judged")
    parser.add_argument("--sample", type=float, default=10.0, help="seconds between RSS samples")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--server-log", help="file for the server's log (default: a temporary file)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.serve:
        asyncio.run(serve(args.port, args.rate))
        return
    args.port = args.port or free_port()
    log_path = args.server_log or os.path.join(tempfile.mkdtemp(prefix="soak-"), "server.log")
    with open(log_path, "w+") as log, subprocess.Popen(
        [sys.executable, "-m", "bench.soak", "--serve", "--port", str(args.port), "--rate", str(args.rate)],
        stderr=log,
    ) as server:
        try:
            asyncio.run(wait_for_port(args.port))
            tally, samples = asyncio.run(load(args, server.pid))
        finally:
            server.terminate()
            server.wait(timeout=30)
        log.seek(0)
        server_errors = sum(1 for line in log if " ERROR " in line or "Traceback" in line)
    sys.stdout.write(report(args, tally, samples, server_errors) + "\n")


if __name__ == "__main__":
    main()
