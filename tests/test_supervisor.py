"""drizzle_gateway.supervisor: forked workers, restarted when they die, drained together on SIGTERM.

The workers here are small test functions (tests/support/supervised.py) run
under a real `Supervisor` in a subprocess; tests/test_serving.py runs real
gateways under it.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from drizzle_gateway.supervisor import MAX_RESTART_DELAY, Supervisor, how_it_ended, restart_delay

ROOT = Path(__file__).resolve().parent.parent


class Supervised:
    """``python -m tests.support.supervised MODE COUNT DRAIN``, its stdout and stderr lines read as they come."""

    def __init__(self, mode: str, count: int, drain: float = 5.0) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.supervised", mode, str(count), str(drain)], cwd=ROOT,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self.readers = [threading.Thread(target=self._read, args=(stream,), daemon=True)
                        for stream in (self.process.stdout, self.process.stderr)]
        for reader in self.readers:
            reader.start()

    def _read(self, stream) -> None:
        for line in iter(stream.readline, ""):
            self.lines.put(line.rstrip("\n"))

    def expect(self, pattern: str, timeout: float = 10.0) -> re.Match[str]:
        """The next line matching ``pattern`` (lines before it are kept in ``seen``); fails after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line matching {pattern!r} within {timeout}s; seen: {self.seen}") from None
            self.seen.append(line)
            found = re.search(pattern, line)
            if found:
                return found

    def rest(self, timeout: float = 10.0) -> list[str]:
        """Once the process has exited: every line not yet taken, stdout's and stderr's (in no set order)."""
        for reader in self.readers:
            reader.join(timeout)
        lines = []
        while not self.lines.empty():
            lines.append(self.lines.get_nowait())
        self.seen.extend(lines)
        return lines

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_restart_delay_is_none_after_a_steady_run_and_doubles_per_early_crash_up_to_its_maximum():
    assert [restart_delay(n) for n in range(5)] == [0.0, 0.5, 1.0, 2.0, 4.0]
    assert restart_delay(50) == MAX_RESTART_DELAY


def test_how_a_worker_ended_is_said_in_words():
    assert how_it_ended(3 << 8) == "exited with status 3"
    assert how_it_ended(0) == "exited with status 0"
    assert how_it_ended(signal.SIGKILL) == "killed by SIGKILL"


def test_a_supervisor_needs_a_worker():
    with pytest.raises(ValueError):
        Supervisor(0, lambda index: 0, drain_timeout=1)


@pytest.mark.timeout(30)
def test_a_dead_worker_is_restarted_and_sigterm_drains_every_worker_then_exits_0():
    supervised = Supervised("serve", 2)
    try:
        pids = {}
        for _ in range(2):
            found = supervised.expect(r"^ready (\d) (\d+)$")
            pids[int(found.group(1))] = int(found.group(2))
        assert sorted(pids) == [0, 1]
        os.kill(pids[0], signal.SIGKILL)
        supervised.expect(rf"worker 0 \(pid {pids[0]}\) killed by SIGKILL; restarting it in 0\.5 s")
        restarted = int(supervised.expect(r"^ready 0 (\d+)$").group(1))
        assert restarted != pids[0]
        supervised.process.send_signal(signal.SIGTERM)
        assert supervised.process.wait(10) == 0
        after = supervised.rest()  # the workers' stdout and the supervisor's stderr interleave in no set order
        drained = {found.group(2) for line in after if (found := re.search(r"^drained (\d) (\d+)$", line))}
        assert drained == {str(restarted), str(pids[1])}, after
        assert "INFO on_stop ran" in after and "INFO all workers stopped" in after, after
        assert not alive(restarted) and not alive(pids[1])
    finally:
        supervised.stop()


@pytest.mark.timeout(30)
def test_a_worker_stopped_while_it_starts_ends_with_status_0_and_so_does_the_supervisor():
    supervised = Supervised("starting", 1)
    try:
        supervised.expect(r"^starting 0 \d+$")
        supervised.process.send_signal(signal.SIGTERM)
        assert supervised.process.wait(10) == 0
        supervised.expect("all workers stopped")
    finally:
        supervised.stop()


@pytest.mark.timeout(30)
def test_a_worker_that_keeps_crashing_is_restarted_ever_later():
    supervised = Supervised("crash", 1)
    try:
        delays = [float(supervised.expect(r"exited with status 3; restarting it in ([\d.]+) s").group(1))
                  for _ in range(3)]
        assert delays == [0.5, 1.0, 2.0]
        supervised.process.send_signal(signal.SIGTERM)
        supervised.process.wait(10)
    finally:
        supervised.stop()


@pytest.mark.timeout(30)
def test_a_worker_that_will_not_drain_is_killed_after_the_drain_timeout_and_the_exit_status_says_so():
    supervised = Supervised("stubborn", 1, drain=1.0)
    try:
        pid = int(supervised.expect(r"^ready 0 (\d+)$").group(1))
        began = time.monotonic()
        supervised.process.send_signal(signal.SIGTERM)
        supervised.expect(rf"worker 0 \(pid {pid}\) still running 1 s after SIGTERM; killing it")
        assert supervised.process.wait(10) == 1
        assert 1.0 <= time.monotonic() - began < 5.0
        assert not alive(pid)
    finally:
        supervised.stop()
