"""`Pacer`: a connection whose requests held the loop past `COSTLY_STEP` is paused ``1 / share - 1`` times as long.

Steps are timed with the pacer's ``clock`` (here a clock the test moves);
the pause is in loop time. How a session waits out a pause is tested in
test_session.py.
"""

from __future__ import annotations

import asyncio

import pytest

from drizzle_gateway.runtime.pacing import COSTLY_STEP, Pacer


class StepClock:
    """A clock that moves by ``step`` seconds each time it is read."""

    def __init__(self, step: float) -> None:
        self.step = step
        self.now = 0.0

    def __call__(self) -> float:
        self.now += self.step
        return self.now


@pytest.mark.gen_test
async def test_a_cheap_step_is_never_charged():
    pacer = Pacer(0.25)
    assert pacer.costly(COSTLY_STEP) is False
    assert pacer.resume_at == float("-inf") and not pacer.paused()


@pytest.mark.gen_test
async def test_a_costly_step_pauses_for_three_times_what_it_held_at_a_quarter_share():
    pacer = Pacer(0.25)
    now = asyncio.get_running_loop().time()
    assert pacer.costly(0.01) is True
    assert now + 0.03 <= pacer.resume_at <= asyncio.get_running_loop().time() + 0.03
    assert pacer.paused()


@pytest.mark.gen_test
async def test_charges_add_up_from_the_end_of_the_pause():
    pacer = Pacer(0.5)  # as much rest as work
    pacer.charge(10.0)
    first = pacer.resume_at
    pacer.charge(5.0)
    assert pacer.resume_at == pytest.approx(first + 5.0)


@pytest.mark.gen_test
async def test_a_pause_ends():
    pacer = Pacer(0.5)
    pacer.charge(0.02)
    assert pacer.paused()
    await asyncio.sleep(pacer.resume_at - asyncio.get_running_loop().time())  # the pause itself is under test
    assert not pacer.paused()


@pytest.mark.gen_test
async def test_metered_passes_results_and_errors_through():
    pacer = Pacer(0.25, clock=StepClock(0.0))

    async def answer(value):
        await asyncio.sleep(0)
        return value

    async def fail():
        await asyncio.sleep(0)
        raise KeyError("x")

    assert await pacer.metered(answer(42)) == 42
    with pytest.raises(KeyError):
        await pacer.metered(fail())
    assert not pacer.paused()


@pytest.mark.gen_test
async def test_metered_charges_each_step_of_a_costly_request_once():
    async def request(steps: int):
        for _ in range(steps - 1):
            await asyncio.sleep(0)
        return "done"

    pacer = Pacer(0.25, clock=StepClock(0.1))  # each step holds the loop for 100 ms
    before = asyncio.get_running_loop().time()
    assert await pacer.metered(request(4)) == "done"
    assert pacer.resume_at == pytest.approx(before + 3 * 0.4, abs=0.05)  # three times the 400 ms held
    cheap = Pacer(0.25, clock=StepClock(COSTLY_STEP / 2))
    assert await cheap.metered(request(1)) == "done"
    assert not cheap.paused()  # one step under the costly step: never charged
    adding_up = Pacer(0.25, clock=StepClock(COSTLY_STEP / 2))
    assert await adding_up.metered(request(3)) == "done"
    assert adding_up.paused()  # three such steps are over it


@pytest.mark.gen_test
async def test_metered_counts_what_the_request_held_before_it():
    pacer = Pacer(0.25, clock=StepClock(0.0))

    async def instant():
        return None

    await pacer.metered(instant(), spent=COSTLY_STEP * 2)
    assert pacer.paused()


def test_a_costly_request_closed_after_its_loop_stopped_closes_quietly_and_charges_nothing_more():
    pacer = Pacer(0.25, clock=StepClock(0.1))  # each step holds the loop for 100 ms: costly
    cleaned = []

    async def request():
        try:
            await asyncio.sleep(3600)
        finally:
            cleaned.append(True)

    async def serve():  # what a request's task runs
        await pacer.metered(request())

    task_coro = serve()
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(_first_step(task_coro))  # charged for its first step, while the loop runs
        charged_until = pacer.resume_at
    finally:
        loop.close()
    assert charged_until > 0
    task_coro.close()  # as the garbage collector closes a dropped task's coroutine: no loop runs now
    assert cleaned == [True] and pacer.resume_at == charged_until


async def _first_step(coro) -> None:
    """Run the first step of ``coro`` and leave it suspended on what it waits for."""
    waited = coro.send(None)
    assert waited is not None  # it waits: the sleep's future
    waited.cancel()
