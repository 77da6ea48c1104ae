"""Presence in one process, over real sockets: members per key, joins and leaves, ``__presence__``, the bounds.

The gateway is `tests.support.presence_app`'s on the memory broker, served
on a real port; the clients are real websocket clients.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from marshmallow import Schema, fields
from prometheus_client import generate_latest

from drizzle_gateway import Gateway, Limits, Topic
from drizzle_gateway.client import Client, Event, RemoteError
from drizzle_gateway.testing import TestClient
from drizzle_gateway.wire.presence import JOIN, LEAVE, STALE
from tests.support.presence_app import Member, Note, make_presence_gateway, make_topics
from tests.support.scrape import labels, samples, series


@pytest.fixture
def gateway(gateway_options):
    """`make_presence_gateway`, with the test's ``gateway_options`` as more `Limits` fields."""
    return make_presence_gateway(**gateway_options)


async def presence_events(client: Client, count: int, timeout: float = 5.0) -> list[Event]:
    """The next ``count`` presence events (other events are skipped)."""
    found: list[Event] = []
    async with asyncio.timeout(timeout):
        while len(found) < count:
            event = await client.next_event(timeout)
            if event.presence is not None:
                found.append(event)
    return found


async def no_presence_event(client: Client, wait: float = 0.3) -> None:
    """Fail if a presence event arrives within ``wait`` seconds (a ``__ping__`` round trip first flushes the way)."""
    await client.ping()
    with pytest.raises(TimeoutError):
        await presence_events(client, 1, timeout=wait)


def presence_metrics(gateway: Gateway) -> tuple[float, float]:
    """``drizzle_presence_members`` and ``drizzle_presence_changes_dropped_total`` as a scrape reads them."""
    assert gateway.hub.metrics is not None
    found = samples(generate_latest(gateway.hub.metrics.registry).decode())
    return (series(found, "drizzle_presence_members")[labels()],
            series(found, "drizzle_presence_changes_dropped_total")[labels()])


def described(events: list[Event]) -> list[tuple[str | None, str | None, object]]:
    return [(event.presence, event.key, event.data) for event in events]


@pytest.mark.gen_test(timeout=20)
async def test_joins_and_leaves_carry_the_member_cut_to_each_watchers_fields(connect):
    whole, names = await connect(), await connect()
    await whole.subscribe("room.a", join_leave=True)
    await names.subscribe("room.a", join_leave=True, member_fields=["name"])
    ada = await connect()
    await ada.subscribe("room.a", presence={"id": "ada", "name": "Ada", "status": "here"})
    assert described(await presence_events(whole, 1)) == [
        (JOIN, "ada", {"id": "ada", "name": "Ada", "status": "here"})]
    assert described(await presence_events(names, 1)) == [(JOIN, "ada", {"name": "Ada"})]
    await ada.unsubscribe("room.a")
    assert described(await presence_events(whole, 1)) == [
        (LEAVE, "ada", {"id": "ada", "name": "Ada", "status": "here"})]
    assert described(await presence_events(names, 1)) == [(LEAVE, "ada", {"name": "Ada"})]


@pytest.mark.gen_test(timeout=20)
async def test_a_second_tab_is_no_second_join_and_closing_one_of_two_is_no_leave(connect, gateway):
    watcher = await connect()
    await watcher.subscribe("room.tabs", join_leave=True)
    first, second = await connect(), await connect()
    await first.subscribe("room.tabs", presence={"id": "bob", "name": "first tab"})
    await second.subscribe("room.tabs", presence={"id": "bob", "name": "second tab"})
    assert described(await presence_events(watcher, 1)) == [(JOIN, "bob", {"id": "bob", "name": "first tab"})]
    await no_presence_event(watcher)
    (member,) = await watcher.presence("room.tabs")
    assert (member.key, member.connections, member.data) == ("bob", 2, {"id": "bob", "name": "first tab"})
    assert presence_metrics(gateway) == (1, 0)  # one member, however many tabs
    await first.close()
    await no_presence_event(watcher)
    assert [m.connections for m in await watcher.presence("room.tabs")] == [1]
    await second.close()
    assert described(await presence_events(watcher, 1)) == [(LEAVE, "bob", {"id": "bob", "name": "first tab"})]
    assert await watcher.presence("room.tabs") == []
    assert presence_metrics(gateway) == (0, 0)


@pytest.mark.gen_test(timeout=20)
async def test_a_watcher_hears_its_own_join_and_not_what_it_did_not_ask_for(connect):
    quiet, watcher = await connect(), await connect()
    await quiet.subscribe("room.own", presence={"id": "quiet"})
    await watcher.subscribe("room.own", presence={"id": "me"}, join_leave=True)
    assert described(await presence_events(watcher, 1)) == [(JOIN, "me", {"id": "me"})]
    other = await connect()
    await other.subscribe("room.own", presence={"id": "other"})
    assert [event.key for event in await presence_events(watcher, 1)] == ["other"]
    await no_presence_event(quiet)  # it did not ask for joins and leaves


@pytest.mark.gen_test(timeout=20)
async def test_presence_lists_each_member_once_with_its_connections_and_selected_fields(connect):
    clients = [await connect() for _ in range(3)]
    await clients[0].subscribe("room.list", presence={"id": "ada", "name": "Ada"})
    await clients[1].subscribe("room.list", presence={"id": "ada", "name": "Ada again"})
    await clients[2].subscribe("room.list", presence={"id": "bob", "name": "Bob", "status": "away"})
    listed = await clients[0].presence("room.list", fields=["name"])
    assert [(m.key, m.connections, m.data) for m in listed] == [
        ("ada", 2, {"name": "Ada"}), ("bob", 1, {"name": "Bob"})]
    assert [m.key for m in await clients[2].presence("room.{name}", name="list")] == ["ada", "bob"]
    assert await clients[0].presence("room.empty") == []
    with pytest.raises(RemoteError) as unknown:
        await clients[0].presence("room.list", fields=["email"])
    assert (unknown.value.code, unknown.value.details) == ("INVALID_FIELDS", {"fields": ["email"]})


@pytest.mark.gen_test(timeout=20)
async def test_presence_refuses_what_does_not_fit_with_invalid_data(connect):
    client = await connect()
    cases = [
        ({"presence": {"id": "ada", "status": "asleep"}}, {"presence": {"status": ["Must be one of: here, away."]}}),
        ({"presence": {"name": "no id"}}, {"presence": {"id": ["Missing data for required field."]}}),
        ({"presence": ["ada"]}, {"presence": ["Not a valid mapping type."]}),
        ({"presence": {"id": "ada", "extra": 1}}, {"presence": {"extra": ["Unknown field."]}}),
    ]
    for extra, details in cases:
        with pytest.raises(RemoteError) as refused:
            await client.request({"action": "__subscribe__", "data": {"topic": "room.bad", **extra}})
        assert (refused.value.code, refused.value.details) == ("INVALID_DATA", details), extra
    with pytest.raises(RemoteError) as no_presence:
        await client.subscribe("plain", presence={"id": "ada"}, join_leave=True)
    assert no_presence.value.code == "INVALID_DATA"
    assert no_presence.value.details == {"presence": ["this topic has no presence"],
                                         "join_leave": ["this topic has no presence"]}
    with pytest.raises(RemoteError) as listed:
        await client.presence("plain")
    assert listed.value.code == "INVALID_DATA"
    with pytest.raises(RemoteError) as selected:
        await client.subscribe("room.bad", join_leave=True, member_fields=["nope"])
    assert selected.value.code == "INVALID_FIELDS"
    assert await client.presence("room.bad") == []  # nothing refused became a member
    assert await client.ping() == "pong"  # and the connection goes on


@pytest.mark.gen_test(timeout=20)
@pytest.mark.gateway_options(max_members=3)
async def test_a_channel_holds_at_most_max_members(connect):
    clients = [await connect() for _ in range(5)]
    for index, client in enumerate(clients[:3]):
        await client.subscribe("room.full", presence={"id": f"m{index}"})
    with pytest.raises(RemoteError) as refused:
        await clients[3].subscribe("room.full", presence={"id": "m3"})
    assert (refused.value.code, refused.value.details) == ("LIMIT_EXCEEDED", {"limit": "max_members", "max": 3})
    await clients[4].subscribe("room.full", presence={"id": "m0"})  # a member already: one more connection
    listed = await clients[0].presence("room.full")
    assert [(m.key, m.connections) for m in listed] == [("m0", 2), ("m1", 1), ("m2", 1)]
    await clients[3].publish("room.full", {"text": "refused, so not subscribed"})
    with pytest.raises(TimeoutError):
        await clients[3].next_event(0.2)
    await clients[1].close()
    await clients[3].subscribe("room.full", presence={"id": "m3"})  # room again
    assert [m.key for m in await clients[0].presence("room.full")] == ["m0", "m2", "m3"]


@pytest.mark.gen_test(timeout=20)
@pytest.mark.gateway_options(max_member_bytes=100)
async def test_an_entry_longer_than_max_member_bytes_is_refused(connect):
    client = await connect()
    with pytest.raises(RemoteError) as refused:
        await client.subscribe("room.big", presence={"id": "x" * 60, "name": "y" * 60})
    assert refused.value.code == "INVALID_DATA"
    assert refused.value.details["limit"] == "max_member_bytes"
    await client.subscribe("room.big", presence={"id": "x" * 60})
    assert [m.key for m in await client.presence("room.big")] == ["x" * 60]


@pytest.mark.gen_test(timeout=30)
@pytest.mark.gateway_options(presence_rate=20.0, presence_burst=10)
async def test_joins_over_the_rate_are_not_sent_and_a_stale_notice_follows(connect, gateway):
    watcher = await connect()
    await watcher.subscribe("room.churn", join_leave=True)
    members = [await connect() for _ in range(30)]
    began = time.monotonic()
    await asyncio.gather(*(m.subscribe("room.churn", presence={"id": f"m{i}"}) for i, m in enumerate(members)))
    events = await presence_events(watcher, 11)
    kinds = [event.presence for event in events]
    assert kinds[:10] == [JOIN] * 10  # the burst
    assert kinds[10] == STALE  # then, once a token is back, one notice: list the members again
    assert time.monotonic() - began >= 1 / 20 - 0.01
    assert gateway.hub.presence.dropped == 20
    assert len(await watcher.presence("room.churn")) == 30  # nothing was lost but the events
    assert presence_metrics(gateway) == (30, 20)  # the watcher is no member


@pytest.mark.gen_test(timeout=20)
async def test_subscribing_again_with_another_key_moves_the_member(connect):
    watcher, client = await connect(), await connect()
    await watcher.subscribe("room.move", join_leave=True)
    await client.subscribe("room.move", presence={"id": "old"})
    await client.subscribe("room.move", presence={"id": "new"})
    assert [(e.presence, e.key) for e in await presence_events(watcher, 3)] == [
        (JOIN, "old"), (JOIN, "new"), (LEAVE, "old")]
    await client.subscribe("room.move")  # no entry: no member any more
    assert [(e.presence, e.key) for e in await presence_events(watcher, 1)] == [(LEAVE, "new")]


class Profile(Schema):
    id = fields.Str(required=True)
    name = fields.Str()


def authenticated(**options) -> Gateway:
    """Users named by their token; ``room.{name}`` entries come from ``presence_of``, with the client's name."""
    def profile(user, params):
        return {"id": user, "name": f"{user} in {params['name']}"}

    topics = [Topic("room.{name}", Note, presence=Profile, presence_of=profile, client_presence=True,
                    can_subscribe=lambda user, params: params["name"] != "secret")]
    return Gateway(topics=topics, authenticate=lambda credentials: credentials.token, **options)


@pytest.mark.gen_test(timeout=20)
async def test_the_servers_entry_wins_over_the_clients_and_presence_asks_the_subscribe_permission():
    gateway = authenticated()
    async with TestClient(gateway, token="ada") as ada, TestClient(gateway, token="bob") as bob:
        await ada.subscribe("room.lobby", presence={"id": "mallory", "name": "whatever"})
        await bob.subscribe("room.lobby")
        listed = await bob.presence("room.lobby")
        assert [(m.key, m.data) for m in listed] == [("ada", {"id": "ada", "name": "ada in lobby"}),
                                                      ("bob", {"id": "bob", "name": "bob in lobby"})]
        with pytest.raises(RemoteError) as forbidden:
            await ada.presence("room.secret")
        assert forbidden.value.code == "FORBIDDEN"


@pytest.mark.gen_test(timeout=10)
async def test_a_presence_hook_without_a_key_is_an_internal_error_and_logged(server_errors):
    topic = Topic("room.{name}", Note, presence=Member, presence_of=lambda user, params: {"name": "no id"})
    async with TestClient(Gateway(topics=[topic])) as client:
        with pytest.raises(RemoteError) as failed:
            await client.subscribe("room.x")
        assert failed.value.code == "INTERNAL_ERROR"
        assert "presence_of" not in failed.value.args[0]  # the cause is logged, not sent
    assert any("presence_of returned" in str(record.exc_info[1]) for record in server_errors() if record.exc_info)


def test_topics_with_presence_need_a_broker_that_keeps_it():
    class Bare:
        async def publish(self, channel, data): ...
        async def subscribe(self, channel, listener): ...
        async def unsubscribe(self, channel): ...
        async def close(self): ...

    with pytest.raises(ValueError, match="has presence, which Bare cannot keep"):
        Gateway(topics=make_topics(), broker=Bare())


def test_limits_check_the_presence_fields():
    for bad in ({"max_members": 0}, {"presence_rate": -1.0}, {"presence_burst": 1.5}, {"max_member_bytes": True}):
        with pytest.raises(ValueError):
            Limits(**bad)
