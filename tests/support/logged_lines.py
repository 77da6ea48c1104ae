"""Reading what a served subprocess logs, line by line, with a bound on the wait."""

from __future__ import annotations

import queue
import subprocess
import threading


def listening(proc: subprocess.Popen, count: int, timeout: float = 20.0) -> list[str]:
    """The first ``count`` stderr lines of ``proc``; fails (rather than hangs) if they do not come in time."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in iter(proc.stderr.readline, "")], daemon=True).start()
    try:
        return [lines.get(timeout=timeout) for _ in range(count)]
    except queue.Empty:
        raise AssertionError(f"{proc.args!r} did not log {count} lines within {timeout}s") from None
