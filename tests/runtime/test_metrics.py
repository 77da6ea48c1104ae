"""`Metrics`: one registry per gateway, requests by the action found and their outcome, events by topic pattern.

Labels stay bounded whatever clients send: an unknown action counts as
``unknown``, a channel counts under its topic's pattern. `HubCollector` reads
the hub's state at scrape time. Over a real socket (closes, probes, /metrics):
tests/transport/test_observability.py.
"""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest
from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine

from drizzle_gateway import AuthThrottle, Gateway, Topic
from drizzle_gateway.client import RemoteError
from drizzle_gateway.runtime.auth import Credentials
from drizzle_gateway.runtime.metrics import BUILTIN, UNKNOWN
from drizzle_gateway.testing import TestClient
from drizzle_gateway.wire.dialect import Request
from drizzle_gateway.wire.errors import ActionError
from tests.support.resources import Message, chat
from tests.support.scrape import labels, samples, series


def scraped(gateway: Gateway):
    """The gateway's samples now, read as Prometheus would."""
    assert gateway.hub.metrics is not None
    return samples(generate_latest(gateway.hub.metrics.registry).decode())


@pytest.mark.gen_test
async def test_requests_count_by_the_action_found_and_the_outcome_code(gateway, test_client):
    client = await test_client()
    await client.call("lab", "plain", {"x": 1})
    await client.call("lab", "plain", {"x": 2})
    await client.ping()
    for resource, action in (("lab", "refuse"), ("lab", "no-such"), ("nobody", "any"), ("nobody", "other")):
        with pytest.raises(RemoteError):
            await client.call(resource, action, {})
    found = scraped(gateway)
    requests = series(found, "drizzle_requests_total")
    assert requests == {
        labels(resource="lab", action="plain", code="OK"): 2.0,
        labels(resource=BUILTIN, action="__ping__", code="OK"): 1.0,
        labels(resource="lab", action="refuse", code="QUOTA_EXCEEDED"): 1.0,
        labels(resource=UNKNOWN, action=UNKNOWN, code="ACTION_NOT_FOUND"): 1.0,
        labels(resource=UNKNOWN, action=UNKNOWN, code="RESOURCE_NOT_FOUND"): 2.0,
    }
    timed = series(found, "drizzle_request_duration_seconds_count")
    assert timed[labels(resource="lab", action="plain")] == 2.0
    assert timed[labels(resource=UNKNOWN, action=UNKNOWN)] == 3.0
    assert series(found, "drizzle_request_duration_seconds_bucket")[
        labels(resource="lab", action="plain", le="+Inf")] == 2.0


@pytest.mark.gen_test
async def test_publishes_and_deliveries_count_by_pattern_and_200_rooms_make_one_series(gateway, test_client):
    listeners = [await test_client() for _ in range(4)]
    rooms = [f"r{n}" for n in range(200)]
    for n, room in enumerate(rooms):  # each room heard by two of the four (max_subscriptions is 100)
        for client in (listeners[n % 2], listeners[2 + n % 2]):
            await client.subscribe(f"chat.{room}")
    for room in rooms:
        await gateway.publish("chat.{room}", {"text": "hi", "author": {"name": "a"}}, room=room)
    await gateway.publish("alerts", {"text": "nobody listens", "author": {"name": "a"}})
    found = scraped(gateway)
    assert series(found, "drizzle_publishes_total") == {labels(topic="chat.{room}"): 200.0,
                                                       labels(topic="alerts"): 1.0}
    assert series(found, "drizzle_deliveries_total") == {labels(topic="chat.{room}"): 400.0}
    assert len(found) < 100  # whatever the number of rooms


@pytest.mark.gen_test
async def test_an_idempotency_duplicate_is_not_counted_as_a_publish(gateway, test_client):
    """A repeat of a key is delivered to nobody: from the server or a client's __publish__, it is not counted."""
    client = await test_client()
    event = {"text": "once", "author": {"name": "a"}}
    assert not (await gateway.publish("chat.a", event, idempotency_key="k1")).duplicate
    assert (await gateway.publish("chat.a", event, idempotency_key="k1")).duplicate
    assert (await client.publish("chat.a", event, idempotency_key="k2"))["duplicate"] is False
    assert (await client.publish("chat.a", event, idempotency_key="k2"))["duplicate"] is True
    await gateway.publish("chat.a", event)
    assert series(scraped(gateway), "drizzle_publishes_total") == {labels(topic="chat.{room}"): 3.0}


@pytest.mark.gen_test
async def test_the_hub_is_read_at_scrape_time():
    gateway = Gateway(topics=[chat, Topic("feed.{room}", Message, history=10)])
    client = await TestClient(gateway).connect()
    found = scraped(gateway)
    assert series(found, "drizzle_connections") == {labels(): 1.0}
    assert series(found, "drizzle_draining") == {labels(): 0.0}
    assert series(found, "drizzle_broker_up") == {labels(): 1.0}
    assert series(found, "drizzle_history_channels") == {labels(): 0.0}
    await gateway.publish("feed.a", {"text": "kept", "author": {"name": "a"}})
    found = scraped(gateway)
    assert series(found, "drizzle_history_channels") == {labels(): 1.0}
    assert series(found, "drizzle_history_bytes")[labels()] == gateway.broker.history_weight[1] > 0
    await client.close()
    assert series(scraped(gateway), "drizzle_connections") == {labels(): 0.0}


@pytest.mark.gen_test
async def test_refusals_and_throttles_count_attempts_that_presented_credentials():
    gateway = Gateway(authenticate=lambda credentials: None, auth_throttle=AuthThrottle(rate=0.001, burst=2))
    hub = gateway.hub
    request = HTTPServerRequest(start_line=RequestStartLine("GET", "/ws", "HTTP/1.1"),
                                headers=HTTPHeaders({"Host": "chat.example"}))
    request.remote_ip = "10.0.0.1"
    for token in (None, "a", "b", "c", "d"):
        with pytest.raises(ActionError):
            await hub.identify(Credentials(request, token))
    found = scraped(gateway)
    assert series(found, "drizzle_auth_refusals_total") == {labels(): 2.0}  # the handshake without any: not counted
    assert series(found, "drizzle_auth_throttled_total") == {labels(): 2.0}


def test_each_gateway_has_its_own_registry_and_metrics_false_counts_nothing():
    one, two = Gateway(), Gateway()
    assert one.hub.metrics is not None and two.hub.metrics is not None
    assert one.hub.metrics.registry is not two.hub.metrics.registry
    assert Gateway(metrics=False).hub.metrics is None


def test_close_codes_are_bounded():
    metrics = Gateway().hub.metrics
    assert metrics is not None
    for code in (4008, 4008, 1000, None, 4321, 3999):
        metrics.closed(code)
    assert series(samples(generate_latest(metrics.registry).decode()), "drizzle_closes_total") == {
        labels(code="4008"): 2.0, labels(code="1000"): 1.0, labels(code="1006"): 1.0, labels(code="other"): 2.0}


def test_latency_falls_in_the_first_bucket_whose_bound_it_does_not_exceed():
    """Prometheus's ``le``: a duration equal to a bound counts in that bound's bucket; buckets are cumulative."""
    metrics = Gateway().hub.metrics
    assert metrics is not None
    took = iter((0.0005, 0.0007, 0.001, 0.0011, 20.0))
    metrics.clock = lambda: next(took)  # each request began at 0
    ping = Request(request_id=1, action="__ping__")
    for _ in range(5):
        metrics.request_done(ping, "OK", began=0.0)
    found = series(samples(generate_latest(metrics.registry).decode()), "drizzle_request_duration_seconds_bucket")
    ping_labels = {"resource": BUILTIN, "action": "__ping__"}
    assert found[labels(**ping_labels, le="0.0005")] == 1.0
    assert found[labels(**ping_labels, le="0.001")] == 3.0
    assert found[labels(**ping_labels, le="0.0025")] == 4.0
    assert found[labels(**ping_labels, le="10.0")] == 4.0
    assert found[labels(**ping_labels, le="+Inf")] == 5.0
    total = series(samples(generate_latest(metrics.registry).decode()), "drizzle_request_duration_seconds_sum")
    assert total[labels(**ping_labels)] == pytest.approx(20.0033)
