"""The stress suite's moving parts: two gateway processes on one redis-server, subscribers, publishers, checks.

Every gateway reaches Redis through its own `Proxy`, so a scenario can cut
or slow one link. Subscribers are `RecordingClient` instances: every frame
they send and read goes through the shared `DeliveryChecker`, and after a
dropped connection they reconnect (``since`` their position) to whichever
gateway is up. Publishers number their events. After the run the scenario
checks, with bounded waits, that every subscriber reached the end of every
channel, that nothing leaked in the gateways or in Redis, and that every
close code seen is one docs/protocol.md documents.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tornado.websocket import WebSocketClosedError

from drizzle_gateway.client import Client, ConnectionClosed, RemoteError
from drizzle_gateway.wire.dialect import decode
from tests.stress.app import HISTORY_SIZE
from tests.stress.checker import DeliveryChecker, Score
from tests.stress.proxy import Proxy
from tests.support.own_closes import ClosesNoticed
from tests.support.redis_server import REPO, GatewayProcess, RedisServer

logger = logging.getLogger("drizzle_gateway")

TARGET = "tests.stress.app:make_stress_gateway"
PREFIX = "drizzle:"
PUBLISH_INTERVAL = 0.02
"""Seconds between two rounds of a publisher (one event per channel each): about 50 events/s per channel each."""
SETTLE_TIMEOUT = 20.0
"""The bound on each wait after the faults: for subscribers to reach the channels' ends, for gateways to be idle."""
STREAM_SLACK = 100
"""``XADD MAXLEN ~`` trims whole stream nodes (100 entries by default), so a stream may hold this many more."""


def documented_close_codes() -> set[int]:
    """The close codes docs/protocol.md's close-code table lists."""
    text = (REPO / "docs" / "protocol.md").read_text()
    table = text.split("## Close codes", 1)[1]
    return {int(code) for code in re.findall(r"^\| (\d{4}) \|", table, flags=re.MULTILINE)}


def message(author: str, seq: int) -> dict[str, Any]:
    """A numbered ``stress.{room}`` payload."""
    return {"author": {"name": author}, "text": "s", "seq": seq}


class RecordingClient(ClosesNoticed):
    """A `Client` whose every frame, both ways, is shown to the checker under its ``name``."""

    def __init__(self, name: str, url: str, checker: DeliveryChecker, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        self.name = name
        self.checker = checker
        self.closes: list[int] = []  # the close codes of the connections it did not close itself
        self._sent: dict[Any, tuple[str, str]] = {}

    async def _send(self, text: str) -> None:
        frame = decode(text)
        data = frame.get("data") if isinstance(frame.get("data"), dict) else {}
        action = frame.get("action")
        if action in ("__subscribe__", "__unsubscribe__"):
            self._sent[frame["request_id"]] = (action, data["topic"])
            if action == "__subscribe__":
                self.checker.subscribing(self.name, data["topic"], data.get("since"))
        await super()._send(text)

    def _receive(self, frame: dict[str, Any]) -> None:
        if "topic" in frame and "request_id" not in frame:
            self.checker.frame(self.name, frame)
        else:
            sent = self._sent.pop(frame.get("request_id"), None)
            if sent is not None and "code" not in frame:
                action, topic = sent
                if action == "__subscribe__":
                    self.checker.subscribed(self.name, topic, frame.get("data") or {})
                else:
                    self.checker.unsubscribed(self.name, topic)
        super()._receive(frame)
        while not self._events.empty():  # the checker has seen them; nobody else reads events here
            if self._events.get_nowait() is None:
                self._events.put_nowait(None)
                break

    def _ended_under(self, code: int | None, reason: str | None) -> None:
        self.closes.append(1006 if code is None else code)

    async def rejoin(self, urls: Callable[[], list[str]], start: int = 0, attempts: int = 100) -> None:
        """Reconnect (``since`` the positions) to the first gateway of ``urls()`` that takes every subscription."""
        wanted = dict(self._subscriptions)
        for attempt in range(attempts):
            live = urls()
            self.url = live[(start + attempt) % len(live)]
            self._subscriptions = dict(wanted)
            try:
                replies = await self.reconnect()
            except Exception as exc:  # noqa: BLE001 - refused, reset, closed meanwhile: try again
                logger.debug("%s: reconnect to %s failed (%r)", self.name, self.url, exc)
            else:
                refused = [topic for topic, reply in replies.items() if isinstance(reply, RemoteError)]
                if not refused and self._gone is not None and not self._gone.done():
                    return
                logger.debug("%s: %s refused %s", self.name, self.url, refused)
            await asyncio.sleep(min(0.05 * (attempt + 1), 0.5))
        raise TimeoutError(f"{self.name}: could not reconnect in {attempts} attempts")

    async def keep_alive(self, urls: Callable[[], list[str]], stop: asyncio.Event, start: int = 0) -> None:
        """Until ``stop``: whenever the connection ends, `rejoin`."""
        stopped = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                assert self._gone is not None
                await asyncio.wait([self._gone, stopped], return_when=asyncio.FIRST_COMPLETED)
                if stop.is_set():
                    return
                await self.rejoin(urls, start)
        finally:
            stopped.cancel()


@dataclass
class Published:
    """What one publisher sent per channel: acknowledged, and sent without an answer (outcome unknown)."""

    acked: dict[str, int] = field(default_factory=dict)
    unknown: dict[str, int] = field(default_factory=dict)


class Cluster:
    """One redis-server, two proxies, two gateway processes (each through its proxy); all on 127.0.0.1."""

    def __init__(self, appendonly: bool = False) -> None:
        self.redis = RedisServer(appendonly=appendonly)
        self.proxies: list[Proxy] = []
        self.gateways: list[GatewayProcess | None] = []
        self.probes: dict[int, Client] = {}
        self.baselines: dict[int, dict[str, Any]] = {}
        self.stopped: list[GatewayProcess] = []

    async def start(self, count: int = 2) -> Cluster:
        """Start Redis, the proxies and ``count`` gateways; take each gateway's baseline counts."""
        await _blocking(self.redis.start)
        for _ in range(count):
            self.proxies.append(await Proxy(self.redis.port).start())
            self.gateways.append(None)
        await asyncio.gather(*(self.start_gateway(index) for index in range(count)))
        return self

    def urls(self) -> list[str]:
        """The websocket URLs of the gateways that are up."""
        return [gateway.url for gateway in self.gateways if gateway is not None]

    async def start_gateway(self, index: int) -> GatewayProcess:
        """Start gateway ``index`` (through proxy ``index``), open its probe, take its baseline."""
        gateway = GatewayProcess(self.proxies[index].url(), target=TARGET)
        await _blocking(gateway.wait_ready)
        self.gateways[index] = gateway
        probe = self.probes[index] = await Client(gateway.url).connect()
        await probe.subscribe("stress.warmup")  # starts the broker's connections and tasks
        await probe.publish("stress.warmup", message("probe", 0))
        await probe.unsubscribe("stress.warmup")
        self.baselines[index] = await self.settled(index, None)
        return gateway

    async def stop_gateway(self, index: int) -> int | None:
        """SIGTERM gateway ``index``; its exit code."""
        gateway = self.gateways[index]
        assert gateway is not None
        self.gateways[index] = None
        probe = self.probes.pop(index)
        code = await gateway.stopped()
        await probe.close()
        self.stopped.append(gateway)
        return code

    async def counts(self, index: int) -> dict[str, Any]:
        """Gateway ``index``'s probe counts."""
        return await self.probes[index].call("stress_probe", "counts")

    async def settled(self, index: int, baseline: dict[str, Any] | None) -> dict[str, Any]:
        """Gateway ``index``'s counts once only the probe is left (and, given a baseline, the tasks are its tasks).

        Waits at most `SETTLE_TIMEOUT`; returns the last counts either way, for the caller to assert on.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETTLE_TIMEOUT
        while True:
            counts = await self.counts(index)
            # Descriptors other than its Redis connections (which the proxy counts): redis-py's pool keeps
            # as many connections as were ever used at once, which is bounded, not a leak.
            counts["redis_links"] = self.proxies[index].links
            counts["other_fds"] = counts["fds"] - counts["redis_links"]
            idle = (counts["sessions"] == 1 and not counts["fanout_channels"] and not counts["broker_listeners"]
                    and counts["broker_pending"] == 0
                    and all("__origin__" in name for name in counts["broker_redis_subscribed"]))
            if baseline is None:  # a baseline: no unsubscribe still on its way to Redis
                idle = idle and "Fanout._leave" not in counts["tasks"]
            else:
                idle = idle and counts["tasks"] == baseline["tasks"] and counts["other_fds"] <= baseline["other_fds"]
            if idle or loop.time() >= deadline:
                return counts
            await asyncio.sleep(0.1)

    async def flushed(self) -> bool:
        """Whether every live gateway's broker has sent all it queued for Redis (waits at most `SETTLE_TIMEOUT`).

        Until then the channels' ends in Redis may still move: a publish answered by a gateway can wait
        in its broker's outbox while Redis is reached again.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETTLE_TIMEOUT
        while True:
            live = [index for index, gateway in enumerate(self.gateways) if gateway is not None]
            pending = [(await self.counts(index))["broker_pending"] for index in live]
            if not any(pending):
                return True
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.05)

    async def redis_call(self, *args: Any) -> Any:
        """One command to the real redis-server (not through a proxy)."""
        from redis.asyncio import Redis

        client = Redis.from_url(self.redis.url, socket_timeout=5)
        try:
            return await client.execute_command(*args)
        finally:
            await client.aclose()

    async def close(self) -> None:
        """Stop everything this cluster started."""
        for probe in self.probes.values():
            with contextlib.suppress(Exception):
                await probe.close()
        for index, gateway in enumerate(self.gateways):
            if gateway is not None:
                self.gateways[index] = None
                await gateway.stopped()
                self.stopped.append(gateway)
        for proxy in self.proxies:
            await proxy.close()
        await _blocking(self.redis.stop)
        for gateway in self.stopped:
            gateway.remove_log()


async def _blocking(function: Callable[[], Any]) -> Any:
    """Run a blocking helper (process start or stop) off the loop, so the proxies keep forwarding meanwhile."""
    return await asyncio.get_running_loop().run_in_executor(None, function)


async def publish_until(cluster: Cluster, name: str, index: int, channels: list[str], stop: asyncio.Event,
                        published: Published) -> None:
    """Publish numbered events on ``channels`` through gateway ``index`` (or another one up) until ``stop``."""
    client = Client(cluster.urls()[index % len(cluster.urls())], timeout=5.0)
    seq = itertools.count(1)
    connected = False
    try:
        while not stop.is_set():
            if not connected:
                live = cluster.urls()
                client.url = live[index % len(live)]
                try:
                    await client.connect()
                    connected = True
                except Exception:  # noqa: BLE001 - the gateway is going or not up yet
                    await asyncio.sleep(0.1)
                    continue
            number = next(seq)
            for channel in channels:
                try:
                    await client.publish(channel, message(name, number))
                except (ConnectionClosed, WebSocketClosedError, TimeoutError, OSError):
                    # WebSocketClosedError: the socket closed under the write, before the client's reader saw it
                    published.unknown[channel] = published.unknown.get(channel, 0) + 1
                    connected = False
                    await client.close()
                    break
                except RemoteError as refused:
                    if refused.code != "SHUTTING_DOWN":
                        raise
                    connected = False  # refused, so not published: reconnect, as the code asks
                    await client.close()
                    break
                published.acked[channel] = published.acked.get(channel, 0) + 1
            await asyncio.sleep(PUBLISH_INTERVAL)
    finally:
        await client.close()


async def channel_ends(cluster: Cluster, channels: list[str]) -> dict[str, tuple[str, int]]:
    """Each channel's epoch and last offset, as Redis has them."""
    ends = {}
    for channel in channels:
        epoch, offset = await cluster.redis_call("HMGET", f"{PREFIX}h:{channel}:meta", "epoch", "offset")
        ends[channel] = (epoch.decode(), int(offset))
    return ends


async def reached(checker: DeliveryChecker, names: list[str], ends: dict[str, tuple[str, int]]) -> bool:
    """Whether every subscriber stands at the end of every channel (waits at most `SETTLE_TIMEOUT`)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE_TIMEOUT
    while True:
        if all(checker.position(name, channel) == end for name in names for channel, end in ends.items()):
            return True
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(0.05)


async def redis_leftovers(cluster: Cluster, live_gateways: int) -> list[str]:
    """What Redis holds that it should not after a run (empty when all is well).

    Every key the broker writes expires (docs: the README's table of Redis
    keys): a channel's stream ``h:C`` (at most the history's size, plus
    `STREAM_SLACK`), its hash ``h:C:meta`` (epoch and offset) and each
    publishing process's ``h:C:meta:applied:<origin>``. Any key without a TTL
    is a leftover, and so is a stream longer than the history. In pub/sub only
    each live gateway's ``__origin__`` channel.
    """
    found = []
    cursor = 0
    while True:
        cursor, keys = await cluster.redis_call("SCAN", cursor, "COUNT", 1000)
        for raw in keys:
            key = raw.decode()
            kind = (await cluster.redis_call("TYPE", key)).decode()
            if await cluster.redis_call("TTL", key) < 0:
                found.append(f"{key} ({kind}) has no TTL")
            if kind == "stream" and (length := await cluster.redis_call("XLEN", key)) > HISTORY_SIZE + STREAM_SLACK:
                found.append(f"{key} (stream, length {length}) outgrew the history")
        if int(cursor) == 0:
            break
    channels = [name.decode() for name in await cluster.redis_call("PUBSUB", "CHANNELS")]
    strays = [name for name in channels if "__origin__" not in name]
    if strays or len(channels) != live_gateways:
        found.append(f"pub/sub channels {sorted(channels)} (expected one __origin__ per live gateway)")
    return found


@dataclass
class Outcome:
    """What a scenario measured; `problems` lists the broken invariants."""

    scenario: str
    published: dict[str, int]
    unknown: dict[str, int]
    scores: dict[str, dict[str, int]]
    problems: list[str]
    close_codes: list[int]
    seconds: float

    def table(self) -> str:
        lines = [f"{self.scenario}: published {self.published} (unanswered {self.unknown}) in {self.seconds:.1f}s"]
        for key, score in sorted(self.scores.items()):
            lines.append(f"  {key}: " + " ".join(f"{name}={value}" for name, value in score.items()))
        lines.extend(f"  PROBLEM {problem}" for problem in self.problems)
        return "\n".join(lines)


def record(outcome: Outcome) -> None:
    """Log the outcome; also append it as one JSON line to $DRIZZLE_STRESS_REPORT when set."""
    logger.info("%s", outcome.table())
    path = os.environ.get("DRIZZLE_STRESS_REPORT")
    if path:
        with Path(path).open("a") as out:
            out.write(json.dumps(outcome.__dict__) + "\n")


def summary(score: Score) -> dict[str, int]:
    return {"delivered": score.delivered, "lost": score.lost, "duplicated": score.duplicated,
            "skipped": score.skipped, "after_unsubscribe": score.after_unsubscribe, "epochs": score.epochs}


Fault = Callable[["Run"], Awaitable[None]]


@dataclass
class Run:
    """One scenario's subscribers, publishers and extra load, around its fault."""

    cluster: Cluster
    name: str
    checker: DeliveryChecker = field(default_factory=DeliveryChecker)
    subscribers: list[RecordingClient] = field(default_factory=list)
    others: list[RecordingClient] = field(default_factory=list)  # churn: checked while alive, not at the end
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task] = field(default_factory=list)

    @property
    def channels(self) -> list[str]:
        """The channels the subscribers follow to the end."""
        return [f"stress.{self.name}-{n}" for n in range(2)]

    @property
    def lonely(self) -> list[str]:
        """Channels published to that no subscriber keeps: joining one in a gateway waits for Redis."""
        return [f"stress.{self.name}-lonely{n}" for n in range(2)]

    def background(self, coroutine: Awaitable[None]) -> None:
        """Run ``coroutine`` until the scenario stops (its exception fails the scenario)."""
        self.tasks.append(asyncio.ensure_future(coroutine))

    async def subscriber(self, name: str, index: int, channels: list[str] | None = None,
                         keep: bool = True) -> RecordingClient:
        """A subscriber on gateway ``index`` to ``channels`` (default: the run's); reconnects while ``keep``."""
        client = RecordingClient(name, self.cluster.urls()[index], self.checker, timeout=5.0)
        await client.connect()
        for channel in channels or self.channels:
            await client.subscribe(channel)
        (self.subscribers if keep else self.others).append(client)
        if keep:
            self.background(client.keep_alive(self.cluster.urls, self.stop, start=index))
        return client


async def run_scenario(cluster: Cluster, name: str, fault: Fault, extra: Fault | None = None) -> Outcome:
    """Subscribe, publish, inject ``fault`` mid-stream (with ``extra`` load alongside), then check the invariants."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    run = Run(cluster, name)
    for index in range(len(cluster.gateways)):
        for n in range(2):
            await run.subscriber(f"g{index}s{n}", index)
    published = [Published() for _ in cluster.gateways]
    for index in range(len(cluster.gateways)):
        run.background(publish_until(cluster, f"p{index}", index, [*run.channels, *run.lonely], run.stop,
                                     published[index]))
    if extra is not None:
        run.background(extra(run))
    await asyncio.sleep(1.0)  # a second of steady traffic before the fault
    await fault(run)
    await asyncio.sleep(1.5)  # and after it
    run.stop.set()
    problems: list[str] = []
    results = await asyncio.wait_for(asyncio.gather(*run.tasks, return_exceptions=True), SETTLE_TIMEOUT)
    problems.extend(f"task failed: {result!r}" for result in results if isinstance(result, BaseException))

    if not await cluster.flushed():
        problems.append(f"a gateway still had publishes queued for Redis after {SETTLE_TIMEOUT}s")
    ends = await channel_ends(cluster, run.channels)
    names = [client.name for client in run.subscribers]
    if not await reached(run.checker, names, ends):
        problems.append(f"subscribers did not reach the channels' ends {ends} within {SETTLE_TIMEOUT}s: "
                        + ", ".join(f"{n}@{c}={run.checker.position(n, c)}" for n in names for c in ends))
    for client_name in names:
        for channel, (epoch, offset) in ends.items():
            run.checker.finish(client_name, channel, epoch, offset)
    for client in run.subscribers + run.others:
        await client.close()

    scores = run.checker.scores()
    for (client_name, channel), score in sorted(scores.items()):
        if not score.clean:
            problems.append(f"{client_name} on {channel}: {summary(score)} {score.anomalies}")
    codes = sorted({code for client in run.subscribers + run.others for code in client.closes})
    undocumented = set(codes) - documented_close_codes()
    if undocumented:
        problems.append(f"close codes not in docs/protocol.md: {sorted(undocumented)}")

    for index, gateway in enumerate(cluster.gateways):
        if gateway is None:
            continue
        baseline = cluster.baselines[index]
        counts = await cluster.settled(index, baseline)
        if (counts["sessions"] != 1 or counts["fanout_channels"] or counts["broker_listeners"]
                or counts["tasks"] != baseline["tasks"] or counts["other_fds"] > baseline["other_fds"]):
            problems.append(f"gateway {index} did not settle: {counts} (baseline {baseline})")
    problems.extend(await redis_leftovers(cluster, sum(gateway is not None for gateway in cluster.gateways)))

    totals: dict[str, int] = {}
    unknown: dict[str, int] = {}
    for result in published:
        for channel, count in result.acked.items():
            totals[channel] = totals.get(channel, 0) + count
        for channel, count in result.unknown.items():
            unknown[channel] = unknown.get(channel, 0) + count
    outcome = Outcome(name, totals, unknown,
                      {f"{n}@{c}": summary(s) for (n, c), s in scores.items()},
                      problems, codes, loop.time() - began)
    record(outcome)
    return outcome
