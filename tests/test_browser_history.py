"""drizzle.js recovers what it missed on a topic with history, in a real Chromium.

The page's websocket is cut from the server side (the TCP connection is
aborted; the gateway keeps running) while 100 events are published; the
page reconnects by itself, re-subscribes with ``since`` and must end with
all 100 in order, none twice, and ``recovered: true``. Without a browser
this test skips (or fails with ``DRIZZLE_REQUIRE_BROWSER=1``).
"""

from __future__ import annotations

import asyncio

import pytest

from drizzle_gateway import Gateway, Topic
from tests.support.browser import BLANK_ROUTE, ServerThread, chromium
from tests.support.resources import Message

TIMEOUT_MS = 20000
EVENTS = 100
CUT_AFTER = 30

CLIENT_JS = """async () => {
  const { Drizzle } = await import("/drizzle.js");
  window.log = { offsets: [], seqs: [], recoveries: [], reconnects: 0 };
  window.dz = await Drizzle.connect(`ws://${location.host}/ws`, { backoff: { initial: 100, max: 500 } });
  dz.on("recovery", (info) => log.recoveries.push(info));
  dz.on("reconnect", () => { log.reconnects += 1; });
  await dz.subscribe("feed.lobby", (data, meta) => { log.offsets.push(meta.offset); log.seqs.push(data.seq); });
  return dz.position("feed.lobby");
}"""


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


def make_gateway() -> Gateway:
    return Gateway(topics=[Topic("feed.{room}", Message, history=200)], extra_routes=[BLANK_ROUTE])


async def publish_cutting_the_socket(gateway: Gateway) -> None:
    """Publish 100 events, a few ms apart; after the 30th, abort every connection's TCP stream."""
    for seq in range(1, EVENTS + 1):
        await gateway.publish("feed.lobby", {"author": {"name": "ada"}, "text": f"m{seq}", "seq": seq})
        if seq == CUT_AFTER:
            for session in list(gateway.hub.sessions):
                session.peer.ws_connection.stream.close()  # no close frame: the page sees 1006
        await asyncio.sleep(0.005)


@pytest.mark.timeout(90)
def test_the_page_recovers_every_event_published_while_its_socket_was_cut(browser):
    gateway = make_gateway()
    with ServerThread(gateway) as server:
        context = browser.new_context()
        context.set_default_timeout(TIMEOUT_MS)
        page_errors: list[str] = []
        try:
            page = context.new_page()
            page.on("pageerror", lambda error: page_errors.append(str(error)))
            page.goto(server.url("/blank"))
            assert page.evaluate(CLIENT_JS)["offset"] == 0
            server.run(publish_cutting_the_socket(gateway))
            page.wait_for_function(f"log.seqs.length >= {EVENTS} && dz.state === 'open'")
            log = page.evaluate("log")
        finally:
            context.close()
    assert log["reconnects"] >= 1, "the socket was cut, so the page must have reconnected"
    assert log["seqs"] == list(range(1, EVENTS + 1))
    assert log["offsets"] == list(range(1, EVENTS + 1))
    assert log["recoveries"] and all(info["recovered"] is True for info in log["recoveries"])
    assert page_errors == []
