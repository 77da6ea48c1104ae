"""File descriptors: a server's connection capacity, and accepting calmly when it runs out.

Every connection holds a descriptor. `raise_descriptor_limit` lifts the
process's soft ``RLIMIT_NOFILE`` to its hard limit at start. When the
limit is reached anyway, Tornado's own accept handler raises on every
turn of the event loop (the listening socket stays readable), which spins
the CPU and floods the log; `HTTPServer` instead stops accepting for a
moment, logs the episode once, keeps serving the open connections, and
accepts again as soon as descriptors are free.
"""

from __future__ import annotations

import errno
import logging
import resource
import socket
from collections.abc import Callable, Iterable
from typing import Any

import tornado.httpserver
from tornado.ioloop import IOLoop

from .tornado_internals import connection_handler, register_listener

logger = logging.getLogger("drizzle_gateway")

OUT_OF_DESCRIPTORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
"""accept() errors that mean "no descriptor (or buffer) for a new connection right now"."""

RESERVED_DESCRIPTORS = 32
"""Descriptors a gateway process holds besides its connections (stdio, listeners, the loop, a broker)."""

RETRY_INTERVAL = 0.25
"""Seconds between accept attempts while descriptors are exhausted."""

_ACCEPTS_PER_TURN = 128


def raise_descriptor_limit() -> int:
    """Raise the soft ``RLIMIT_NOFILE`` to the hard limit; the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            logger.warning("could not raise the open-files limit from %d to %d: %s", soft, target, exc)
    return soft


class Acceptor:
    """Accepts connections on one listening socket; pauses, rather than spins, when out of descriptors."""

    def __init__(self, sock: socket.socket, callback: Callable[[socket.socket, Any], None],
                 retry_interval: float = RETRY_INTERVAL) -> None:
        self.sock = sock
        self.callback = callback
        self.retry_interval = retry_interval
        self.io_loop = IOLoop.current()
        self.failed = 0
        self._episode_started: float | None = None
        self._retry: object | None = None
        self._stopped = False

    def start(self) -> None:
        """Watch the socket for new connections."""
        self.io_loop.add_handler(self.sock, self._ready, IOLoop.READ)

    def stop(self) -> None:
        """Stop accepting for good."""
        self._stopped = True
        if self._retry is not None:
            self.io_loop.remove_timeout(self._retry)
            self._retry = None
        else:
            self.io_loop.remove_handler(self.sock)

    def _ready(self, fd: Any, events: int) -> None:
        for _ in range(_ACCEPTS_PER_TURN):
            if self._stopped:
                return
            try:
                connection, address = self.sock.accept()
            except BlockingIOError:
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:
                if exc.errno not in OUT_OF_DESCRIPTORS:
                    raise
                self._pause(exc)
                return
            if self._episode_started is not None:
                self._recovered()
            self.callback(connection, address)

    def _pause(self, exc: OSError) -> None:
        self.failed += 1
        if self._episode_started is None:
            self._episode_started = self.io_loop.time()
            logger.error("out of file descriptors (%s): not accepting new connections, serving the open ones, "
                         "retrying every %ss; raise the open-files limit (docs/security.md)",
                         exc.strerror, self.retry_interval)
        self.io_loop.remove_handler(self.sock)
        self._retry = self.io_loop.call_later(self.retry_interval, self._resume)

    def _resume(self) -> None:
        self._retry = None
        if not self._stopped:
            self.start()

    def _recovered(self) -> None:
        assert self._episode_started is not None
        logger.warning("accepting connections again after %.1fs out of file descriptors (%d accept attempts "
                       "failed)", self.io_loop.time() - self._episode_started, self.failed)
        self._episode_started = None
        self.failed = 0


class HTTPServer(tornado.httpserver.HTTPServer):
    """Tornado's HTTPServer, accepting through `Acceptor`."""

    def add_sockets(self, sockets: Iterable[socket.socket]) -> None:
        """Start accepting on ``sockets`` (from ``tornado.netutil.bind_sockets``)."""
        for sock in sockets:
            acceptor = Acceptor(sock, connection_handler(self))
            register_listener(self, sock, acceptor.stop)
            acceptor.start()
