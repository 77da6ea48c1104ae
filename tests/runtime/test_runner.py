"""`drizzle_gateway.runtime.runner`: first steps run at once or with their turn, inside a task like any other."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import logging

import pytest

from drizzle_gateway.runtime.pacing import COSTLY_STEP, Pacer
from drizzle_gateway.runtime.runner import Runner

WHO = contextvars.ContextVar("who", default="outside")


class StepClock:
    """A clock that moves by ``step`` seconds each time it is read."""

    def __init__(self, step: float) -> None:
        self.step = step
        self.now = 0.0

    def __call__(self) -> float:
        self.now += self.step
        return self.now


class Tasks(list):
    """A ``waiting`` callback that keeps the tasks it is told of."""

    def __call__(self, task: asyncio.Task) -> None:
        self.append(task)


class Requests:
    """Requests that note the task each step runs in; those told to wait await ``later``."""

    def __init__(self) -> None:
        self.seen: dict[str, asyncio.Task | None] = {}
        self.later = asyncio.get_running_loop().create_future()

    async def request(self, name: str, wait: bool = False) -> None:
        self.seen[name] = asyncio.current_task()
        if wait:
            await self.later
        self.seen[name + " after"] = asyncio.current_task()


def start(coro, pacer: Pacer | None = None, spent: float = 0.0) -> asyncio.Task | None:
    """Start ``coro`` as the first request of a turn (a fresh runner): the task it waits in, or None."""
    tasks = Tasks()
    Runner().start(coro, tasks, pacer, spent)
    assert len(tasks) <= 1
    return tasks[0] if tasks else None


@pytest.mark.gen_test
async def test_a_coroutine_that_never_waits_finishes_before_start_returns():
    seen = []

    async def answer() -> None:
        seen.append("answered")

    assert start(answer()) is None
    assert seen == ["answered"]


@pytest.mark.gen_test
async def test_the_first_step_runs_in_the_task_that_runs_the_rest():
    caller = asyncio.current_task()
    seen: dict[str, asyncio.Task | None] = {}

    async def request() -> None:
        seen["first"] = asyncio.current_task()
        await asyncio.sleep(0)
        seen["after"] = asyncio.current_task()

    task = start(request())
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

    task = start(slow())
    await asyncio.wait_for(task, 5)  # the caller is not cancelled by the request's timeout
    assert outcome == ["timed out"]
    assert asyncio.current_task().cancelling() == 0


@pytest.mark.gen_test
async def test_each_request_has_a_copy_of_the_context_it_was_started_in():
    seen = []

    async def request(name: str) -> None:
        seen.append((name, WHO.get()))
        WHO.set(name)
        await asyncio.sleep(0)
        seen.append((name, WHO.get()))

    runner, tasks = Runner(), Tasks()
    token = WHO.set("caller")
    try:
        for name in ("first", "second", "third"):  # the first at once, the others in one batch
            runner.start(request(name), tasks)
    finally:
        WHO.reset(token)
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert WHO.get() == "outside"
    assert sorted(seen) == sorted([(name, "caller") for name in ("first", "second", "third")]
                                  + [(name, name) for name in ("first", "second", "third")])


@pytest.mark.gen_test
async def test_an_error_in_a_first_step_goes_to_the_loops_handler_and_the_batch_goes_on(caplog):
    seen = []

    async def broken() -> None:
        raise ValueError("bad request")

    async def fine(name: str) -> None:
        seen.append(name)

    runner = Runner()
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        runner.start(broken())  # raises nothing here: the caller is the connection's frame reader
        for coro in (broken(), fine("after")):
            runner.start(coro)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
    assert seen == ["after"]
    failures = [r for r in caplog.records if "failed in its first step" in r.getMessage()]
    assert len(failures) == 2 and all("bad request" in str(r.exc_info[1]) for r in failures)


@pytest.mark.gen_test
async def test_a_cancellation_in_the_first_step_ends_only_its_request():
    shared = asyncio.get_running_loop().create_future()
    shared.cancel()

    async def waits_on_a_cancelled_future() -> None:
        await shared  # raises CancelledError at once, in the first step

    assert start(waits_on_a_cancelled_future()) is None
    await asyncio.sleep(0)
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

    task = start(request())
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

    task = start(broken_later())
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

    task = start(waiting())
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

    task = start(waiting())
    future.set_result(42)
    await asyncio.wait_for(task, 5)
    assert got == [42]


@pytest.mark.gen_test
async def test_the_turns_first_request_starts_at_once_and_the_others_together_on_the_next_turn():
    runner = Runner()
    seen = []

    async def request(name: str) -> None:
        seen.append(name)

    runner.start(request("first"))  # answered at once
    for name in ("second", "third"):
        runner.start(request(name))
    assert seen == ["first"]  # the others wait for the next turn
    await asyncio.sleep(0)
    assert seen == ["first", "second", "third"]
    runner.start(request("next turn"))  # a new turn: at once again
    assert seen[-1] == "next turn"


@pytest.mark.gen_test
async def test_requests_that_never_wait_share_a_task_and_one_that_waits_keeps_its_own():
    runner, tasks, requests = Runner(), Tasks(), Requests()
    request, seen, later = requests.request, requests.seen, requests.later
    runner.start(request("turn's first"))
    for name, wait in (("a", False), ("b", False), ("c", True), ("d", False)):
        runner.start(request(name, wait), tasks)
    await asyncio.sleep(0)
    assert seen["a"] is seen["b"] is seen["c"]  # one spare task for the batch, until a request waits in it
    assert tasks == [seen["c"]] and seen["d"] is not seen["c"]  # the one that waited keeps it; the rest get another
    assert all(isinstance(seen[name], asyncio.Task) for name in "abcd")
    later.set_result(None)
    await asyncio.wait_for(tasks[0], 5)
    assert seen["c after"] is seen["c"]


@pytest.mark.gen_test
async def test_the_spare_task_is_kept_from_turn_to_turn_until_a_request_waits_in_it():
    runner, tasks, requests = Runner(), Tasks(), Requests()
    request, seen, later = requests.request, requests.seen, requests.later
    for name, wait in (("one", False), ("two", False), ("waits", True), ("after", False)):
        runner.start(request(name, wait), tasks)
        await asyncio.sleep(0)  # each its turn's first
    assert seen["one"] is seen["two"] is seen["waits"]  # parked between turns: no task per turn
    assert tasks == [seen["waits"]] and seen["after"] is not seen["waits"]
    later.set_result(None)
    await asyncio.wait_for(tasks[0], 5)  # the parked task woke and went on with the request it adopted
    spare = seen["after"]
    spare.cancel()  # as a loop shutting down cancels every task
    await asyncio.sleep(0)
    runner.start(request("replaced"))
    assert spare.cancelled() and seen["replaced"] is not spare


@pytest.mark.gen_test
async def test_a_request_that_cancels_its_task_cancels_only_its_own():
    runner, tasks, requests = Runner(), Tasks(), Requests()
    outcome = []

    async def cancels_itself(then_wait: bool) -> None:
        asyncio.current_task().cancel()
        if then_wait:
            try:
                await asyncio.sleep(1)
            except asyncio.CancelledError:
                outcome.append("cancelled")
                raise

    runner.start(requests.request("turn's first"))
    runner.start(cancels_itself(False), tasks)  # finishes: the cancel stays behind, on the task it ran in
    runner.start(requests.request("next", wait=True), tasks)
    await asyncio.sleep(0)
    (task,) = tasks
    assert task is requests.seen["next"] and task.cancelling() == 0  # a task of its own, not the cancelled one
    requests.later.set_result(None)
    await asyncio.wait_for(task, 5)
    runner.start(cancels_itself(True), tasks)  # waits after cancelling itself: its wait is what is cancelled
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(tasks[1], 5)
    assert outcome == ["cancelled"]


@pytest.mark.gen_test
async def test_requests_of_one_batch_may_wait_on_the_same_future():
    runner, tasks = Runner(), Tasks()
    shared = asyncio.get_running_loop().create_future()  # as a cache's one fetch, awaited by every request
    got = []

    async def request() -> None:
        got.append(await shared)

    for _ in range(3):  # the turn's first, then two in one batch
        runner.start(request(), tasks)
    await asyncio.sleep(0)
    shared.set_result("fetched")
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert got == ["fetched"] * 3


@pytest.mark.gen_test
async def test_a_request_started_from_a_first_step_gets_its_own_task():
    runner, tasks, requests = Runner(), Tasks(), Requests()

    async def starts_another() -> None:
        runner.start(requests.request("inner", wait=True), tasks)  # as an action calling a TestClient would
        requests.seen["outer"] = asyncio.current_task()
        await requests.later

    runner.start(requests.request("turn's first"))
    runner.start(starts_another(), tasks)  # in the next turn's batch
    await asyncio.sleep(0)
    inner, outer = tasks
    assert inner is requests.seen["inner"] and outer is requests.seen["outer"] and inner is not outer
    requests.later.set_result(None)
    await asyncio.wait_for(asyncio.gather(inner, outer), 5)
    assert requests.seen["inner after"] is inner


@pytest.mark.gen_test
async def test_a_queued_coroutine_runs_in_its_own_task_with_its_own_timeout():
    runner, tasks = Runner(), Tasks()
    seen: dict[str, asyncio.Task | None] = {}

    async def request(name: str) -> None:
        seen[name] = asyncio.current_task()
        async with asyncio.timeout(5):
            await asyncio.sleep(0)

    runner.start(request("first"), tasks)
    runner.start(request("second"), tasks)
    assert len(tasks) == 1 and "second" not in seen
    await asyncio.sleep(0)
    assert len(tasks) == 2
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert seen == {"first": tasks[0], "second": tasks[1]}


def test_a_loop_stopped_mid_turn_holds_back_nothing_in_the_next_loop():
    runner = Runner()
    seen = []

    async def request(name: str) -> None:
        seen.append(name)

    first = asyncio.new_event_loop()

    async def start_then_stop() -> None:
        runner.start(request("first loop"))
        first.stop()  # the loop ends with this turn: the turn's end never runs

    try:
        first.create_task(start_then_stop())
        first.run_forever()
    finally:
        first.close()

    async def next_loop() -> None:
        runner.start(request("next loop"))
        assert seen == ["first loop", "next loop"]  # started at once, not queued behind the dead loop's turn

    asyncio.run(next_loop())


def test_a_first_step_error_leaves_no_more_cyclic_garbage_than_a_plain_task():
    async def broken() -> None:
        raise ValueError("bad request")

    async def garbage_after(start) -> int:
        gc.collect()
        gc.disable()
        try:
            start(broken())
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            return gc.collect()
        finally:
            gc.enable()

    async def both() -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda loop, context: None)  # both errors are reported; here they are dropped
        plain = await garbage_after(loop.create_task)
        return plain, await garbage_after(Runner().start)

    plain, run = asyncio.run(both())
    assert run <= plain  # the failed request's frames are freed by reference counting, not left to the GC


# -- pacing -------------------------------------------------------------------


@pytest.mark.gen_test
async def test_each_step_of_a_costly_request_is_charged_once():
    async def request(steps: int) -> None:
        for _ in range(steps - 1):
            await asyncio.sleep(0)

    pacer = Pacer(0.25, clock=StepClock(0.1))  # each step holds the loop for 100 ms
    before = asyncio.get_running_loop().time()
    task = start(request(4), pacer)
    await asyncio.wait_for(task, 5)
    assert pacer.resume_at == pytest.approx(before + 3 * 0.4, abs=0.05)  # three times the 400 ms held
    cheap = Pacer(0.25, clock=StepClock(COSTLY_STEP / 2))
    assert start(request(1), cheap) is None
    assert not cheap.paused()  # one step under the costly step: never charged
    adding_up = Pacer(0.25, clock=StepClock(COSTLY_STEP / 2))
    await asyncio.wait_for(start(request(3), adding_up), 5)
    assert adding_up.paused()  # three such steps are over it


@pytest.mark.gen_test
async def test_what_the_request_held_before_its_first_step_counts():
    pacer = Pacer(0.25, clock=StepClock(0.0))

    async def instant() -> None:
        return None

    start(instant(), pacer, spent=COSTLY_STEP * 2)
    assert pacer.paused()


@pytest.mark.gen_test
async def test_a_request_failing_after_its_first_step_is_charged_too():
    pacer = Pacer(0.25, clock=StepClock(0.1))

    async def fail() -> None:
        await asyncio.sleep(0)
        raise KeyError("x")

    task = start(fail(), pacer)
    with pytest.raises(KeyError):
        await task
    assert pacer.resume_at > asyncio.get_running_loop().time() + 0.5  # two steps of 100 ms, three times over


def test_a_costly_request_closed_after_its_loop_stopped_closes_quietly_and_charges_nothing_more():
    pacer = Pacer(0.25, clock=StepClock(0.1))  # each step holds the loop for 100 ms: costly
    cleaned = []
    tasks = Tasks()

    async def request() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            cleaned.append(True)

    async def first_step() -> None:
        Runner().start(request(), tasks, pacer)

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(first_step())  # charged for its first step, while the loop runs
        charged_until = pacer.resume_at
    finally:
        loop.close()
    assert charged_until > 0
    tasks[0].get_coro().close()  # as the garbage collector closes a dropped task's coroutine: no loop runs now
    assert cleaned == [True] and pacer.resume_at == charged_until


def turn_of(runner: Runner, owner: object, seen: list[str], names: list[str]) -> None:
    """Start ``names`` as ``owner``'s requests of one turn: the first at once, the rest batched."""

    async def request(name: str) -> None:
        seen.append(name)

    for name in names:
        runner.start(request(name), owner=owner)


@pytest.mark.gen_test
async def test_settle_runs_the_batch_at_once_when_its_owner_alone_kept_the_last_turn_busy_too():
    runner, seen = Runner(), []
    alone = object()
    turn_of(runner, alone, seen, ["a1", "a2"])
    assert not runner.settle(alone)  # no turn before it to go by: the batch waits for the next turn
    assert seen == ["a1"]
    await asyncio.sleep(0)
    assert seen == ["a1", "a2"]
    turn_of(runner, alone, seen, ["b1", "b2", "b3"])
    assert runner.settle(alone)  # the last busy turn was its alone: the batch runs now
    assert seen[2:] == ["b1", "b2", "b3"]
    assert not runner.settle(alone)  # nothing left to run
    turn_of(runner, alone, seen, ["c1"])  # a later request of the same turn: a batch of its own
    assert seen[-1] == "b3"
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert seen[2:] == ["b1", "b2", "b3", "c1"]  # every request ran once: the turn's scheduled batch found none left


@pytest.mark.gen_test
async def test_settle_leaves_the_batch_to_its_turn_while_more_than_one_owner_keeps_the_loop_busy():
    runner, seen = Runner(), []
    one, other = object(), object()
    turn_of(runner, one, seen, ["one"])
    await asyncio.sleep(0)  # the last busy turn: one's alone
    turn_of(runner, one, seen, ["a1", "a2"])
    turn_of(runner, other, seen, ["b1"])  # another owner joins this turn
    assert not runner.settle(one) and not runner.settle(other)
    assert seen == ["one", "a1"]
    await asyncio.sleep(0)
    assert seen == ["one", "a1", "a2", "b1"]  # together, on the next turn
    turn_of(runner, one, seen, ["c1", "c2"])
    assert not runner.settle(one)  # the last busy turn had two owners
    turn_of(runner, None, seen, ["d1"])
    await asyncio.sleep(0)
    turn_of(runner, None, seen, ["e1", "e2"])
    assert not runner.settle(None)  # requests of no named owner are never settled
    await asyncio.sleep(0)
    assert seen[-3:] == ["d1", "e1", "e2"]
