"""Running requests: a task only for a request that waits.

Most requests never wait on anything: find, load, invoke, dump and write the
reply in one step. A task per request costs more than many such steps do
(on Python 3.11: scheduling its first step, a weak set, a handle, a done
callback), so `Runner` runs first steps itself:

- the first request of an event-loop turn at once, while its frame is read
  (a lone request is answered before the next frame is read, as the echo's);
- the turn's later requests together, on the next turn, so that their
  replies share one flush (pipelined requests, or many connections);
- unless one client alone keeps the loop busy: then its reader may run
  the batch as soon as it has read a chunk of pipelined frames (`settle`),
  and hand their replies to the socket at once, with no turn between.

Every first step runs inside a real task, a *spare*: ``asyncio.current_task()``,
``asyncio.timeout``, ``TaskGroup`` and cancellation see a task there as
anywhere else. A request that finishes in its first step leaves the spare
to the next request; one that waits keeps it as its own task for the rest
of its life (its ``waiting`` callback gets it), and a new spare is made for
the requests after it. Between batches the spare parks on a future of its
own, so requests that never wait cost no task at all. The one difference
from a task per request: a request that finishes in its first step shares
its task with others, so what it leaves on the task (a done callback, a
deadline) outlives it; the request path clears its own (`streams.relay`).

Each request runs in a copy of the context it was started in, as a task
would. With a `Pacer` (``limits.cpu_share``), each of its steps is timed
and a costly request is charged to it (see `pacing`).

An error that escapes a request's first step (the request path answers
every error of an action itself: this is a fault of the gateway) goes to
the loop's exception handler, as an unretrieved task exception would; one
that escapes a later step ends the request's task with it.

This needs two private functions of asyncio, ``_enter_task`` and
``_leave_task`` (which switch the current task); importing this module
checks they are there and raises ImportError naming the Python version if
they are not.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
from collections.abc import Callable, Coroutine, Generator
from typing import TYPE_CHECKING, Any

from .pacing import Pacer

if TYPE_CHECKING:
    from .flusher import Flusher

if getattr(asyncio.tasks, "_enter_task", None) is None or getattr(asyncio.tasks, "_leave_task", None) is None:
    raise ImportError(f"drizzle_gateway.runtime.runner needs asyncio.tasks._enter_task and _leave_task, "
                      f"which Python {sys.version.split()[0]} lacks")
_enter_task = asyncio.tasks._enter_task
_leave_task = asyncio.tasks._leave_task

Waiting = Callable[[asyncio.Task[None]], None]
"""Told the task of a request that waits (once, right after its first step)."""

_Entry = tuple[Coroutine[Any, Any, None], contextvars.Context, Waiting | None, Pacer | None, float]


class Runner:
    """Starts requests: the turn's first at once, later ones with their turn's batch (see the module).

    One per gateway: it holds whether this turn already started one, and
    the turn's batch. With a ``flusher``, `Flusher.direct` is True while
    the turn's first request runs its first step: its reply goes out at
    once, the later ones together.
    """

    def __init__(self, flusher: Flusher | None = None) -> None:
        self._busy_loop: asyncio.AbstractEventLoop | None = None  # the loop whose current turn started one
        self._batch: list[_Entry] | None = None  # the turn's later requests, run on the next turn
        self._flusher = flusher
        self._spare: tuple[_Spare, asyncio.Task[None]] | None = None  # kept from batch to batch until adopted
        self._owner: object = None  # whose requests this turn started: one owner, or _MANY
        self._alone: object = None  # the owner of the last turn that started requests, if it had only one

    def start(self, coro: Coroutine[Any, Any, None], waiting: Waiting | None = None, pacer: Pacer | None = None,
              spent: float = 0.0, direct: bool = True, owner: object = None) -> None:
        """Run ``coro``, a request whose result is None: now if it is the turn's first, else on the next turn.

        ``waiting`` is told the task that runs the rest of a request that
        waits. ``pacer`` times its steps, ``spent`` being what the request
        already held (its frame's intake). ``direct`` False keeps
        `Flusher.direct` False in that first step too (more frames follow
        its own). ``owner`` names whose request it is, for `settle`.
        """
        entry = (coro, contextvars.copy_context(), waiting, pacer, spent)
        loop = self._busy_loop
        if loop is not None and loop.is_running():  # this turn started one (no running-loop lookup: a getpid)
            if owner is not self._owner:
                self._owner = _MANY
            batch = self._batch
            if batch is None:
                batch = self._batch = []
                loop.call_soon(self._run, loop, batch)
            batch.append(entry)
            return
        loop = asyncio.get_running_loop()
        self._busy_loop = loop  # a loop stopped before its next turn holds nothing back in another
        self._batch = None
        self._owner = owner if owner is not None else _MANY
        loop.call_soon(self._next_turn)
        flusher = self._flusher
        if flusher is None or not direct:
            self._run(loop, [entry])
            return
        flusher.direct = True
        try:
            self._run(loop, [entry])
        finally:
            flusher.direct = False

    def _next_turn(self) -> None:
        owner = self._owner
        self._alone = owner if owner is not _MANY else None
        self._owner = None
        self._busy_loop = None
        self._batch = None

    def settle(self, owner: object) -> bool:
        """Run the turn's batch now if ``owner`` alone keeps the loop busy; True when it ran.

        ``owner`` has just read a chunk of pipelined frames. When every
        request this turn started is ``owner``'s, and so were those of the
        last turn that started any, no other client's requests would join
        the batch on the next turn: it runs now, and ``owner`` may hand the
        replies to its socket and read on, with no loop turn between (a turn
        costs a pipelining client more than the requests it batches). While
        several clients are busy, False: their requests still run together
        on the next turn, and their replies go out in one flush at its end.
        """
        batch = self._batch
        if not batch or owner is None or self._alone is not owner or self._owner is not owner:
            return False
        loop = self._busy_loop
        if loop is None or not loop.is_running():
            return False
        self._batch = None  # later requests of this turn start a batch of their own
        entries = batch.copy()
        batch.clear()  # the turn already scheduled it: it finds nothing left to run
        self._run(loop, entries)
        return True

    def _spare_task(self, loop: asyncio.AbstractEventLoop) -> tuple[_Spare, asyncio.Task[None]]:
        """A spare task for a batch: the one kept from earlier batches, or a new one.

        It is taken, not shared: a batch started from inside this one (a
        first step that starts a request) makes its own.
        """
        kept, self._spare = self._spare, None
        if kept is not None:
            if kept[1].get_loop() is loop and kept[0].usable(kept[1]):
                return kept
            kept[0].retire()
        spare = _Spare(loop)
        task: asyncio.Task[None] = loop.create_task(spare, context=contextvars.Context())  # requests: their own
        task._log_destroy_pending = False  # type: ignore[attr-defined]  # parked: a loop may close with it pending
        return spare, task

    def _keep(self, spare: _Spare, task: asyncio.Task[None]) -> None:
        """Keep a spare no request waited in for the next batch (or end it, if one is kept already)."""
        if self._spare is None and spare.usable(task):
            self._spare = spare, task
        else:
            spare.retire()

    def _run(self, loop: asyncio.AbstractEventLoop, batch: list[_Entry]) -> None:
        """The first step of each request in ``batch``, in order, the spare task current; one that waits adopts it."""
        if not batch:  # `settle` ran it already
            return
        outer = asyncio.current_task(loop)
        if outer is not None:
            _leave_task(loop, outer)
        spare, task = self._spare_task(loop)
        _enter_task(loop, task)
        try:
            for coro, context, waiting, pacer, spent in batch:
                started = pacer.clock() if pacer is not None else 0.0
                try:
                    yielded = context.run(coro.send, None)
                except StopIteration:
                    yielded = _FINISHED
                except (KeyboardInterrupt, SystemExit):
                    raise
                except asyncio.CancelledError:  # cancelled itself in its first step: ends quietly, as a task would
                    yielded = _FINISHED
                except BaseException as error:  # noqa: B036 -- a task would have ended with it; so does the request
                    yielded = _FINISHED
                    loop.call_exception_handler({"message": "a request failed in its first step", "exception": error})
                charged = 0.0
                if pacer is not None:
                    spent += pacer.clock() - started
                    if pacer.costly(spent):
                        charged = spent
                adopted = None
                if yielded is not _FINISHED:
                    spare.adopt(coro, context, yielded, pacer, spent, charged)
                    adopted = task
                    adopted._log_destroy_pending = True  # type: ignore[attr-defined]  # a request's task, as any
                elif task.cancelling():  # the request cancelled the task it ran in: that is not the next one's
                    spare.retire()
                else:
                    continue
                _leave_task(loop, task)
                spare, task = self._spare_task(loop)  # for the requests after it
                _enter_task(loop, task)
                if adopted is not None and waiting is not None:
                    waiting(adopted)
        finally:
            _leave_task(loop, task)
            self._keep(spare, task)
            if outer is not None:
                _enter_task(loop, outer)


_FINISHED = object()
_MANY = object()
"""`Runner._owner` when the turn started requests of more than one owner (or of one not named)."""


class _Spare(Coroutine[Any, Any, None]):
    """What a spare task runs: parked until a request waits in it, then the rest of that request.

    Until then the task waits on a future of its own (``_park``), so one
    task serves batch after batch. Adopting a request resolves it; the
    task's next ``send`` then gets the future the request's first step
    waits on, and every later ``send`` and ``throw`` goes to the request,
    in its own context, timed when it is paced.
    """

    __slots__ = ("_loop", "_park", "_retired", "_coro", "_context", "_fresh", "_yielded", "_pacer", "_spent",
                 "_charged", "__qualname__")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.__qualname__ = "spare"  # how asyncio names the task's coroutine: the request's, once adopted
        self._loop = loop
        self._park: asyncio.Future[None] | None = None
        self._retired = False  # no request will wait in it: its task ends at its next step
        self._coro: Coroutine[Any, Any, None] | None = None
        self._context: contextvars.Context | None = None
        self._fresh = True  # the task has not stepped since the adoption
        self._yielded: Any = None
        self._pacer: Pacer | None = None
        self._spent = 0.0
        self._charged = 0.0

    def adopt(self, coro: Coroutine[Any, Any, None], context: contextvars.Context, yielded: Any,
              pacer: Pacer | None, spent: float, charged: float) -> None:
        """Run the rest of ``coro``, whose first step yielded ``yielded``."""
        if asyncio.isfuture(yielded):  # released until the task takes it, as a task's step would at once:
            yielded._asyncio_future_blocking = False  # other requests may await the same future meanwhile
        self._coro, self._context, self._yielded = coro, context, yielded
        self._pacer, self._spent, self._charged = pacer, spent, charged
        self.__qualname__ = getattr(coro, "__qualname__", type(coro).__name__)
        self._wake()  # the parked task goes on with the request (cancelled meanwhile: the request is told)

    def usable(self, task: asyncio.Task[None]) -> bool:
        """Whether ``task`` (this spare's) may run more first steps: not ended, retired or cancelled."""
        return not (self._retired or task.done() or task.cancelling() or (self._park is not None and self._park.done()))

    def retire(self) -> None:
        """No request will wait in this spare: its task ends at its next step."""
        self._retired = True
        self._wake()

    def _wake(self) -> None:
        park = self._park
        if park is not None and not park.done() and not park.get_loop().is_closed():
            park.set_result(None)

    def send(self, value: Any) -> Any:
        if self._fresh:
            if self._coro is None:  # no request waited in this spare yet: park until one does
                if self._retired:
                    raise StopIteration
                park = self._park = self._loop.create_future()
                park._asyncio_future_blocking = True  # as a future's own ``__await__`` yields it
                return park
            self._fresh = False
            return self._take()
        return self._step(value, None)

    def _take(self) -> Any:
        """What the adopted request's first step waits on, handed to the task as a step would hand it."""
        yielded, self._yielded = self._yielded, None
        if asyncio.isfuture(yielded):
            yielded._asyncio_future_blocking = True  # what the task expects of a future awaited
        return yielded

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        error = val if isinstance(val, BaseException) else typ() if isinstance(typ, type) else typ
        if self._coro is None:  # cancelled while parked (the loop shuts down): the runner makes another
            raise error
        fresh, self._fresh = self._fresh, False
        if fresh:
            yielded = self._take()
            if isinstance(error, asyncio.CancelledError) and asyncio.isfuture(yielded) \
                    and yielded.cancel(*error.args):
                # Cancelled before the task stepped into the request: cancel what the first step
                # awaits, as `Task.cancel` does; the task then waits for it and the cancellation
                # reaches the request.
                return yielded
        return self._step(None, error)

    def _step(self, value: Any, error: BaseException | None) -> Any:
        coro, context, pacer = self._coro, self._context, self._pacer
        assert coro is not None and context is not None  # stepped only once adopted
        if pacer is None:
            return context.run(coro.send, value) if error is None else context.run(coro.throw, error)
        started = pacer.clock()
        try:
            return context.run(coro.send, value) if error is None else context.run(coro.throw, error)
        finally:  # the step ended: it returned, raised or waits
            spent = self._spent = self._spent + pacer.clock() - started
            if pacer.costly(spent, self._charged):
                self._charged = spent

    def close(self) -> None:
        """Close the request unfinished (its task was dropped): it is not charged for what its cleanup runs."""
        if self._coro is not None:
            self._coro.close()

    def __await__(self) -> Generator[Any, None, None]:
        return self

    def __iter__(self) -> _Spare:
        return self

    def __next__(self) -> Any:
        return self.send(None)
