"""The bench's shapes that compare several servers in one run, their windows taking turns.

- `requests`: connections keeping 1 or 8 requests in flight, on the gateway
  and on each baseline (the Tornado echo, the picows echo), plus the gateway
  with ``metrics=False`` (metrics are on by default) and the gateway at another commit when asked;
- `client_fanout`: one client publishing bursts of ``__publish__`` frames to a room of subscribers;
- `mixed`: requests while a client-published fan-out runs, their p99;
- `workers`: the requests shape on ``drizzle-gateway serve --workers N --redis``.

Each server is started by a `Starter` (a name and a function that starts
it), so a shape never knows whether it runs this checkout, a baseline or REF.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.harness import CONTEXT, Process, Server, client, split
from tests.support.ports import free_port, wait_for_port
from tests.support.redis_server import RedisServer

ROOT = Path(__file__).resolve().parent.parent
Starter = Callable[[], Server]
"""Starts one server (listening on return)."""
Report = Callable[[str, str], None]
"""Where a shape reports a correctness problem: (what, text)."""


def local(kind: str, options: dict[str, Any] | None = None) -> Starter:
    """A `Starter` for a server of ``kind`` from this checkout."""
    return lambda: Server(kind, CONTEXT.RawArray("q", 1), options)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def requests(targets: dict[str, Starter], action: str, connections: int, depth: int, warmup: float,
             seconds: float, repeats: int, problem: Report) -> list[dict]:
    """``connections`` connections per server each keeping ``depth`` ``action`` requests in flight, in turns."""
    servers: dict[str, Server] = {}
    try:
        for name, start in targets.items():
            servers[name] = start()
        proc = client("paired_requests", targets={name: (srv.port, srv.pids) for name, srv in servers.items()},
                      count=connections, warmup=warmup, seconds=seconds, repeats=repeats, action=action,
                      depth=depth)
        reports = proc.expect(900)
        proc.stop()
    finally:
        for srv in servers.values():
            srv.close()
    results = []
    for name, report in reports.items():
        what = f"requests[{name},{action},{connections}x{depth}]"
        for text in report["errors"]:
            problem(what, text)
        rounds = report["rounds"]
        if not all(r["rps"] > 0 for r in rounds):
            problem(what, "no replies")
        results.append({
            "scenario": "requests", "kind": name, "action": action, "connections": connections, "depth": depth,
            "rps": median([r["rps"] for r in rounds]), "rates": [r["rps"] for r in rounds],
            "p50_ms": median([r["p50"] for r in rounds]) * 1e3, "p99_ms": median([r["p99"] for r in rounds]) * 1e3,
            "cpu_us_per_request": median([r["cpu"] / max(1, r["count"]) * 1e6 for r in rounds])})
    return results


class Room:
    """One server and its room of subscribers (in processes of their own), for the client-published shapes."""

    def __init__(self, name: str, start: Starter, members: int) -> None:
        self.name = name
        self.members = members
        self.server = start()
        sizes = split(members)
        self.progress = CONTEXT.RawArray("q", len(sizes))
        self.procs: list[Process] = []
        try:
            for slot, size in enumerate(sizes):
                self.procs.append(client("room_subscribers", kind=name, port=self.server.port, count=size,
                                         slot=slot, progress=self.progress))
            for proc in self.procs:
                if proc.expect() != "ready":
                    raise RuntimeError("room subscribers failed to start")
        except BaseException:
            self.close()
            raise

    def target(self) -> tuple[int, list[int], int]:
        """What the publisher process needs: the port, the server's pids, the members."""
        return self.server.port, self.server.pids, self.members

    def finish(self, published: int, problem: Report) -> None:
        """Check that every member got every one of the ``published`` notes, then stop everything."""
        what = f"client_fanout[{self.name},{self.members}]"
        try:
            for proc in self.procs:
                proc.pipe.send("report")
            for proc in self.procs:
                report = proc.expect()
                for text in report["errors"]:
                    problem(what, text)
                short = [count for count in report["counts"] if count != published]
                if short:
                    problem(what, f"{len(short)} members got {sorted(set(short))[:5]} notes, not {published}")
        finally:
            self.close()

    def close(self) -> None:
        for proc in self.procs:
            proc.stop()
        self.server.close()


@contextmanager
def rooms_and_publisher(targets: dict[str, Starter], members: int, published: dict[str, int],
                        problem: Report) -> Iterator[tuple[dict[str, Room], Process]]:
    """A `Room` of ``members`` per target and one publisher process for them all.

    On leaving, the publisher stops and each room is checked and closed (`Room.finish`)
    against its count in ``published``, which the body adds to as it publishes.
    """
    rooms: dict[str, Room] = {}
    publisher: Process | None = None
    try:
        for name, start in targets.items():
            rooms[name] = Room(name, start, members)
        publisher = client("room_publisher", targets={name: room.target() for name, room in rooms.items()},
                           progress={name: room.progress for name, room in rooms.items()})
        if publisher.expect() != "ready":
            raise RuntimeError("the publisher failed to start")
        yield rooms, publisher
    finally:
        if publisher is not None:
            publisher.stop()
        for name, room in rooms.items():
            room.finish(published[name], problem)


def client_fanout(targets: dict[str, Starter], members: int, bursts: int, size: int, repeats: int,
                  problem: Report) -> list[dict]:
    """One client sends ``size`` ``__publish__`` frames back to back, ``bursts`` times a window, to ``members``.

    Deliveries/s and server CPU per delivery, each server's windows taking turns with the others'.
    """
    published = dict.fromkeys(targets, 0)
    rounds: dict[str, list[dict]] = {name: [] for name in targets}
    with rooms_and_publisher(targets, members, published, problem) as (rooms, publisher):
        order = list(targets)
        for repeat in range(repeats + 1):  # the first round warms up
            for name in order:
                result = publisher.ask("window", {"target": name, "bursts": bursts, "size": size}, timeout=600)
                published[name] += bursts * size
                for text in result["problems"]:
                    problem(f"client_fanout[{name},{members}]", text)
                if repeat:
                    rounds[name].append(result)
            order.reverse()
        refused = publisher.ask("stop")
        for name, codes in refused.items():
            if codes:
                problem(f"client_fanout[{name},{members}]", f"publishes refused: {codes}")
    return [{"scenario": "client_fanout", "kind": name, "subscribers": members, "burst": size, "bursts": bursts,
             "deliveries_per_s": median([r["deliveries"] / r["seconds"] for r in results]),
             "rates": [r["deliveries"] / r["seconds"] for r in results],
             "cpu_us_per_delivery": median([r["cpu"] / max(1, r["deliveries"]) * 1e6 for r in results])}
            for name, results in rounds.items()]


def mixed(targets: dict[str, Starter], members: int, size: int, interval: float, connections: int, seconds: float,
          repeats: int, problem: Report) -> list[dict]:
    """Requests (one in flight on each of ``connections``) while one client publishes to ``members``.

    The publisher sends a burst of ``size`` notes every ``interval`` seconds, the same
    fan-out for every server. The requests' p50 and p99 per server, the servers taking turns.
    """
    published = dict.fromkeys(targets, 0)
    rounds: dict[str, list[dict]] = {name: [] for name in targets}
    with rooms_and_publisher(targets, members, published, problem) as (rooms, publisher):
        order = list(targets)
        for _ in range(repeats):
            for name in order:
                room = rooms[name]
                publisher.pipe.send(("window", {"target": name, "bursts": 1_000_000, "size": size,
                                                "seconds": seconds + 1.0, "interval": interval}))
                load = client("requests", kind=name, port=room.server.port, count=connections, warmup=0.5,
                              seconds=seconds, repeats=1, server_pid=room.server.pids[0])
                report = load.expect(300)
                load.stop()
                fanned = publisher.expect(300)
                published[name] += fanned["deliveries"] // members
                for text in report["errors"] + fanned["problems"]:
                    problem(f"mixed[{name},{members}]", text)
                rate = fanned["deliveries"] / fanned["seconds"]
                rounds[name].append({**report["rounds"][0], "deliveries_per_s": rate})
            order.reverse()
        publisher.ask("stop")
    return [{"scenario": "mixed", "kind": name, "subscribers": members, "connections": connections,
             "rps": median([r["rps"] for r in results]), "p50_ms": median([r["p50"] for r in results]) * 1e3,
             "p99_ms": median([r["p99"] for r in results]) * 1e3,
             "deliveries_per_s": median([r["deliveries_per_s"] for r in results])}
            for name, results in rounds.items()]


class Workers(Server):
    """``drizzle-gateway serve bench.app:served --workers N --redis URL``, with a redis-server of its own."""

    def __init__(self, workers: int) -> None:
        self.port = free_port()
        self.redis = RedisServer().start()
        self.workers = workers
        command = [sys.executable, "-m", "drizzle_gateway.cli", "serve", "bench.app:served", "--port",
                   str(self.port), "--workers", str(workers), "--redis", self.redis.url, "--log-level", "WARNING"]
        self.child = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        try:
            wait_for_port(self.port, timeout=60.0, process=self.child)
            deadline = time.monotonic() + 30
            while len(self.pids) < workers and time.monotonic() < deadline:
                time.sleep(0.05)
        except BaseException:
            self.close()
            raise

    @property
    def pids(self) -> list[int]:
        """The workers (the supervisor only waits)."""
        try:
            with open(f"/proc/{self.child.pid}/task/{self.child.pid}/children") as children:
                return [int(pid) for pid in children.read().split()]
        except OSError:
            return []

    def close(self) -> None:
        self.child.terminate()
        try:
            self.child.wait(30)
        except subprocess.TimeoutExpired:
            self.child.kill()
            self.child.wait()
        self.redis.stop()


def can_serve_workers() -> bool:
    """Whether the workers shape can run here (it needs redis-server)."""
    return shutil.which("redis-server") is not None



def _times(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def _versus(r: dict, base: dict | None, name: str) -> str:
    """``r``'s rate and p99 as multiples of ``base``'s (for request rows), or its rate and CPU (fan-out rows)."""
    if base is None:
        return ""
    if "rps" in r:
        rate, p99 = _times(r["rps"], base["rps"]), _times(r["p99_ms"], base["p99_ms"])
        return f"{rate:.2f}× {name} rate, {p99:.2f}× {name} p99" if rate and p99 else ""
    rate = _times(r["deliveries_per_s"], base["deliveries_per_s"])
    cpu = _times(base["cpu_us_per_delivery"], r["cpu_us_per_delivery"])  # None when a window was too short to tick
    return ", ".join(part for part in (rate and f"{rate:.2f}× {name} rate",
                                       cpu and f"{cpu:.2f}× less CPU than {name}") if part)


def rows(results: list[dict]) -> list[tuple[str, str, str]]:
    """Summary rows (what, figure, same-run ratios) of the shapes of this module."""
    groups: dict[tuple, dict[str, dict]] = {}
    for r in results:
        if r["scenario"] in ("requests", "client_fanout", "mixed", "workers"):
            key = (r["scenario"], r.get("action"), r.get("subscribers") or r.get("connections"), r.get("depth"))
            groups.setdefault(key, {})[r["kind"]] = r
    out = []
    for (scenario, action, size, depth), kinds in groups.items():
        gateway = kinds.get("gateway")
        for kind, r in kinds.items():
            if scenario == "requests":
                what = f"requests {action} {size} conns x {depth} in flight: {kind}"
            elif scenario == "workers":
                what = f"requests {action} {size} conns x {depth} in flight: {kind}"
            elif scenario == "client_fanout":
                what = f"client-published fan-out {r['burst']} x {r['bursts']} notes to {size} subs: {kind}"
            else:
                what = f"requests ({r['connections']} conns) during a client-published fan-out to {size} subs: {kind}"
            if "rps" in r:
                figure = f"{r['rps']:,.0f} round trips/s, p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms"
                if "cpu_us_per_request" in r:
                    figure += f", {r['cpu_us_per_request']:.1f} µs server CPU/request"
                if "deliveries_per_s" in r:
                    figure += f", fan-out {r['deliveries_per_s']:,.0f} deliveries/s"
                if "workers" in r:
                    figure += f", {r['workers']} workers x {r['cores']} cores"
            else:
                figure = (f"{r['deliveries_per_s']:,.0f} deliveries/s, "
                          f"{r['cpu_us_per_delivery']:.2f} µs server CPU/delivery")
            if kind.startswith("gateway") and kind != "gateway" and gateway is not None:
                ratio = _versus(r, gateway, "the gateway")  # metrics off, another commit, workers
            elif kind.startswith("gateway"):
                ratio = "; ".join(filter(None, (_versus(r, kinds.get(name), name)
                                                for name in ("tornado", "picows"))))
            elif kind == "tornado-control":
                ratio = _versus(r, kinds.get("tornado"), "echo") + " (noise floor)"
            else:
                ratio = ""
            out.append((what, figure, ratio))
    return out
