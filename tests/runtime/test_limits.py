"""Each limit a socket enforces, over real sockets: frame size, in-flight over TCP, pipelining, heartbeat, off switches.

What the request path replies to a limit (nesting, keys, rate, action
timeout) is in test_dispatch, the subscription cap in test_session.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import os
import struct
import time
import types

import pytest

import drizzle_gateway.runtime.limits as limits_module
from drizzle_gateway.client import Client, ConnectionClosed, RemoteError
from drizzle_gateway.runtime.limits import Limits, TokenBucket
from drizzle_gateway.wire.errors import DETAIL_ENTRIES
from tests.support.gateways import listening
from tests.support.polling import wait_until
from tests.support.raw_frames import CLOSE, CONTINUATION, PING, PONG, TEXT, frame, play, server_frames
from tests.support.request_frames import ERROR_FRAME_BYTES, call, nested
from tests.support.resources import Napper
from tests.support.serve_app import make_gateway as make_test_gateway
from tests.support.stalled_socket import StalledSocket, pipelined


@pytest.fixture
def limits(request):
    """Default limits, or the test's own through indirect parametrization."""
    return getattr(request, "param", Limits())


@pytest.fixture
def gateway_options(gateway_options, limits):
    """The gateway is built with ``limits`` (a test's ``gateway_options`` mark wins)."""
    return {"limits": limits, **gateway_options}


@pytest.fixture
def gateway(gateway):
    gateway.add_resource(Napper)
    return gateway


@pytest.mark.gen_test
@pytest.mark.parametrize("limits", [Limits(max_frame_bytes=4096)], indirect=True)
async def test_oversized_frame_closes_with_1009_and_others_carry_on(limits, raw, connect):
    bystander = await connect()
    sock = await raw()
    reply = await sock.ask(call(1, data={"text": "x" * 3000}))
    assert reply["data"]["data"]["text"] == "x" * 3000
    await sock.send(call(2, data={"text": "x" * 5000}))
    assert await sock.ws.read_message() is None
    assert sock.ws.close_code == 1009
    assert await bystander.ping() == "pong"


@pytest.mark.gen_test
@pytest.mark.parametrize("limits", [Limits(max_in_flight=2)], indirect=True)
async def test_requests_beyond_max_in_flight_wait_and_are_answered(limits, raw, connect):
    sock = await raw()
    for request_id in (1, 2, 3):
        await sock.send(call(request_id, "napper", "nap", {"seconds": 0.3}))
    await sock.send(call(4, "napper", "stats"))
    replies = [await sock.recv() for _ in range(4)]
    assert [reply.get("code") for reply in replies] == [None] * 4
    # 3 and 4 were not read until a nap finished: stats ran after two naps, and the third finished last.
    assert {reply["request_id"] for reply in replies[:2]} == {1, 2}
    stats = next(reply for reply in replies if reply["request_id"] == 4)
    assert stats["data"] == {"finished": 2, "cancelled": 0}
    assert replies[-1]["request_id"] in (3, 4)
    other = await connect()
    assert await other.ping() == "pong"  # the wait is per connection


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("frame", [call(0, "lab", "plain", {"n": 1}), call(0, None, "__ping__")])
async def test_a_hundred_pipelined_requests_are_all_answered(http_server, http_port, frame):
    replies = await pipelined(http_port, [{**frame, "request_id": request_id} for request_id in range(100)])
    assert [reply.get("code") for reply in replies] == [None] * 100
    assert sorted(reply["request_id"] for reply in replies) == list(range(100))


@pytest.mark.gen_test(timeout=30)
async def test_a_hundred_pipelined_publishes_all_reach_subscribers_in_order(http_server, http_port, connect):
    listener = await connect()
    await listener.subscribe("chat.pipe")
    frames = [call(seq, None, "__publish__", {"topic": "chat.pipe", "payload": {
        "author": {"name": "me"}, "text": "hi", "seq": seq}}) for seq in range(100)]
    replies = await pipelined(http_port, frames)
    assert [reply.get("code") for reply in replies] == [None] * 100
    assert [(await listener.next_event()).data["seq"] for _ in range(100)] == list(range(100))


# -- heartbeat -------------------------------------------------------------------------


async def silent_peer(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A websocket peer that completes the handshake and then never answers anything."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101")
    return reader, writer


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One unmasked server frame: (opcode, payload)."""
    first, second = await reader.readexactly(2)
    length = second & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", await reader.readexactly(2))
    elif length == 127:
        (length,) = struct.unpack("!Q", await reader.readexactly(8))
    return first & 0x0F, await reader.readexactly(length)


@pytest.mark.gen_test(timeout=20)
@pytest.mark.parametrize("limits", [Limits(ping_interval=0.5, ping_timeout=0.5)], indirect=True)
async def test_heartbeat_disconnects_a_dead_peer_and_keeps_a_live_one(limits, gateway, connect, http_port):
    live = await connect()
    reader, writer = await silent_peer(http_port)
    opcodes = []
    while True:
        opcode, payload = await asyncio.wait_for(read_frame(reader), 10)
        opcodes.append(opcode)
        if opcode == 0x8:
            break
    assert opcodes[0] == 0x9  # the server pinged
    code, reason = struct.unpack("!H", payload[:2])[0], payload[2:].decode()
    assert (code, reason) == (1000, "ping timed out")
    writer.close()
    await asyncio.sleep(1.0)  # more pings went to the live client meanwhile
    assert await live.ping() == "pong"  # a peer that answers pings stays
    assert live.close_code is None


def test_text_precheck_never_lets_a_frame_past_the_walk():
    """may_exceed_shape may only say False for frames the walk would accept."""
    limits = Limits(max_depth=3, max_keys=2)
    cases = [('{"a": [1]}', True), ('{"a": [[1]]}', True), ('{"a": [[[1]]]}', False), ('{"a": 1, "b": 2}', True),
             ('{"a": 1, "b": 2, "c": 3}', False), ('{"a": "{[:"}', True)]
    for text, within in cases:
        value = json.loads(text)
        assert (limits.shape_error(value) is None) == within, text
        if not within:
            assert limits.may_exceed_shape(text), text
    assert not Limits().may_exceed_shape('{"request_id": 1, "action": "__ping__"}')


# -- every limit's off switch, and values refused at construction ---------------------------------


@pytest.mark.parametrize("field, value", [
    ("max_frame_bytes", 0), ("max_frame_bytes", 1.5), ("max_frame_bytes", "1mb"), ("max_depth", -1),
    ("max_keys", True), ("max_in_flight", 0), ("rate", 0), ("rate", float("nan")), ("burst", 0),
    ("max_subscriptions", -5), ("action_timeout", 0), ("auth_timeout", -1.0), ("ping_interval", -1),
    ("ping_timeout", float("inf")), ("shutdown_timeout", "10"), ("send_queue_bytes", 0.5), ("send_timeout", 0),
    ("publish_wait", -0.5),
])
def test_limits_refuse_values_that_mean_nothing_with_a_clear_error(field, value):
    with pytest.raises(ValueError) as refused:
        Limits(**{field: value})
    assert str(refused.value).startswith(f"Limits.{field} must be ") and "or None (off)" in str(refused.value)


def test_every_limit_accepts_none_and_ping_interval_accepts_zero():
    off = Limits(**{name: None for name in Limits.__dataclass_fields__})
    assert all(getattr(off, name) is None for name in Limits.__dataclass_fields__)
    assert Limits(ping_interval=0).ping_interval == 0


OFF = Limits(**{name: None for name in Limits.__dataclass_fields__})


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("limits", [OFF], indirect=True)
async def test_with_every_limit_off_what_the_defaults_refuse_is_served(limits, gateway, raw, connect, http_port):
    sock = await raw()
    big = await sock.ask(call(1, data={"text": "x" * (2 * 1024 * 1024)}))  # max_frame_bytes: 1 MiB by default
    assert len(big["data"]["data"]["text"]) == 2 * 1024 * 1024
    deep = await sock.ask(call(2, data=nested(100)))  # max_depth: 32
    assert "data" in deep
    wide = await sock.ask(call(3, data={f"k{i}": i for i in range(1500)}))  # max_keys: 1000
    assert len(wide["data"]["data"]) == 1500
    # rate and burst: 200 frames at once by default; max_in_flight: 32 naps at a time by default.
    naps = await pipelined(http_port, [call(i, "napper", "nap", {"seconds": 0.5}) for i in range(300)])
    assert [reply.get("code") for reply in naps] == [None] * 300
    client = await connect()
    assert (await client.call("napper", "stats"))["finished"] == 300
    for room in range(150):  # max_subscriptions: 100
        await client.subscribe(f"chat.r{room}")
    assert gateway.hub.fanout.subscribers("chat.r149") == 1


@pytest.mark.gen_test
@pytest.mark.parametrize("limits", [Limits(rate=5, burst=None)], indirect=True)
async def test_burst_none_allows_one_second_of_the_rate(limits, http_port, http_server):
    replies = await pipelined(http_port, [call(i, None, "__ping__") for i in range(7)])
    assert sorted(reply.get("code", "ok") for reply in replies) == ["RATE_LIMITED"] * 2 + ["ok"] * 5


@pytest.mark.gen_test(timeout=20)
@pytest.mark.parametrize("limits", [Limits(action_timeout=None, shutdown_timeout=None)], indirect=True)
async def test_action_and_shutdown_timeouts_off_let_an_action_finish_during_shutdown(limits, gateway, connect):
    client = await connect()
    napping = asyncio.ensure_future(client.call("napper", "nap", {"seconds": 1.5}))
    await wait_until(lambda: gateway.state.get("finished", 0) or any(s.tasks for s in gateway.hub.sessions), 5)
    await gateway.close()  # waits for the nap, however long
    assert await napping == {"slept": 1.5}


def nobody(credentials) -> None:
    """An ``authenticate`` hook that knows no one."""
    return None


@pytest.mark.gen_test(timeout=20)
@pytest.mark.gateway_options(authenticate=nobody, limits=Limits(auth_timeout=None, ping_interval=None))
async def test_auth_timeout_none_keeps_an_unauthenticated_socket_open(connect):
    idle = await connect()
    async with listening(make_test_gateway(authenticate=nobody, limits=Limits(auth_timeout=0.3))) as shut:
        closing = await Client(shut).connect()
        with pytest.raises(ConnectionClosed):
            await closing.next_event(timeout=5)  # closed after 0.3 s ...
    assert idle.close_code is None  # ... while the one opened with the switch off stays
    with pytest.raises(RemoteError) as refused:
        await idle.call("lab", "plain")
    assert refused.value.code == "UNAUTHENTICATED"


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("limits", [Limits(send_queue_bytes=None), Limits(send_timeout=None,
                                                                          publish_wait=None,
                                                                          send_queue_bytes=64 * 1024)],
                         indirect=True)
async def test_send_queue_off_never_closes_a_reader_that_stopped(limits, gateway, http_server, http_port):
    stalled = await StalledSocket.open(http_port)
    await stalled.send({"request_id": 1, "action": "__subscribe__", "data": {"topic": "chat.stop"}})
    assert (await anext(stalled.frames()))[0] == 0x1
    connection = next(iter(gateway.hub.sessions)).peer
    message = {"author": {"name": "a"}, "text": "t" * 100}

    async def publish_6_mb() -> None:  # more than the kernel's buffers take
        for _ in range(40_000):
            await gateway.publish("chat.stop", message)

    publishing = asyncio.ensure_future(publish_6_mb())
    await wait_until(lambda: publishing.done() or connection.outbox.congested, 10)
    await asyncio.sleep(1.5)  # the reader stays stopped, and nothing closes it
    assert not connection.outbox.closed and connection.session in gateway.hub.sessions
    if limits.send_timeout is None:  # congested with no timeout and no bound on the wait: the publisher waits
        assert connection.outbox.congested and not publishing.done()
        publishing.cancel()
    else:  # no send queue: never congested, every publish went out
        assert publishing.done() and publishing.result() is None
    stalled.sock.close()


@pytest.mark.gen_test(timeout=20)
@pytest.mark.parametrize("limits", [Limits(ping_interval=0.3, ping_timeout=None), Limits(ping_interval=None)],
                         indirect=True)
async def test_ping_interval_none_sends_no_pings(limits, gateway, http_server, http_port):
    reader, writer = await silent_peer(http_port)
    try:
        opcode, _ = await asyncio.wait_for(read_frame(reader), 1.5)
    except TimeoutError:
        opcode = None  # nothing in 5 intervals of the pinging configuration
    finally:
        writer.close()
    assert opcode == (0x9 if limits.ping_interval else None)


# -- frames that are not requests: pings and fragments count against the frame rate ---------


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("limits", [Limits(rate=0.001, burst=20)], indirect=True)
async def test_a_ping_flood_is_answered_up_to_the_burst_then_closed_with_1008(limits, http_server, http_port):
    received = await play(http_port, "/ws", b"".join(frame(PING, b"%d" % n) for n in range(50)), [])
    frames = server_frames(received)
    assert frames[:20] == [(PONG, b"%d" % n) for n in range(20)]
    assert frames[20:] == [(CLOSE, struct.pack("!H", 1008) + b"too many frames")]


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("limits", [Limits(rate=0.001, burst=20)], indirect=True)
async def test_a_flood_of_empty_fragments_is_closed_with_1008(limits, http_server, http_port):
    script = frame(TEXT, b"{", fin=False) + b"".join(frame(CONTINUATION, b"", fin=False) for _ in range(50))
    frames = server_frames(await play(http_port, "/ws", script, []))
    assert frames == [(CLOSE, struct.pack("!H", 1008) + b"too many frames")]


@pytest.mark.gen_test(timeout=30)
async def test_an_unmasked_request_closes_the_gateway_connection_with_1002(http_server, http_port):
    request = json.dumps({"request_id": 1, "action": "__ping__"}).encode()
    frames = server_frames(await play(http_port, "/ws", frame(TEXT, request, masked=False), []))
    assert frames == [(CLOSE, struct.pack("!H", 1002) + b"client frames must be masked")]

# -- what a request's errors may cost: a bounded frame, cheaply made --------------------------------


async def worst_ping(client, stop: asyncio.Event) -> float:
    """Ping ``client`` every 20 ms until ``stop``; the longest round trip, in seconds."""
    worst = 0.0
    while not stop.is_set():
        start = time.perf_counter()
        assert await client.ping() == "pong"
        worst = max(worst, time.perf_counter() - start)
        await asyncio.sleep(0.02)
    return worst


@pytest.mark.adversarial  # a bystander's pings timed to 100 ms: run serially, with the adversarial suite
@pytest.mark.gen_test(timeout=30)
async def test_error_frames_stay_small_and_cheap_while_a_bystander_pings(raw, connect):
    many_names = {"request_id": 2, "resource": "todos", "action": "list", "fields": [f"f{i}" for i in range(100_000)]}
    frames = [json.dumps(frame) for frame in (  # encoded before the watch starts: the server's time is watched
        call(1, "todos", "create", {"title": "t", "tags": [1] * 200_000}), many_names,
        call(3, "todos", "create", {"title": "t", "tags": [1] * (Limits().max_items - 1)}),
        {**many_names, "request_id": 4, "fields": [f"f{i:04}" for i in range(Limits().max_items - 1)]})]
    assert max(len(frame) for frame in frames) < Limits().max_frame_bytes
    bystander = await connect()
    sock = await raw()
    sizes = []
    stop = asyncio.Event()
    watching = asyncio.ensure_future(worst_ping(bystander, stop))
    try:
        replies = []
        for frame in frames:
            await sock.send(frame)
            text = await sock.ws.read_message()
            sizes.append(len(text))
            replies.append(json.loads(text))
    finally:
        stop.set()
        worst = await watching
    many_items, too_many_names, invalid_items, unknown = replies
    assert many_items == {"request_id": 1, "code": "VALIDATION_ERROR",
                          "error": f"frame has more than {Limits().max_items} array items"}
    assert too_many_names == {**many_items, "request_id": 2}
    # Within max_items, every item may fail: the details keep the first DETAIL_ENTRIES values, marked truncated.
    assert (invalid_items["code"], invalid_items["truncated"]) == ("INVALID_DATA", True)
    kept = (DETAIL_ENTRIES - 2) // 2  # the details and "tags" objects, then a list and its message per item
    assert invalid_items["details"] == {"tags": {str(i): ["Not a valid string."] for i in range(kept)}}
    assert (unknown["code"], unknown["truncated"]) == ("INVALID_FIELDS", True)
    assert unknown["error"] == f"unknown fields: f0000, f0001, f0002, f0003, f0004 and {Limits().max_items - 6} more"
    assert unknown["details"] == {"fields": [f"f{i:04}" for i in range(DETAIL_ENTRIES - 2)]}
    print(f"largest error frame {max(sizes)} bytes; bystander's slowest ping {worst * 1000:.1f} ms")
    assert max(sizes) < ERROR_FRAME_BYTES
    assert worst < 0.1
    assert await bystander.ping() == "pong"


# -- the pure guards at their exact boundaries: the shape check, construction, the frame-rate bucket -----------


@pytest.mark.parametrize(("field", "value", "kind"), [
    ("max_depth", -1, "a positive integer"),
    ("send_queue_bytes", 0.5, "a positive integer"),
    ("rate", 0, "a positive number of frames per second"),
    ("action_timeout", 0, "a positive number of seconds"),
    ("ping_timeout", float("inf"), "a positive number of seconds"),
])
def test_a_refused_limit_names_the_kind_of_value_it_takes(field, value, kind):
    with pytest.raises(ValueError) as refused:
        Limits(**{field: value})
    assert str(refused.value) == f"Limits.{field} must be {kind} or None (off), got {value!r}"


def test_limits_check_every_field_after_one_switched_off():
    for field in ("max_frame_bytes", "rate", "handshake_timeout"):  # the first, one between, the last
        others = {name: None for name in Limits.__dataclass_fields__ if name != field}
        with pytest.raises(ValueError) as refused:
            Limits(**others, **{field: -1})
        assert str(refused.value).startswith(f"Limits.{field} must be ")


def test_the_smallest_values_each_limit_accepts():
    ones = Limits(**{name: 1 for name in Limits.__dataclass_fields__})
    assert all(getattr(ones, name) == 1 for name in Limits.__dataclass_fields__)
    halves = Limits(rate=0.5, action_timeout=0.5, ping_interval=0.5, send_timeout=0.001)
    assert (halves.rate, halves.action_timeout, halves.ping_interval, halves.send_timeout) == (0.5, 0.5, 0.5, 0.001)


def test_what_tornado_and_the_outbox_are_told_when_a_bound_is_off():
    off = Limits(max_frame_bytes=None, send_queue_bytes=None)
    assert (off.frame_bytes, off.queue_bytes) == (2**63 - 1, float("inf"))  # Tornado needs an int: the largest
    assert (Limits(max_frame_bytes=10).frame_bytes, Limits(send_queue_bytes=10).queue_bytes) == (10, 10)


@pytest.mark.parametrize(("rate", "burst", "size"), [
    (100.0, 7, 7.0), (100.0, None, 100.0), (2.5, None, 3.0), (0.5, None, 1.0), (None, None, 1.0), (None, 3, 3.0),
])
def test_burst_size_is_the_burst_or_one_second_of_the_rate_and_at_least_one(rate, burst, size):
    assert Limits(rate=rate, burst=burst).burst_size == size


@pytest.mark.parametrize(("limits", "at_bound", "over"), [
    (Limits(max_depth=3, max_keys=None, max_items=None), '{"a": {"b": [1]}}', '{"a": {"b": [[1]]}}'),
    (Limits(max_depth=None, max_keys=2, max_items=None), '{"a": 1, "b": 2}', '{"a": 1, "b": 2, "c": 3}'),
    (Limits(max_depth=None, max_keys=None, max_items=3), '[1, 2, 3]', '[1, 2, 3, 4]'),
    (Limits(max_depth=None, max_keys=None, max_items=3), '[[1, 2]]', '[[1, 2], []]'),  # an empty array is an item
    (Limits(max_depth=None, max_keys=None, max_items=4), '[[1], [2]]', '[[1], [2, 3]]'),
])
def test_shape_limits_hold_at_the_bound_and_refuse_one_over(limits, at_bound, over):
    """At the bound the text alone proves the frame within it (not walked); one over, the walk refuses it."""
    assert not limits.may_exceed_shape(at_bound)
    assert limits.shape_error(json.loads(at_bound)) is None
    assert limits.may_exceed_shape(over)
    assert limits.shape_error(json.loads(over)) is not None


def test_shape_error_names_the_limit_exceeded():
    assert Limits(max_depth=2).shape_error({"a": {"b": {}}}) == "frame is nested deeper than 2 levels"
    assert Limits(max_keys=2).shape_error({"a": {"b": 1, "c": 2}}) == "frame has more than 2 object keys"
    assert Limits(max_items=5).shape_error({"a": [1, 2, 3], "b": [4, 5, 6]}) == "frame has more than 5 array items"
    assert Limits().shape_error(7) is None
    assert Limits(max_depth=1, max_keys=None, max_items=None).shape_error("[[[[") is None  # a string is no nesting


@pytest.mark.parametrize("off", ["max_depth", "max_keys", "max_items"])
def test_the_other_shape_limits_hold_when_one_is_off(off):
    limits = dataclasses.replace(Limits(max_depth=2, max_keys=2, max_items=2), **{off: None})
    hostile = {"depth": {"a": {"b": {}}}, "keys": {"a": 1, "b": 2, "c": 3}, "items": [[1, 2, 3]]}
    for name, value in hostile.items():
        problem = limits.shape_error(value)
        assert (problem is None) == (name == off.removeprefix("max_")), (name, problem)


@pytest.fixture
def bucket_clock(monkeypatch):
    """A clock for `TokenBucket` (which reads ``time.monotonic``) that moves only when told."""
    clock = types.SimpleNamespace(now=500.0)
    monkeypatch.setattr(limits_module, "time", types.SimpleNamespace(monotonic=lambda: clock.now))
    return clock


def test_token_bucket_takes_its_burst_then_answers_the_wait(bucket_clock):
    bucket = TokenBucket(rate=2.0, burst=1)
    assert [bucket.take(), bucket.take()] == [0.0, 0.5]
    bucket_clock.now += 0.25  # half a token back
    assert bucket.take() == 0.25
    bucket_clock.now += 100  # refills to its burst, no further
    assert [bucket.take(), bucket.take()] == [0.0, 0.5]
    small = TokenBucket(rate=1.0, burst=0.5)  # a burst below one still allows one frame
    assert [small.take(), small.take()] == [0.0, 1.0]
    three = TokenBucket(rate=1.0, burst=3)
    assert [three.take() for _ in range(4)] == [0.0, 0.0, 0.0, 1.0]


def test_cpu_share_is_a_share_of_the_loop_above_0_and_at_most_1():
    assert Limits(cpu_share=1).cpu_share == 1 and Limits(cpu_share=0.01).cpu_share == 0.01
    for wrong in (1.5, 2, 0, -0.5, float("nan"), True):
        with pytest.raises(ValueError) as refused:
            Limits(cpu_share=wrong)
        assert str(refused.value) == (
            f"Limits.cpu_share must be a share of the loop, above 0 and at most 1 or None (off), got {wrong!r}")
