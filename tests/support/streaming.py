"""A resource with streaming actions, and the `Probe` its generators report to.

`make_stream_gateway` serves `Feed` (resource ``feed``); each of its
generators notes in the gateway's ``state["probe"]`` how many items it
produced, when its ``finally`` ran, and, through ``watch``, how many bytes
waited for the peer each time it was asked for an item.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from marshmallow import Schema, fields

from drizzle_gateway import ActionError, Gateway, Limits, Resource, action


class Tag(Schema):
    name = fields.Str()
    colour = fields.Str()


class Numbered(Schema):
    n = fields.Int()
    body = fields.Str()
    tag = fields.Nested(Tag)


class CountInput(Schema):
    upto = fields.Int(required=True)
    body = fields.Str(load_default="")
    gap = fields.Float(load_default=0.0)  # seconds between items
    fail_at = fields.Int(load_default=None)  # raise NOT_FOUND instead of this item
    bad_at = fields.Int(load_default=None)  # yield an item whose dump fails at this one
    hold_at = fields.Int(load_default=None)  # wait for `Probe.release` before this item


class Probe:
    """What a gateway's streaming generators did: items produced, generators closed, bytes waiting."""

    def __init__(self) -> None:
        self.produced = 0
        self.closed = 0
        self.release = asyncio.Event()
        self.watch: Callable[[], int] | None = None  # bytes waiting for the peer, read at each item
        self.most_waiting = 0

    def item(self, n: int, body: str) -> dict[str, Any]:
        if self.watch is not None:
            self.most_waiting = max(self.most_waiting, self.watch())
        self.produced += 1
        return {"n": n, "body": body, "tag": {"name": f"t{n % 3}", "colour": "red"}}


class Feed(Resource):
    """Streaming actions for the tests."""

    name = "feed"

    @property
    def probe(self) -> Probe:
        return self.gateway.state.setdefault("probe", Probe())

    @action(CountInput, Numbered)
    async def count(self, data: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Items 0 to ``upto - 1``, ``gap`` seconds apart."""
        probe = self.probe
        try:
            for n in range(data["upto"]):
                if n and data["gap"]:
                    await asyncio.sleep(data["gap"])
                if n == data["hold_at"]:
                    await probe.release.wait()
                if n == data["fail_at"]:
                    raise ActionError("NOT_FOUND", f"no item {n}", {"n": n})
                yield {"n": "not a number"} if n == data["bad_at"] else probe.item(n, data["body"])
        finally:
            probe.closed += 1

    @action(CountInput, Numbered)
    async def one(self, data: dict[str, Any]) -> dict[str, Any]:
        """Item ``upto`` alone, as a one-shot reply."""
        return Probe().item(data["upto"], data["body"])

    @action(CountInput, Numbered)
    async def stubborn(self, data: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Items that keep coming even when cancelled (it swallows the cancellation once)."""
        probe = self.probe
        try:
            for n in range(data["upto"]):
                try:
                    await probe.release.wait()
                except asyncio.CancelledError:
                    pass
                yield probe.item(n, "")
        finally:
            probe.closed += 1


def make_stream_gateway(**options: Any) -> Gateway:
    """A gateway serving `Feed`, with a fresh `Probe` in ``state["probe"]``; ``options`` are `Gateway`'s."""
    gateway = Gateway(resources=[Feed], **{"limits": Limits(rate=None), **options})
    gateway.state["probe"] = Probe()
    return gateway
