"""`Pacer`: a connection whose requests held the loop past `COSTLY_STEP` is paused ``1 / share - 1`` times as long.

The pause is in loop time. How steps are timed is tested in test_runner.py,
how a session waits out a pause in test_session.py.
"""

from __future__ import annotations

import asyncio

import pytest

from drizzle_gateway.runtime.pacing import COSTLY_STEP, Pacer


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
