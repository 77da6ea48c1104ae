"""Differential suite: marshmallow is the oracle, for every built-in field type.

The cases are in tests/support/differential.py.

For each case hypothesis generates values and checks, in process:

- dump: the wire reply equals marshmallow's ``dump`` rendered by rule 1
  (or is INTERNAL_ERROR exactly when marshmallow cannot dump);
- selections: reply == event == marshmallow's own ``only=`` dump;
- publish: a server-side publish is refused exactly when marshmallow reading
  the dump back refuses it, with marshmallow's messages, and reaches nobody;
- load: every ``INVALID_DATA`` ``details`` equals marshmallow's
  ``ValidationError.messages`` (``many=True`` index keys included), under
  each ``unknown`` policy, with and without ``partial``; a success replies
  marshmallow's dump of what it loaded. (A request's ``data`` is an object,
  so ``many=True`` index keys come from ``Nested(many=True)`` and ``List``.)

A representative part (each case's samples) runs over real sockets, and
every ``__schema__`` component is checked against the 2020-12 metaschema.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, FormatChecker
from marshmallow import ValidationError

from drizzle_gateway import Gateway
from drizzle_gateway.wire.codec import decode_request
from drizzle_gateway.wire.dialect import encode
from tests.support import differential
from tests.support.differential import CASES, POLICIES, Case, hooked_objects, json_values, render, same_json
from tests.support.inprocess import InProcess

logger = logging.getLogger("tests.differential")

EXAMPLES = 40
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])
WIDE = settings(SETTINGS, max_examples=EXAMPLES * 10)
"""For the tests that draw their case too."""


RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$", re.I)
FORMATS = FormatChecker()
"""jsonschema's format checks, plus the ones it leaves to optional packages."""
FORMATS.checks("date-time")(lambda value: not isinstance(value, str) or bool(RFC3339.match(value)))
FORMATS.checks("uri")(lambda value: not isinstance(value, str) or bool(re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", value)))


def read_exact(text: str) -> Any:
    """A frame as read by a client that keeps every digit (ints as Decimal too: ``-0`` stays ``-0``)."""
    return json.loads(text, parse_float=Decimal, parse_int=Decimal)


def as_json(value: Any) -> Any:
    """``value`` as it would arrive in a request: encoded, then read as the gateway reads requests."""
    return json.loads(encode(value))


class Harness:
    """One differential gateway, its event loop, a caller and the tally of cases run."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.gateway: Gateway = differential.make_gateway()
        self.tally: Counter = Counter()

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)


@pytest.fixture(scope="module")
def harness():
    h = Harness()
    yield h
    total = sum(h.tally.values())
    logger.info("differential cases run: %d (%s)", total, ", ".join(f"{k}={v}" for k, v in sorted(h.tally.items())))
    h.loop.close()


def schema_of(harness: Harness, case: Case):
    return harness.gateway.state["schemas"][f"case_{case.id}"]


def objects(case: Case) -> st.SearchStrategy:
    return st.fixed_dictionaries({"value": case.values}, optional={"other": st.integers(-2**40, 2**40)})


def marshmallow_dump(schema: Any, obj: Any) -> tuple[bool, Any]:
    try:
        return True, schema.dump(obj)
    except Exception:  # marshmallow itself cannot dump it: the wire must say INTERNAL_ERROR
        return False, None


# -- dump, selections, events -------------------------------------------------------


async def call_exact(gateway: Gateway, resource: str, action: str, data: Any = None,
                     fields: tuple[str, ...] | None = None) -> dict:
    """The reply or error frame of one request, read with `read_exact`."""
    caller = InProcess(gateway, read_exact)
    try:
        return await caller.ask(resource, action, data, fields)
    finally:
        await caller.close()


def check_reply(reply: dict, ok: bool, dumped: Any) -> None:
    if ok:
        assert "data" in reply, reply
        assert same_json(reply["data"], render(dumped)), (reply["data"], dumped)
    else:
        assert reply.get("code") == "INTERNAL_ERROR", reply


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_reply_event_and_selection_equal_marshmallow(harness, case):
    name = f"case_{case.id}"
    schema_class = schema_of(harness, case)
    gateway = harness.gateway

    @SETTINGS
    @given(obj=objects(case))
    def check(obj):
        harness.tally["dump"] += 1
        gateway.state["objects"][name] = obj
        ok, dumped = marshmallow_dump(schema_class(), obj)
        check_reply(harness.run(call_exact(gateway, name, "dump")), ok, dumped)
        listeners = {}

        async def publish() -> ValidationError | None:
            for wire, _ in [(None, None), *case.selections]:
                listeners[wire] = InProcess(gateway, read_exact)
                await listeners[wire].listen(name, list(wire) if wire else None)
            try:
                await gateway.publish(name, obj)
            except ValidationError as exc:
                return exc
            finally:
                for listener in listeners.values():
                    await listener.close()
            return None

        refused = harness.run(publish())
        frames = {wire: listener.events() for wire, listener in listeners.items()}
        if not ok:
            assert isinstance(refused, ValidationError) and frames[None] == []
            return
        verdict = schema_class().validate(dumped)
        if verdict:
            assert refused is not None and refused.messages == verdict, (verdict, refused)
            assert all(f == [] for f in frames.values())
        else:
            assert refused is None, refused.messages
            assert len(frames[None]) == 1 and same_json(frames[None][0], render(dumped))
        for wire, only in case.selections:
            harness.tally["selection"] += 1
            sel_ok, sel_dumped = marshmallow_dump(schema_class(only=only), obj)
            reply = harness.run(call_exact(gateway, name, "dump", fields=wire))
            check_reply(reply, sel_ok, sel_dumped)
            if not verdict:
                assert len(frames[wire]) == 1 and same_json(frames[wire][0], render(sel_dumped)), (wire, frames)

    check()


# -- load -------------------------------------------------------------------------------


def inputs(case: Case, schema_class: Any) -> st.SearchStrategy:
    """Request data: marshmallow dumps of generated values as JSON, junk, and unknown keys."""
    def from_dump(obj: Any) -> Any:
        ok, dumped = marshmallow_dump(schema_class(), obj)
        return as_json(dumped) if ok else {"value": None}

    wellformed = objects(case).map(from_dump)
    junk = st.fixed_dictionaries({}, optional={"value": json_values, "otherKey": json_values | st.integers()})
    extra = st.dictionaries(st.sampled_from(["extra", "other", "value"]), json_values, max_size=2)
    return st.tuples(wellformed | junk, extra).map(lambda pair: {**pair[1], **pair[0]})


def expected_load(variant: Any, data: Any) -> tuple[str, Any]:
    """What the wire answers a request with ``data``: marshmallow's load, dumped back, or its errors.

    A request holding a lone surrogate is refused as not JSON before any schema sees it (docs/protocol.md).
    """
    try:
        decode_request(encode({"data": data}))
    except ValueError:
        return "VALIDATION_ERROR", "frame is not valid JSON"
    try:
        loaded = variant.load(data)
    except ValidationError as exc:
        return "INVALID_DATA", render(exc.messages)
    ok, dumped = marshmallow_dump(variant, loaded)
    return ("data", render(dumped)) if ok else ("INTERNAL_ERROR", None)


def check_load(reply: dict, expected: tuple[str, Any]) -> None:
    kind, value = expected
    if kind == "data":
        assert "data" in reply and same_json(reply["data"], value), (reply, value)
    elif kind == "INVALID_DATA":
        assert reply.get("code") == "INVALID_DATA", (reply, value)
        assert reply["details"] == value
    elif kind == "VALIDATION_ERROR":
        assert (reply.get("code"), reply.get("error")) == (kind, value), reply
    else:
        assert reply.get("code") == "INTERNAL_ERROR", reply


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_load_errors_and_results_equal_marshmallow(harness, case):
    name = f"case_{case.id}"
    schema_class = schema_of(harness, case)

    @SETTINGS
    @given(data=inputs(case, schema_class), policy=st.sampled_from(sorted(POLICIES)), partial=st.booleans())
    @example(data={"value": "\ud800"}, policy="exclude", partial=False)  # a lone surrogate: refused as not JSON
    def check(data, policy, partial):
        harness.tally["load"] += 1
        data = as_json(data)
        check_load(harness.run(call_exact(harness.gateway, name, "roundtrip", data)),
                   expected_load(schema_class(), data))
        variant = schema_class(unknown=POLICIES[policy], partial=partial)
        check_load(harness.run(call_exact(harness.gateway, name, f"load_{policy}_{int(partial)}", data)),
                   expected_load(variant, data))
        check_client_publish(harness, name, schema_class(), data)

    check()


def check_client_publish(harness: Harness, name: str, schema: Any, data: Any) -> None:
    """``__publish__``: the payload is loaded as input; subscribers get marshmallow's dump of what it loaded."""
    harness.tally["client_publish"] += 1
    gateway = harness.gateway
    publisher, listener = InProcess(gateway, read_exact), InProcess(gateway, read_exact)

    async def go() -> dict:
        await listener.listen(name)
        try:
            return await publisher.ask(None, "__publish__", {"topic": name, "payload": data})
        finally:
            await listener.close()
            await publisher.close()

    reply = harness.run(go())
    events = listener.events()
    kind, expected = expected_load(schema, data)
    if kind == "INVALID_DATA":
        assert (reply.get("code"), reply.get("details")) == ("INVALID_DATA", {"payload": expected}), reply
        assert events == []
    elif kind == "VALIDATION_ERROR":
        assert (reply.get("code"), reply.get("error")) == (kind, expected), reply
        assert events == []
    elif kind == "data":
        assert reply.get("data") == {"topic": name}, reply
        assert len(events) == 1 and same_json(events[0], expected), (events, expected)


# -- hooks ---------------------------------------------------------------------------------


@WIDE
@given(obj=hooked_objects, fields=st.sampled_from([("name",), ("Total", "tags"), ("kind",), ("name", "count")]))
def test_hooks_run_alike_on_replies_events_and_marshmallow(harness, obj, fields):
    harness.tally["hooks"] += 1
    gateway = harness.gateway
    schema_class = gateway.state["schemas"]["hooked"]
    gateway.state["objects"]["hooked"] = obj
    ok, dumped = marshmallow_dump(schema_class(), obj)
    check_reply(harness.run(call_exact(gateway, "hooked", "dump")), ok, dumped)
    attr_only = tuple("total" if f == "Total" else f for f in fields)
    selectable = all(f in ("name", "Total", "tags") for f in fields)
    reply = harness.run(call_exact(gateway, "hooked", "dump", fields=fields))
    if not selectable:  # what a post_dump hook adds is not a field: it cannot be selected
        assert reply["code"] == "INVALID_FIELDS"
        return
    sel_ok, sel_dumped = marshmallow_dump(schema_class(only=attr_only), obj)
    check_reply(reply, sel_ok, sel_dumped)
    listener = InProcess(gateway, read_exact)

    async def publish() -> ValidationError | None:
        await listener.listen("hooked", list(fields))
        try:
            await gateway.publish("hooked", obj)
        except ValidationError as exc:
            return exc
        finally:
            await listener.close()
        return None

    refused = harness.run(publish())
    events = listener.events()
    if refused is None:
        assert len(events) == 1 and same_json(events[0], render(sel_dumped))
    else:
        assert events == [] and "name" in refused.messages


@WIDE
@given(data=st.fixed_dictionaries({}, optional={"name": json_values, "Total": json_values, "secret": json_values,
                                                "tags": json_values, "kind": st.text(), "extra": json_values}),
       policy=st.sampled_from(sorted(POLICIES)), partial=st.booleans())
def test_hooked_loads_equal_marshmallow(harness, data, policy, partial):
    harness.tally["hooks_load"] += 1
    schema_class = harness.gateway.state["schemas"]["hooked"]
    data = as_json(data)
    check_load(harness.run(call_exact(harness.gateway, "hooked", "roundtrip", data)),
               expected_load(schema_class(), data))
    variant = schema_class(unknown=POLICIES[policy], partial=partial)
    check_load(harness.run(call_exact(harness.gateway, "hooked", f"load_{policy}_{int(partial)}", data)),
               expected_load(variant, data))


# -- __schema__ ------------------------------------------------------------------------


def test_every_schema_component_is_valid_2020_12(harness):
    document = harness.gateway.schema()
    components = document["components"]["schemas"]
    assert len(components) > len(CASES)  # the case schemas, their variants and the built-ins
    for name, component in components.items():
        Draft202012Validator.check_schema(component)
        assert "null" not in json.dumps(component, default=str).replace('"null"', "").replace(
            '"default": null', ""), name
    harness.tally["schema_components"] += len(components)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_dumps_validate_against_the_advertised_output_schema(harness, case):
    @SETTINGS
    @given(obj=objects(case))
    def check(obj):
        dump_validates_against_its_schema(harness, case, obj)

    check()


def dump_validates_against_its_schema(harness: Harness, case: Case, obj: Any) -> None:
    harness.tally["schema_truth"] += 1
    document = harness.gateway.schema()
    name = f"case_{case.id}"
    schema = schema_of(harness, case)()
    ok, dumped = marshmallow_dump(schema, obj)
    if not ok:
        return
    wire = json.loads(encode(dumped))
    try:  # the claim is about objects that fit: marshmallow reads their dump back, and dumps that the same
        canonical = encode(schema.dump(schema.load(dumped))) == encode(dumped)  # as text: 0 == False in Python
    except (ValidationError, ValueError, TypeError):
        canonical = False
    if not canonical:
        return
    harness.tally["schema_truth_canonical"] += 1
    resource = next(r for r in document["resources"] if r["name"] == name)
    output = next(a for a in resource["actions"] if a["name"] == "dump")["output"]
    validator = Draft202012Validator({**output, "components": document["components"]}, format_checker=FORMATS)
    errors = [e.message for e in validator.iter_errors(wire)]
    assert not errors, (case.id, wire, errors)


# -- over real sockets -------------------------------------------------------------------


@pytest.fixture
def gateway() -> Gateway:
    """The differential gateway, served by conftest's app for the socket tests."""
    return differential.make_gateway()


@pytest.mark.gen_test(timeout=60)
async def test_samples_over_real_sockets(gateway, connect):
    client, listener = await connect(), await connect()
    ran = 0
    for case in CASES:
        name = f"case_{case.id}"
        schema_class = gateway.state["schemas"][name]
        await listener.subscribe(name, fields=["value"])
        for value in case.samples:
            obj = {"value": value, "other": 7}
            gateway.state["objects"][name] = obj
            ok, dumped = marshmallow_dump(schema_class(), obj)
            if not ok:
                continue
            ran += 1
            assert same_json(await client.call(name, "dump"), render(dumped)), (case.id, value)
            selected = render(schema_class(only=("value",)).dump(obj))
            assert same_json(await client.call(name, "dump", fields=["value"]), selected), (case.id, value)
            if not schema_class().validate(dumped):
                await gateway.publish(name, obj)
                event = await listener.next_event(2)
                assert event.topic == name and same_json(event.data, selected), (case.id, value, event.data)
            roundtrip = as_json(dumped)
            kind, expected = expected_load(schema_class(), roundtrip)
            if kind == "data":
                assert same_json(await client.call(name, "roundtrip", roundtrip), expected), (case.id, value)
    assert ran >= len(CASES)


# -- selection narrows the schema as declared --------------------------------------------


@WIDE
@given(declared=differential.composite_declarations, obj=differential.composite_objects,
       wire=st.sets(st.sampled_from(sorted(differential.COMPOSITE_PATHS)), min_size=1, max_size=3))
def test_selection_narrows_the_declared_schema_and_never_widens(harness, declared, obj, wire):
    harness.tally["declared_selection"] += 1
    gateway = differential.composite_gateway(declared)
    gateway.state["object"] = obj
    declared_schema = differential.Composite(**declared)
    only = tuple(differential.COMPOSITE_PATHS[w] for w in wire)
    visible = _sends(declared_schema, only)
    # marshmallow's own only=, on top of the declaration (a visible selection lies within a declared only)
    oracle = differential.Composite(**{**declared, "only": only})
    listener = InProcess(gateway, read_exact)

    async def go() -> dict:
        reply = await call_exact(gateway, "composite", "dump", fields=tuple(sorted(wire)))
        if "data" in reply:
            await listener.listen("composite", sorted(wire))
            await gateway.publish("composite", obj)
        return reply

    reply = harness.run(go())
    if not visible:
        assert reply["code"] == "INVALID_FIELDS", (declared, wire, reply)
        return
    expected = render(oracle.dump(obj))
    assert same_json(reply["data"], expected), (declared, wire, reply["data"], expected)
    assert listener.events() == [reply["data"]]


def _sends(schema: Any, only: tuple[str, ...]) -> bool:
    """Whether ``schema`` (as declared) dumps every attribute path of ``only``."""
    for path in only:
        node = schema
        for part in path.split("."):
            field = node.dump_fields.get(part) if node is not None else None
            if field is None:
                return False
            node = getattr(getattr(field, "inner", field), "schema", None)
    return True
