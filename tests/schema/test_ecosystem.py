"""The differential suite, grown to the schemas marshmallow's ecosystem generates.

The cases are in tests/support/ecosystem.py: marshmallow-sqlalchemy auto
schemas over SQLAlchemy models on SQLite, marshmallow_dataclass schemas,
marshmallow-oneofschema (alone, nested, ``many``), and marshmallow's own
hooks that mutate and extension points. Each is compared with marshmallow
itself, as tests/schema/test_differential.py does for the built-in fields:

- reply: ``dump`` answers marshmallow's dump rendered by rule 1 (or
  INTERNAL_ERROR exactly when marshmallow cannot dump the object);
- event: a server-side publish is refused exactly when marshmallow reading
  the dump back refuses it (with its messages), else the event is the dump;
- selection: reply == event == marshmallow's own ``only=`` dump;
- load and client publish: ``details`` equal ``ValidationError.messages``,
  and a success answers (or delivers) marshmallow's dump of what it loaded;
- components: a dump marshmallow reads back validates against the
  advertised output and topic components, and a payload marshmallow loads
  against the advertised input component.

Checks that fail only by one of the known bugs of issue 28 are strict
xfails (`EcoCase.xfail`). The last test asserts that every case ran and
reports how many cases and comparisons the module made.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from marshmallow import Schema, ValidationError

from drizzle_gateway import Gateway, Resource, Topic, action
from drizzle_gateway.wire.dialect import encode
from tests.support import ecosystem
from tests.support.differential import render, same_json
from tests.support.ecosystem import CASES, EcoCase
from tests.support.inprocess import InProcess

logger = logging.getLogger("tests.ecosystem")

pytestmark = pytest.mark.xdist_group("ecosystem")  # one worker: the tally below is the module's whole run

REPLY_TIMEOUT = 2.0
"""How long a request may go unanswered before the check counts it as no reply (a dead request task)."""


def read_exact(text: str) -> Any:
    """A frame as read by a client that keeps every digit."""
    return json.loads(text, parse_float=Decimal, parse_int=Decimal)


class Harness:
    """The ecosystem gateway, its event loop, and the tally of comparisons made per test."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.gateway: Gateway = ecosystem.make_gateway()
        self.document = self.gateway.schema()
        self.comparisons: Counter = Counter()
        """Comparisons with marshmallow made, by kind."""
        self.per_test: Counter = Counter()
        """Comparisons made, by test node id (every test that ran is there, with 0 if it made none)."""
        self.cases_run: set[str] = set()
        self.current = ""

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    def compared(self, kind: str, count: int = 1) -> None:
        self.comparisons[kind] += count
        self.per_test[self.current] += count


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    h = Harness()
    yield h
    h.loop.close()


@pytest.fixture(autouse=True)
def fresh_rows(harness: Harness, request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test starts from the seeded rows (a load with ``load_instance`` sets attributes on them), and is
    counted as run."""
    harness.current = request.node.nodeid
    harness.per_test[harness.current] += 0
    ecosystem.reset_rows()
    yield
    ecosystem.reset_rows()


def params(kind: str, items: str) -> list[Any]:
    """One pytest param per (case, item), strict-xfailed where `EcoCase.xfail` names a known bug."""
    out = []
    for case in CASES:
        names = case.objects if items == "objects" else case.payloads if items == "payloads" else \
            [",".join(wire) for wire, _ in case.selections]
        for name in names:
            reason = case.known_bug(kind, name)
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            out.append(pytest.param(case, name, id=f"{case.id}-{name}", marks=marks))
    return out


def began(harness: Harness, case: EcoCase) -> None:
    harness.cases_run.add(case.id)


# -- talking to the gateway ----------------------------------------------------------------


async def ask(gateway: Gateway, resource: str | None, action: str, data: Any = None,
              fields: tuple[str, ...] | None = None) -> dict:
    """The reply or error frame of one request; ``{"no_reply": True}`` when none comes."""
    caller = InProcess(gateway, read_exact)
    try:
        return await asyncio.wait_for(caller.ask(resource, action, data, fields), REPLY_TIMEOUT)
    except TimeoutError:
        return {"no_reply": True}
    finally:
        await caller.close()


async def publish(gateway: Gateway, topic: str, obj: Any,
                  selections: list[tuple[str, ...] | None]) -> tuple[Exception | None, dict]:
    """Publish ``obj`` with one listener per selection: what publish raised, and each selection's events
    (one list per listener, in the order given, when several listeners share a selection)."""
    listeners = []
    for wire in selections:
        listener = InProcess(gateway, read_exact)
        await listener.listen(topic, list(wire) if wire else None)
        listeners.append((wire, listener))
    try:
        await gateway.publish(topic, obj)
        raised: Exception | None = None
    except Exception as exc:  # noqa: BLE001 (compared with what marshmallow raises)
        raised = exc
    finally:
        for _, listener in listeners:
            await listener.close()
    frames: dict = {}
    for wire, listener in listeners:
        events = listener.events()
        frames[wire] = events if wire not in frames else [*frames[wire], *events]
    return raised, frames


# -- the oracle -----------------------------------------------------------------------------


def json_safe(messages: Any) -> Any:
    """marshmallow's messages with any `ValidationError` inside (a Union's) replaced by its own messages."""
    if isinstance(messages, ValidationError):
        return json_safe(messages.messages)
    if isinstance(messages, dict):
        return {key: json_safe(value) for key, value in messages.items()}
    if isinstance(messages, (list, tuple)):
        return [json_safe(item) for item in messages]
    return messages


def dumped(schema: Schema, obj: Any) -> tuple[bool, Any]:
    """marshmallow's dump, or (False, None) when marshmallow cannot dump ``obj``."""
    try:
        return True, schema.dump(obj)
    except Exception:  # noqa: BLE001 (marshmallow itself cannot dump it: the wire must say INTERNAL_ERROR)
        return False, None


def loaded(schema: Schema, data: Any) -> tuple[str, Any]:
    """What marshmallow makes of request ``data``: ("data", its dump of the result), ("INVALID_DATA",
    messages) or ("INTERNAL_ERROR", None) when it raises anything else."""
    try:
        result = schema.load(json.loads(json.dumps(data)))  # a copy: hooks may edit their input in place
    except ValidationError as exc:
        return "INVALID_DATA", render(json_safe(exc.messages))
    except Exception:  # noqa: BLE001
        return "INTERNAL_ERROR", None
    ok, dump = dumped(schema, result)
    return ("data", render(dump)) if ok else ("INTERNAL_ERROR", None)


def load_only_paths(schema: Schema, prefix: str = "", depth: int = 0) -> list[str]:
    """Dotted names of the load-only fields of ``schema`` (nested ones included): a dump never carries them."""
    paths = []
    for name, field in schema.load_fields.items():
        if field.load_only:
            paths.append(prefix + name)
            continue
        inner = getattr(getattr(field, "inner", field), "schema", None)
        if isinstance(inner, Schema) and depth < 4:
            paths.extend(load_only_paths(inner, f"{prefix}{name}.", depth + 1))
    return paths


def without_unknown(messages: Any) -> Any:
    """marshmallow's messages less its "Unknown field." ones (keys a dump has and a load does not take)."""
    if isinstance(messages, dict):
        kept = {key: sub for key, value in messages.items() if (sub := without_unknown(value))}
        return kept or None
    if isinstance(messages, list):
        kept = [m if isinstance(m, str) else without_unknown(m) for m in messages if m != "Unknown field."]
        return [m for m in kept if m] or None
    return messages


def read_back(schema: Schema, dump: Any) -> Any:
    """The publish rule of docs/protocol.md, with marshmallow: its messages on reading ``dump`` back.

    The dump is validated as input with the load-only fields partial, and
    "Unknown field." messages (dump-only keys, keys hooks added) do not
    count; ``{}`` when it fits. marshmallow-sqlalchemy validates only
    through a session: a schema bound to none loads the dump as transient
    rows instead (what its ``load`` offers for that). An exception other
    than `ValidationError` is returned as it is: marshmallow cannot read the
    dump back at all.
    """
    data = json.loads(encode(dump))
    partial = tuple(load_only_paths(schema)) or False
    try:
        try:
            messages = schema.validate(data, partial=partial)
        except ValueError as exc:
            if "requires a session" not in str(exc):
                raise
            try:
                schema.load(json.loads(encode(dump)), partial=partial, transient=True)  # type: ignore[call-arg]
                messages = {}
            except ValidationError as error:
                messages = error.messages  # type: ignore[assignment]
    except Exception as exc:  # noqa: BLE001
        return exc
    finally:
        ecosystem.reset_rows()
    return without_unknown(messages) or {}


def check_reply(reply: dict, ok: bool, dump: Any) -> None:
    if ok:
        assert "data" in reply, reply
        assert same_json(reply["data"], render(dump)), (reply["data"], render(dump))
    else:
        assert reply.get("code") == "INTERNAL_ERROR", reply


def check_load(reply: dict, expected: tuple[str, Any]) -> None:
    kind, value = expected
    if kind == "data":
        assert "data" in reply and same_json(reply["data"], value), (reply, value)
    elif kind == "INVALID_DATA":
        assert reply.get("code") == "INVALID_DATA", (reply, value)
        assert reply["details"] == value, (reply["details"], value)
    else:
        assert reply.get("code") == "INTERNAL_ERROR", reply


# -- replies, events, selections ---------------------------------------------------------------


@pytest.mark.parametrize(("case", "name"), params("reply", "objects"))
def test_reply_equals_marshmallows_dump(harness, case, name):
    began(harness, case)
    obj = case.objects[name]()
    harness.gateway.state["objects"][case.id] = obj
    ok, dump = dumped(case.make(), case.objects[name]())
    harness.compared("reply")  # counted before it is checked: a failure is a comparison made too
    check_reply(harness.run(ask(harness.gateway, case.id, "dump")), ok, dump)


@pytest.mark.parametrize(("case", "name"), params("event", "objects"))
def test_event_equals_marshmallows_dump_or_is_refused_with_its_messages(harness, case, name):
    began(harness, case)
    ok, dump = dumped(case.make(), case.objects[name]())
    raised, frames = harness.run(publish(harness.gateway, case.id, case.objects[name](), [None]))
    harness.compared("event")
    if not ok:
        assert isinstance(raised, ValidationError) and frames[None] == [], raised
        return
    verdict = read_back(case.make(), dump)
    if isinstance(verdict, Exception):  # marshmallow cannot read the dump back: neither can the gateway
        assert raised is not None and frames[None] == [], (verdict, raised, frames)
    elif verdict:
        assert isinstance(raised, ValidationError), raised
        assert raised.messages == verdict and frames[None] == [], (raised.messages, verdict)
    else:
        assert raised is None, raised
        assert len(frames[None]) == 1 and same_json(frames[None][0], render(dump)), (frames[None], render(dump))


def selection(case: EcoCase, name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return next((wire, only) for wire, only in case.selections if ",".join(wire) == name)


def only_dump(case: EcoCase, only: tuple[str, ...], obj: Any) -> tuple[bool, Any]:
    """marshmallow's own ``only=`` dump with the case's schema."""
    schema = case.make()
    return dumped(type(schema)(only=only, many=schema.many), obj)


@pytest.mark.parametrize(("case", "name"), params("selection_reply", "selections"))
def test_selected_reply_equals_marshmallows_only_dump(harness, case, name):
    began(harness, case)
    wire, only = selection(case, name)
    for make in case.objects.values():
        sel_ok, sel_dump = only_dump(case, only, make())
        harness.gateway.state["objects"][case.id] = make()
        harness.compared("selection_reply")
        check_reply(harness.run(ask(harness.gateway, case.id, "dump", fields=wire)), sel_ok, sel_dump)


@pytest.mark.parametrize(("case", "name"), params("selection_event", "selections"))
def test_selected_event_equals_marshmallows_only_dump(harness, case, name):
    began(harness, case)
    wire, only = selection(case, name)
    for obj_name, make in case.objects.items():
        ok, dump = dumped(case.make(), make())
        raised, frames = harness.run(publish(harness.gateway, case.id, make(), [wire]))
        if not ok or read_back(case.make(), dump):  # refused whole, for selected subscribers too
            harness.compared("selection_event_refused")
            assert raised is not None and frames[wire] == [], (obj_name, raised, frames[wire])
            continue
        sel_ok, sel_dump = only_dump(case, only, make())
        harness.compared("selection_event")
        assert raised is None, (obj_name, raised)
        assert len(frames[wire]) == 1 and same_json(frames[wire][0], render(sel_dump)), (obj_name, frames[wire])


# -- loads ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("case", "name"), params("load", "payloads"))
def test_load_answers_what_marshmallow_loads_or_its_messages(harness, case, name):
    began(harness, case)
    data = case.payloads[name]
    reply = harness.run(ask(harness.gateway, case.id, "roundtrip", json.loads(json.dumps(data))))
    ecosystem.reset_rows()
    harness.compared("load")
    check_load(reply, loaded(case.make(), data))


@pytest.mark.parametrize(("case", "name"), params("client_publish", "payloads"))
def test_client_publish_delivers_what_marshmallow_loads_or_answers_its_messages(harness, case, name):
    began(harness, case)
    data = case.payloads[name]
    gateway = harness.gateway
    publisher, listener = InProcess(gateway, read_exact), InProcess(gateway, read_exact)

    async def go() -> dict:
        await listener.listen(case.id)
        try:
            return await asyncio.wait_for(publisher.ask(None, "__publish__", {"topic": case.id, "payload": data}),
                                          REPLY_TIMEOUT)
        except TimeoutError:
            return {"no_reply": True}
        finally:
            await listener.close()
            await publisher.close()

    reply = harness.run(go())
    events = listener.events()
    ecosystem.reset_rows()
    kind, expected = loaded(case.make(), data)
    harness.compared("client_publish")
    if kind == "INVALID_DATA":
        assert (reply.get("code"), reply.get("details")) == ("INVALID_DATA", {"payload": expected}), reply
        assert events == []
    elif kind == "data":
        assert reply.get("data") == {"topic": case.id}, reply
        assert len(events) == 1 and same_json(events[0], expected), (events, expected)
    else:
        assert reply.get("code") in ("INTERNAL_ERROR", "INVALID_DATA") and events == [], reply


# -- what __schema__ advertises -------------------------------------------------------------------


def action_schema(document: dict, resource: str, action: str, side: str) -> dict:
    found = next(r for r in document["resources"] if r["name"] == resource)
    return next(a for a in found["actions"] if a["name"] == action)[side]


def topic_schema(document: dict, topic: str) -> dict:
    return next(t for t in document["topics"] if t["name"] == topic)["payload"]


def violations(document: dict, schema: dict, value: Any) -> list[str]:
    validator = Draft202012Validator({**schema, "components": document["components"]},
                                     format_checker=Draft202012Validator.FORMAT_CHECKER)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(value)]


@pytest.mark.parametrize(("case", "name"), params("output_component", "objects"))
def test_a_dump_validates_against_its_advertised_output_and_topic_components(harness, case, name):
    began(harness, case)
    ok, dump = dumped(case.make(), case.objects[name]())
    assert ok, name
    if read_back(case.make(), dump):  # the claim is about dumps marshmallow reads back (as a publish does)
        harness.compared("output_component_unclaimed")
        return
    wire = json.loads(encode(dump))
    document = harness.document
    harness.compared("output_component", 2)
    assert violations(document, action_schema(document, case.id, "dump", "output"), wire) == []
    assert violations(document, topic_schema(document, case.id), wire) == []


@pytest.mark.parametrize(("case", "name"), params("input_component", "payloads"))
def test_a_payload_marshmallow_loads_validates_against_the_advertised_input_component(harness, case, name):
    began(harness, case)
    data = case.payloads[name]
    kind, _ = loaded(case.make(), data)
    ecosystem.reset_rows()
    document = harness.document
    errors = violations(document, action_schema(document, case.id, "roundtrip", "input"), data)
    if kind != "data" or name in case.reshaped:
        harness.compared("input_component_unclaimed")
        return  # a schema's validators and hooks say more than JSON Schema can: only what loads as sent is claimed
    harness.compared("input_component")
    assert errors == [], (data, errors)


def test_every_component_of_the_ecosystem_gateway_is_valid_2020_12(harness):
    components = harness.document["components"]["schemas"]
    harness.compared("valid_component", len(components))
    for component in components.values():
        Draft202012Validator.check_schema(component)
    assert len(components) >= len(CASES)


# -- a post_dump that keeps state runs as often as in marshmallow ----------------------------------


def test_a_stateful_post_dump_runs_once_per_selected_reply_as_in_marshmallow(harness):
    harness.compared("hook_runs")
    obj = {"name": "ada", "tags": ["x"]}
    ecosystem.Counted.calls.clear()
    expected = ecosystem.Counted(only=("name",)).dump(obj)  # marshmallow: one only= dump, one call
    marshmallows = list(ecosystem.Counted.calls)
    ecosystem.Counted.calls.clear()
    gateway = Gateway([], title="counted")

    class Counting(Resource):
        name = "counting"

        @action(output=ecosystem.Counted())
        def dump(self, data: Any) -> Any:
            return obj

    gateway.add_resource(Counting)
    reply = harness.run(ask(gateway, "counting", "dump", fields=("name",)))
    assert reply.get("data") == expected, reply
    assert ecosystem.Counted.calls == marshmallows and len(marshmallows) == 1, ecosystem.Counted.calls


def test_a_stateful_post_dump_runs_once_per_dump_an_event_needs_as_in_marshmallow(harness):
    """An event is the topic's dump (checked, kept in history, sent to other processes) plus one
    ``only=`` dump per distinct selection a post_dump narrows: marshmallow's count for those dumps,
    however many subscribers share a selection (docs/protocol.md, "Field selection on events")."""
    harness.compared("hook_runs")
    obj = {"name": "ada", "tags": ["x"]}
    ecosystem.Counted.calls.clear()
    full = ecosystem.Counted().dump(obj)
    narrowed = ecosystem.Counted(only=("name",)).dump(obj)
    marshmallows = list(ecosystem.Counted.calls)
    ecosystem.Counted.calls.clear()
    gateway = Gateway([], [Topic("counted", ecosystem.Counted())], title="counted")
    raised, frames = harness.run(publish(gateway, "counted", obj, [("name",), None, ("name",)]))
    assert raised is None and frames[("name",)] == [narrowed] * 2 and frames[None] == [full], (raised, frames)
    assert ecosystem.Counted.calls == marshmallows and len(marshmallows) == 2, ecosystem.Counted.calls


# -- the tally ---------------------------------------------------------------------------------------


def test_every_case_ran_and_the_tally_is_reported(harness, request, record_property):
    """Last in the module: every ecosystem test before it ran here and compared; the counts are reported."""
    earlier = [item for item in request.session.items
               if item.path == request.node.path and item.nodeid != request.node.nodeid]
    assert earlier, "run with the rest of the module"
    assert [item.nodeid for item in earlier if item.nodeid not in harness.per_test] == []
    silent = [item.nodeid for item in earlier
              if harness.per_test[item.nodeid] == 0 and item.get_closest_marker("xfail") is None]
    assert silent == []  # a test that ran without comparing anything
    selected_cases = {item.callspec.params["case"].id for item in earlier
                      if hasattr(item, "callspec") and "case" in item.callspec.params}
    assert harness.cases_run == selected_cases
    libraries = Counter(case.library for case in CASES if case.id in harness.cases_run)
    total = sum(n for kind, n in harness.comparisons.items() if not kind.endswith("_unclaimed"))
    line = (f"ecosystem differential: {len(harness.cases_run)} cases ("
            + ", ".join(f"{lib} {n}" for lib, n in sorted(libraries.items()))
            + f"), {len(earlier)} tests, {total} comparisons with marshmallow ("
            + ", ".join(f"{kind} {n}" for kind, n in sorted(harness.comparisons.items())) + ")")
    logger.info(line)
    record_property("suite_summary", line)
