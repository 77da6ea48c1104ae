"""A gateway process allowed few file descriptors (``RLIMIT_NOFILE``), and its log."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 64  # the descriptors the process may hold


def serve_with_nofile(soft: int, hard: int, port: int, log) -> subprocess.Popen:
    """The todo example served on ``port`` under ``RLIMIT_NOFILE`` (``soft``, ``hard``), logging to ``log``."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    return subprocess.Popen(
        [sys.executable, "-m", "drizzle_gateway.cli", "serve", "examples.todo.app:gateway", "--port", str(port),
         "--no-explorer"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, preexec_fn=limit)


def log_text(log) -> str:
    """Everything written to the file ``log`` so far."""
    log.seek(0)
    return log.read()
