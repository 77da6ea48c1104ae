"""Streaming replies: an action that yields answers with one frame per item, then one frame that ends them.

An action written as an async generator (``async def search(self, data):
... yield todo``) is a streaming action (`Action.stream`). Its request goes
the request path up to the invoke as any other (fields, load, permission);
then `relay` runs in the request's own task:

- each item is dumped by the action's output schema with the request's
  ``fields`` (`Action.dump`, as a one-shot reply would be) and sent as
  ``{"request_id": 7, "data": ..., "more": true}``;
- the generator is paused while the connection is congested: the next item
  is asked for only once the peer has read down to its low-water mark, so a
  slow reader holds at most ``send_queue_bytes`` plus one item;
- ``limits.action_timeout`` bounds the wait for each item (not the whole
  stream, and not the time the peer takes to read): past it the stream ends
  with TIMEOUT;
- it ends with ``{"request_id": 7, "more": false}`` once the generator
  returns or the client cancels it (``__cancel__``, `Streams.cancel`); with
  the error frame of an `ActionError` (or of INTERNAL_ERROR) the generator
  raised or an item's dump raised; with SHUTTING_DOWN when the gateway
  closes; with nothing when the connection is gone. Whichever way it ends,
  the generator is closed (its ``finally`` runs) before the last frame.

A running stream is one of the connection's ``max_in_flight`` requests
until it ends. Actions that do not yield never come here: `dispatch.run`
checks the action's flag, set when it was declared.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import AsyncGenerator, Callable
from typing import TYPE_CHECKING, Any, NoReturn

from ..wire.errors import ActionError, ErrorCode

if TYPE_CHECKING:
    from ..wire.dialect import Request, RequestId
    from .session import Session

logger = logging.getLogger("drizzle_gateway")

STREAM_SLICE = 0.002
"""Seconds a stream may hold the event loop (items that came without waiting) before it lets the others run."""


class Stop(enum.Enum):
    """Why a stream was told to stop before its generator ran out."""

    CANCELLED = "cancelled"  # the client sent __cancel__: ends with the end frame
    SHUTDOWN = "shutdown"  # the gateway is closing: ends with SHUTTING_DOWN


class Ended(Exception):  # noqa: N818 -- not an error: how a stream hands `dispatch` its last frame
    """A stream ended well: ``frame`` is its end frame (`dispatch` sends it as the request's answer)."""

    def __init__(self, frame: str) -> None:
        super().__init__(frame)
        self.frame = frame


class Stream:
    """One running streaming reply: the task that relays it, and why it was told to stop (if it was)."""

    __slots__ = ("task", "stop")

    def __init__(self, task: asyncio.Task[Any]) -> None:
        self.task = task
        self.stop: Stop | None = None

    def halt(self, why: Stop) -> None:
        """Stop the stream: its generator is closed and its last frame sent (see `Stop`)."""
        if self.stop is None:
            self.stop = why
            self.task.cancel()


class Streams:
    """The streaming replies one session runs, by ``request_id``."""

    __slots__ = ("_running",)

    def __init__(self) -> None:
        self._running: dict[RequestId, Stream] = {}

    def __len__(self) -> int:
        return len(self._running)

    def open(self, request_id: RequestId, task: asyncio.Task[Any]) -> Stream:
        """Register the stream ``task`` relays; VALIDATION_ERROR if ``request_id`` names a running one."""
        if request_id in self._running:
            raise ActionError(ErrorCode.VALIDATION_ERROR,
                              f"request_id {request_id!r} already names a running stream on this connection")
        stream = self._running[request_id] = Stream(task)
        return stream

    def closed(self, request_id: RequestId) -> None:
        """The stream of ``request_id`` ended."""
        self._running.pop(request_id, None)

    async def cancel(self, request_id: RequestId) -> bool:
        """Stop the stream of ``request_id`` and wait until it ended; False if none runs."""
        stream = self._running.get(request_id)
        if stream is None:
            return False
        stream.halt(Stop.CANCELLED)
        await asyncio.wait({stream.task})
        return True

    def shut(self) -> None:
        """Stop every stream (the gateway is closing)."""
        for stream in list(self._running.values()):
            stream.halt(Stop.SHUTDOWN)


async def relay(session: Session, request: Request, items: AsyncGenerator[Any, None],
                dump: Callable[[Any], Any] | None) -> NoReturn:
    """Send what ``items`` yields as stream frames of ``request``; always raises (`Ended` or the error).

    ``dump`` turns each item into its frame's data (the action's output
    selection, as for a one-shot reply); None sends items as they are.

    Runs in the request's task (`Session` counts it against
    ``max_in_flight``); `Deadlines` watches it while the items come.
    """
    task = asyncio.current_task()
    assert task is not None  # a request always runs in a task
    request_id = request.request_id
    try:
        stream = session.streams.open(request_id, task)
    except ActionError:
        await items.aclose()
        raise
    try:
        await _items(session, request_id, items, dump, stream)
    except asyncio.CancelledError:
        timed_out = session.hub.deadlines.expired(task)
        if stream.stop is None and not timed_out:
            raise  # the connection is gone: nothing to answer
        task.uncancel()
        if timed_out:
            timeout = session.hub.limits.action_timeout
            raise ActionError(ErrorCode.TIMEOUT, f"the stream sent no item for {timeout}s and was cancelled",
                              {"timeout": timeout}) from None
    finally:
        session.streams.closed(request_id)
        try:
            await _close(items, request)
        finally:
            # The deadline the items renewed ends with them: a stream that ran out in its first step
            # ran in a task it shares with other requests (`runner.Runner`), which nothing else forgets.
            session.hub.deadlines.forget(task)
    if stream.stop is Stop.SHUTDOWN:
        raise ActionError(ErrorCode.SHUTTING_DOWN, "server is shutting down; reconnect")
    raise Ended(session.protocol.end(request_id))


async def _items(session: Session, request_id: RequestId, items: AsyncGenerator[Any, None],
                 dump: Callable[[Any], Any] | None, stream: Stream) -> None:
    """Relay items until the generator runs out or the stream is told to stop."""
    task, deadlines, protocol = stream.task, session.hub.deadlines, session.protocol
    loop = asyncio.get_running_loop()
    yield_at = loop.time() + STREAM_SLICE
    while True:
        try:
            item = await anext(items)
        except StopAsyncIteration:
            return
        if stream.stop is not None or session.ended:  # told to stop, and the generator swallowed it
            return
        deadlines.pause(task)  # the time the peer takes to read is not the generator's
        frame = protocol.item(request_id, item if dump is None else dump(item))
        if session.send_frame(frame):
            await session.drained()  # the generator stays paused at its yield until the peer reads
            yield_at = loop.time() + STREAM_SLICE
        elif loop.time() >= yield_at:  # items that came without waiting: let the other connections run
            await asyncio.sleep(0)
            yield_at = loop.time() + STREAM_SLICE
        deadlines.renew(task)


async def _close(items: AsyncGenerator[Any, None], request: Request) -> None:
    """Close the generator (its ``finally`` runs); what that raises is logged, not sent."""
    try:
        await items.aclose()
    except Exception:
        logger.exception("stream %r (%s.%s): closing its generator failed",
                         request.request_id, request.resource, request.action)
