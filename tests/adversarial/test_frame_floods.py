"""Frame floods and CPU per error: clients send pings, empty continuations, requests and costly errors past the rate.

Every frame takes a token from its connection's bucket (``rate`` 100/s,
``burst`` 200, docs/security.md's limits table): a request past it is
answered ``RATE_LIMITED``, a ping or a fragment that does not end its message
closes the connection with 1008. The floods run at once, each on its own
connection, while the bystander pings on another: its own bucket is untouched.
"""

from __future__ import annotations

import asyncio
import json
import struct
import time

import pytest

from drizzle_gateway.runtime.limits import Limits
from drizzle_gateway.wire.errors import DETAIL_ENTRIES
from tests.support.bystander import Bystander, logger
from tests.support.raw_frames import CLOSE, CONTINUATION, PING, PONG, TEXT, frame, play, server_frames
from tests.support.request_frames import ERROR_FRAME_BYTES, call
from tests.support.stalled_socket import pipelined

pytestmark = pytest.mark.adversarial

BURST, RATE = Limits().burst, Limits().rate
FLOOD = 600
"""Frames in each flood: three times the burst."""
TOO_MANY = (CLOSE, struct.pack("!H", 1008) + b"too many frames")


def within_the_bucket(served: int, seconds: float) -> bool:
    """Whether ``served`` frames in ``seconds`` are the burst plus at most what the rate refilled meanwhile."""
    return BURST <= served <= BURST + RATE * seconds + 1


async def timed(flood):
    """``flood``'s result and the seconds it took."""
    started = time.perf_counter()
    result = await flood
    return result, time.perf_counter() - started


ROUNDS = 3
"""Flood rounds in a row, each on fresh connections: the attack outlasts several bystander pings on a fast machine."""


@pytest.mark.gen_test(timeout=30)
async def test_ping_fragment_and_request_floods_are_limited_as_documented(http_port, connect):
    bystander = await connect()
    pings = b"".join(frame(PING, b"%d" % n) for n in range(FLOOD))
    fragments = frame(TEXT, b"{", fin=False) + b"".join(frame(CONTINUATION, b"", fin=False) for _ in range(FLOOD))
    requests = [call(n, None, "__ping__") for n in range(FLOOD)]
    rounds = []
    async with Bystander(bystander, f"floods: {ROUNDS} x {FLOOD} pings, fragments and requests") as watch:
        for _ in range(ROUNDS):
            rounds.append(await asyncio.gather(
                timed(play(http_port, "/ws", pings, [])), timed(play(http_port, "/ws", fragments, [])),
                timed(pipelined(http_port, requests))))
    await watch.check()

    for (ping_bytes, ping_seconds), (fragment_bytes, _), (replies, request_seconds) in rounds:
        ping_frames = server_frames(ping_bytes)
        pongs = len(ping_frames) - 1
        assert within_the_bucket(pongs, ping_seconds), (pongs, ping_seconds)
        assert ping_frames == [(PONG, b"%d" % n) for n in range(pongs)] + [TOO_MANY]

        fragment_frames = server_frames(fragment_bytes)
        assert fragment_frames == [TOO_MANY]  # nothing to answer, so nothing before the close

        assert sorted(reply["request_id"] for reply in replies) == list(range(FLOOD))  # every request answered
        answered = [reply for reply in replies if reply.get("data") == "pong"]
        refused = [reply for reply in replies if reply.get("code") == "RATE_LIMITED"]
        assert len(answered) + len(refused) == FLOOD
        assert within_the_bucket(len(answered), request_seconds), (len(answered), request_seconds)
        assert all(0 <= reply["details"]["retry_after"] <= 1 / RATE for reply in refused)  # rounded to the ms
        logger.info("floods: %d of %d pings answered before 1008, %d of %d requests before RATE_LIMITED",
                    pongs, FLOOD, len(answered), FLOOD)


COSTLY = 40
"""Frames of ``max_items - 1`` invalid items (just within the limit) each attacker pipelines: beyond
``max_in_flight``, within the frame burst."""
ITEMS = Limits().max_items - 1


async def attack(sock) -> tuple[list[dict], list[int]]:
    """Send `COSTLY` costly frames on ``sock``, pipelined; their replies and sizes, in the order they came."""
    costly = json.dumps(call(0, "todos", "create", {"title": "t", "tags": [1] * ITEMS}))
    frames = [costly.replace('"request_id": 0', f'"request_id": {n}', 1) for n in range(COSTLY)]
    for text in frames:
        await sock.send(text)
    sizes, replies = [], []
    for _ in frames:
        reply = await asyncio.wait_for(sock.ws.read_message(), 20)
        sizes.append(len(reply))
        replies.append(json.loads(reply))
    return replies, sizes


async def costly_error_burst(raw, connect, attackers: int = 1) -> tuple[Bystander, list[list[dict]], list[int]]:
    """``attackers`` connections each send `COSTLY` frames, pipelined, each of which marshmallow validates and
    reports item by item, while the bystander pings; the bystander (not yet checked), each attacker's replies and
    all their sizes."""
    bystander = await connect()
    socks = [await raw() for _ in range(attackers)]
    label = f"errors: {attackers} x {COSTLY} frames of {ITEMS:,} invalid items"
    async with Bystander(bystander, label) as watch:
        started = time.perf_counter()
        results = await asyncio.gather(*(attack(sock) for sock in socks))
        seconds = time.perf_counter() - started
    sizes = [size for _, each in results for size in each]
    logger.info("%s: answered in %.2f s (%.1f ms a frame), the largest %d bytes; bystander's slowest ping %.1f ms",
                label, seconds, seconds / COSTLY / attackers * 1000, max(sizes), watch.worst * 1000)
    return watch, [replies for replies, _ in results], sizes


@pytest.mark.gen_test(timeout=30)
async def test_a_burst_of_the_costliest_errors_gets_small_frames_and_the_bystander_stays_served(raw, connect):
    """What test_limits checks for one frame of each kind, here for a pipelined burst of the costliest kind."""
    watch, [replies], sizes = await costly_error_burst(raw, connect)
    kept = (DETAIL_ENTRIES - 2) // 2
    assert [reply["request_id"] for reply in replies] == list(range(COSTLY))  # in order: one connection's requests
    assert all(reply["code"] == "INVALID_DATA" and reply["truncated"] for reply in replies)
    assert all(reply["details"] == {"tags": {str(i): ["Not a valid string."] for i in range(kept)}}
               for reply in replies)
    assert max(sizes) < ERROR_FRAME_BYTES
    assert watch.client.close_code is None
    assert await watch.client.request({"action": "__ping__"}) == "pong"


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("attackers", [1, 2])
async def test_a_burst_of_the_costliest_errors_holds_the_bystander_under_100_ms(raw, connect, attackers):
    """Each request of the burst costs several ms of the loop: its connection pauses (``cpu_share``), others run."""
    watch, replies, _ = await costly_error_burst(raw, connect, attackers)
    await watch.check()
    for each in replies:
        assert [reply["request_id"] for reply in each] == list(range(COSTLY))
        assert {reply["code"] for reply in each} == {"INVALID_DATA"}
