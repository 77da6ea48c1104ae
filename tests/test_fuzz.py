"""Hypothesis throws generated frames at a real gateway while a well-behaved client keeps working.

Each example opens a fresh raw socket and sends 1-8 generated frames: random
bytes, invalid UTF-8, JSON of every type, envelopes with wrong types, huge
strings and numbers, deep nesting, unknown keys, and valid envelopes with
garbage ``data``. Every frame must be answered by one reply or error frame
with a stable code, or end in a documented close; no frame may carry
traceback text; the log must hold no ERROR; and a second client, connected
for the whole run, must get every reply and event right after each example.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drizzle_gateway.runtime.limits import Limits
from drizzle_gateway.wire.errors import ErrorCode

EXAMPLES = 1500
CODES = {value for name, value in vars(ErrorCode).items() if name.isupper()} | {
    "QUOTA_EXCEEDED", "NOT_FOUND"}  # and the codes the fuzzed resources raise themselves (todos: a quota, a missing id)
CLOSE_CODES = {1009}  # frame too big (documented in the close-code table)
DROPPED = {None, 1006}  # invalid UTF-8 in a text frame: Tornado fails the connection
FUZZ_LIMITS = Limits(max_frame_bytes=64 * 1024, rate=None, action_timeout=2.0)

# Resource actions the fuzz may call with garbage: everything except the test actions that
# fail, sleep or return unencodable values on purpose.
SAFE_ACTIONS = [("todos", "create"), ("todos", "get"), ("todos", "update"), ("todos", "list"),
                ("todos", "delete"), ("lab", "plain"), ("lab", "legacy"), ("lab", "refuse"),
                ("lab", "whoami"), ("nope", "create"), ("todos", "nope")]
BUILTINS = ["__ping__", "__schema__", "__subscribe__", "__unsubscribe__", "__publish__", "__auth__", "__history__",
            "__nope__"]

json_scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
                | st.text(max_size=40))
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=30,
)
request_ids = st.integers() | st.text(max_size=10)
wrong_types = json_values


def nested_text(depth: int, opener: str = "[", closer: str = "]") -> str:
    return opener * depth + closer * depth


huge_strings = st.integers(min_value=1_000, max_value=120_000).map(lambda n: json.dumps({"request_id": 1,
                                                                                        "action": "x" * n}))
huge_numbers = st.integers(min_value=300, max_value=6_000).map(
    lambda n: '{"request_id": 1, "action": "__ping__", "data": {"n": 1' + "0" * n + "}}")
huge_floats = st.sampled_from(["1e400", "-1e400", "1e-400", "NaN", "Infinity", "-Infinity", "1" * 400 + ".5"]).map(
    lambda n: '{"request_id": 2, "resource": "lab", "action": "plain", "data": {"x": ' + n + "}}")
deep = st.integers(min_value=20, max_value=3_000).map(
    lambda n: '{"request_id": 3, "resource": "lab", "action": "plain", "data": {"x": ' + nested_text(n) + "}}")
deep_objects = st.integers(min_value=20, max_value=200).map(
    lambda n: '{"request_id": 4, "action": "__ping__", "data": ' + '{"a":' * n + "1" + "}" * n + "}")

envelopes = st.fixed_dictionaries(
    {},
    optional={"request_id": request_ids | wrong_types, "action": st.sampled_from(BUILTINS) | wrong_types,
              "resource": st.sampled_from(["todos", "lab", "nope"]) | wrong_types,
              "data": json_values, "fields": st.lists(st.text(max_size=8), max_size=3) | wrong_types,
              "extra": json_values},
)


@st.composite
def garbage_calls(draw) -> dict:
    resource, name = draw(st.sampled_from(SAFE_ACTIONS))
    frame = {"request_id": draw(request_ids), "resource": resource, "action": name, "data": draw(
        st.dictionaries(st.sampled_from(["id", "title", "done", "tags", "owner", "x"]) | st.text(max_size=6),
                        json_values, max_size=6))}
    if draw(st.booleans()):
        frame["fields"] = draw(st.lists(st.sampled_from(["id", "title", "owner.name", "nope", ""]), max_size=3))
    if draw(st.booleans()):
        frame[draw(st.text(max_size=8))] = draw(json_values)
    return frame


@st.composite
def builtin_calls(draw) -> dict:
    topic = st.sampled_from(["chat.fuzz", "chat.", "alerts", "hidden", "nope", "chat.{room}"]) | st.text(max_size=12)
    data = draw(st.fixed_dictionaries({}, optional={"topic": topic | json_values, "payload": json_values,
                                                    "fields": json_values, "token": json_values}))
    return {"request_id": draw(request_ids), "action": draw(st.sampled_from(BUILTINS)), "data": data}


text_frames = st.one_of(
    json_values.map(json.dumps),
    envelopes.map(json.dumps),
    garbage_calls().map(json.dumps),
    builtin_calls().map(json.dumps),
    st.text(max_size=200),
    huge_strings, huge_numbers, huge_floats, deep, deep_objects,
)
frames = st.one_of(
    text_frames.map(lambda text: ("text", text)),
    st.binary(max_size=300).map(lambda data: ("binary", data)),
    st.binary(min_size=1, max_size=50).map(lambda data: ("raw-text", b"\xff" + data)),  # invalid UTF-8
)


@pytest.fixture
def gateway_options(gateway_options):
    """The gateway is built with `FUZZ_LIMITS`."""
    return {"limits": FUZZ_LIMITS, **gateway_options}


class Bystander:
    """The well-behaved client connected for the whole run, and its expectations."""

    def __init__(self, client, listener) -> None:
        self.client = client
        self.listener = listener
        self.round = 0

    async def check(self) -> None:
        self.round += 1
        todo = await self.client.call("todos", "create", {"title": f"t{self.round}"}, fields=["id", "title"])
        assert todo["title"] == f"t{self.round}"
        assert await self.client.call("todos", "get", {"id": todo["id"]}, fields=["title"]) == {"title": todo["title"]}
        message = {"author": {"name": "bystander"}, "text": f"m{self.round}", "seq": self.round}
        await self.client.publish("chat.lobby", message)
        event = await self.listener.next_event(timeout=5)
        assert (event.topic, event.data) == ("chat.lobby", message)


def assert_clean(text: str) -> dict:
    assert "Traceback" not in text and 'File "' not in text, text[:500]
    frame = json.loads(text)
    assert isinstance(frame, dict)
    return frame


@pytest.mark.timeout(180)
def test_generated_frames_never_hurt_the_gateway(io_loop, raw, connect, server_errors):
    state: dict = {"frames": 0, "examples": 0}

    async def setup() -> Bystander:
        client = await connect()
        listener = await connect()
        await listener.subscribe("chat.lobby")
        return Bystander(client, listener)

    bystander = io_loop.run_sync(setup, timeout=30)

    async def exercise(batch) -> None:
        sock = await raw()
        for kind, payload in batch:
            if kind == "binary":
                await sock.send(payload, binary=True)
            else:
                await sock.ws.write_message(payload)
            state["frames"] += 1
            while True:
                text = await sock.ws.read_message()
                if text is None:
                    break
                frame = assert_clean(text)
                if "topic" in frame and "request_id" not in frame:
                    continue  # an event on a channel the fuzz subscribed to
                break
            if text is None:
                code = sock.ws.close_code
                if kind == "raw-text":
                    assert code in DROPPED
                else:
                    assert code in CLOSE_CODES, (code, sock.ws.close_reason, payload[:200])
                break
            assert "request_id" in frame
            assert ("data" in frame) != ("code" in frame), frame
            if "code" in frame:
                assert frame["code"] in CODES, frame
                assert isinstance(frame["error"], str) and frame["error"]
        sock.ws.close()
        await bystander.check()

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                     HealthCheck.data_too_large])
    @given(batch=st.lists(frames, min_size=1, max_size=8))
    def run(batch) -> None:
        state["examples"] += 1
        io_loop.run_sync(lambda: exercise(batch), timeout=30)

    run()
    assert server_errors() == []
    print(f"fuzz: {state['frames']} frames in {state['examples']} examples")  # noqa: T201 - the quoted count
    assert state["frames"] >= 4000
