"""`runtime.flusher.Flusher`: what a loop turn queues is flushed once, after what that turn started.

Run on real event loops: nothing is flushed while the turn that scheduled it
runs; the callbacks and tasks the turn queued run first, and what they
schedule is flushed with the turn's own outboxes, in one callback (pipelined
publishes from one peer, started as tasks, share one write per subscriber);
an outbox scheduled while the flusher writes goes in a later flush; and work
a stopped loop left behind is flushed by the next loop the flusher is used on.
"""

from __future__ import annotations

import asyncio

import pytest

from drizzle_gateway.runtime.flusher import Flusher


class Noted:
    """A `Flushable` that notes each flush in a shared log, by name."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log

    def flush(self) -> None:
        self.log.append(self.name)


async def turns(count: int) -> None:
    for _ in range(count):
        await asyncio.sleep(0)


def test_outboxes_scheduled_in_one_turn_are_flushed_after_what_it_started_in_one_callback():
    log: list[str] = []
    flusher = Flusher()
    first, second, third, from_task = (Noted(name, log) for name in ("first", "second", "third", "from a task"))

    async def started_in_the_turn() -> None:
        log.append("task ran")
        flusher.schedule(from_task)

    async def one_turn() -> None:
        loop = asyncio.get_running_loop()
        flusher.schedule(first)
        loop.call_soon(log.append, "queued after the first")
        flusher.schedule(second)
        task = asyncio.ensure_future(started_in_the_turn())
        flusher.schedule(third)
        assert log == []  # not during the turn
        await turns(2)
        assert task.done()
        assert log == ["queued after the first", "task ran", "first", "second", "third", "from a task"]
        await turns(2)
        assert log == ["queued after the first", "task ran", "first", "second", "third", "from a task"]  # each once

    asyncio.run(one_turn())


def test_each_turn_is_flushed_on_its_own():
    log: list[str] = []
    flusher = Flusher()
    outbox = Noted("outbox", log)

    async def each() -> None:
        for turn in range(1, 4):
            flusher.schedule(outbox)
            await turns(2)
            assert log == ["outbox"] * turn

    asyncio.run(each())


class Chained(Noted):
    """A `Flushable` whose flush queues another one on the same flusher (a write that queues a frame)."""

    def __init__(self, name: str, log: list[str], flusher: Flusher, then: Noted) -> None:
        super().__init__(name, log)
        self.flusher, self.then = flusher, then

    def flush(self) -> None:
        super().flush()
        self.flusher.schedule(self.then)


def test_an_outbox_scheduled_while_flushing_is_flushed_in_the_next_turn():
    log: list[str] = []
    flusher = Flusher()
    later = Noted("later", log)
    chained = Chained("chained", log, flusher, later)

    async def run() -> None:
        flusher.schedule(chained)
        await turns(2)
        assert log == ["chained"]
        await turns(2)
        assert log == ["chained", "later"]

    asyncio.run(run())


def test_work_a_stopped_loop_left_behind_is_flushed_on_the_next_loop():
    log: list[str] = []
    flusher = Flusher()
    stranded, fresh = Noted("stranded", log), Noted("fresh", log)
    stopped = asyncio.new_event_loop()

    def schedule_then_stop() -> None:
        flusher.schedule(stranded)
        stopped.stop()  # the loop ends with this turn: the flush it queued never runs

    stopped.call_soon(schedule_then_stop)
    stopped.run_forever()
    stopped.close()
    assert log == []

    async def on_a_new_loop() -> None:
        flusher.schedule(fresh)
        await turns(2)

    asyncio.run(on_a_new_loop())
    assert log == ["stranded", "fresh"]


def test_scheduling_needs_a_running_loop():
    with pytest.raises(RuntimeError):
        Flusher().schedule(Noted("outside", []))
