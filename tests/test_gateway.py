"""The Gateway: its configuration and hub, its registry of resources and topics, and graceful shutdown.

The configuration is fixed at construction (read-only), and the `Hub` is built
from it once, when serving starts; `use_broker` replaces the broker (and the
hub) only while no connection is open. The registry: names and patterns are
unique, a topic with history needs a broker that keeps it, and a channel, a
pattern or a request is found (or refused with the error a client would see).
Shutdown: `Gateway.close` over real sockets and SIGTERM on ``drizzle-gateway
serve`` (the hub's own sequence, step by step: tests/runtime/test_hub.py).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from marshmallow import Schema, ValidationError, fields

from drizzle_gateway import ActionError, Gateway, Resource, Topic, action
from drizzle_gateway.brokers import MemoryBroker
from drizzle_gateway.client import Client, ConnectionClosed, RemoteError
from drizzle_gateway.runtime.auth import AuthThrottle, Credentials
from drizzle_gateway.runtime.builtin_actions import BuiltinActions
from drizzle_gateway.runtime.limits import Limits
from drizzle_gateway.testing import TestClient
from drizzle_gateway.wire.dialect import Dialect, Request
from tests.support.polling import eventually, wait_until
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parent.parent


class Note(Schema):
    text = fields.Str(required=True)


class Notes(Resource):
    """A resource named ``notes`` with one action."""

    name = "notes"

    @action(Note)
    def add(self, data):
        """Echo the note."""
        return data


class OtherNotes(Resource):
    """Another resource under the same name."""

    name = "notes"


class PlainBroker:
    """A broker that delivers in process and keeps no history (no ``publish_logged``)."""

    def __init__(self) -> None:
        self.inner = MemoryBroker()

    async def publish(self, channel, data) -> None:
        await self.inner.publish(channel, data)

    async def subscribe(self, channel, listener) -> None:
        await self.inner.subscribe(channel, listener)

    async def unsubscribe(self, channel) -> None:
        await self.inner.unsubscribe(channel)

    async def close(self) -> None:
        await self.inner.close()


room = Topic("room.{name}", Note)
pair = Topic("pair.{left}.{right}", Note)
logged = Topic("logged", Note, history=10)


def refused(code: str, call, *args, **kwargs) -> str:
    """Call ``call(*args, **kwargs)``; assert it raises `ActionError` ``code``; its message."""
    with pytest.raises(ActionError) as raised:
        call(*args, **kwargs)
    assert raised.value.code == code
    return raised.value.message


# -- the configuration, fixed at construction, and the hub built from it -------------------------

CONFIGURATION = ("limits", "authenticate", "auth_throttle", "protocol", "broker", "hide_forbidden", "public_schema",
                 "allowed_origins", "allowed_hosts")


def nobody(credentials: Credentials) -> None:
    """An ``authenticate`` hook that knows no one."""
    return None


@pytest.mark.parametrize("name", CONFIGURATION)
def test_the_configuration_cannot_be_assigned(name):
    gateway = Gateway(authenticate=nobody, allowed_origins=["https://app.example"], allowed_hosts=["chat.example"])
    given = getattr(gateway, name)
    for value in (given, None):  # not even to what it is
        with pytest.raises(AttributeError):
            setattr(gateway, name, value)
    assert getattr(gateway, name) is given


class NotingBroker(MemoryBroker):
    """A memory broker that notes the channels it is asked to listen to."""

    def __init__(self) -> None:
        super().__init__()
        self.subscribed: list[str] = []

    async def subscribe(self, channel, listener) -> None:
        self.subscribed.append(channel)
        await super().subscribe(channel, listener)


@pytest.mark.gen_test
async def test_the_hub_is_built_once_from_the_gateways_configuration():
    limits, dialect, broker = Limits(max_in_flight=3), Dialect(), NotingBroker()
    gateway = Gateway([Notes], [room], broker=broker, limits=limits, protocol=dialect, authenticate=nobody)
    hub = gateway.hub
    assert (hub.registry, hub.limits, hub.dialect, hub.broker) == (gateway, limits, dialect, broker)
    assert hub.authenticate is nobody
    assert isinstance(gateway.auth_throttle, AuthThrottle) and hub.auth_throttle is gateway.auth_throttle
    async with TestClient(gateway, headers={"Authorization": "Bearer x"}):
        assert gateway.hub is hub
        await gateway.publish(room, {"text": "hi"}, name="lobby")
    assert gateway.hub is hub
    assert Gateway(auth_throttle=False).hub.auth_throttle is None


@pytest.mark.gen_test
async def test_use_broker_is_refused_while_a_connection_is_open_and_afterwards_builds_a_new_hub(gateway, connect):
    served_by = gateway.broker
    client = await connect()
    assert await client.ping() == "pong"
    hub = gateway.hub
    with pytest.raises(RuntimeError, match="cannot change the broker while connections are open"):
        gateway.use_broker(NotingBroker())
    assert gateway.broker is served_by and gateway.hub is hub and hub.broker is served_by
    await client.close()
    await wait_until(lambda: not hub.sessions, 5)
    replacement = NotingBroker()
    gateway.use_broker(replacement)
    assert gateway.broker is replacement
    assert gateway.hub is not hub and gateway.hub.broker is replacement and gateway.hub is gateway.hub
    async with TestClient(gateway) as newcomer:  # the new hub serves the next connections
        await newcomer.subscribe("chat.lobby")
        assert newcomer.session in gateway.hub.sessions and not hub.sessions
    assert replacement.subscribed == ["chat.lobby"]


# -- the registry --------------------------------------------------------------------


def test_two_resources_under_one_name_are_refused():
    gateway = Gateway([Notes])
    with pytest.raises(ValueError, match="two resources are named 'notes'"):
        gateway.add_resource(OtherNotes)
    with pytest.raises(ValueError, match="two resources are named 'notes'"):
        Gateway([Notes, OtherNotes])
    assert gateway.resources == {"notes": Notes}


def test_a_resource_instance_is_refused_saying_to_pass_the_class():
    said = ("the gateway makes a Notes for each request: pass the class Notes, not an instance "
            "(Gateway(resources=[Notes]))")
    with pytest.raises(TypeError) as made:
        Gateway(resources=[Notes()])
    assert str(made.value) == said
    with pytest.raises(TypeError) as added:
        Gateway().add_resource(object.__new__(Notes))
    assert str(added.value) == said
    with pytest.raises(TypeError, match="a resource is a subclass of drizzle_gateway.Resource, not 'notes'"):
        Gateway(resources=["notes"])


def test_a_pattern_declared_twice_is_refused():
    gateway = Gateway(topics=[room])
    with pytest.raises(ValueError, match=r"topic 'room.\{name\}' is declared twice"):
        gateway.add_topic(Topic("room.{name}", None))
    assert gateway.topics == [room]


def test_a_topic_with_history_needs_a_broker_that_keeps_it():
    with pytest.raises(ValueError, match="topic 'logged' has history, which PlainBroker cannot keep"):
        Gateway(topics=[logged], broker=PlainBroker())
    assert Gateway(topics=[room], broker=PlainBroker()).topics == [room]
    gateway = Gateway(topics=[logged])
    with pytest.raises(ValueError, match="topic 'logged' has history, which PlainBroker cannot keep"):
        gateway.use_broker(PlainBroker())


def test_find_topic_gives_the_topic_and_params_of_a_concrete_channel():
    gateway = Gateway(topics=[room, pair])
    assert gateway.find_topic("room.lobby") == (room, {"name": "lobby"})
    assert gateway.find_topic("pair.a.b") == (pair, {"left": "a", "right": "b"})
    for undeclared in ("room", "room.a.b", "lobby", "room.{name}"):
        assert refused("TOPIC_NOT_FOUND", gateway.find_topic, undeclared) == \
            f"topic {undeclared!r} is not declared"


def test_resolve_takes_a_topic_a_pattern_with_params_or_a_channel():
    gateway = Gateway(topics=[room])
    assert gateway.resolve(room, name="lobby") == (room, "room.lobby")
    assert gateway.resolve("room.{name}", name="lobby") == (room, "room.lobby")
    assert gateway.resolve("room.lobby") == (room, "room.lobby")
    assert gateway.channel(room, name="ops") == gateway.channel("room.{name}", name="ops") == "room.ops"
    assert gateway.channel("room.ops") == "room.ops"
    assert refused("TOPIC_NOT_FOUND", gateway.resolve, pair, left="a", right="b") == \
        "topic 'pair.{left}.{right}' is not declared"
    assert refused("TOPIC_NOT_FOUND", gateway.resolve, "hall.lobby") == "topic 'hall.lobby' is not declared"


@pytest.mark.gen_test
async def test_publishing_to_an_undeclared_topic_is_a_validation_error():
    gateway = Gateway(topics=[room])
    with pytest.raises(ValidationError) as invalid:
        await gateway.publish("hall.lobby", {"text": "hi"})
    assert invalid.value.messages == {"topic": ["topic 'hall.lobby' is not declared"]}


def test_find_action_names_the_resource_and_action_of_a_request():
    gateway = Gateway([Notes])
    resource, found = gateway.find_action(Request(1, "add", "notes"))
    assert (resource, found.name) == (Notes, "add")
    builtin, ping = gateway.find_action(Request(1, "__ping__"))
    assert (builtin, ping.name) == (BuiltinActions, "__ping__")
    assert refused("RESOURCE_NOT_FOUND", gateway.find_action, Request(1, "add", "todos")) == \
        "resource 'todos' not found"
    assert refused("ACTION_NOT_FOUND", gateway.find_action, Request(1, "remove", "notes")) == \
        "action 'remove' not found in resource 'notes'"
    assert refused("ACTION_NOT_FOUND", gateway.find_action, Request(1, "add")) == \
        "action 'add' not found in the built-in actions"


def test_the_schema_document_is_rebuilt_after_the_registry_changes():
    gateway = Gateway(title="registry")
    first = gateway.schema()
    assert first is gateway.schema()  # built once
    assert (first["resources"], first["topics"]) == ([], [])
    gateway.add_resource(Notes)
    assert [entry["name"] for entry in gateway.schema()["resources"]] == ["notes"]
    gateway.add_topic(room)
    assert [entry["name"] for entry in gateway.schema()["topics"]] == ["room.{name}"]


# -- shutdown ------------------------------------------------------------------------


async def in_flight(gateway) -> None:
    """Wait (5 s at most) until some session of ``gateway`` has a request in flight."""
    await wait_until(lambda: any(session.tasks for session in gateway.hub.sessions), 5)


@pytest.mark.gen_test
async def test_close_finishes_in_flight_actions_then_closes_with_1001(gateway, connect):
    busy = await connect()
    idle = await connect()
    pending = asyncio.ensure_future(busy.call("lab", "sleep", {"seconds": 0.5, "tag": "last"}))
    await in_flight(gateway)
    closing = asyncio.ensure_future(gateway.close(timeout=5))
    await wait_until(lambda: gateway.hub.closing, 5)
    with pytest.raises(RemoteError) as refused:
        await idle.ping()
    assert refused.value.code == "SHUTTING_DOWN"
    assert await pending == {"tag": "last"}
    await closing
    for client in (busy, idle):
        with pytest.raises(ConnectionClosed) as closed:
            await client.next_event(timeout=5)
        assert closed.value.code == 1001 and closed.value.should_reconnect
    late = await connect()
    with pytest.raises(ConnectionClosed) as refused_socket:
        await late.next_event(timeout=5)
    assert refused_socket.value.code == 1001


@pytest.mark.gen_test
async def test_close_cancels_actions_still_running_at_the_deadline(gateway, connect):
    client = await connect()
    pending = asyncio.ensure_future(client.call("lab", "sleep", {"seconds": 30, "tag": "never"}))
    await in_flight(gateway)
    await gateway.close(timeout=0.2)
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(pending, 5)
    assert closed.value.code == 1001


async def wait_listening(port: int, server: subprocess.Popen) -> None:
    """Wait (20 s at most) until ``server`` accepts connections on ``port``; it must not exit meanwhile."""

    async def listening() -> bool:
        assert server.poll() is None, "server exited early"
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return False
        writer.close()
        return True

    assert await eventually(listening, 20), "server did not listen"


@pytest.mark.gen_test(timeout=60)
async def test_sigterm_on_serve_drains_and_exits(tmp_path):
    port = free_port()
    command = Path(sys.executable).with_name("drizzle-gateway")
    server = subprocess.Popen(
        [str(command), "serve", "tests.support.serve_app:make_gateway", "--port", str(port)],
        cwd=ROOT, stderr=open(tmp_path / "server.log", "w"), env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        await wait_listening(port, server)
        async with Client(f"ws://127.0.0.1:{port}/ws") as client:
            pending = asyncio.ensure_future(client.call("lab", "sleep", {"seconds": 1.0, "tag": "drained"}))
            await wait_until(lambda: client._pending, 5)  # the call is sent ...
            assert await client.ping() == "pong"  # ... and the server read it before this ping: it is in flight
            server.send_signal(signal.SIGTERM)
            assert await pending == {"tag": "drained"}
            with pytest.raises(ConnectionClosed) as closed:
                await client.next_event(timeout=10)
            assert (closed.value.code, closed.value.reason) == (1012, "server restarting")  # a drain for a deploy
        await wait_until(lambda: server.poll() is not None, 15)
        assert server.returncode == 0
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", port)
    finally:
        if server.poll() is None:
            server.kill()
        server.wait()
    log = (tmp_path / "server.log").read_text()
    assert "Traceback" not in log and " ERROR " not in log
