"""`Supervisor`: worker processes forked from one parent, restarted when they die, drained together on SIGTERM.

``drizzle-gateway serve --workers N`` binds its listening sockets first,
then forks N workers from the process that holds them: every worker
accepts on the same sockets (one accept queue in the kernel), and each is
a whole gateway with its own hub and broker. The parent serves nothing. It
restarts a worker that exits (logging how it ended), waiting longer after
each crash that comes soon after a start (`restart_delay`), and on SIGTERM
or SIGINT it forwards SIGTERM to every worker, waits a bounded time for
them to drain, then exits.

Sharing sockets bound before the fork, rather than each worker binding its
own with ``SO_REUSEPORT``, keeps a connection waiting in the accept queue
while a worker restarts (with ``SO_REUSEPORT`` a closing worker's queued
connections are reset), works with ``--port 0`` (one port, picked once),
and works wherever ``fork`` does.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

logger = logging.getLogger("drizzle_gateway")

FIRST_RESTART_DELAY = 0.5
"""Seconds before restarting a worker that died soon after it started (the delay doubles per such crash)."""

MAX_RESTART_DELAY = 30.0
"""The longest wait before restarting a worker that keeps crashing."""

STEADY_AFTER = 10.0
"""Seconds a worker must have run for its death to count as a fresh failure (restarted at once)."""

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
"""What makes the supervisor drain its workers and exit."""


def restart_delay(failures: int) -> float:
    """Seconds to wait before restarting a worker that died ``failures`` times in a row soon after starting.

    0 for a worker that had been running steadily (``failures`` 0), then
    `FIRST_RESTART_DELAY`, doubling up to `MAX_RESTART_DELAY`.
    """
    if failures <= 0:
        return 0.0
    return min(MAX_RESTART_DELAY, FIRST_RESTART_DELAY * 2 ** (failures - 1))


def how_it_ended(status: int) -> str:
    """A ``waitpid`` status in words: ``exited with status 3``, ``killed by SIGKILL``."""
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


@dataclass
class _Slot:
    """One worker's place: its number, its process, and its recent crashes."""

    index: int
    pid: int | None = None
    started: float = 0.0
    failures: int = 0
    due: float | None = None  # monotonic time its restart is due, while it waits for one
    status: int | None = None  # how its last process ended (a waitpid status)


class Supervisor:
    """Runs ``count`` workers, each ``work(index)`` in a forked process, until SIGTERM or SIGINT.

    ``work`` returns (or raises `SystemExit` with) the worker's exit status;
    it must serve until SIGTERM and then drain. ``on_stop`` runs in the
    parent when it starts draining (close the listening sockets it holds,
    so that new connections are refused once every worker has closed its
    own). A worker still running ``drain_timeout`` seconds after SIGTERM is
    killed.
    """

    def __init__(self, count: int, work: Callable[[int], int | None], *, drain_timeout: float,
                 on_stop: Callable[[], None] | None = None) -> None:
        if count < 1:
            raise ValueError("count must be at least 1")
        self.work = work
        self.drain_timeout = drain_timeout
        self.on_stop = on_stop
        self.slots = [_Slot(index) for index in range(count)]
        self._wakeup: tuple[int, int] | None = None

    @property
    def pids(self) -> list[int]:
        """The process ids of the workers running now."""
        return [slot.pid for slot in self.slots if slot.pid is not None]

    def run(self) -> int:
        """Start the workers and supervise them until SIGTERM or SIGINT; the exit status to end with.

        0 when every worker drained and exited with 0 in time, 1 otherwise.
        """
        read, write = os.pipe()
        os.set_blocking(read, False)
        os.set_blocking(write, False)
        self._wakeup = (read, write)
        previous_fd = signal.set_wakeup_fd(write)
        previous = {sig: signal.signal(sig, _noted) for sig in (*STOP_SIGNALS, signal.SIGCHLD)}
        try:
            for slot in self.slots:
                self._start(slot)
            logger.info("supervising %d workers (pids %s)", len(self.slots), ", ".join(map(str, self.pids)))
            while True:
                now = time.monotonic()
                dues = [slot.due for slot in self.slots if slot.due is not None]
                received = self._wait(None if not dues else max(0.0, min(dues) - now))
                self._reap(stopping=False)
                if received & set(STOP_SIGNALS):
                    return self._stop()
                now = time.monotonic()
                for slot in self.slots:
                    if slot.due is not None and slot.due <= now:
                        self._start(slot)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            signal.set_wakeup_fd(previous_fd)
            os.close(read)
            os.close(write)
            self._wakeup = None

    # -- the workers --------------------------------------------------------------

    def _start(self, slot: _Slot) -> None:
        slot.due = slot.status = None
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            self._be_worker(slot.index)  # never returns
        slot.pid, slot.started = pid, time.monotonic()
        logger.info("worker %d started (pid %d)", slot.index, pid)

    def _be_worker(self, index: int) -> None:
        """In the forked child: drop the supervisor's signal handling, run ``work``, exit with its status."""
        status = 1
        try:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            for sig in STOP_SIGNALS:  # until the worker's own loop handles them: stopped before it served, status 0
                signal.signal(sig, _stop_before_serving)
            assert self._wakeup is not None
            for fd in self._wakeup:
                os.close(fd)
            result = self.work(index)
            status = 0 if result is None else result
        except SystemExit as exit_:
            if isinstance(exit_.code, str):
                sys.stderr.write(exit_.code + "\n")
            status = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        except BaseException:  # noqa: BLE001 - whatever ends a worker, the parent hears a status, never a return
            traceback.print_exc()
        finally:
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)

    def _reap(self, *, stopping: bool) -> None:
        """Collect every worker that exited; while not ``stopping``, schedule its restart."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            slot = next((slot for slot in self.slots if slot.pid == pid), None)
            if slot is None:
                continue
            slot.pid = None
            slot.status = status
            if stopping:
                log = logger.info if os.waitstatus_to_exitcode(status) == 0 else logger.warning
                log("worker %d (pid %d) %s", slot.index, pid, how_it_ended(status))
                continue
            now = time.monotonic()
            slot.failures = slot.failures + 1 if now - slot.started < STEADY_AFTER else 0
            delay = restart_delay(slot.failures)
            slot.due = now + delay
            logger.warning("worker %d (pid %d) %s; restarting it in %.1f s", slot.index, pid, how_it_ended(status),
                           delay)

    # -- stopping -----------------------------------------------------------------

    def _stop(self) -> int:
        """Forward SIGTERM to every worker, wait up to ``drain_timeout`` for them, kill the rest."""
        logger.info("draining %d workers (up to %.0f s)", len(self.pids), self.drain_timeout)
        if self.on_stop is not None:
            self.on_stop()
        for slot in self.slots:
            slot.due = None
        draining = [slot for slot in self.slots if slot.pid is not None]  # the others wait for a restart
        for pid in self.pids:
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.drain_timeout
        while self.pids and time.monotonic() < deadline:
            self._wait(deadline - time.monotonic())
            self._reap(stopping=True)
        clean = True
        for slot in draining:
            if slot.pid is not None:
                logger.error("worker %d (pid %d) still running %.0f s after SIGTERM; killing it", slot.index,
                             slot.pid, self.drain_timeout)
                os.kill(slot.pid, signal.SIGKILL)
                os.waitpid(slot.pid, 0)
                slot.pid = None
                clean = False
            elif slot.status is not None and os.waitstatus_to_exitcode(slot.status) != 0:
                clean = False  # it failed while draining
        logger.info("all workers stopped")
        return 0 if clean else 1

    def _wait(self, timeout: float | None) -> set[int]:
        """Wait up to ``timeout`` seconds for a signal; the signals that came."""
        assert self._wakeup is not None
        read = self._wakeup[0]
        select.select([read], [], [], timeout)
        received: set[int] = set()
        while True:
            try:
                data = os.read(read, 512)
            except BlockingIOError:
                return received
            if not data:
                return received
            received.update(data)


def _stop_before_serving(signum: int, frame: FrameType | None) -> None:
    """A worker told to stop while it starts (before its event loop took the signal over) ends with status 0."""
    raise SystemExit(0)


def _noted(signum: int, frame: FrameType | None) -> None:
    """The signal's number reaches the wakeup pipe; nothing else to do here."""
