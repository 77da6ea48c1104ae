"""A `Supervisor` of test workers, run as a subprocess: ``python -m tests.support.supervised MODE COUNT [DRAIN]``.

MODE says what each worker does:

- ``serve``: print ``ready INDEX PID``, wait for SIGTERM, print ``drained INDEX PID``, exit 0;
- ``crash``: exit 3 at once (a worker that cannot start);
- ``stubborn``: print ``ready INDEX PID``, then ignore SIGTERM and never exit;
- ``starting``: print ``starting INDEX PID``, then take a long time to start (SIGTERM arrives meanwhile).

The supervisor logs to stderr and exits with `Supervisor.run`'s status.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time

from drizzle_gateway.supervisor import Supervisor


def say(*words: object) -> None:
    """One line in one write, so that the lines of several workers never interleave."""
    os.write(1, (" ".join(map(str, words)) + "\n").encode())


def serve(index: int) -> int:
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    say("ready", index, os.getpid())
    signal.sigwait({signal.SIGTERM})
    say("drained", index, os.getpid())
    return 0


def crash(index: int) -> int:
    return 3


def stubborn(index: int) -> int:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    say("ready", index, os.getpid())
    while True:
        time.sleep(60)


def starting(index: int) -> int:
    say("starting", index, os.getpid())
    time.sleep(60)  # importing, connecting...: the worker's own signal handling is not set up yet
    return 5


def main() -> None:
    mode, count = sys.argv[1], int(sys.argv[2])
    drain = float(sys.argv[3]) if len(sys.argv) > 3 else 5.0
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    work = {"serve": serve, "crash": crash, "stubborn": stubborn, "starting": starting}[mode]
    sys.exit(Supervisor(count, work, drain_timeout=drain,
                        on_stop=lambda: logging.getLogger("drizzle_gateway").info("on_stop ran")).run())


if __name__ == "__main__":
    main()
