"""``python -m bench.profile``: where one request's time goes, on the gateway or the bare echo.

Runs the server of the requests scenario in this process, under cProfile, while
the scenario's own picows load client (`bench.clients.requests`, in another
process) keeps one request in flight on each of ``--connections`` connections.
The profile covers ``--seconds`` after a warm-up. Prints the top functions by
cumulative and by own time, then microseconds per request: the time of a few
entry points (marshmallow load, dump, JSON...) and every function's own time
by area, divided by the requests served in the window.

cProfile slows Python code (marshmallow's many small calls) more than C code
(orjson, sockets), so read the buckets against each other and against the
echo (``--kind tornado``) profiled the same way, not as wall-clock latencies.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import sys
from collections.abc import Callable

from bench import server
from bench.harness import client
from tests.support.ports import free_port

ACTIONS = {"orders": "orders.create", "publish": "posts.publish"}

SERVED = {
    "gateway": ("drizzle_gateway/runtime/dispatch.py", "parse"),  # once per request frame
    "tornado": ("bench/app.py", "on_message"),
}
"""The function called once per request served, by server kind: its call count is the requests served."""

Key = tuple[str, int, str]
Row = tuple[int, int, float, float, dict]


def _is(key: Key, path: str, name: str) -> bool:
    return key[0].endswith(path) and key[2] == name


def _builtin(key: Key, *names: str) -> bool:
    return key[0] == "~" and any(name in key[2] for name in names)


ENTRY_POINTS: list[tuple[str, Callable[[Key], bool]]] = [
    ("marshmallow Schema.load (action input)", lambda k: _is(k, "marshmallow/schema.py", "load")),
    ("marshmallow Schema.validate (publish check)", lambda k: _is(k, "marshmallow/schema.py", "validate")),
    ("marshmallow Schema.dump (reply, publish)", lambda k: _is(k, "marshmallow/schema.py", "dump")),
    ("JSON parse (orjson.loads, json.loads)",
     lambda k: _builtin(k, "orjson.loads") or _is(k, "json/__init__.py", "loads")),
    ("JSON encode (orjson.dumps, json.dumps)",
     lambda k: _builtin(k, "orjson.dumps") or _is(k, "json/__init__.py", "dumps")),
    ("tornado: _receive_frame (read, unmask, on_message inline)",
     lambda k: _is(k, "tornado/websocket.py", "_receive_frame")),
    ("tornado: _handle_message (decode, on_message)", lambda k: _is(k, "tornado/websocket.py", "_handle_message")),
    ("tornado: WebSocketHandler.write_message", lambda k: _is(k, "tornado/websocket.py", "write_message")),
    ("tornado: IOStream.write", lambda k: _is(k, "tornado/iostream.py", "write")),
    ("asyncio: loop.create_task", lambda k: _is(k, "asyncio/base_events.py", "create_task")),
    ("asyncio: timeout (enter + exit)",
     lambda k: _is(k, "asyncio/timeouts.py", "__aenter__") or _is(k, "asyncio/timeouts.py", "__aexit__")),
    ("gateway: Connection.on_message", lambda k: _is(k, "drizzle_gateway/transport/connection.py", "on_message")),
    ("gateway: Session._serve (the request task)", lambda k: _is(k, "drizzle_gateway/runtime/session.py", "_serve")),
    ("gateway: dispatch.run (find, load, invoke, dump)",
     lambda k: _is(k, "drizzle_gateway/runtime/dispatch.py", "run")),
    ("gateway: Gateway.publish (dump, check, broker)", lambda k: _is(k, "drizzle_gateway/gateway.py", "publish")),
    ("gateway: Connection.send_frame (the reply)",
     lambda k: _is(k, "drizzle_gateway/transport/connection.py", "send_frame")),
]
"""Cumulative time of these (summed when several match; a function inside another counts in both)."""


def area(key: Key) -> str:
    """Where a function's own time goes."""
    path, _, name = key
    if path == "~":
        if "orjson" in name or "_json" in name:
            return "JSON (orjson, json)"
        if "epoll" in name or "select" in name:
            return "waiting in epoll (idle)"
        if "_socket.socket" in name:
            return "socket calls (send, recv)"
        if "_asyncio" in name or "_contextvars" in name or "_heapq" in name:
            return "asyncio (loop, tasks, futures, handles)"
        return "other built-ins (isinstance, dict, getattr...)"
    for part, label in (("marshmallow/", "marshmallow"), ("drizzle_gateway/", "drizzle_gateway"),
                        ("tornado/websocket.py", "tornado websocket.py"),
                        ("tornado/iostream.py", "tornado iostream.py"),
                        ("tornado/", "tornado other"), ("asyncio/", "asyncio (loop, tasks, futures, handles)"),
                        ("/json/", "JSON (orjson, json)"), ("bench/", "bench app (the action or the echo)")):
        if part in path:
            return label
    return "other Python (typing, inspect, re...)"


def served(stats: dict[Key, Row], kind: str) -> int:
    path, name = SERVED[kind]
    return sum(row[1] for key, row in stats.items() if _is(key, path, name))


def buckets(stats: dict[Key, Row], requests: int) -> str:
    out = io.StringIO()
    total = sum(row[2] for row in stats.values())
    idle = sum(row[2] for key, row in stats.items() if area(key) == "waiting in epoll (idle)")
    per = 1e6 / max(1, requests)
    out.write(f"requests served in the window: {requests:,}; profiled time {total:.2f} s, "
              f"of which waiting in epoll {idle:.2f} s\n")
    out.write(f"busy time per request: {(total - idle) * per:.1f} µs\n\n")
    out.write("entry points, cumulative µs per request:\n")
    for label, match in ENTRY_POINTS:
        cum = sum(row[3] for key, row in stats.items() if match(key))
        calls = sum(row[1] for key, row in stats.items() if match(key))
        if calls:
            out.write(f"  {cum * per:8.1f} µs  {calls / max(1, requests):5.2f} calls/request  {label}\n")
    out.write("\nown time by area, µs per request (sums to the profiled time):\n")
    areas: dict[str, float] = {}
    for key, row in stats.items():
        areas[area(key)] = areas.get(area(key), 0.0) + row[2]
    for label, seconds in sorted(areas.items(), key=lambda item: -item[1]):
        out.write(f"  {seconds * per:8.1f} µs  {seconds / total * 100:5.1f}%  {label}\n")
    return out.getvalue()


async def profile(kind: str, action: str, connections: int, depth: int, seconds: float, warmup: float) -> tuple[
        cProfile.Profile, dict]:
    srv = server.make(kind, {})
    port = free_port()
    await server.listen(kind, srv, port)
    loop = asyncio.get_running_loop()
    load = client("requests", kind=kind, port=port, count=connections, warmup=warmup, seconds=seconds, repeats=1,
                  action=action, announce=True, depth=depth)
    try:
        if await loop.run_in_executor(None, load.expect, 120.0) != "started":
            raise RuntimeError("the load client did not start")
        await asyncio.sleep(warmup)
        profiler = cProfile.Profile()
        profiler.enable()
        await asyncio.sleep(seconds)
        profiler.disable()
        report = await loop.run_in_executor(None, load.expect, 120.0)
    finally:
        load.stop()
    return profiler, report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.split("\n")[0])
    parser.add_argument("--action", choices=sorted(ACTIONS), default="orders",
                        help="orders: orders.create; publish: posts.publish (default: orders)")
    parser.add_argument("--connections", type=int, default=16, help="connections (default: 16)")
    parser.add_argument("--depth", type=int, default=1, help="requests in flight on each connection (default: 1)")
    parser.add_argument("--seconds", type=float, default=5.0, help="the profiled window (default: 5)")
    parser.add_argument("--warmup", type=float, default=1.0, help="load before the window (default: 1)")
    parser.add_argument("--kind", choices=("gateway", "tornado"), default="gateway",
                        help="the gateway, or the bare Tornado echo answering the same frames")
    parser.add_argument("--top", type=int, default=30, help="functions in each list (default: 30)")
    parser.add_argument("--save", metavar="FILE", help="also write the raw profile (pstats) to FILE")
    args = parser.parse_args(argv)
    server.raise_fd_limit()
    action = ACTIONS[args.action]
    profiler, report = asyncio.run(profile(args.kind, action, args.connections, args.depth, args.seconds,
                                                args.warmup))
    if args.save:
        profiler.dump_stats(args.save)
    stats = pstats.Stats(profiler, stream=sys.stdout)
    raw: dict[Key, Row] = stats.stats  # type: ignore[attr-defined]
    requests = served(raw, args.kind)
    rps = report["rounds"][0]["rps"] if report.get("rounds") else float("nan")
    print(f"# {args.kind}, {action}, {args.connections} connections x {args.depth} in flight, "
          f"{args.seconds:g} s profiled (client: {rps:,.0f} round trips/s under the profiler, "
          f"{report.get('error_count', 0)} errors)\n")
    print(buckets(raw, requests))
    stats.strip_dirs()
    print(f"## top {args.top} by cumulative time")
    stats.sort_stats("cumulative").print_stats(args.top)
    print(f"## top {args.top} by own time")
    stats.sort_stats("tottime").print_stats(args.top)
    if report.get("errors"):
        print("client errors:\n  " + "\n  ".join(report["errors"]))
    return 1 if report.get("error_count") else 0


if __name__ == "__main__":
    sys.exit(main())
