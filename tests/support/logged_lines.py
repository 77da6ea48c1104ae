"""Reading what a served subprocess logs, line by line, with a bound on the wait."""

from __future__ import annotations

import queue
import subprocess
import threading
from collections.abc import Callable


def listening(proc: subprocess.Popen, count: int, timeout: float = 20.0) -> list[str]:
    """The first ``count`` stderr lines of ``proc``; fails (rather than hangs) if they do not come in time."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in iter(proc.stderr.readline, "")], daemon=True).start()
    try:
        return [lines.get(timeout=timeout) for _ in range(count)]
    except queue.Empty:
        raise AssertionError(f"{proc.args!r} did not log {count} lines within {timeout}s") from None


class Lines:
    """Every stderr line of ``proc`` (text mode), read as it comes by a thread; `wait` for one, with a bound."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self.ended = False
        self._changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for line in iter(self.proc.stderr.readline, ""):
                with self._changed:
                    self.lines.append(line.rstrip("\n"))
                    self._changed.notify_all()
        finally:
            with self._changed:
                self.ended = True
                self._changed.notify_all()

    def wait(self, predicate: Callable[[str], bool], timeout: float = 20.0) -> str:
        """The first line ``predicate`` accepts; fails (rather than hangs) if none comes in time."""
        return self.matching(predicate, 1, timeout)[0]

    def matching(self, predicate: Callable[[str], bool], count: int, timeout: float = 20.0) -> list[str]:
        """The first ``count`` lines ``predicate`` accepts; fails (rather than hangs) if they do not come in time."""
        def found() -> list[str]:
            return [line for line in self.lines if predicate(line)][:count]

        with self._changed:
            self._changed.wait_for(lambda: len(found()) == count or self.ended, timeout)
            lines = found()
        if len(lines) < count:
            raise AssertionError(f"{self.proc.args!r} logged {len(lines)} of {count} such lines within {timeout}s:\n"
                                 + "\n".join(self.lines))
        return lines

    def until_end(self, timeout: float = 20.0) -> list[str]:
        """Every line, once the process closed its stderr (it ended)."""
        with self._changed:
            if not self._changed.wait_for(lambda: self.ended, timeout):
                raise AssertionError(f"{self.proc.args!r} did not close its stderr within {timeout}s")
            return list(self.lines)
