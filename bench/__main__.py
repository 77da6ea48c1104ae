"""``python -m bench``: fan-out, bursts, request/response (one or 100 in flight) and memory, against bare Tornado.

Every scenario starts the server in one process and its load generators in
others, warms up, repeats, and reports medians; ratios compare figures of the
same run. ``--quick`` takes about a minute; ``--check`` exits non-zero only if a
scenario errored, a client saw a missing, extra or wrong message, a fast
subscriber was closed, or a pipelined request got an error reply.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import clients, shapes
from bench.harness import CONTEXT, Process, Server, client, collect_reports, split, start_subscribers, stop_all
from bench.shapes import Starter, local

logger = logging.getLogger("bench")
HERE = Path(__file__).resolve().parent
SCENARIOS = ("fanout", "client_fanout", "burst", "requests", "mixed", "pipelined", "memory")
OPTIONAL_SCENARIOS = ("history", "workers")
"""Run only when named with ``--only`` (``workers`` also with ``--workers N``)."""
HISTORY = 1000
"""Events the history scenario keeps per channel (``--only history``; not part of the default run)."""


@dataclass
class Settings:
    """How big and how long each scenario runs."""

    fanout_subscribers: tuple[int, ...] = (100, 1000, 5000)
    fanout_deliveries: int = 120_000  # per repeat; messages = deliveries / subscribers
    fanout_repeats: int = 5
    request_actions: tuple[tuple[str, tuple[int, ...]], ...] = (("orders.create", (1, 16, 128)),
                                                                ("posts.publish", (1, 16, 128)))
    """Each action of the requests scenario (a key of `bench.app.REQUESTS`) and its connection counts."""
    request_depths: tuple[int, ...] = (1, 8)
    """Requests each connection keeps in flight (pipelined: sent back to back, one more per reply)."""
    request_controls: tuple[int, ...] = (1,)
    """Connection counts at which a second echo takes turns with the first (the noise floor of one server),
    and the gateway with ``Limits(busy_poll=None)`` with the gateway (what busy polling buys)."""
    baselines: tuple[str, ...] = ("tornado", "picows")
    """The baselines the requests and client-published fan-out shapes take turns with."""
    metrics: bool = True
    """Also run the gateway with ``metrics=False`` in those shapes (what its default metrics cost, same-run)."""
    client_fanout_members: tuple[int, ...] = (100, 400, 1000, 5000)
    client_fanout_size: int = 30  # __publish__ frames sent back to back...
    client_fanout_bursts: int = 4  # ...this many times a window
    client_fanout_repeats: int = 5
    mixed_members: int = 100
    mixed_interval: float = 0.5  # a burst of client_fanout_size notes this often: 6,000 deliveries/s, for every server
    mixed_connections: int = 16
    mixed_seconds: float = 2.0
    mixed_repeats: int = 3
    workers: int = 2
    worker_connections: tuple[int, ...] = (16, 128)
    request_seconds: float = 3.0
    request_repeats: int = 5
    request_warmup: float = 0.5
    """Seconds of load before each window (the other server's connections idle meanwhile)."""
    idle_connections: int = 5000
    window: int = 100  # messages in flight (not yet received by every subscriber)
    burst: int = 10  # messages published between two event-loop turns
    peers: tuple[str, ...] = ("gateway", "tornado", "socketio")
    burst_subscribers: tuple[int, ...] = (100, 1000)
    burst_messages: int = 2000  # published by a server loop awaiting only publish: 6 MB to each subscriber...
    burst_frame_bytes: int = 3000
    burst_deliveries: int = 500_000  # ...or fewer messages, to stay within this many deliveries (1.5 MB at 1,000)
    burst_repeats: int = 5
    pipelined_connections: tuple[int, ...] = (1, 16, 128)
    pipelined_depth: int = 100  # requests in flight per connection (the gateway runs max_in_flight=32 at once)
    pipelined_seconds: float = 3.0
    pipelined_repeats: int = 5


QUICK = Settings(fanout_subscribers=(1000,), fanout_deliveries=30_000, fanout_repeats=3,
                 request_actions=(("orders.create", (16, 128)), ("posts.publish", (16,))), request_seconds=0.7,
                 request_controls=(), request_repeats=3, request_warmup=0.3, idle_connections=1000,
                 request_depths=(1,), baselines=("tornado",), metrics=False,
                 client_fanout_members=(100,), client_fanout_bursts=2, client_fanout_repeats=1, mixed_repeats=0,
                 worker_connections=(16,),
                 burst_subscribers=(50,), burst_repeats=3,
                 pipelined_connections=(16,), pipelined_seconds=0.7, pipelined_repeats=3)


@dataclass
class Failures:
    """Correctness problems seen during the run (``--check`` fails on any)."""

    items: list[str] = field(default_factory=list)

    def add(self, scenario: str, text: str) -> None:
        logger.error("%s: %s", scenario, text)
        self.items.append(f"{scenario}: {text}")


def pct(values: list[float], p: float) -> float:
    return clients.percentile(sorted(values), p)


def fanout(kind: str, subscribers: int, selections: bool, settings: Settings, failures: Failures,
           history: int | None = None) -> dict:
    """Publish numbered ticks to ``subscribers`` connections; deliveries/s, latency, server CPU per delivery.

    ``history`` (gateway only) declares the topic with that much history.
    """
    name = f"fanout[{kind},{subscribers}{',fields' if selections else ''}{f',history={history}' if history else ''}]"
    sizes = split(subscribers)
    progress = CONTEXT.RawArray("q", len(sizes))
    srv = Server(kind, progress, {"history": history} if history else {})
    procs: list[Process] = []
    try:
        start_subscribers(procs, kind, srv.port, sizes, selections, progress)
        count = max(20, settings.fanout_deliveries // subscribers)
        run = {"window": settings.window, "burst": settings.burst, "stall": 5.0}
        published = max(10, count // 5)
        srv.ask("publish", {"count": published, **run})  # warm-up
        rounds = []
        for _ in range(settings.fanout_repeats):
            result = srv.ask("publish", {"count": count, **run})
            published += count
            if result["received"] != count * subscribers:
                failures.add(name, f"{result['received']} of {count * subscribers} deliveries arrived")
            rounds.append(result)
        reports = collect_reports(procs)
    finally:
        stop_all(procs, srv)
    latencies: list[float] = []
    for report in reports:
        latencies += report["latencies"]
        for text in report["errors"]:
            failures.add(name, text)
        short = [c for c in report["counts"] if c != published]
        if short:
            failures.add(name, f"{len(short)} subscribers got {sorted(set(short))[:5]} messages, not {published}")
    rates = [r["received"] / r["seconds"] for r in rounds]
    return {"scenario": "fanout", "kind": kind, "subscribers": subscribers, "selections": selections,
            "history": history, "messages_per_repeat": count,
            "deliveries_per_s": statistics.median(rates), "rates": rates,
            "cpu_us_per_delivery": statistics.median(r["cpu"] / max(1, r["received"]) * 1e6 for r in rounds),
            "p50_ms": pct(latencies, 50) * 1e3, "p99_ms": pct(latencies, 99) * 1e3}


CONTROL = "tornado-control"
"""The requests scenario's second echo: the same server as ``tornado``, measured as if it were another."""


def request_targets(settings: Settings, connections: int, ref: Starter | None, label: str) -> dict[str, Starter]:
    """The servers a requests shape takes turns between: the gateway, its variants and the baselines."""
    targets = {"gateway": local("gateway")}
    if settings.metrics:
        targets["gateway-no-metrics"] = local("gateway-no-metrics")
    if ref is not None:
        targets[label] = ref
    for kind in settings.baselines:
        targets[kind] = local(kind)
    if connections in settings.request_controls:
        targets[CONTROL] = local("tornado")
        targets["gateway-no-busy-poll"] = local("gateway-no-busy-poll")
    return targets


def burst(kind: str, subscribers: int, settings: Settings, failures: Failures) -> dict:
    """A server loop publishes a burst far above ``send_queue_bytes`` to fast subscribers; none may be closed."""
    name = f"burst[{kind},{subscribers}]"
    sizes = split(subscribers)
    progress = CONTEXT.RawArray("q", len(sizes))
    srv = Server(kind, progress, {})
    procs: list[Process] = []
    try:
        start_subscribers(procs, kind, srv.port, sizes, False, progress)
        count = min(settings.burst_messages, settings.burst_deliveries // subscribers)
        published = 0
        rounds = []
        for repeat in range(settings.burst_repeats + 1):  # the first, a quarter of a burst, is the warm-up
            size = count if repeat else max(1, count // 4)
            result = srv.ask("burst", {"count": size, "frame_bytes": settings.burst_frame_bytes, "stall": 5.0})
            published += size
            if result["received"] != size * subscribers:
                failures.add(name, f"{result['received']} of {size * subscribers} deliveries arrived")
            if result["subscribers_after"] != result["subscribers"]:
                failures.add(name, f"the server closed {result['subscribers'] - result['subscribers_after']} "
                                   f"of {result['subscribers']} subscribers")
            if result["subscribers_after"] == 0:
                break
            if repeat:
                rounds.append(result)
        reports = collect_reports(procs)
    finally:
        stop_all(procs, srv)
    closed = sum(report["closed"] for report in reports)
    if closed:
        failures.add(name, f"{closed} fast subscribers were closed")
    for report in reports:
        for text in report["errors"]:
            failures.add(name, text)
        short = [c for c in report["counts"] if c != published]
        if short:
            failures.add(name, f"{len(short)} subscribers got {sorted(set(short))[:5]} messages, not {published}")
    if not rounds:
        raise RuntimeError("every subscriber was closed during the warm-up")
    rates = [r["received"] / r["seconds"] for r in rounds]
    return {"scenario": "burst", "kind": kind, "subscribers": subscribers, "messages_per_repeat": count,
            "frame_bytes": settings.burst_frame_bytes, "deliveries_per_s": statistics.median(rates), "rates": rates,
            "publish_ms": statistics.median(r["publish_seconds"] for r in rounds) * 1e3,
            "cpu_us_per_delivery": statistics.median(r["cpu"] / max(1, r["received"]) * 1e6 for r in rounds),
            "peak_rss_growth_mib": max(r["peak_rss_growth"] for r in rounds) / 2**20,
            "closed": closed}


def pipelined(kind: str, connections: int, settings: Settings, failures: Failures) -> dict:
    """``connections`` clients each keeping ``pipelined_depth`` ``orders.create`` requests in flight."""
    name = f"pipelined[{kind},{connections}]"
    srv = Server(kind, CONTEXT.RawArray("q", 1))
    try:
        proc = client("pipelined", kind=kind, port=srv.port, count=connections, depth=settings.pipelined_depth,
                      warmup=1.0, seconds=settings.pipelined_seconds, repeats=settings.pipelined_repeats, drain=10.0)
        report = proc.expect(600)
        proc.stop()
    finally:
        srv.close()
    for text in report["errors"]:
        failures.add(name, text)
    refused = sum(report["refused"].values())
    if refused:
        failures.add(name, f"{refused} of {report['sent']} pipelined requests got an error reply: {report['refused']}")
    if report["unanswered"]:
        failures.add(name, f"{report['unanswered']} of {report['sent']} requests were never answered")
    rounds = report["rounds"]
    if not all(r["rps"] > 0 for r in rounds):
        failures.add(name, "no replies")
    return {"scenario": "pipelined", "kind": kind, "connections": connections, "depth": settings.pipelined_depth,
            "rps": statistics.median(r["rps"] for r in rounds), "rates": [r["rps"] for r in rounds],
            "p50_ms": statistics.median(r["p50"] for r in rounds) * 1e3,
            "p99_ms": statistics.median(r["p99"] for r in rounds) * 1e3,
            "sent": report["sent"], "error_replies": refused, "unanswered": report["unanswered"]}


def memory(kind: str, connections: int, failures: Failures) -> dict:
    """Server RSS growth per idle connection."""
    name = f"memory[{kind},{connections}]"
    srv = Server(kind, CONTEXT.RawArray("q", 1))
    procs = []
    try:
        time.sleep(0.5)
        before = srv.ask("rss")
        procs = [client("idle", kind=kind, port=srv.port, count=size) for size in split(connections)]
        for proc in procs:
            if proc.expect() != "ready":
                raise RuntimeError("idle clients failed to start")
        time.sleep(1.0)
        after = srv.ask("rss")
        opened = sum(report["open"] for report in collect_reports(procs))
    finally:
        stop_all(procs, srv)
    if opened != connections:
        failures.add(name, f"only {opened} of {connections} connections stayed open")
    return {"scenario": "memory", "kind": kind, "connections": connections,
            "kib_per_connection": (after - before) / connections / 1024}


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def against(r: dict, base: dict | None, key: str) -> float | None:
    """``r[key]`` as a multiple of the baseline's; None without a baseline."""
    return ratio(r[key], base and base[key])


def less(r: dict, base: dict | None, key: str) -> float | None:
    """How many times less of ``key`` (a cost) ``r`` needs than the baseline; None without one."""
    return ratio(base and base[key], r[key])


def summarize(results: list[dict]) -> list[tuple[str, str, str]]:
    """Rows of (what, figure, ratio against the baseline of the same run)."""
    rows = []
    index = {(r["scenario"], r["kind"], r.get("subscribers") or r.get("connections"),
              r.get("action", r.get("selections"))): r
             for r in results if not r.get("history")}
    for r in results:
        if r["scenario"] == "fanout" and r.get("history"):
            base = index.get(("fanout", "gateway", r["subscribers"], False))
            rel = against(r, base, "deliveries_per_s")
            rows.append((f"fan-out {r['subscribers']} subs: gateway, history={r['history']}",
                         f"{r['deliveries_per_s']:,.0f} deliveries/s, p99 {r['p99_ms']:.1f} ms, "
                         f"{r['cpu_us_per_delivery']:.2f} µs server CPU/delivery",
                         f"{rel:.2f}× the gateway without history" if rel else ""))
        elif r["scenario"] == "fanout":
            base = index.get(("fanout", "tornado", r["subscribers"], False))
            what = f"fan-out {r['subscribers']} subs{' 3 field sets' if r['selections'] else ''}: {r['kind']}"
            rel = against(r, base, "deliveries_per_s")
            cpu = less(r, base, "cpu_us_per_delivery")
            rows.append((what, f"{r['deliveries_per_s']:,.0f} deliveries/s, p99 {r['p99_ms']:.1f} ms, "
                               f"{r['cpu_us_per_delivery']:.2f} µs server CPU/delivery",
                         f"{rel:.2f}× tornado rate, {cpu:.2f}× less CPU" if rel and cpu else ""))
        elif r["scenario"] == "burst":
            base = index.get(("burst", "tornado", r["subscribers"], None))
            rel = against(r, base, "deliveries_per_s")
            cpu = less(r, base, "cpu_us_per_delivery")
            rows.append((f"burst {r['messages_per_repeat']:,} x {r['frame_bytes'] / 1000:.0f} KB to "
                         f"{r['subscribers']} subs: {r['kind']}",
                         f"{r['deliveries_per_s']:,.0f} deliveries/s, {r['closed']} closed, "
                         f"{r['cpu_us_per_delivery']:.2f} µs server CPU/delivery, "
                         f"peak +{r['peak_rss_growth_mib']:,.0f} MiB",
                         f"{rel:.2f}× tornado rate, {cpu:.2f}× less CPU" if rel and cpu else ""))
        elif r["scenario"] == "pipelined":
            base = index.get((r["scenario"], "tornado", r["connections"], None))
            rel = against(r, base, "rps")
            p99 = against(r, base, "p99_ms")
            what = f"pipelined {r['depth']} in flight x {r['connections']} conns"
            errors = f", {r['error_replies']} error replies"
            rows.append((f"{what}: {r['kind']}",
                         f"{r['rps']:,.0f} round trips/s, p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms{errors}",
                         f"{rel:.2f}× echo rate, {p99:.2f}× echo p99" if rel and p99 else ""))
        elif r["scenario"] == "memory":
            base = index.get(("memory", "tornado", r["connections"], None))
            rel = against(r, base, "kib_per_connection")
            rows.append((f"memory {r['connections']} idle conns: {r['kind']}",
                         f"{r['kib_per_connection']:.1f} KiB/connection", f"{rel:.2f}× tornado" if rel else ""))
    return rows + shapes.rows(results)


def table(rows: list[tuple[str, str, str]]) -> str:
    lines = ["| scenario | figure (median) | same-run ratio |", "| --- | --- | --- |"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)


def plot(results: list[dict], path: Path) -> bool:
    """Fan-out deliveries/s vs subscribers, one line per server; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("matplotlib is not installed (pip install -e '.[bench]'); no plot")
        return False
    if not any(r["scenario"] == "fanout" for r in results):
        logger.warning("no fan-out scenario ran; no plot")
        return False
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for kind in ("gateway", "tornado", "socketio"):
        points = sorted((r["subscribers"], r["deliveries_per_s"]) for r in results
                        if r["scenario"] == "fanout" and r["kind"] == kind and not r["selections"])
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o",
                    label={"gateway": "drizzle_gateway", "tornado": "bare Tornado write_message",
                           "socketio": "python-socketio (aiohttp)"}[kind])
    ax.set_xscale("log")
    ax.set_xlabel("subscribers (one topic)")
    ax.set_ylabel("deliveries / s (median)")
    ax.set_title("Fan-out of ~150-byte messages")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a one-minute run with smaller sizes")
    parser.add_argument("--check", action="store_true", help="exit 1 if any scenario errored or lost messages")
    parser.add_argument("--only", action="append", metavar="SCENARIO[,SCENARIO...]",
                        help=f"run only these scenarios ({', '.join(SCENARIOS + OPTIONAL_SCENARIOS)}); "
                             "repeat or separate with commas")
    parser.add_argument("--output", type=Path, default=HERE / "out" / "results.json", metavar="FILE",
                        help="where the raw figures go (default: bench/out/results.json, untracked; the committed "
                             "bench/results.json is the README's run)")
    parser.add_argument("--against", metavar="REF",
                        help="also serve the gateway at git REF (a temporary worktree, this venv), taking turns "
                             "with this checkout's window by window in the requests and client_fanout shapes")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="run the workers shape (drizzle-gateway serve --workers N --redis, against the echo)")
    parser.add_argument("--plot", type=Path, default=None, metavar="FILE",
                        help="also draw fan-out deliveries/s vs subscribers into this PNG (needs matplotlib)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = QUICK if args.quick else Settings()
    only = {name.strip() for item in args.only or SCENARIOS for name in item.split(",") if name.strip()}
    if args.workers and not args.only:
        only.add("workers")
    known = set(SCENARIOS + OPTIONAL_SCENARIOS)
    if only - known:
        parser.error(f"--only: unknown scenario {', '.join(sorted(only - known))} "
                     f"(choose from {', '.join(sorted(known))})")
    failures = Failures()
    results: list[dict] = []
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        ref: Starter | None = None
        label = f"gateway@{args.against}"
        if args.against:
            from bench.ref import RefServer, checkout

            tree = stack.enter_context(checkout(args.against))
            ref = lambda: RefServer(tree)  # noqa: E731
        run(args, settings, only, failures, results, ref, label)
    return report(args, argv, settings, failures, results, started)


def workers_shape(workers: int, connections: int, settings: Settings, failures: Failures) -> list[dict]:
    """The requests shape on ``serve --workers N --redis`` against the echo; workers x cores, CPU per request."""
    if not shapes.can_serve_workers():
        raise RuntimeError("the workers shape needs redis-server")
    made = shapes.requests({"gateway-workers": lambda: shapes.Workers(workers), "tornado": local("tornado")},
                           "orders.create", connections, 1, settings.request_warmup, settings.request_seconds,
                           settings.request_repeats, failures.add)
    for r in made:
        r["scenario"] = "workers"
        if r["kind"] == "gateway-workers":
            r.update(workers=workers, cores=os.cpu_count())
    return made


def run(args: argparse.Namespace, settings: Settings, only: set[str], failures: Failures, results: list[dict],
        ref: Starter | None, label: str) -> None:
    """Run the scenarios in ``only``, adding their figures to ``results``."""

    def attempt(name: str, func, *func_args) -> None:
        what = f"{name}{[a for a in func_args if isinstance(a, str | int | float)]}"
        began = time.monotonic()
        try:
            made = func(*func_args)
            results.extend(made if isinstance(made, list) else [made])
        except Exception as exc:
            logger.exception("%s failed", what)
            failures.add(what, f"errored: {exc!r}")
        logger.info("%s: %.1f s", what, time.monotonic() - began)

    if "fanout" in only:
        for subscribers in settings.fanout_subscribers:
            for kind in settings.peers:
                attempt("fanout", fanout, kind, subscribers, False, settings, failures)
            if subscribers == 1000:
                attempt("fanout", fanout, "gateway", subscribers, True, settings, failures)
    if "burst" in only:
        for subscribers in settings.burst_subscribers:
            for kind in ("gateway", "tornado"):
                attempt("burst", burst, kind, subscribers, settings, failures)
    if "history" in only:  # the memory broker's ring on and off, same subscribers, same run
        for history in (None, HISTORY):
            attempt("fanout", fanout, "gateway", 1000, False, settings, failures, history)
    if "client_fanout" in only:
        targets = {"gateway": local("gateway"), **({"gateway-no-metrics": local("gateway-no-metrics")}
                                                   if settings.metrics else {}),
                   **({label: ref} if ref is not None else {}), **{kind: local(kind) for kind in settings.baselines}}
        for members in settings.client_fanout_members:
            if members > 1000:  # the gateway, REF and the baselines only: each server holds its own room
                targets = {name: start for name, start in targets.items()
                           if name in ("gateway", label, *settings.baselines)}
            attempt("client_fanout", shapes.client_fanout, targets, members, settings.client_fanout_bursts,
                    settings.client_fanout_size, settings.client_fanout_repeats, failures.add)
    if "requests" in only:
        for connections in sorted({n for _, counts in settings.request_actions for n in counts}):
            for depth in settings.request_depths:
                for action, counts in settings.request_actions:
                    if connections in counts:
                        attempt("requests", shapes.requests, request_targets(settings, connections, ref, label),
                                action, connections, depth, settings.request_warmup, settings.request_seconds,
                                settings.request_repeats, failures.add)
    if "mixed" in only and settings.mixed_repeats:
        attempt("mixed", shapes.mixed, {"gateway": local("gateway"), "tornado": local("tornado")},
                settings.mixed_members, settings.client_fanout_size, settings.mixed_interval,
                settings.mixed_connections, settings.mixed_seconds, settings.mixed_repeats, failures.add)
    if "workers" in only:
        workers = args.workers or settings.workers
        for connections in settings.worker_connections:
            attempt("workers", workers_shape, workers, connections, settings, failures)
    if "pipelined" in only:
        for connections in settings.pipelined_connections:
            for kind in ("gateway", "tornado"):
                attempt("pipelined", pipelined, kind, connections, settings, failures)
    if "memory" in only:
        for kind in ("gateway", "tornado"):
            attempt("memory", memory, kind, settings.idle_connections, failures)



def report(args: argparse.Namespace, argv: list[str] | None, settings: Settings, failures: Failures,
           results: list[dict], started: float) -> int:
    """Print the table, write the figures; the exit status."""
    rows = summarize(results)
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    figures = {"command": " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])]),
               "machine": machine(), "load_average_after": load, "quick": args.quick,
               "seconds": time.monotonic() - started, "settings": settings.__dict__, "results": results,
               "failures": failures.items, "table": table(rows)}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(figures, indent=2, default=list))
    print(table(rows))
    if args.plot is not None and plot(results, args.plot):
        print(f"plot: {args.plot}")
    print(f"results: {args.output} ({figures['seconds']:.0f} s; load average after: {load})")
    if failures.items:
        print("FAILURES:\n  " + "\n  ".join(failures.items))
    return 1 if (args.check and failures.items) else 0


if __name__ == "__main__":
    sys.exit(main())
