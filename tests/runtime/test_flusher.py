"""`runtime.flusher.Flusher`: what is scheduled during a loop turn is flushed at its end, once, in one callback.

Run on real event loops: nothing is flushed while the turn that scheduled it
runs; every outbox scheduled in a turn is flushed before a callback queued
after the first of them (one callback for the whole turn, not one each); an
outbox scheduled while the flusher writes goes in the next turn; and work a
stopped loop left behind is flushed by the next loop the flusher is used on.
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


def test_outboxes_scheduled_in_one_turn_are_flushed_at_its_end_in_one_callback():
    log: list[str] = []
    flusher = Flusher()
    first, second, third = (Noted(name, log) for name in ("first", "second", "third"))

    async def one_turn() -> None:
        loop = asyncio.get_running_loop()
        flusher.schedule(first)
        loop.call_soon(log.append, "queued after the first")
        flusher.schedule(second)
        flusher.schedule(third)
        assert log == []  # not during the turn
        await asyncio.sleep(0)  # the turn ends
        assert log == ["first", "second", "third", "queued after the first"]
        await asyncio.sleep(0)
        assert log == ["first", "second", "third", "queued after the first"]  # each once

    asyncio.run(one_turn())


def test_each_turn_is_flushed_on_its_own():
    log: list[str] = []
    flusher = Flusher()
    outbox = Noted("outbox", log)

    async def turns() -> None:
        for turn in range(1, 4):
            flusher.schedule(outbox)
            await asyncio.sleep(0)
            assert log == ["outbox"] * turn

    asyncio.run(turns())


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
        await asyncio.sleep(0)
        assert log == ["chained"]
        await asyncio.sleep(0)
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
        await asyncio.sleep(0)

    asyncio.run(on_a_new_loop())
    assert log == ["stranded", "fresh"]


def test_scheduling_needs_a_running_loop():
    with pytest.raises(RuntimeError):
        Flusher().schedule(Noted("outside", []))
