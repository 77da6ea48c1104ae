"""Channel history's own values: `Retention`'s bounds, epochs, positions.

The ring numbers events without gaps, forgets the oldest past its size and
those older than its ttl, weighs what it holds, and answers a read after a
`Position` with what follows and whether anything after it is gone. What
the brokers and the fan-out make of it is tested in tests/brokers/test_memory.py.
"""

from __future__ import annotations

import pytest

from drizzle_gateway.wire.history import Retention, new_epoch


def test_retention_keeps_at_least_one_event_for_a_positive_time():
    assert (Retention(1).size, Retention(1, ttl=0.5).ttl, Retention(2, ttl=None).ttl) == (1, 0.5, None)
    too_small, not_positive = "history must keep at least one event", "history_ttl must be positive"
    for size, ttl, error in ((0, None, too_small), (-1, None, too_small), (1, 0, not_positive), (1, -1, not_positive)):
        with pytest.raises(ValueError) as refused:
            Retention(size, ttl)
        assert str(refused.value) == error


def test_epochs_are_eight_hex_digits_and_differ():
    epochs = {new_epoch() for _ in range(20)}
    assert len(epochs) == 20
    assert all(len(epoch) == 8 and int(epoch, 16) >= 0 for epoch in epochs)
