"""The Tornado Drizzle shim: the seed's sample and its wire dialect, over real sockets."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import tornado.web
from tornado import gen
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from drizzle_gateway.client import Client, RemoteError
from drizzle_gateway.runtime.fanout import View
from drizzle_gateway.transport.connection import Connection
from drizzle_gateway.wire.dialect import Dialect
from tornado_drizzle.conf import init_drizzle
from tornado_drizzle.drizzle_web_socket import DrizzleHandler, DrizzleWebSocket
from tornado_drizzle.protocol import LegacyProtocol
from tornado_drizzle.subscriber import publish

ROOT = Path(__file__).resolve().parent.parent
SEED_PORT = 8888


class LegacyHandler(DrizzleHandler):
    """Handlers written the way Tornado Drizzle documented them."""

    test_prop = None

    @gen.coroutine
    def get(self, message):
        return {"testkey": "testval"}

    @gen.coroutine
    def echo(self, message):
        return message

    def listing(self, message):
        return [1, "two", {"three": 3}]

    async def native(self, message):
        return {"kind": "async def"}

    @classmethod
    def kind(cls, message):
        return cls.__name__

    def _private(self, message):
        return "never reachable"

    @gen.coroutine
    def test_exception(self, message):
        return 1 // 0

    def unencodable(self, message):
        return {"value": object()}

    @gen.coroutine
    def test_subscribe(self, message):
        yield self.subscribe("__test__")
        return {}

    @gen.coroutine
    def test_publish(self, message):
        yield publish("__test__", {"key": "val"})

    @gen.coroutine
    def subscribe_to(self, message):
        yield self.subscribe(message["data"]["key"])
        return {"subscribed": message["data"]["key"]}

    @gen.coroutine
    def subscribe_then_publish(self, message):
        key = message["data"]["key"]
        yield self.subscribe(key)
        yield publish(key, {"heard": key})
        return {"subscribed": key}

    @gen.coroutine
    def publish_unencodable(self, message):
        yield publish("__all__", {"value": object()})

    @gen.coroutine
    def publish_to(self, message):
        yield publish(message["data"]["key"], message["data"]["payload"])


@pytest.fixture
def app(io_loop, request) -> tornado.web.Application:
    """The seed's set-up: a bare route, then init_drizzle (``allowed_origins`` by indirect param)."""
    application = tornado.web.Application([(r"/ws", DrizzleWebSocket)])
    init_drizzle(application, {"test": LegacyHandler}, io_loop, allowed_origins=getattr(request, "param", ()))
    return application


@pytest.fixture
def legacy(raw):
    """Open raw sockets the way a Tornado Drizzle client does: no subprotocol."""
    return lambda: raw(subprotocols=())


async def settle(sock, request_id="probe"):
    """Assert nothing is queued for ``sock``: its next frame is the reply to a fresh request."""
    assert await sock.ask({"resource": "test", "action": "get", "request_id": request_id}) == {
        "data": {"testkey": "testval"},
        "request_id": request_id,
    }


# -- the sample, verbatim, as a process of its own ---------------------------------------------


def own_network_namespace() -> list[str]:
    """The command prefix that runs a process in a network namespace of its own, or [] if it cannot be made."""
    prefix = ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$0" "$@"']
    try:
        made = subprocess.run([*prefix, "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        made = False
    return prefix if made else []


def test_seed_sample_runs_verbatim_and_answers():
    """The sample listens on the fixed port 8888; in its own namespace nothing else can hold that port."""
    namespace = own_network_namespace()
    if not namespace:
        try:
            socket.create_connection(("127.0.0.1", SEED_PORT), timeout=1).close()
        except OSError:
            pass
        else:
            pytest.fail(f"port {SEED_PORT} is in use and no network namespace can be made (needs root)")
    result = subprocess.run([*namespace, sys.executable, "tests/support/seed_sample_probe.py"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome == {"reply": {"data": {"key": "val"}, "request_id": "r1"}, "alive": True}


# -- requests and replies -----------------------------------------------------------------------


@pytest.mark.gen_test
async def test_action_gets_the_whole_request_and_the_reply_echoes_the_id(legacy):
    sock = await legacy()
    request = {"resource": "test", "action": "echo", "request_id": "e1", "data": {"a": [1, 2]}}
    assert await sock.ask(request) == {"data": request, "request_id": "e1"}
    for request_id in (7, 7.5):
        assert await sock.ask({"resource": "test", "action": "get", "request_id": request_id}) == {
            "data": {"testkey": "testval"},
            "request_id": request_id,
        }


@pytest.mark.gen_test
async def test_reply_frame_is_exactly_data_and_request_id(legacy):
    sock = await legacy()
    await sock.send({"resource": "test", "action": "get", "request_id": "r1"})
    assert await sock.ws.read_message() == '{"data":{"testkey":"testval"},"request_id":"r1"}'


@pytest.mark.gen_test
@pytest.mark.parametrize(
    ("action", "data"),
    [("listing", [1, "two", {"three": 3}]), ("native", {"kind": "async def"}), ("kind", "LegacyHandler"),
     ("test_publish", None)],
)
async def test_actions_may_return_lists_and_be_any_kind_of_method(legacy, action, data):
    sock = await legacy()
    assert await sock.ask({"resource": "test", "action": action, "request_id": 3}) == {"data": data, "request_id": 3}


@pytest.mark.gen_test
async def test_a_client_asking_for_drizzle_v1_still_gets_the_legacy_dialect(raw):
    sock = await raw(subprotocols=("drizzle.v1",))
    assert sock.ws.selected_subprotocol is None
    assert await sock.ask({"resource": "test", "action": "get", "request_id": 1}) == {
        "data": {"testkey": "testval"},
        "request_id": 1,
    }


# -- errors ---------------------------------------------------------------------------------------


@pytest.mark.gen_test
@pytest.mark.parametrize("frame", ["normal string, not json encodable", '{"request_id": 1', "NaN", "{'a': 1}"])
async def test_not_json_is_a_validation_error_without_request_id(legacy, frame):
    sock = await legacy()
    assert await sock.ask(frame) == {"error": "Expected Json encodable string", "code": "VALIDATION_ERROR",
                                     "request_id": None}
    await settle(sock)


@pytest.mark.gen_test
@pytest.mark.parametrize(("key", "request_id"), [("resource", 11), ("action", "a-11"), ("request_id", None)])
async def test_missing_envelope_key_is_named(legacy, key, request_id):
    sock = await legacy()
    frame = {"resource": "test", "action": "get", "request_id": request_id}
    del frame[key]
    reply = await sock.ask(frame)
    assert reply == {"error": f"'{key}' is a required property", "code": "VALIDATION_ERROR", "request_id": request_id}
    await settle(sock)


@pytest.mark.gen_test
@pytest.mark.parametrize("key", ["resource", "action"])
async def test_non_string_resource_or_action_is_a_validation_error(legacy, key):
    sock = await legacy()
    frame = {"resource": "test", "action": "get", "request_id": 12, key: 100}
    reply = await sock.ask(frame)
    assert reply == {"error": f"'{key}': 100 is not of type 'string'", "code": "VALIDATION_ERROR", "request_id": 12}
    assert "100 is not of type 'string'" in reply["error"] and key in reply["error"]
    await settle(sock)


@pytest.mark.gen_test
@pytest.mark.parametrize(
    ("frame", "error", "request_id"),
    [
        ({"resource": "test", "action": "get", "request_id": 13, "data": [1]}, "'data': [1] is not of type 'object'",
         13),
        ({"resource": "test", "action": "get", "request_id": True}, "'request_id': True is not valid under any of "
         "the given schemas", None),
        ([1, 2], "[1, 2] is not of type 'object'", None),
    ],
)
async def test_other_malformed_envelopes_are_validation_errors(legacy, frame, error, request_id):
    sock = await legacy()
    assert await sock.ask(frame) == {"error": error, "code": "VALIDATION_ERROR", "request_id": request_id}
    await settle(sock)


@pytest.mark.gen_test
async def test_unknown_resource(legacy):
    sock = await legacy()
    reply = await sock.ask({"resource": "invalid_resource", "action": "get", "request_id": 14})
    assert reply == {"error": "resource 'invalid_resource' not found in drizzle_handler_routes",
                     "code": "RESOURCE_NOT_FOUND", "request_id": 14}


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "action",
    ["invalid_action", "test_prop", "__init__", "_private", "__class__", "subscribe", "unsubscribe", "publish",
     "get_action", "name", "actions", "user"],
)
async def test_unknown_action_or_non_action_name(legacy, action):
    sock = await legacy()
    reply = await sock.ask({"resource": "test", "action": action, "request_id": 15})
    assert reply == {"error": f"action definition '{action}' not found in handler LegacyHandler",
                     "code": "ACTION_NOT_FOUND", "request_id": 15}


@pytest.mark.gen_test
async def test_exception_in_action_is_unknown_error_and_connection_stays(legacy, server_errors):
    sock = await legacy()
    reply = await sock.ask({"resource": "test", "action": "test_exception", "request_id": 16})
    assert reply == {"error": "Unknown error", "code": "INTERNAL_ERROR", "request_id": 16}
    assert any("ZeroDivisionError" in (r.exc_text or "") for r in server_errors())
    await settle(sock)


@pytest.mark.gen_test
async def test_unencodable_return_is_an_error_reply_not_a_dropped_connection(legacy):
    sock = await legacy()
    reply = await sock.ask({"resource": "test", "action": "unencodable", "request_id": 17})
    assert reply == {"error": "Unknown error", "code": "INTERNAL_ERROR", "request_id": 17}
    await settle(sock)


# -- subscriptions and publishing -----------------------------------------------------------------


@pytest.mark.gen_test
async def test_publish_reaches_both_subscribers_of_test_and_no_one_else(legacy):
    first, second, publisher, bystander = [await legacy() for _ in range(4)]
    for request_id, sock in ((1, first), (2, second)):
        assert await sock.ask({"resource": "test", "action": "test_subscribe", "request_id": request_id}) == {
            "data": {},
            "request_id": request_id,
        }
    assert await publisher.ask({"resource": "test", "action": "test_publish", "request_id": 3}) == {
        "data": None,
        "request_id": 3,
    }
    assert await first.recv() == {"key": "val"}
    assert await second.recv() == {"key": "val"}
    # The publish was delivered before its reply was sent, so anything meant for these
    # two would now be queued ahead of the reply to a new request.
    await settle(bystander)
    await settle(publisher)


@pytest.mark.gen_test
async def test_every_socket_hears_all_from_the_moment_it_opens(legacy):
    sockets = [await legacy() for _ in range(3)]
    publisher = sockets[0]
    await publisher.send({"resource": "test", "action": "publish_to", "request_id": "p",
                          "data": {"key": "__all__", "payload": [1, {"to": "everyone"}]}})
    frames = [await publisher.recv(), await publisher.recv()]
    assert sorted(frames, key=json.dumps) == sorted([[1, {"to": "everyone"}], {"data": None, "request_id": "p"}],
                                                    key=json.dumps)
    for sock in sockets[1:]:
        assert await sock.recv() == [1, {"to": "everyone"}]


@pytest.mark.gen_test
async def test_subscription_is_in_effect_before_the_action_returns(legacy):
    sock = await legacy()
    await sock.send({"resource": "test", "action": "subscribe_then_publish", "request_id": 20,
                     "data": {"key": "room.1/a b"}})
    assert await sock.recv() == {"heard": "room.1/a b"}
    assert await sock.recv() == {"data": {"subscribed": "room.1/a b"}, "request_id": 20}


@pytest.mark.gen_test
@pytest.mark.parametrize("key", [123, "", None, ["__test__"], {"k": 1}])
async def test_bad_subscribe_key_is_an_error_for_that_client_only(legacy, key):
    listener, offender = await legacy(), await legacy()
    await listener.ask({"resource": "test", "action": "test_subscribe", "request_id": 1})
    reply = await offender.ask({"resource": "test", "action": "subscribe_to", "request_id": 2, "data": {"key": key}})
    assert reply == {"error": f"subscription key must be a non-empty string, not {key!r}", "code": "VALIDATION_ERROR",
                     "request_id": 2}
    await offender.ask({"resource": "test", "action": "test_publish", "request_id": 3})
    assert await listener.recv() == {"key": "val"}
    await settle(offender)


@pytest.mark.gen_test
async def test_unencodable_publish_fails_for_the_publisher_and_reaches_no_one(legacy, server_errors):
    listener, publisher = await legacy(), await legacy()
    reply = await publisher.ask({"resource": "test", "action": "publish_unencodable", "request_id": 4})
    assert reply == {"error": "Unknown error", "code": "INTERNAL_ERROR", "request_id": 4}
    await settle(listener)
    await settle(publisher)


@pytest.mark.gen_test
async def test_the_same_handlers_and_keys_serve_drizzle_v1_clients_too(app, legacy, http_port):
    gateway = app.settings["drizzle_gateway"]
    app.add_handlers(r".*", [(r"/v1", Connection, {"gateway": gateway, "protocol": Dialect()})])
    async with Client(f"ws://127.0.0.1:{http_port}/v1") as modern:
        assert await modern.request({"action": "__ping__"}) == "pong"
        assert await modern.call("test", "get") == {"testkey": "testval"}
        with pytest.raises(RemoteError) as refused:
            await modern.subscribe("__test__")
        assert refused.value.code == "FORBIDDEN"
        assert await modern.call("test", "test_subscribe") == {}
        old = await legacy()
        await old.ask({"resource": "test", "action": "test_subscribe", "request_id": 1})
        assert await modern.call("test", "test_publish") is None
        assert await old.recv() == {"key": "val"}
        event = await asyncio.wait_for(modern.events().__anext__(), 10)
        assert (event.topic, event.data) == ("__test__", {"key": "val"})


# -- origins and setup ----------------------------------------------------------------------------


async def _connect_with_origin(ws_url: str, origin: str):
    return await websocket_connect(HTTPRequest(ws_url, headers={"Origin": origin}))


@pytest.mark.gen_test
async def test_check_origin_follows_the_gateway_policy(ws_url, http_port):
    with pytest.raises(HTTPClientError) as refused:
        await _connect_with_origin(ws_url, "http://evil.example")
    assert refused.value.code == 403
    same_host = await _connect_with_origin(ws_url, f"http://127.0.0.1:{http_port}")
    same_host.close()


@pytest.mark.gen_test
@pytest.mark.parametrize("app", [("http://app.example",)], indirect=True)
async def test_init_drizzle_allowed_origins_are_let_in(app, ws_url):
    ws = await _connect_with_origin(ws_url, "http://app.example")
    await ws.write_message(json.dumps({"resource": "test", "action": "get", "request_id": 1}))
    assert json.loads(await ws.read_message()) == {"data": {"testkey": "testval"}, "request_id": 1}
    ws.close()


@pytest.mark.gen_test
async def test_publish_without_init_drizzle_says_so():
    with pytest.raises(RuntimeError, match="init_drizzle"):
        publish("__test__", {})
    await asyncio.sleep(0)


def test_the_dialect_sends_an_event_of_a_channel_with_history_as_the_bare_object():
    """The fan-out hands every dialect a history channel's offset (and epoch): the seed's frame has no envelope."""
    view = View(LegacyProtocol(), None)
    message = {"text": "hi", "n": 1}
    assert json.loads(view.frame("feed.lobby", message)) == message
    assert json.loads(view.frame("feed.lobby", message, 7)) == message
    assert json.loads(view.frame("feed.lobby", message, 8, "9f2c01ab")) == message
