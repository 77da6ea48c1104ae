"""Tasks that start now: a request's first step runs while its frame is read, not a loop turn later.

Most requests never wait on anything: find, load, invoke, dump and write the
reply in one step. Run as a plain task, that step waits for the next turn of
the event loop, a turn the bare echo does not pay. `start` runs it at once,
as asyncio's ``eager_task_factory`` does (Python 3.12 and later, used there):
the task is created first, and its first step runs with that task as
``asyncio.current_task()``, in the task's own context, so ``asyncio.timeout``,
cancellation and context variables behave exactly as in any task.

On Python 3.11 that needs two private functions of asyncio, ``_enter_task``
and ``_leave_task`` (which switch the current task); importing this module
checks they are there and raises ImportError naming the Python version if
they are not.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
from collections.abc import Coroutine, Generator
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from .flusher import Flusher

if sys.version_info >= (3, 12):
    _eager_factory = asyncio.create_eager_task_factory(asyncio.Task)
else:
    _eager_factory = None
    if getattr(asyncio.tasks, "_enter_task", None) is None or getattr(asyncio.tasks, "_leave_task", None) is None:
        raise ImportError(f"drizzle_gateway.runtime.eager needs asyncio.tasks._enter_task and _leave_task, "
                          f"which Python {sys.version.split()[0]} lacks")
    _enter_task = asyncio.tasks._enter_task
    _leave_task = asyncio.tasks._leave_task


def start(coro: Coroutine[Any, Any, None]) -> asyncio.Task[None] | None:
    """Run ``coro``'s first step now: the task running the rest, or None if it returned in that step.

    A first step that raised (an error, or a cancellation) ends its task
    the way a plain task would end, on the next turn: the caller gets the
    task, never the exception. Meant for coroutines whose result is None:
    one that returned has nothing more to tell.
    """
    return _start(asyncio.get_running_loop(), coro)


def _start(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None] | None:
    if _eager_factory is not None:  # the task stays out of this frame: a first-step error's frames link back to it
        return _unless_returned(_eager_factory(loop, coro))
    context = contextvars.copy_context()
    resumed = _Resumed(coro)
    task: asyncio.Task[None] = loop.create_task(resumed, context=context)
    outer = asyncio.current_task(loop)
    if outer is not None:
        _leave_task(loop, outer)
    _enter_task(loop, task)
    try:
        context.run(resumed.first_step)
    finally:
        _leave_task(loop, task)
        if outer is not None:
            _enter_task(loop, outer)
    if resumed.finished and resumed.error is None:  # the task's own step, on the next turn, only returns
        return None
    return task


def _unless_returned(task: asyncio.Task[None]) -> asyncio.Task[None] | None:
    """None for a task that returned in its first step, else the task."""
    if task.done() and not task.cancelled() and task.exception() is None:
        return None
    return task


class FirstOfTurn:
    """Starts the first coroutine of each event-loop turn eagerly (`start`), later ones as plain tasks.

    A lone request (one client, or a quiet server) is answered before the
    next frame is read. Under load, when several frames arrive in one turn,
    the rest queue as tasks and run together on the next turn, which costs
    less per request than interleaving each with Tornado's frame reading.
    One per gateway: it holds whether this turn already started one.
    With a ``flusher``, its `Flusher.direct` is True while that first step
    runs: its reply goes out at once, the later ones together.
    """

    def __init__(self, flusher: Flusher | None = None) -> None:
        self._busy_loop: asyncio.AbstractEventLoop | None = None  # the loop whose current turn started one
        self._flusher = flusher

    def start(self, coro: Coroutine[Any, Any, None], direct: bool = True) -> asyncio.Task[None] | None:
        """Like `start` for the turn's first coroutine; a task scheduled for the next turn for the others.

        ``direct`` False keeps `Flusher.direct` False in that first step too (more frames follow its own).
        """
        loop = asyncio.get_running_loop()
        if self._busy_loop is loop:
            return loop.create_task(coro)
        self._busy_loop = loop  # a loop stopped before its next turn holds nothing back in another
        loop.call_soon(self._next_turn)
        flusher = self._flusher
        if flusher is None or not direct:
            return _start(loop, coro)
        flusher.direct = True
        try:
            return _start(loop, coro)
        finally:
            flusher.direct = False

    def _next_turn(self) -> None:
        self._busy_loop = None


class _Resumed(Coroutine[Any, Any, Any]):
    """A coroutine whose first step already ran: the task that drives it picks up from there.

    The task's first ``send`` gets the outcome of that step (the result, the
    error, or the future it waits on); every later ``send`` and ``throw``
    goes straight to the coroutine, as ``await`` would pass them.
    """

    __slots__ = ("_coro", "_fresh", "_yielded", "_result", "error", "__qualname__")

    def __init__(self, coro: Coroutine[Any, Any, Any]) -> None:
        self._coro: Coroutine[Any, Any, Any] | None = coro  # None once the first step finished it
        self.__qualname__ = getattr(coro, "__qualname__", type(coro).__name__)  # how asyncio names the task's coro
        self._fresh = True  # the task has not stepped yet
        self._yielded: Any = None
        self._result: Any = None
        self.error: BaseException | None = None

    @property
    def finished(self) -> bool:
        """Whether the coroutine finished in its first step."""
        return self._coro is None

    def first_step(self) -> None:
        assert self._coro is not None  # the first step runs once, before anything clears it
        try:
            self._yielded = self._coro.send(None)
        except StopIteration as stop:
            self._coro = None
            self._result = stop.value
        except BaseException as error:  # noqa: B036 -- the task re-raises it, as it would have
            self._coro = None
            # From the coroutine on, and no local holds the traceback: no cycle. (A raised error has one.)
            self.error = error.with_traceback(error.__traceback__.tb_next if error.__traceback__ else None)

    def send(self, value: Any) -> Any:
        if self._fresh:
            self._fresh = False
            if self._coro is None:
                self._end()
            yielded, self._yielded = self._yielded, None
            return yielded
        assert self._coro is not None  # a first step that finished ended the task at the first send
        return self._coro.send(value)

    def _end(self) -> NoReturn:
        """Give the task the outcome of a first step that finished: its error, or its result."""
        if self.error is None:
            raise StopIteration(self._result)
        raise self._pop_error()  # no local holds it: no cycle through the traceback

    def _pop_error(self) -> BaseException:
        error, self.error = self.error, None
        assert error is not None  # called only when the first step raised
        return error

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        fresh, self._fresh = self._fresh, False
        if self._coro is None:  # finished in its first step: what it returned stands
            self._end()
        yielded, self._yielded = self._yielded, None
        cancelled = val if isinstance(val, BaseException) else typ
        if fresh and isinstance(cancelled, asyncio.CancelledError) and asyncio.isfuture(yielded) \
                and yielded.cancel(*cancelled.args):
            # Cancelled before the task's first step: cancel what the first step awaits, as
            # `Task.cancel` does; the task then waits for it and the cancellation reaches the coroutine.
            return yielded
        if val is None and tb is None:
            return self._coro.throw(typ)
        return self._coro.throw(typ, val, tb)

    def close(self) -> None:
        if self._coro is not None:
            self._coro.close()

    def __await__(self) -> Generator[Any, None, Any]:
        return self

    def __iter__(self) -> _Resumed:
        return self

    def __next__(self) -> Any:
        return self.send(None)
