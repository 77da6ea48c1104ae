"""drizzle.js's ``dz.stream`` in a real Chromium: items in order, an error after them, a ``break`` that cancels.

Without a browser this test skips (or fails with ``DRIZZLE_REQUIRE_BROWSER=1``).
"""

from __future__ import annotations

import asyncio

from tests.support.browser import BLANK_ROUTE, ServerThread, chromium
from tests.support.streaming import make_stream_gateway

TIMEOUT_MS = 15000

STREAMS_JS = """async () => {
  const { Drizzle, DrizzleError } = await import("/drizzle.js");
  const dz = await Drizzle.connect(`ws://${location.host}/ws`);
  const all = [];
  for await (const item of dz.stream("feed", "count", { upto: 5 }, { fields: ["n", "tag.name"] })) all.push(item);
  const early = [];
  for await (const item of dz.stream("feed", "count", { upto: 1000, hold_at: 2 }, { fields: ["n"] })) {
    early.push(item.n);
    if (item.n === 1) break;
  }
  const beforeError = [];
  let error = null;
  try {
    for await (const item of dz.stream("feed", "count", { upto: 5, fail_at: 2 }, { fields: ["n"] })) {
      beforeError.push(item.n);
    }
  } catch (caught) {
    error = { drizzleError: caught instanceof DrizzleError, code: caught.code, details: caught.details };
  }
  const pong = await dz.ping();
  dz.close();
  return { all, early, beforeError, error, pong };
}"""


def test_dz_stream_in_chromium_yields_items_cancels_on_break_and_rejects_on_error():
    gateway = make_stream_gateway(extra_routes=[BLANK_ROUTE])
    probe = gateway.state["probe"]
    with chromium() as browser, ServerThread(gateway) as server:
        context = browser.new_context()
        context.set_default_timeout(TIMEOUT_MS)
        errors: list[str] = []
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(server.url("/blank"))
        result = page.evaluate(STREAMS_JS)
        context.close()

        async def streams_left() -> tuple[int, int]:
            async with asyncio.timeout(5):
                while probe.closed < 3:
                    await asyncio.sleep(0.01)
            return probe.closed, sum(len(session.streams) for session in gateway.hub.sessions)

        closed, running = server.run(streams_left())
    assert not errors, errors
    assert result["all"] == [{"n": n, "tag": {"name": f"t{n % 3}"}} for n in range(5)]
    assert result["early"] == [0, 1]
    assert result["beforeError"] == [0, 1]
    assert result["error"] == {"drizzleError": True, "code": "NOT_FOUND", "details": {"n": 2}}
    assert result["pong"] == "pong"
    assert (closed, running) == (3, 0)  # the cancelled one was closed on the server, at its hold
    assert probe.produced == 5 + 2 + 2

