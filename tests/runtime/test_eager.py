"""`drizzle_gateway.runtime.eager`: first steps that run at once, inside a task like any other."""

from __future__ import annotations

import asyncio
import contextvars
import gc

import pytest

from drizzle_gateway.runtime import eager

WHO = contextvars.ContextVar("who", default="outside")


@pytest.mark.gen_test
async def test_a_coroutine_that_never_waits_finishes_before_start_returns():
    seen = []

    async def answer() -> None:
        seen.append("answered")

    assert eager.start(answer()) is None
    assert seen == ["answered"]


@pytest.mark.gen_test
async def test_the_first_step_runs_in_the_task_that_runs_the_rest():
    caller = asyncio.current_task()
    seen: dict[str, asyncio.Task | None] = {}

    async def request() -> None:
        seen["first"] = asyncio.current_task()
        await asyncio.sleep(0)
        seen["after"] = asyncio.current_task()

    task = eager.start(request())
    assert "first" in seen and "after" not in seen  # the first step ran, the rest waits for the loop
    assert asyncio.current_task() is caller  # the caller's task is current again
    assert seen["first"] is task and task is not caller
    await task
    assert seen["after"] is task


@pytest.mark.gen_test
async def test_a_timeout_entered_in_the_first_step_cancels_only_its_own_task():
    outcome = []

    async def slow() -> None:
        try:
            async with asyncio.timeout(0.05):
                await asyncio.sleep(10)
        except TimeoutError:
            outcome.append("timed out")

    task = eager.start(slow())
    await asyncio.wait_for(task, 5)  # the caller is not cancelled by the request's timeout
    assert outcome == ["timed out"]
    assert asyncio.current_task().cancelling() == 0


@pytest.mark.gen_test
async def test_context_variables_set_by_the_task_stay_in_the_task():
    seen = []

    async def request() -> None:
        WHO.set("request")
        await asyncio.sleep(0)
        seen.append(WHO.get())

    task = eager.start(request())
    assert WHO.get() == "outside"
    await task
    assert seen == ["request"]


@pytest.mark.gen_test
async def test_an_error_in_the_first_step_ends_the_task_not_the_caller():
    async def broken() -> None:
        raise ValueError("bad request")

    task = eager.start(broken())  # raises nothing here: the caller is the connection's frame reader
    assert task is not None
    with pytest.raises(ValueError, match="bad request"):
        await asyncio.wait_for(task, 5)


@pytest.mark.gen_test
async def test_a_cancellation_in_the_first_step_cancels_only_its_task():
    shared = asyncio.get_running_loop().create_future()
    shared.cancel()

    async def waits_on_a_cancelled_future() -> None:
        await shared  # raises CancelledError at once, in the first step

    task = eager.start(waits_on_a_cancelled_future())
    assert task is not None
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()
    assert asyncio.current_task().cancelling() == 0  # the caller goes on


@pytest.mark.gen_test
async def test_cancelling_before_the_first_turn_cancels_what_the_first_step_awaits():
    awaited = asyncio.get_running_loop().create_future()
    outcome = []

    async def request() -> None:
        try:
            await awaited
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise

    task = eager.start(request())
    task.cancel()  # as a connection closing in the same turn does
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    assert awaited.cancelled()  # as Task.cancel cancels the future a task waits on
    assert outcome == ["cancelled"]


@pytest.mark.gen_test
async def test_an_error_after_the_first_step_is_the_tasks():
    async def broken_later() -> None:
        await asyncio.sleep(0)
        raise ValueError("later")

    task = eager.start(broken_later())
    with pytest.raises(ValueError, match="later"):
        await task


@pytest.mark.gen_test
async def test_cancelling_a_waiting_task_reaches_the_coroutine():
    cleaned = asyncio.Event()
    started = []

    async def waiting() -> None:
        started.append(True)
        try:
            await asyncio.sleep(10)
        finally:
            cleaned.set()

    task = eager.start(waiting())
    assert started == [True]
    task.cancel()  # before the task's first turn on the loop
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned.is_set()
    assert task.cancelled()


@pytest.mark.gen_test
async def test_a_task_waiting_on_a_future_gets_its_result():
    future = asyncio.get_running_loop().create_future()
    got = []

    async def waiting() -> None:
        got.append(await future)

    task = eager.start(waiting())
    future.set_result(42)
    await asyncio.wait_for(task, 5)
    assert got == [42]


@pytest.mark.gen_test
async def test_first_of_turn_starts_the_turns_first_coroutine_eagerly_and_queues_the_others():
    starter = eager.FirstOfTurn()
    seen = []

    async def request(name: str) -> None:
        seen.append(name)

    assert starter.start(request("first")) is None  # answered at once
    queued = [starter.start(request(name)) for name in ("second", "third")]
    assert seen == ["first"]  # the others wait for the next turn, as plain tasks
    await asyncio.wait_for(asyncio.gather(*queued), 5)
    assert seen == ["first", "second", "third"]
    assert starter.start(request("next turn")) is None  # a new turn: eager again
    assert seen[-1] == "next turn"


@pytest.mark.gen_test
async def test_a_queued_coroutine_runs_in_its_own_task_with_its_own_timeout():
    starter = eager.FirstOfTurn()
    seen: dict[str, asyncio.Task | None] = {}

    async def request(name: str) -> None:
        seen[name] = asyncio.current_task()
        async with asyncio.timeout(5):
            await asyncio.sleep(0)

    first, second = starter.start(request("first")), starter.start(request("second"))
    assert first is not None and second is not None and "second" not in seen
    await asyncio.wait_for(asyncio.gather(first, second), 5)
    assert seen == {"first": first, "second": second}


def test_a_loop_stopped_mid_turn_holds_back_nothing_in_the_next_loop():
    starter = eager.FirstOfTurn()
    seen = []

    async def request(name: str) -> None:
        seen.append(name)

    first = asyncio.new_event_loop()

    async def start_then_stop() -> None:
        assert starter.start(request("first loop")) is None
        first.stop()  # the loop ends with this turn: the turn's end never runs

    try:
        first.create_task(start_then_stop())
        first.run_forever()
    finally:
        first.close()

    async def next_loop() -> asyncio.Task | None:
        return starter.start(request("next loop"))

    assert asyncio.run(next_loop()) is None  # started eagerly, not queued behind the dead loop's turn
    assert seen == ["first loop", "next loop"]


@pytest.mark.parametrize("starter", ["start", "FirstOfTurn"])
def test_a_first_step_error_leaves_no_more_cyclic_garbage_than_a_plain_task(starter: str):
    async def broken() -> None:
        raise ValueError("bad request")

    async def garbage_after(start) -> int:
        gc.collect()
        gc.disable()
        try:
            task = start(broken())
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            assert isinstance(task.exception(), ValueError)
            del task
            return gc.collect()
        finally:
            gc.enable()

    async def both() -> tuple[int, int]:
        plain = await garbage_after(asyncio.get_running_loop().create_task)
        return plain, await garbage_after(eager.start if starter == "start" else eager.FirstOfTurn().start)

    plain, eagerly = asyncio.run(both())
    assert eagerly <= plain  # the failed request's frames are freed by reference counting, not left to the GC
