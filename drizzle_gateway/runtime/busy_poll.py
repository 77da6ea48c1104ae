"""Busy polling: after a message, the event loop looks at its sockets for a moment before it sleeps.

A peer that keeps one request in flight sends its next one as soon as it
reads the reply. By then the loop has usually finished the request and
gone to sleep in ``epoll_wait``, and the next frame must wait for the
kernel to wake the process: on a virtual machine, with an idle core, that
wake-up can take longer than the gateway's own work on a request. For
``limits.busy_poll`` seconds after a message, `BusyPoll` keeps one callback
on the loop's ready queue, so each loop turn polls every socket without
sleeping (``epoll_wait`` with a zero timeout) and a frame that arrives
meanwhile is read at once. Other connections, timers and callbacks run as
usual in those turns: nothing waits behind the polling.

Polling costs CPU while nothing arrives, so it is adaptive, as a spinning
lock is: after `MISSES_TO_REST` windows in a row that ended with nothing
read (peers that pause between messages), only every `PROBE_EVERY`-th
message starts a window, until one pays off again. Messages read in the
turn that starts a window do not count as paying: only one that arrives
while the loop polls does. A busy loop never sleeps anyway, and pays one
callback per turn.
"""

from __future__ import annotations

import asyncio
import contextvars
import time

MISSES_TO_REST = 4
"""Windows in a row that end with nothing read before polling rests."""

PROBE_EVERY = 16
"""While polling rests, one message in this many starts a window, to see whether it pays again."""

LATE_TURNS = 2
"""Turns polled past a window's end: a frame its last poll found is read, and reaches `touch`, a turn later."""

class BusyPoll:
    """Keeps the running loop polling, not sleeping, for ``window`` seconds after the last `touch`."""

    __slots__ = ("window", "misses", "_loop", "_fresh", "_until", "_late", "_skipped", "_context")

    def __init__(self, window: float) -> None:
        self.window = window
        self.misses = 0
        """Windows in a row that ended with nothing read (polling rests from `MISSES_TO_REST` on)."""
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop polled now, None when it may sleep
        self._fresh = False  # touched since the window was last set
        self._until = 0.0
        self._late = 0  # turns polled past ``_until``
        self._skipped = 0  # messages that started no window while polling rests
        self._context = contextvars.Context()  # the callbacks': not that of the connection whose message began them

    @property
    def polling(self) -> bool:
        """Whether a loop is being kept from sleeping now."""
        loop = self._loop
        return loop is not None and loop.is_running()

    def touch(self) -> None:
        """A message was read: poll for ``window`` seconds from the end of this loop turn."""
        fresh, self._fresh = self._fresh, True
        if self.polling:
            if not fresh:  # it came during a window (not in the turn that started it): polling pays
                self.misses = 0
            return
        if self.misses >= MISSES_TO_REST:
            self._skipped += 1
            if self._skipped < PROBE_EVERY:
                return
        self._skipped = 0
        loop = self._loop = asyncio.get_running_loop()  # asleep, or left on a loop that stopped meanwhile
        loop.call_soon(self._poll, loop, context=self._context)

    def _poll(self, loop: asyncio.AbstractEventLoop) -> None:
        """One turn of ``loop`` passed: poll on through the next one, unless the window ended with nothing read."""
        if loop is not self._loop:  # a loop left behind, run again later: another one is polled now
            return
        now = time.perf_counter()
        if self._fresh:  # the window starts once the turn that read the message is done
            self._fresh = False
            self._until = now + self.window
            self._late = 0
        elif now >= self._until:
            if self._late < LATE_TURNS:  # what the last polls found reaches `touch` a turn later
                self._late += 1
            else:
                self._loop = None
                self.misses += 1
                return
        loop.call_soon(self._poll, loop, context=self._context)
