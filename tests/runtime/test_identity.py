"""Identities that expire, and their refresh: the value itself, then the rule over real sockets.

The hook of these tests reads a token ``name`` (never expires) or
``name@deadline`` (unix seconds), so each test picks its own deadlines.
Waiting past an expiry is never a sleep: an unrefreshed twin connection
with the same deadline is closed with 4003, and that close is the moment
the original expiry has passed.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from drizzle_gateway import Identity
from drizzle_gateway.client import ConnectionClosed, RemoteError
from drizzle_gateway.runtime.auth import Credentials
from drizzle_gateway.runtime.identity import identity_of
from drizzle_gateway.runtime.limits import Limits
from drizzle_gateway.wire.dialect import CloseCode

# -- the value ---------------------------------------------------------------------------


def test_expires_at_is_unix_seconds_whatever_it_was_given_as():
    moment = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert Identity("ann").deadline is None
    assert Identity("ann", expires_at=1_900_000_000).deadline == 1_900_000_000.0
    assert Identity("ann", expires_at=1.5).deadline == 1.5
    assert Identity("ann", expires_at=float("inf")).deadline is None  # never, as None
    assert Identity("ann", expires_at=moment).deadline == moment.timestamp()
    assert Identity("ann", expires_at=moment.replace(tzinfo=None)).deadline == moment.timestamp()  # naive: UTC
    east = moment.astimezone(timezone(timedelta(hours=5)))
    assert Identity("ann", expires_at=east).deadline == moment.timestamp()


def test_remaining_counts_from_now():
    assert Identity("ann", expires_at=110.0).remaining(now=100.0) == 10.0
    assert Identity("ann").remaining(now=100.0) is None
    assert 59 < Identity("ann", expires_at=time.time() + 60).remaining() <= 60


@pytest.mark.parametrize("bad", ["tomorrow", True, float("nan"), [1]])
def test_an_expiry_that_is_no_time_is_refused(bad):
    with pytest.raises(TypeError) as refused:
        Identity("ann", expires_at=bad)
    assert "expires_at must be unix seconds, a datetime or None" in str(refused.value)


def test_an_identity_needs_a_user():
    with pytest.raises(ValueError, match="needs a user"):
        Identity(None)


def test_the_same_user_is_the_key_or_else_the_user_itself():
    assert Identity({"id": 1}).same_user(Identity({"id": 1}, expires_at=5))
    assert not Identity({"id": 1}).same_user(Identity({"id": 2}))
    assert Identity(object(), key=7).same_user(Identity(object(), key=7))  # distinct objects, one key
    assert not Identity("ann", key=7).same_user(Identity("ann", key=8))

    class Touchy:
        def __eq__(self, other):
            raise RuntimeError("cannot compare")

        __hash__ = object.__hash__

    assert not Identity(Touchy()).same_user(Identity(Touchy()))


def test_a_plain_user_is_an_identity_that_never_expires():
    assert identity_of({"name": "ann"}) == Identity({"name": "ann"})
    given = Identity("ann", expires_at=5)
    assert identity_of(given) is given


# -- over real sockets ---------------------------------------------------------------------


def authenticate(credentials: Credentials):
    """``name`` or ``name@deadline``, from ``__auth__`` or a bearer header; "nobody" is refused."""
    token = credentials.token or credentials.headers.get("Authorization", "").removeprefix("Bearer ")
    name, _, deadline = token.partition("@")
    if not name or name == "nobody":
        return None
    user = {"name": name}
    return Identity(user, expires_at=float(deadline)) if deadline else user


@pytest.fixture
def gateway_options(gateway_options):
    return {"authenticate": authenticate, "auth_throttle": False, **gateway_options}


def bearer(token: str) -> dict:
    return {"headers": {"Authorization": f"Bearer {token}"}}


async def auth(client, token: str):
    return await client.request({"action": "__auth__", "data": {"token": token}})


async def closed(client, timeout: float = 10.0) -> tuple[int | None, str | None, float]:
    """How ``client``'s connection ended (code, reason) and when (unix seconds)."""
    with pytest.raises(ConnectionClosed) as ended:
        await client.next_event(timeout=timeout)
    return ended.value.code, ended.value.reason, time.time()


async def whoami(client) -> str:
    return (await client.call("lab", "whoami"))["user"]["name"]


@pytest.mark.gen_test
async def test_an_expired_identity_closes_the_connection_with_4003_on_time(connect):
    deadline = time.time() + 0.5
    by_header = await connect(**bearer(f"ann@{deadline}"))
    by_auth = await connect()
    await auth(by_auth, f"bob@{deadline}")
    for client in (by_header, by_auth):
        code, reason, when = await closed(client)
        assert (code, reason) == (CloseCode.TOKEN_EXPIRED, "token expired") == (4003, "token expired")
        assert deadline - 0.05 <= when <= deadline + 1.0
        assert client.close_code not in CloseCode.RECONNECT


@pytest.mark.gen_test
async def test_the_auth_reply_says_when_the_identity_expires(connect):
    client = await connect()
    deadline = time.time() + 30
    reply = await auth(client, f"ann@{deadline}")
    assert reply["authenticated"] is True and reply["expires_at"] == deadline
    assert 28 < reply["expires_in"] <= 30
    assert await auth(client, "ann") == {"authenticated": True}  # never expires: nothing to say
    assert await auth(client, "ann@inf") == {"authenticated": True}  # nor does an infinite expiry


@pytest.mark.gen_test
async def test_a_refresh_before_the_expiry_keeps_the_connection_open_past_it(connect):
    deadline = time.time() + 0.6
    refreshed, twin = await connect(), await connect()
    await auth(refreshed, f"ann@{deadline}")
    await auth(twin, f"ann@{deadline}")
    reply = await auth(refreshed, f"ann@{time.time() + 30}")
    assert 28 < reply["expires_in"] <= 30
    code, _, when = await closed(twin)  # the original expiry has passed
    assert code == 4003 and when >= deadline - 0.05
    assert await whoami(refreshed) == "ann"


@pytest.mark.gen_test
async def test_a_refresh_to_an_identity_that_never_expires_stops_the_timer(connect):
    deadline = time.time() + 0.5
    refreshed, twin = await connect(**bearer(f"ann@{deadline}")), await connect(**bearer(f"ann@{deadline}"))
    assert await auth(refreshed, "ann") == {"authenticated": True}
    assert (await closed(twin))[0] == 4003
    assert await whoami(refreshed) == "ann"


@pytest.mark.gen_test
async def test_a_refresh_naming_another_user_is_refused_and_the_old_identity_expires_as_before(connect):
    deadline = time.time() + 0.8
    client = await connect()
    await auth(client, f"ann@{deadline}")
    with pytest.raises(RemoteError) as refused:
        await auth(client, f"bob@{time.time() + 30}")
    assert refused.value.code == "FORBIDDEN"
    assert refused.value.message == ("the token names another user; a refresh must be for the user this "
                                     "connection authenticated as")
    with pytest.raises(RemoteError) as wrong:
        await auth(client, "nobody")
    assert (wrong.value.code, wrong.value.message) == ("UNAUTHENTICATED", "the token was refused")
    assert await whoami(client) == "ann"  # neither refusal changed who this is
    code, _, when = await closed(client)
    assert code == 4003 and deadline - 0.05 <= when <= deadline + 1.0


@pytest.mark.gen_test
async def test_an_identity_that_has_ended_already_is_refused(connect):
    client = await connect()
    with pytest.raises(RemoteError) as refused:
        await auth(client, f"ann@{time.time() - 1}")
    assert (refused.value.code, refused.value.message) == ("UNAUTHENTICATED", "the token has expired")
    with pytest.raises(RemoteError) as after:
        await client.call("lab", "whoami")
    assert after.value.message == "the token has expired; send __auth__ with a valid token"


# -- a refused token, told apart from none ------------------------------------------------


@pytest.mark.gen_test
@pytest.mark.gateway_options(limits=Limits(auth_timeout=0.5))
async def test_a_refused_handshake_token_is_told_apart_from_none_and_the_socket_waits_for_auth_timeout(connect):
    refused = await connect(**bearer("nobody"))
    anonymous = await connect()
    answers = []
    for client in (refused, anonymous):
        with pytest.raises(RemoteError) as told:
            await client.call("lab", "whoami")
        answers.append(str(told.value))
    assert answers == [
        "UNAUTHENTICATED: the handshake's credentials were refused; send __auth__ with a valid token",
        "UNAUTHENTICATED: authenticate first (send __auth__ with a token)",
    ]
    with pytest.raises(RemoteError) as wrong:
        await auth(anonymous, "nobody")
    assert str(wrong.value) == "UNAUTHENTICATED: the token was refused"
    with pytest.raises(RemoteError) as after:
        await anonymous.call("lab", "whoami")
    assert str(after.value) == "UNAUTHENTICATED: the token was refused; send __auth__ with a valid token"
    assert await refused.ping() == "pong"  # still open: it may send __auth__ until auth_timeout
    for client in (refused, anonymous):
        code, reason, _ = await closed(client)
        assert (code, reason) == (4001, "not authenticated in time")


@pytest.mark.gen_test
async def test_an_expiry_closes_an_in_process_session_too(test_client):
    client = await test_client()
    await auth(client, f"ann@{time.time() + 0.3}")
    code, reason, _ = await closed(client)
    assert (code, reason) == (4003, "token expired")
    assert client.session is not None and client.session._expiry is None


@pytest.mark.gen_test
async def test_a_session_that_ended_leaves_no_expiry_timer(test_client):
    client = await test_client()
    await auth(client, f"ann@{time.time() + 30}")
    session = client.session
    assert session is not None and session._expiry is not None
    await client.close()
    assert session._expiry is None


# -- refreshes that overlap -------------------------------------------------------------------


class TestOverlappingRefreshes:
    """A hook that holds the tokens ending in ``/held`` until the test lets them through."""

    class Gate:
        def __init__(self) -> None:
            self.entered = asyncio.Event()
            self.release = asyncio.Event()

        async def authenticate(self, credentials: Credentials):
            token = credentials.token or ""
            if token.endswith("/held"):
                self.entered.set()
                await self.release.wait()
            name, _, deadline = token.removesuffix("/held").partition("@")
            return Identity({"name": name}, expires_at=float(deadline)) if name else None

    @pytest.fixture
    def gate(self) -> TestOverlappingRefreshes.Gate:
        return self.Gate()

    @pytest.fixture
    def gateway_options(self, gateway_options, gate):
        return {**gateway_options, "authenticate": gate.authenticate}

    @pytest.mark.gen_test
    async def test_two_refreshes_at_once_apply_in_the_order_they_were_sent(self, connect, gateway, gate):
        client = await connect()
        soon, later = time.time() + 2, time.time() + 60
        first = asyncio.ensure_future(auth(client, f"ann@{soon}/held"))  # sent first, its hook slow
        await asyncio.wait_for(gate.entered.wait(), 5)
        second = asyncio.ensure_future(auth(client, f"ann@{later}"))  # sent second, its hook quick
        assert await client.ping() == "pong"  # answered in order: a second refresh that overtook is answered by now
        overtook = second.done()
        gate.release.set()
        replies = [await first, await second]
        assert [reply["expires_at"] for reply in replies] == [soon, later]
        (session,) = gateway.hub.sessions
        assert session.identity.deadline == later, "the token sent last is the one the connection holds"
        assert not overtook, "the second refresh waited for the first"
