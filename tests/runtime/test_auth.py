"""Authentication, permissions, the trimmed __schema__ and the auth throttle.

What the request path answers runs in process (`TestClient`, whose ``headers``
reach the ``authenticate`` hook as a handshake's would); the handshake itself
(query, cookies, the Origin check before the hook, HTTP 429) and the auth_timeout
close run over real sockets. Which hosts and origins are allowed is
`HandshakePolicy`'s (tests/transport/test_handshake.py).
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from marshmallow import Schema, fields
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine
from tornado.websocket import websocket_connect

from drizzle_gateway import ActionError, Gateway, Resource, Topic, action
from drizzle_gateway.client import Client, ConnectionClosed, RemoteError
from drizzle_gateway.runtime.auth import AuthThrottle, Credentials, presents_credentials
from drizzle_gateway.runtime.limits import Limits
from drizzle_gateway.testing import TestClient
from tests.support.handshakes import WRONG_TOKEN, handshake_status
from tests.support.resources import Message
from tests.support.serve_app import make_gateway as make_test_gateway

USERS = {"ann-token": {"name": "ann", "role": "admin", "rooms": ["ops", "lobby"]},
         "bob-token": {"name": "bob", "role": "user", "rooms": ["lobby"]}}


def authenticate(credentials: Credentials):
    """Accept a bearer header, a ``token`` query argument, a ``session`` cookie or an __auth__ token."""
    if credentials.token == "expired":
        raise ActionError("TOKEN_EXPIRED", "token expired")
    if credentials.token == "crash":
        raise RuntimeError("the user database is down")
    header = credentials.headers.get("Authorization", "")
    token = (credentials.token or header.removeprefix("Bearer ") or credentials.query.get("token")
             or credentials.cookies.get("session"))
    return USERS.get(token)


async def authenticate_async(credentials: Credentials):
    await asyncio.sleep(0)
    return authenticate(credentials)


class Secret(Schema):
    text = fields.Str(required=True)


class Note(Schema):
    owner = fields.Str(required=True)
    text = fields.Str(required=True)


def is_admin(user, params) -> bool:
    return user is not None and user["role"] == "admin"


async def owns_note(user, params) -> bool:
    await asyncio.sleep(0)
    return params["data"]["owner"] == user["name"]


class Vault(Resource):
    """Actions guarded by permissions."""

    name = "vault"

    @action(Secret, allow=is_admin)
    def store(self, data):
        """Admins only: store a secret."""
        self.gateway.state.setdefault("secrets", []).append(data["text"])
        return {"stored": len(self.gateway.state["secrets"])}

    @action()
    def count(self, data):
        """How many secrets are stored."""
        return {"count": len(self.gateway.state.get("secrets", []))}

    @action(Note, allow=owns_note)
    def write(self, data):
        """Write a note in your own name only."""
        return {"written": data["text"], "by": self.user["name"]}


def may_join(user, params) -> bool:
    return params["room"] in user["rooms"]


async def may_speak(user, params) -> bool:
    return params["room"] in user["rooms"] and user["role"] == "admin"


rooms = Topic("rooms.{room}", Message, client_publish=True, can_subscribe=may_join, can_publish=may_speak)
staff = Topic("staff", Secret, can_subscribe=is_admin)


def vault_gateway(**options) -> Gateway:
    """The test gateway with `authenticate`, the vault and the guarded topics; ``options`` of `Gateway` win."""
    gateway = make_test_gateway(**{"authenticate": authenticate, **options})
    gateway.add_resource(Vault)
    gateway.add_topic(rooms)
    gateway.add_topic(staff)
    return gateway


@pytest.fixture
def hook():
    return authenticate


@pytest.fixture
def gateway(gateway_options, hook):
    """`vault_gateway` authenticating with ``hook`` (a test's ``gateway_options`` win)."""
    return vault_gateway(**{"authenticate": hook, **gateway_options})


def bearer(token: str) -> dict:
    return {"headers": {"Authorization": f"Bearer {token}"}}


# -- authentication --------------------------------------------------------------


@pytest.mark.gen_test
async def test_handshake_header_authenticates_and_actions_see_the_user(test_client):
    client = await test_client(**bearer("ann-token"))
    reply = await client.call("lab", "whoami")
    assert reply["user"]["name"] == "ann"


@pytest.mark.gen_test
async def test_without_credentials_only_auth_ping_and_schema_answer(test_client):
    client = await test_client()
    assert await client.ping() == "pong"
    assert "resources" in await client.schema()
    for frame in ({"resource": "lab", "action": "whoami"}, {"resource": "nope", "action": "x"},
                  {"action": "__subscribe__", "data": {"topic": "chat.lobby"}}):
        with pytest.raises(RemoteError) as refused:
            await client.request(frame)
        assert refused.value.code == "UNAUTHENTICATED"


@pytest.mark.gen_test
@pytest.mark.parametrize("hook", [authenticate, authenticate_async])
async def test_auth_action_with_a_token(test_client, hook):
    client = await test_client()
    with pytest.raises(RemoteError) as refused:
        await client.request({"action": "__auth__", "data": {"token": "wrong"}})
    assert refused.value.code == "UNAUTHENTICATED"
    assert await client.request({"action": "__auth__", "data": {"token": "bob-token"}}) == {"authenticated": True}
    assert (await client.call("lab", "whoami"))["user"]["name"] == "bob"


@pytest.mark.gen_test
async def test_hook_errors_are_refusals_with_the_hooks_message(test_client, server_errors):
    client = await test_client()
    with pytest.raises(RemoteError) as expired:
        await client.request({"action": "__auth__", "data": {"token": "expired"}})
    assert (expired.value.code, expired.value.message) == ("UNAUTHENTICATED", "token expired")
    with pytest.raises(RemoteError) as crashed:
        await client.request({"action": "__auth__", "data": {"token": "crash"}})
    assert crashed.value.code == "UNAUTHENTICATED"
    assert "database" not in crashed.value.message
    assert server_errors() == []


# -- permissions -----------------------------------------------------------------


@pytest.mark.gen_test
async def test_action_permission_refuses_with_forbidden_and_nothing_happens(test_client):
    bob = await test_client(**bearer("bob-token"))
    ann = await test_client(**bearer("ann-token"))
    with pytest.raises(RemoteError) as refused:
        await bob.call("vault", "store", {"text": "launch codes"})
    assert refused.value.code == "FORBIDDEN"
    assert await bob.call("vault", "count") == {"count": 0}
    assert await ann.call("vault", "store", {"text": "launch codes"}) == {"stored": 1}


@pytest.mark.gen_test
async def test_async_permission_sees_the_loaded_data(test_client):
    bob = await test_client(**bearer("bob-token"))
    assert await bob.call("vault", "write", {"owner": "bob", "text": "hi"}) == {"written": "hi", "by": "bob"}
    with pytest.raises(RemoteError) as refused:
        await bob.call("vault", "write", {"owner": "ann", "text": "forged"})
    assert refused.value.code == "FORBIDDEN"


@pytest.mark.gen_test
async def test_topic_permissions(test_client):
    ann = await test_client(**bearer("ann-token"))
    bob = await test_client(**bearer("bob-token"))
    with pytest.raises(RemoteError) as refused:
        await bob.subscribe("rooms.ops")
    assert refused.value.code == "FORBIDDEN"
    await bob.subscribe("rooms.lobby")
    with pytest.raises(RemoteError) as mute:
        await bob.publish("rooms.lobby", {"author": {"name": "bob"}, "text": "forged"})
    assert mute.value.code == "FORBIDDEN"
    await ann.publish("rooms.lobby", {"author": {"name": "ann"}, "text": "hello"})
    event = await bob.next_event(timeout=5)
    assert event.data["text"] == "hello"  # the refused publish never arrived
    with pytest.raises(RemoteError) as staff_only:
        await bob.subscribe("staff")
    assert staff_only.value.code == "FORBIDDEN"
    assert await ann.subscribe("staff") == {"topic": "staff"}


@pytest.mark.gen_test
@pytest.mark.gateway_options(hide_forbidden=True)
async def test_schema_hides_what_the_user_may_not_use(test_client):
    bob = await test_client(**bearer("bob-token"))
    ann = await test_client(**bearer("ann-token"))
    anonymous = await test_client()

    def names(document):
        actions = {f"{r['name']}.{a['name']}" for r in document["resources"] for a in r["actions"]}
        return actions, {t["name"] for t in document["topics"]}, set(document["components"]["schemas"])

    bob_actions, bob_topics, bob_schemas = names(await bob.schema())
    ann_actions, ann_topics, ann_schemas = names(await ann.schema())
    anon_actions, anon_topics, _ = names(await anonymous.schema())
    assert "vault.store" in ann_actions and "vault.store" not in bob_actions
    assert "vault.count" in bob_actions and "todos.create" in bob_actions
    assert "staff" in ann_topics and "staff" not in bob_topics
    assert "Secret" in ann_schemas and "Secret" not in bob_schemas
    assert "vault.write" not in anon_actions and "rooms.{room}" not in anon_topics
    async with TestClient(vault_gateway(hide_forbidden=False), **bearer("bob-token")) as bob_everything:
        assert "vault.store" in names(await bob_everything.schema())[0]


# -- what anonymous connections see --------------------------------------------------


def described(document: dict) -> tuple[set[str], set[str], set[str], set[str]]:
    actions = {f"{r['name']}.{a['name']}" for r in document["resources"] for a in r["actions"]}
    builtins = {b["name"] for b in document["builtins"]}
    return actions, {t["name"] for t in document["topics"]}, builtins, set(document["components"]["schemas"])


@pytest.mark.gen_test
async def test_anonymous_schema_holds_only_the_builtins_until_login(gateway, test_client):
    anonymous = await test_client()
    actions, topics, builtins, components = described(await anonymous.schema())
    assert actions == set() and topics == set()
    assert {"__auth__", "__ping__", "__schema__"} <= builtins
    assert "AuthInput" in components
    assert not {"Secret", "Note", "NewTodo", "Todo"} & components
    await anonymous.request({"action": "__auth__", "data": {"token": "bob-token"}})
    actions, topics, _, components = described(await anonymous.schema())
    assert "vault.store" in actions and "rooms.{room}" in topics and "Secret" in components


@pytest.mark.gen_test
@pytest.mark.gateway_options(public_schema=True)
async def test_public_schema_shows_anonymous_connections_the_contract(test_client):
    actions, topics, _, _ = described(await (await test_client()).schema())
    assert "vault.store" in actions and "staff" in topics


# -- throttling failed authentication ------------------------------------------------


class TestAStrictThrottle:
    """A hook that records the token of each attempt (None: a handshake without one), behind a burst of 3."""

    @pytest.fixture
    def hook_calls(self) -> list[str | None]:
        return []

    @pytest.fixture
    def gateway_options(self, gateway_options, hook_calls):
        def counting(credentials):
            hook_calls.append(credentials.token if credentials.token is not None else credentials.query.get("token"))
            return authenticate(credentials)

        return {"authenticate": counting, "auth_throttle": AuthThrottle(rate=0.01, burst=3), **gateway_options}

    @pytest.mark.gen_test
    async def test_failed_auth_is_throttled_per_address_across_connections(self, test_client, hook_calls):
        first = await test_client()
        for guess in ("guess-1", "guess-2", "guess-3"):
            with pytest.raises(RemoteError) as refused:
                await first.request({"action": "__auth__", "data": {"token": guess}})
            assert refused.value.code == "UNAUTHENTICATED"
        with pytest.raises(RemoteError) as throttled:
            await first.request({"action": "__auth__", "data": {"token": "guess-4"}})
        assert throttled.value.code == "RATE_LIMITED"
        assert 0 < throttled.value.details["retry_after"] <= 100
        second = await test_client()  # reconnecting buys nothing, not even with the right token
        with pytest.raises(RemoteError) as still:
            await second.request({"action": "__auth__", "data": {"token": "bob-token"}})
        assert still.value.code == "RATE_LIMITED"
        assert hook_calls == [None, "guess-1", "guess-2", "guess-3", None]

    @pytest.mark.gen_test
    async def test_successes_cost_no_attempt(self, test_client, hook_calls):
        client = await test_client()
        for _ in range(5):
            answer = await client.request({"action": "__auth__", "data": {"token": "bob-token"}})
            assert answer == {"authenticated": True}
        for guess in ("guess-1", "guess-2", "guess-3"):
            with pytest.raises(RemoteError) as refused:
                await client.request({"action": "__auth__", "data": {"token": guess}})
            assert refused.value.code == "UNAUTHENTICATED"
        with pytest.raises(RemoteError) as throttled:
            await client.request({"action": "__auth__", "data": {"token": "bob-token"}})
        assert throttled.value.code == "RATE_LIMITED"

    @pytest.mark.gen_test
    async def test_handshake_token_guesses_are_throttled_with_429(self, ws_url, hook_calls):
        for n in range(3):
            ws = await websocket_connect(f"{ws_url}?token=guess-{n}")  # refused: open but anonymous
            ws.close()
        with pytest.raises(HTTPClientError) as throttled:
            await websocket_connect(f"{ws_url}?token=bob-token")
        assert throttled.value.code == 429
        assert int(throttled.value.response.headers["Retry-After"]) >= 1
        assert hook_calls == ["guess-0", "guess-1", "guess-2"]


    @pytest.mark.gen_test
    async def test_handshakes_without_credentials_cost_no_attempt(self, connect, hook_calls):
        for _ in range(5):
            await connect()
        late = await connect()
        assert await late.request({"action": "__auth__", "data": {"token": "bob-token"}}) == {"authenticated": True}


class FakeClock:
    """A clock for `AuthThrottle` that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_auth_throttle_refills_per_address():
    clock = FakeClock()
    throttle = AuthThrottle(rate=0.5, burst=2, clock=clock)
    assert throttle.take("10.0.0.1") == 0.0
    assert throttle.retry_after("10.0.0.1") == 0.0
    assert throttle.take("10.0.0.1") == 0.0
    assert throttle.retry_after("10.0.0.1") == 2.0
    assert throttle.take("10.0.0.1") == 2.0  # refused: nothing taken
    assert throttle.retry_after("10.0.0.2") == 0.0
    clock.now += 0.5
    assert throttle.take("10.0.0.1") == 1.5
    clock.now += 1.5
    assert throttle.take("10.0.0.1") == 0.0
    assert throttle.retry_after("10.0.0.1") == 2.0


def test_auth_throttle_forgets_refilled_addresses_first():
    clock = FakeClock()
    throttle = AuthThrottle(rate=1.0, burst=2, max_addresses=2, clock=clock)
    throttle.take("drained")
    throttle.take("drained")  # full again 2 s later
    throttle.take("refilling")  # full again 1 s later
    clock.now += 1.0
    throttle.take("new")  # over the bound: "refilling" is exactly full again and goes, not the older "drained"
    assert list(throttle._buckets) == ["drained", "new"]
    assert throttle._tokens("drained", clock.now) == 1.0


def test_auth_throttle_remembers_up_to_max_addresses():
    clock = FakeClock()
    throttle = AuthThrottle(rate=1.0, burst=1, max_addresses=2, clock=clock)
    throttle.take("refilled")
    clock.now += 5.0
    throttle.take("b")  # at the bound, not over it: nobody is forgotten, not even a full bucket
    assert list(throttle._buckets) == ["refilled", "b"]


@pytest.mark.gen_test
async def test_retry_after_is_the_time_until_the_next_attempt():
    clock = FakeClock()
    async with TestClient(vault_gateway(auth_throttle=AuthThrottle(rate=0.25, burst=2, clock=clock))) as client:
        for guess in ("guess-1", "guess-2"):
            with pytest.raises(RemoteError):
                await client.request({"action": "__auth__", "data": {"token": guess}})
        clock.now += 1.0
        with pytest.raises(RemoteError) as throttled:
            await client.request({"action": "__auth__", "data": {"token": "bob-token"}})
    assert (throttled.value.code, throttled.value.details) == ("RATE_LIMITED", {"retry_after": 3.0})


# == over real sockets: the handshake (query, cookies, Origin, HTTP 429) and the auth_timeout close ==


@pytest.mark.gen_test
async def test_query_and_cookie_credentials(ws_url):
    async with Client(ws_url + "?token=bob-token") as by_query:
        assert (await by_query.call("lab", "whoami"))["user"]["name"] == "bob"
    async with Client(ws_url, headers={"Cookie": "session=ann-token"}) as by_cookie:
        assert (await by_cookie.call("lab", "whoami"))["user"]["name"] == "ann"


@pytest.mark.gen_test
@pytest.mark.gateway_options(limits=Limits(auth_timeout=0.5))
async def test_unauthenticated_socket_is_closed_with_4001_after_the_delay(connect):
    idle = await connect()
    late = await connect()
    signed_in = await connect(**bearer("ann-token"))
    await late.request({"action": "__auth__", "data": {"token": "bob-token"}})
    with pytest.raises(ConnectionClosed) as closed:
        await idle.next_event(timeout=5)
    assert closed.value.code == 4001 and not closed.value.should_reconnect
    assert await late.ping() == "pong"
    assert await signed_in.ping() == "pong"


async def handshake(ws_url: str, origin: str | None):
    headers = {"Authorization": "Bearer ann-token"}
    if origin is not None:
        headers["Origin"] = origin
    ws = await websocket_connect(HTTPRequest(ws_url, headers=headers))
    ws.close()


class TestTheOriginCheck:
    """A hook that records the Origin of each handshake it is asked about."""

    @pytest.fixture
    def calls(self) -> list[str | None]:
        return []

    @pytest.fixture
    def hook(self, calls):
        def counting(credentials):
            calls.append(credentials.headers.get("Origin"))
            return authenticate(credentials)

        return counting

    @pytest.mark.gen_test
    async def test_origin_is_checked_before_the_authenticate_hook(self, ws_url, calls):
        with pytest.raises(HTTPClientError) as refused:
            await handshake(ws_url, "https://evil.example")
        assert refused.value.code == 403
        assert calls == []
        await handshake(ws_url, None)
        assert calls == [None]


# -- the auth throttle under concurrent attempts, over real sockets ---------------------


class TestConcurrentAttempts:
    """A 50 ms async hook that refuses everyone but ann, recording the address of each attempt; a burst of 5.

    Handshakes without credentials (which cost no attempt) are not recorded.
    """

    @pytest.fixture
    def slow_hook(self) -> list[str]:
        """The address of each attempt the hook was asked about."""
        return []

    @pytest.fixture
    def hook(self, slow_hook):
        async def slow(credentials):
            if presents_credentials(credentials):
                slow_hook.append(credentials.request.remote_ip)
            await asyncio.sleep(0.05)
            return authenticate(credentials)

        return slow

    @pytest.fixture
    def throttle(self) -> AuthThrottle:
        return AuthThrottle(rate=0.001, burst=5)

    @pytest.fixture
    def gateway_options(self, gateway_options, throttle):
        return {"auth_throttle": throttle, **gateway_options}

    @pytest.mark.gen_test(timeout=20)
    async def test_concurrent_auth_attempts_beyond_the_burst_never_reach_the_hook(self, connect, slow_hook):
        clients = [await connect() for _ in range(8)]  # no credentials in the handshake: nothing counted yet

        async def guess(client, n: int) -> str:
            try:
                await client.request({"action": "__auth__", "data": {"token": f"guess-{n}"}})
            except RemoteError as refused:
                return refused.code
            return "authenticated"

        answers = await asyncio.gather(*(guess(client, n) for client in clients for n in range(3)))
        assert len(slow_hook) == 5
        assert sorted(answers) == ["RATE_LIMITED"] * 19 + ["UNAUTHENTICATED"] * 5


    @pytest.mark.gen_test(timeout=20)
    async def test_concurrent_bad_handshakes_beyond_the_burst_get_429(self, ws_url, slow_hook):
        statuses = await asyncio.gather(*(handshake_status(ws_url, WRONG_TOKEN) for _ in range(20)))
        assert len(slow_hook) == 5
        assert sorted(statuses) == [101] * 5 + [429] * 15


    @pytest.mark.gen_test(timeout=20)
    async def test_each_client_address_has_its_own_bucket(self, ws_url, slow_hook, throttle):
        assert [await handshake_status(ws_url, WRONG_TOKEN) for _ in range(6)] == [101] * 5 + [429]
        assert await handshake_status(ws_url, WRONG_TOKEN, "127.0.0.2") == 101  # another address: a bucket of its own
        assert slow_hook == ["127.0.0.1"] * 5 + ["127.0.0.2"]
        assert set(throttle._buckets) == {"127.0.0.1", "127.0.0.2"}


# -- exact answers of the guard: messages, details, defaults and boundaries ----------------------------


@pytest.mark.gen_test
async def test_refusals_answer_their_exact_message_and_the_hooks_details(caplog):
    def hook(credentials: Credentials):
        if credentials.token == "expired":
            raise ActionError("TOKEN_EXPIRED", "token expired", {"expired_at": 1700000000})
        if credentials.token == "crash":
            raise RuntimeError("the user database is down")
        return None

    caplog.set_level(logging.INFO, logger="drizzle_gateway")
    answers = []
    async with TestClient(vault_gateway(authenticate=hook)) as client:
        for token in ("expired", "crash", "wrong"):
            with pytest.raises(RemoteError) as refused:
                await client.request({"action": "__auth__", "data": {"token": token}})
            answers.append((refused.value.code, refused.value.message, refused.value.details))
    assert answers == [("UNAUTHENTICATED", "token expired", {"expired_at": 1700000000}),
                       ("UNAUTHENTICATED", "the token was refused", None),
                       ("UNAUTHENTICATED", "the token was refused", None)]
    logged = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "drizzle_gateway"]
    assert logged == [(logging.INFO, "authentication refused: the hook raised RuntimeError")]


def handshake_request(uri: str = "/ws", **headers: str) -> HTTPServerRequest:
    """A websocket handshake's request as the server parses it (with a Host, as HTTP/1.1 requires)."""
    return HTTPServerRequest(start_line=RequestStartLine("GET", uri, "HTTP/1.1"),
                             headers=HTTPHeaders({"Host": "127.0.0.1", **headers}))


@pytest.mark.parametrize(("uri", "headers", "token", "presents"), [
    ("/ws", {}, None, False),
    ("/ws", {"Origin": "http://a", "User-Agent": "b"}, None, False),
    ("/ws", {}, "", True),  # a token, even empty, is something to check
    ("/ws?t=x", {}, None, True),
    ("/ws", {"Authorization": "Bearer x"}, None, True),
    ("/ws", {"Cookie": "session=x"}, None, True),
])
def test_which_attempts_present_credentials(uri, headers, token, presents):
    assert presents_credentials(Credentials(handshake_request(uri, **headers), token)) is presents


def test_credentials_read_the_last_query_value_and_the_cookies():
    credentials = Credentials(handshake_request("/ws?token=first&token=last&x=%FF", Cookie="session=s; theme=dark"))
    assert credentials.query == {"token": "last", "x": "\ufffd"}
    assert credentials.cookies == {"session": "s", "theme": "dark"}


def test_auth_throttle_refuses_a_rate_or_burst_that_would_never_allow_an_attempt():
    for rate, burst in ((0, 10), (-0.5, 10), (0.2, 0), (0.2, -1)):
        with pytest.raises(ValueError) as refused:
            AuthThrottle(rate=rate, burst=burst)
        assert str(refused.value) == "rate must be positive and burst at least 1"
    smallest = AuthThrottle(rate=1e-9, burst=1, clock=FakeClock())
    assert [smallest.take("a"), smallest.take("a") > 0] == [0.0, True]


def test_auth_throttle_defaults_allow_ten_failures_then_one_every_five_seconds():
    clock = FakeClock()
    throttle = AuthThrottle(clock=clock)
    assert [throttle.take("a") for _ in range(11)] == [0.0] * 10 + [5.0]
    assert throttle.max_addresses == 100_000
    clock.now += 5.0
    assert [throttle.take("a"), throttle.take("a")] == [0.0, 5.0]


def test_retry_after_counts_a_partly_refilled_token():
    clock = FakeClock()
    throttle = AuthThrottle(rate=0.5, burst=2, clock=clock)
    throttle.take("a")
    throttle.take("a")
    clock.now += 0.5  # a quarter of a token back
    assert throttle.retry_after("a") == 1.5
    clock.now += 2.5  # one and a half tokens: one attempt now
    assert throttle.retry_after("a") == 0.0
    assert [throttle.take("a"), throttle.take("a")] == [0.0, 1.0]


def test_a_success_gives_back_exactly_the_attempt_it_took():
    clock = FakeClock()
    throttle = AuthThrottle(rate=1e-6, burst=3, clock=clock)
    throttle.take("a")
    throttle.take("a")  # two failures: one attempt left
    assert throttle.take("a") == 0.0  # the third attempt succeeds...
    throttle.give_back("a")  # ...and costs nothing: one attempt left, not more
    assert throttle.take("a") == 0.0
    assert throttle.take("a") > 0
    throttle.give_back("full")  # an address that never failed stays at its burst
    assert [throttle.take("full") for _ in range(4)][:3] == [0.0] * 3


def test_auth_throttle_forgets_the_least_recently_used_when_none_is_full():
    clock = FakeClock()
    throttle = AuthThrottle(rate=1e-6, burst=2, max_addresses=2, clock=clock)
    throttle.take("a")
    throttle.take("b")
    throttle.take("a")  # "a" used last: "b" is now the least recently used
    throttle.take("c")
    assert list(throttle._buckets) == ["a", "c"]
    assert throttle.take("a") > 0  # "a" kept its failures
    assert throttle.take("b") == 0.0  # "b" was forgotten: a full bucket again


@pytest.mark.gen_test
async def test_rate_limited_auth_answers_the_exact_message_and_retry_after_in_milliseconds():
    clock = FakeClock()
    async with TestClient(vault_gateway(auth_throttle=AuthThrottle(rate=0.3, burst=1, clock=clock))) as client:
        with pytest.raises(RemoteError):
            await client.request({"action": "__auth__", "data": {"token": "guess"}})
        with pytest.raises(RemoteError) as throttled:
            await client.request({"action": "__auth__", "data": {"token": "bob-token"}})
    assert (throttled.value.code, throttled.value.message, throttled.value.details) == (
        "RATE_LIMITED", "too many failed authentication attempts from this address", {"retry_after": 3.333})


@pytest.mark.gen_test
async def test_a_resource_named_request_needs_a_user_even_for_an_open_action_name(test_client):
    client = await test_client()
    for name in ("__ping__", "__auth__", "__schema__"):
        with pytest.raises(RemoteError) as refused:
            await client.request({"resource": "lab", "action": name})
        assert refused.value.code == "UNAUTHENTICATED", name
