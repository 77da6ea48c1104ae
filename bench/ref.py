"""``--against REF``: the gateway at another commit, served beside this one's, in the same run.

`checkout` makes a temporary git worktree of REF (detached, removed on exit).
`RefServer` serves it: a process started from this checkout with this
interpreter and this venv (`bench.refserver`), whose ``drizzle_gateway`` is
imported from that worktree. So REF is built cheaply: its code, this
checkout's dependencies, which is right as long as REF needs no other
packages than this venv has. Scenarios then take turns between the
gateway, ``gateway@REF`` and the baselines window by window, so a
regression shows as a same-run ratio.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from multiprocessing.connection import Client, Listener
from pathlib import Path
from typing import Any

from bench.harness import Server
from tests.support.ports import free_port

logger = logging.getLogger("bench")
ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def checkout(ref: str) -> Iterator[Path]:
    """A temporary worktree of ``ref`` (a commit, branch or tag of this repository), removed on exit."""
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", f"{ref}^{{commit}}"],
                            capture_output=True, text=True, check=True).stdout.strip()
    parent = Path(tempfile.mkdtemp(prefix="drizzle-bench-ref-"))
    path = parent / commit[:12]
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(path), commit],
                   check=True, capture_output=True)
    logger.info("--against %s: commit %s checked out in %s (served with this venv)", ref, commit[:12], path)
    try:
        yield path
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)], capture_output=True)
        subprocess.run(["git", "-C", str(ROOT), "worktree", "prune"], capture_output=True)
        with contextlib.suppress(OSError):
            parent.rmdir()


class RefServer(Server):
    """A bench server of ``kind`` whose ``drizzle_gateway`` comes from the worktree ``ref``."""

    def __init__(self, ref: Path, kind: str = "gateway", options: dict[str, Any] | None = None) -> None:
        self.port = free_port()
        key = secrets.token_bytes(16)
        with Listener(("127.0.0.1", 0), authkey=key) as listener:
            host, port = listener.address
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            self.child = subprocess.Popen(
                [sys.executable, "-m", "bench.refserver", str(ref), host, str(port), key.hex(), kind,
                 str(self.port), json.dumps(options or {})], cwd=ROOT, env=env)
            threading.Thread(target=self._unblock, args=(listener.address, key), daemon=True).start()
            self.pipe = listener.accept()
        imported = self.expect(60)["drizzle_gateway"]
        if not Path(imported).resolve().is_relative_to(ref.resolve()):
            self.close()
            raise RuntimeError(f"the REF server imported drizzle_gateway from {imported}, not from {ref}")
        self.expect(60)  # listening

    def _unblock(self, address: tuple[str, int], key: bytes) -> None:
        """A child that exits before connecting: connect in its place, so `accept` returns (and `expect` fails)."""
        self.child.wait()
        with contextlib.suppress(Exception):
            Client(address, authkey=key).close()

    @property
    def pids(self) -> list[int]:
        return [self.child.pid]

    def stop(self) -> None:
        try:
            self.child.wait(5)
        except subprocess.TimeoutExpired:
            self.child.kill()
            self.child.wait()
