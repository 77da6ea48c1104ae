"""Permission hooks as the request path calls them: plain or async, truthiness, and the FORBIDDEN they raise.

How actions and topics use them over the request path is in test_auth.
"""

from __future__ import annotations

import asyncio

import pytest

from drizzle_gateway.contract.permissions import allows, require
from drizzle_gateway.wire.errors import ActionError


def answering(value, asynchronous: bool, seen: list):
    """A hook answering ``value`` (after a yield when ``asynchronous``), recording what it was asked."""
    if asynchronous:
        async def hook(user, params):
            seen.append((user, params))
            await asyncio.sleep(0)
            return value
    else:
        def hook(user, params):
            seen.append((user, params))
            return value
    return hook


@pytest.mark.parametrize("asynchronous", [False, True])
@pytest.mark.parametrize(("value", "allowed"), [
    (True, True), (1, True), ("yes", True), ({"role": "admin"}, True),
    (False, False), (None, False), (0, False), ("", False), ([], False),
])
def test_allows_reads_the_hooks_answer_as_a_truth_value(value, allowed, asynchronous):
    seen: list = []
    answer = asyncio.run(allows(answering(value, asynchronous, seen), "ann", {"topic": "chat.lobby"}))
    assert answer is allowed
    assert seen == [("ann", {"topic": "chat.lobby"})]


def test_no_permission_allows_everyone():
    assert asyncio.run(allows(None, None, {})) is True
    assert asyncio.run(require(None, None, {}, "anything")) is None


@pytest.mark.parametrize("asynchronous", [False, True])
def test_require_raises_forbidden_naming_what_was_refused(asynchronous):
    seen: list = []
    with pytest.raises(ActionError) as refused:
        asyncio.run(require(answering(0, asynchronous, seen), "bob", {"room": "ops"}, "subscribe to 'rooms.ops'"))
    assert (refused.value.code, refused.value.message, refused.value.details) == (
        "FORBIDDEN", "not allowed to subscribe to 'rooms.ops'", None)
    assert seen == [("bob", {"room": "ops"})]
    assert asyncio.run(require(answering("ok", asynchronous, seen), "ann", {}, "x")) is None
