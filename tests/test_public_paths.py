"""Every import path the README, the docs and the examples use still works, and names the layer's own object.

The package is organised in layers (wire, schema, brokers, contract,
runtime, transport); users import from its public face: the package
itself, ``client``, ``testing``, ``cli``, the compat modules ``errors``,
``resources``, ``protocol`` and ``connection``, ``brokers`` and
``brokers.redis``, and the Tornado Drizzle shim. Each public path must give
the very object its layer defines, not a copy.
"""

from __future__ import annotations

import importlib
import inspect

import pytest

PUBLIC = [
    # (public module, name, module that defines it)
    *[("drizzle_gateway", name, where) for name, where in [
        ("ActionError", "drizzle_gateway.wire.errors"), ("ErrorCode", "drizzle_gateway.wire.errors"),
        ("AuthThrottle", "drizzle_gateway.runtime.auth"), ("Credentials", "drizzle_gateway.runtime.auth"),
        ("Identity", "drizzle_gateway.runtime.identity"),
        ("Gateway", "drizzle_gateway.gateway"), ("Limits", "drizzle_gateway.runtime.limits"),
        ("Publisher", "drizzle_gateway.publisher"),
        ("Resource", "drizzle_gateway.contract.resources"), ("action", "drizzle_gateway.contract.resources"),
        ("Topic", "drizzle_gateway.contract.topics")]],
    ("drizzle_gateway.client", "Client", "drizzle_gateway.client"),
    ("drizzle_gateway.client", "RemoteError", "drizzle_gateway.client"),
    ("drizzle_gateway.client", "ConnectionClosed", "drizzle_gateway.client"),
    ("drizzle_gateway.testing", "TestClient", "drizzle_gateway.testing"),
    ("drizzle_gateway.cli", "main", "drizzle_gateway.cli"),
    ("drizzle_gateway.brokers", "Broker", "drizzle_gateway.brokers.base"),
    ("drizzle_gateway.brokers", "MemoryBroker", "drizzle_gateway.brokers.memory"),
    ("drizzle_gateway.brokers.redis", "RedisBroker", "drizzle_gateway.brokers.redis.broker"),
    ("drizzle_gateway.connection", "Connection", "drizzle_gateway.transport.connection"),
    *[("drizzle_gateway.protocol", name, "drizzle_gateway.wire.dialect")
      for name in ("Dialect", "Request", "InvalidFrame", "RequestId")],
    *[("drizzle_gateway.protocol", name, "drizzle_gateway.wire.codec") for name in ("decode_request", "encode")],
    ("drizzle_gateway.resources", "Action", "drizzle_gateway.contract.resources"),
    ("drizzle_gateway.resources", "Resource", "drizzle_gateway.contract.resources"),
    ("drizzle_gateway.errors", "ActionError", "drizzle_gateway.wire.errors"),
    ("drizzle_gateway.errors", "ErrorCode", "drizzle_gateway.wire.errors"),
    ("drizzle_gateway.schema.compiled", "compile_schema", "drizzle_gateway.schema.compiled"),
    ("drizzle_gateway.transport.redaction", "RedactCredentials", "drizzle_gateway.transport.redaction"),
    *[("tornado_drizzle", name, where) for name, where in [
        ("DrizzleHandler", "tornado_drizzle.handler"),
        ("DrizzleWebSocket", "tornado_drizzle.drizzle_web_socket"),
        ("LegacyProtocol", "tornado_drizzle.protocol"), ("init_drizzle", "tornado_drizzle.conf"),
        ("publish", "tornado_drizzle.subscriber")]],
    ("tornado_drizzle.drizzle_web_socket", "DrizzleWebSocket", "tornado_drizzle.drizzle_web_socket"),
    ("tornado_drizzle.drizzle_web_socket", "DrizzleHandler", "tornado_drizzle.handler"),
    ("tornado_drizzle.conf", "init_drizzle", "tornado_drizzle.conf"),
    ("tornado_drizzle.subscriber", "subscriptions", "tornado_drizzle.subscriber"),
    ("tornado_drizzle.subscriber", "publish", "tornado_drizzle.subscriber"),
]


@pytest.mark.parametrize(("public", "name", "where"), PUBLIC, ids=[f"{p}.{n}" for p, n, _ in PUBLIC])
def test_the_public_path_gives_the_layers_own_object(public, name, where):
    exported = getattr(importlib.import_module(public), name)
    assert exported is getattr(importlib.import_module(where), name)
    if isinstance(exported, type) or inspect.isfunction(exported):
        assert exported.__module__ == where, (public, name, exported.__module__)


def test_protocol_is_the_dialects_earlier_name():
    from drizzle_gateway.protocol import Protocol
    from drizzle_gateway.wire.dialect import Dialect

    assert Protocol is Dialect


def test_what_the_package_exports_is_what_it_lists():
    for public in ("drizzle_gateway", "drizzle_gateway.errors", "drizzle_gateway.resources", "drizzle_gateway.protocol",
                   "drizzle_gateway.connection", "drizzle_gateway.brokers", "drizzle_gateway.brokers.redis",
                   "tornado_drizzle"):
        module = importlib.import_module(public)
        assert all(hasattr(module, name) for name in module.__all__), public
    listed = {(public, name) for public, name, _ in PUBLIC}
    root = importlib.import_module("drizzle_gateway")
    assert {name for name in root.__all__} == {name for public, name in listed if public == "drizzle_gateway"}
