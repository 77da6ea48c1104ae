"""Cross-process fan-out through Redis against the in-memory broker in one process.

Run: ``python -m bench.redis_fanout`` (needs redis-server on PATH; it starts
its own on a free loopback port, and the gateway processes it measures).

Two scenarios, same app (the chat example, rate and in-flight limits lifted), same clients:

- memory: one gateway process; publisher and subscribers on it.
- redis: two gateway processes on one Redis; the publisher on the first,
  every subscriber on the second, so each delivery crosses processes.

Figures: publish-to-deliver latency p50/p99 (one subscriber, one publish
at a time, the clock read in this process at send and at receipt) and
deliveries/s (many subscribers, publishes in flight concurrently, until
every subscriber holds every message). Subscribers read frames in bulk
so this process is not the bottleneck.

``--history``: instead, publish-to-deliver latency at a steady ``--rate``
(1,000 msg/s) across two processes, for a topic on Redis pub/sub and the
same topic with history (Redis Streams), in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from drizzle_gateway.client import Client
from tests.support.bulk_subscriber import BulkSubscriber
from tests.support.ports import free_port, wait_for_port

REPO = Path(__file__).resolve().parent.parent
APP = "bench.redis_fanout:chat_gateway"


def chat_gateway():
    """The chat example's gateway with the rate and in-flight limits lifted: the bench publishes from one connection."""
    from drizzle_gateway import Limits
    from examples.chat.app import make_gateway
    from tests.support.gateways import rebuilt

    return rebuilt(make_gateway(), limits=Limits(rate=None, max_in_flight=None))
ROOM = "chat.bench"
LOGGED_ROOM = "logged.bench"


def history_gateway():
    """`chat_gateway` plus ``logged.{room}``: the chat message topic with history (1,000 events)."""
    from drizzle_gateway import Topic
    from examples.chat.app import ChatMessage

    gateway = chat_gateway()
    gateway.add_topic(Topic("logged.{room}", ChatMessage, client_publish=True, history=1000))
    return gateway


class Processes:
    """Child processes (redis-server, gateways), all stopped on exit."""

    def __init__(self) -> None:
        self.children: list[subprocess.Popen] = []
        self.workdir = tempfile.mkdtemp(prefix="drizzle-bench-")

    def redis(self) -> str:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server is not installed (apt-get install redis-server)")
        port = free_port()
        child = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                  "--appendonly", "no", "--dir", self.workdir],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.children.append(child)
        wait_for_port(port, timeout=30.0, process=child)
        return f"redis://127.0.0.1:{port}/0"

    def gateway(self, redis_url: str | None, app: str = APP) -> str:
        port = free_port()
        command = [sys.executable, "-m", "drizzle_gateway.cli", "serve", app, "--port", str(port),
                   "--log-level", "WARNING"]
        if redis_url:
            command += ["--redis", redis_url]
        child = subprocess.Popen(command, cwd=REPO)
        self.children.append(child)
        wait_for_port(port, timeout=30.0, process=child)
        return f"ws://127.0.0.1:{port}/ws"

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc: object) -> None:
        for child in reversed(self.children):  # gateways first, Redis last
            child.terminate()
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)


def seq_of(frame: bytes) -> int:
    return int(json.loads(frame)["data"]["text"])


async def latency(publish_url: str, subscribe_url: str, messages: int) -> list[float]:
    """Milliseconds from sending each publish to its event arriving, one at a time."""
    subscriber = BulkSubscriber(subscribe_url)
    await subscriber.subscribe(ROOM)
    async with Client(publish_url) as publisher:
        sent: dict[int, float] = {}
        for seq in range(messages):
            sent[seq] = time.perf_counter()
            await publisher.publish(ROOM, {"author": "bench", "text": str(seq)})
            await subscriber.frames(seq + 1)
        subscriber.close()
    return [(at - sent[seq_of(frame)]) * 1000 for at, frame in subscriber.arrivals][messages // 10:]  # warm-up


async def paced(publish_url: str, subscribe_url: str, room: str, rate: float, seconds: float) -> list[float]:
    """Milliseconds from sending each publish to its event arriving, publishing steadily at ``rate`` per second."""
    subscriber = BulkSubscriber(subscribe_url)
    await subscriber.subscribe(room)
    messages = int(rate * seconds)
    reading = asyncio.ensure_future(subscriber.frames(messages))  # stamps each arrival as it comes
    async with Client(publish_url) as publisher:
        loop = asyncio.get_running_loop()
        sent: dict[int, float] = {}
        pending = []
        started = loop.time()
        for seq in range(messages):
            delay = started + seq / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            sent[seq] = time.perf_counter()
            pending.append(asyncio.ensure_future(publisher.publish(room, {"author": "bench", "text": str(seq)})))
        await asyncio.gather(*pending)
        await reading
        subscriber.close()
    return [(at - sent[seq_of(frame)]) * 1000 for at, frame in subscriber.arrivals][messages // 10:]  # warm-up


async def throughput(publish_url: str, subscribe_url: str, subscribers: int, messages: int,
                     in_flight: int = 50) -> float:
    """Deliveries per second to ``subscribers`` of ``messages`` publishes."""
    crowd = [BulkSubscriber(subscribe_url) for _ in range(subscribers)]
    await asyncio.gather(*(subscriber.subscribe(ROOM) for subscriber in crowd))
    async with Client(publish_url) as publisher:
        started = time.perf_counter()

        async def publish_all() -> None:
            for first in range(0, messages, in_flight):
                await asyncio.gather(*(publisher.publish(ROOM, {"author": "bench", "text": str(seq)})
                                       for seq in range(first, min(first + in_flight, messages))))

        await asyncio.gather(publish_all(), *(subscriber.frames(messages) for subscriber in crowd))
        elapsed = time.perf_counter() - started
    for subscriber in crowd:
        subscriber.close()
    return subscribers * messages / elapsed


async def scenario(publish_url: str, subscribe_url: str, args: argparse.Namespace) -> dict:
    runs = [await latency(publish_url, subscribe_url, args.latency_messages) for _ in range(args.rounds)]
    rates = [await throughput(publish_url, subscribe_url, args.subscribers, args.messages)
             for _ in range(args.rounds)]
    samples = sorted(sample for run in runs for sample in run)
    return {
        "p50_ms": statistics.median(samples),
        "p99_ms": samples[int(len(samples) * 0.99) - 1],
        "deliveries_per_s": statistics.median(rates),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.redis_fanout", description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--messages", type=int, default=1000, help="publishes per throughput round")
    parser.add_argument("--latency-messages", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3, help="rounds per scenario; medians reported")
    parser.add_argument("--history", action="store_true", help="pub/sub against Redis Streams at a steady rate")
    parser.add_argument("--rate", type=float, default=1000.0, help="publishes per second with --history")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per round with --history")
    args = parser.parse_args(argv)
    if args.history:
        history_main(args)
        return

    with Processes() as processes:
        redis_url = processes.redis()
        alone = processes.gateway(None)
        first, second = processes.gateway(redis_url), processes.gateway(redis_url)
        memory = asyncio.run(scenario(alone, alone, args))
        redis = asyncio.run(scenario(first, second, args))

    rows = [("memory broker, 1 process", memory), ("redis broker, 2 processes", redis)]
    lines = [f"subscribers={args.subscribers} messages={args.messages} latency-messages={args.latency_messages} "
             f"rounds={args.rounds}",
             f"{'':28}{'p50 ms':>10}{'p99 ms':>10}{'deliveries/s':>15}"]
    for name, figures in rows:
        lines.append(f"{name:28}{figures['p50_ms']:10.2f}{figures['p99_ms']:10.2f}"
                     f"{figures['deliveries_per_s']:15,.0f}")
    lines.append(f"{'redis / memory':28}{redis['p50_ms'] / memory['p50_ms']:10.2f}"
                 f"{redis['p99_ms'] / memory['p99_ms']:10.2f}"
                 f"{redis['deliveries_per_s'] / memory['deliveries_per_s']:15.2f}")
    sys.stdout.write("\n".join(lines) + "\n")



def history_main(args: argparse.Namespace) -> None:
    """p50/p99 at ``args.rate`` msg/s, two processes: pub/sub alone, then with history, rounds interleaved."""
    samples: dict[str, list[float]] = {ROOM: [], LOGGED_ROOM: []}
    with Processes() as processes:
        redis_url = processes.redis()
        app = "bench.redis_fanout:history_gateway"
        first, second = processes.gateway(redis_url, app), processes.gateway(redis_url, app)
        for _ in range(args.rounds):
            for room in samples:
                samples[room] += asyncio.run(paced(first, second, room, args.rate, args.seconds))
    lines = [f"rate={args.rate:.0f}/s seconds={args.seconds} rounds={args.rounds}, publisher on one process, "
             "subscriber on the other", f"{'':30}{'p50 ms':>10}{'p99 ms':>10}"]
    figures = {}
    for room, name in ((ROOM, "redis pub/sub"), (LOGGED_ROOM, "redis streams (history)")):
        values = sorted(samples[room])
        figures[room] = (statistics.median(values), values[int(len(values) * 0.99) - 1])
        lines.append(f"{name:30}{figures[room][0]:10.2f}{figures[room][1]:10.2f}")
    lines.append(f"{'streams / pub/sub':30}{figures[LOGGED_ROOM][0] / figures[ROOM][0]:10.2f}"
                 f"{figures[LOGGED_ROOM][1] / figures[ROOM][1]:10.2f}")
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
