"""The bench's processes: servers and load generators, each in a process of its own, driven over a pipe."""

from __future__ import annotations

import multiprocessing
from typing import Any

from bench import clients, server
from tests.support.ports import free_port

CONTEXT = multiprocessing.get_context("spawn")
SUBSCRIBERS_PER_PROCESS = 2500


class Process:
    """A child process with a command pipe."""

    def __init__(self, target, *args: Any) -> None:
        self.pipe, child = CONTEXT.Pipe()
        self.process = CONTEXT.Process(target=target, args=(*args, child), daemon=True)
        self.process.start()

    def expect(self, timeout: float = 180.0) -> Any:
        if not self.pipe.poll(timeout):
            raise TimeoutError("child process did not answer")
        answer = self.pipe.recv()
        if isinstance(answer, dict) and "crash" in answer:
            raise RuntimeError(answer["crash"])
        return answer

    def ask(self, command: str, args: dict | None = None, timeout: float = 300.0) -> Any:
        self.pipe.send((command, args or {}))
        return self.expect(timeout)

    def stop(self) -> None:
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


class Server(Process):
    """A server of ``kind`` (see `bench.server.KINDS`) on a free port, listening on return."""

    def __init__(self, kind: str, progress, options: dict | None = None) -> None:
        self.port = free_port()
        super().__init__(server.main, kind, self.port, progress, options or {})
        self.expect(60)

    @property
    def pids(self) -> list[int]:
        """The processes that serve (whose CPU is the server's)."""
        return [self.process.pid]

    def close(self) -> None:
        try:
            self.ask("stop", timeout=10)
        except Exception:  # already gone
            pass
        self.stop()


def client(role: str, **kwargs: Any) -> Process:
    proc = Process(clients.main, role, kwargs)
    return proc


def split(total: int) -> list[int]:
    parts = max(1, -(-total // SUBSCRIBERS_PER_PROCESS)) if total > 500 else 1
    parts = max(parts, 2) if total > 500 else parts
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def start_subscribers(procs: list[Process], kind: str, port: int, sizes: list[int], selections: bool,
                      progress) -> None:
    """One subscriber process per size, appended to ``procs`` (so the caller stops them), each ready on return."""
    first = 0
    for slot, size in enumerate(sizes):
        procs.append(client("subscribers", kind=kind, port=port, count=size, first=first,
                            selections=selections, slot=slot, progress=progress))
        first += size
    for proc in procs:
        if proc.expect() != "ready":
            raise RuntimeError("subscriber process failed to start")


def collect_reports(procs: list[Process]) -> list[Any]:
    """Each load process's report, in order."""
    for proc in procs:
        proc.pipe.send("report")
    return [proc.expect() for proc in procs]


def stop_all(procs: list[Process], srv: Server) -> None:
    """Stop the load processes, then the server."""
    for proc in procs:
        proc.stop()
    srv.close()
