"""Serving a Gateway until SIGTERM, then draining it; in one process or in several under a `Supervisor`.

`serve` runs one gateway on sockets bound already. On SIGINT or SIGTERM it
drains for a deploy: it closes its listening sockets (new connections go
to another instance), answers new requests SHUTTING_DOWN, lets the running
ones finish (``limits.shutdown_timeout``), closes every websocket with 1012
(service restart, which both clients take as "reconnect, with jitter"),
flushes the broker and returns. `serve_workers` forks several such
gateways on the same sockets (``drizzle-gateway serve --workers N``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import ssl
from collections.abc import Callable

import tornado.httpserver
import tornado.web

from .brokers.base import Broker
from .gateway import Gateway
from .runtime.hub import BROKER_CLOSE_WAIT, CLOSE_HANDSHAKE_WAIT
from .runtime.limits import Limits
from .supervisor import Supervisor
from .transport.server import RESERVED_DESCRIPTORS, raise_descriptor_limit

logger = logging.getLogger("drizzle_gateway")

DRAIN_MARGIN = 5.0
"""Seconds the supervisor waits for a draining worker beyond the longest `Gateway.close` (see `drain_bound`)."""
UNBOUNDED_ACTIONS = 60.0
"""What `drain_bound` counts for running actions that neither ``shutdown_timeout`` nor ``action_timeout`` bound."""
ORPHAN_CHECK = 1.0
"""Seconds between a worker's checks that its supervisor still runs."""


def make_app(gateway: Gateway, path: str = "/ws", metrics: bool | None = None) -> tornado.web.Application:
    """A Tornado application serving ``gateway`` at ``path`` (``metrics``: `Gateway.routes`'s)."""
    return tornado.web.Application(gateway.routes(path, metrics=metrics))


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


async def serve(gateway: Gateway, host: str, path: str, sockets: list[socket.socket],
                metrics_sockets: list[socket.socket] | None = None, *,
                metrics_beside: bool = True, supervisor: int | None = None, tls: ssl.SSLContext | None = None) -> None:
    """Listen until SIGINT or SIGTERM, then drain: stop accepting, let requests finish, close with 1012.

    Logs the URLs really served: the websocket (with the real port of
    ``sockets``), the explorer and the gateway's `Gateway.pages`. With
    ``metrics_sockets`` (``--metrics-port``), ``/metrics`` is served there
    (with the probes) rather than beside the websocket, and stays up while
    the gateway drains, its ``/readyz`` answering 503; ``metrics_beside``
    False serves it nowhere else. ``supervisor``, the process id of a
    `Supervisor`: drain as well should that process disappear. With ``tls``
    (``--certfile``), the websocket's port speaks TLS only: ``wss://`` and
    ``https://`` (the metrics port stays plain HTTP).
    """
    stop = asyncio.Event()  # first: a SIGTERM from here on drains, however early it comes
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    app = make_app(gateway, path, metrics=False if metrics_sockets is not None or not metrics_beside else None)
    server = gateway.http_server(app) if tls is None else gateway.http_server(app, ssl_options=tls)
    server.add_sockets(sockets)
    metrics_server = None
    if metrics_sockets is not None:
        metrics_server = tornado.httpserver.HTTPServer(tornado.web.Application(gateway.metrics_routes()))
        metrics_server.add_sockets(metrics_sockets)
    origin = f"{_url_host(host or '0.0.0.0')}:{sockets[0].getsockname()[1]}"
    secure = "s" if tls is not None else ""
    logger.info("drizzle_gateway listening on ws%s://%s%s", secure, origin, path)
    if gateway.explorer:
        logger.info("explorer at http%s://%s/_explorer", secure, origin)
    for page in gateway.pages:
        logger.info("page at http%s://%s%s", secure, origin, page)
    if metrics_sockets is not None:
        logger.info("metrics at http://%s:%d/metrics", _url_host(host or "0.0.0.0"),
                    metrics_sockets[0].getsockname()[1])
    files = raise_descriptor_limit()
    logger.info("open-files limit %d: room for about %d connections", files, max(0, files - RESERVED_DESCRIPTORS))
    if supervisor is not None:
        _watch_supervisor(supervisor, stop)
    await stop.wait()
    hub = gateway.hub
    logger.info("shutting down: no new connections; draining %d open, %d requests in flight", hub.session_count,
                sum(len(session.tasks) for session in hub.sessions))
    began = loop.time()
    server.stop()  # closes the listening sockets: new connections go to another instance
    await gateway.close(restart=True)
    if metrics_server is not None:
        metrics_server.stop()
    logger.info("drained in %.1f s", loop.time() - began)


def _watch_supervisor(pid: int, stop: asyncio.Event) -> None:
    """Set ``stop`` once this process's parent is no longer ``pid`` (the supervisor died)."""
    loop = asyncio.get_running_loop()

    def check() -> None:
        if stop.is_set():
            return
        if os.getppid() != pid:
            logger.warning("the supervisor (pid %d) is gone; draining", pid)
            stop.set()
            return
        loop.call_later(ORPHAN_CHECK, check)

    loop.call_later(ORPHAN_CHECK, check)


def drain_bound(limits: Limits) -> float:
    """Seconds a draining gateway with ``limits`` may take, plus `DRAIN_MARGIN`: a supervisor's wait for a worker.

    Running actions get ``shutdown_timeout`` (else ``action_timeout``),
    then `Gateway.close` takes at most `CLOSE_HANDSHAKE_WAIT` +
    `BROKER_CLOSE_WAIT` more.
    """
    running = limits.shutdown_timeout if limits.shutdown_timeout is not None else limits.action_timeout
    return (UNBOUNDED_ACTIONS if running is None else running) + CLOSE_HANDSHAKE_WAIT + BROKER_CLOSE_WAIT + DRAIN_MARGIN


def serve_workers(gateway: Gateway, workers: int, host: str, path: str, sockets: list[socket.socket],
                  metrics_sockets: list[list[socket.socket]] | None,
                  make_broker: Callable[[], Broker] | None, tls: ssl.SSLContext | None = None) -> int:
    """Fork ``workers`` processes serving ``sockets`` under a `Supervisor`; the status to exit with.

    Each worker builds its own broker (``make_broker``) and serves its own
    ``metrics_sockets`` entry (one ``--metrics-port`` per worker).
    """
    parent = os.getpid()

    def work(index: int) -> int:
        if make_broker is not None:
            gateway.use_broker(make_broker())  # after the fork: its connections and origin are its own
        mine = None
        if metrics_sockets is not None:
            mine = metrics_sockets[index]
            for other in metrics_sockets:
                if other is not mine:
                    for sock in other:
                        sock.close()
        logger.info("worker %d of %d serving", index, workers)
        asyncio.run(serve(gateway, host, path, sockets, mine, metrics_beside=False, supervisor=parent,
                          tls=tls))
        return 0

    def release() -> None:
        for sock in [*sockets, *(sock for each in metrics_sockets or () for sock in each)]:
            sock.close()

    if metrics_sockets is None and gateway.metrics:
        logger.info("with --workers, /metrics is served only with --metrics-port (one port per worker)")
    return Supervisor(workers, work, drain_timeout=drain_bound(gateway.limits), on_stop=release).run()
