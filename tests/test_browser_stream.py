"""drizzle.js's ``dz.stream`` in a real Chromium: items in order, an error after them, a ``break`` that cancels.

Without a browser this test skips (or fails with ``DRIZZLE_REQUIRE_BROWSER=1``).
"""

from __future__ import annotations

from tests.support.browser import BLANK_ROUTE, ServerThread, chromium
from tests.support.streaming import make_stream_gateway

TIMEOUT_MS = 15000

STREAMS_JS = """async () => {
  const { Drizzle } = await import("/drizzle.js");
  window.dz = await Drizzle.connect(`ws://${location.host}/ws`);
  const all = [];
  for await (const item of dz.stream("feed", "count", { upto: 5 }, { fields: ["n", "tag.name"] })) all.push(item);
  const early = [];
  for await (const item of dz.stream("feed", "count", { upto: 1000, hold_at: 2 }, { fields: ["n"] })) {
    early.push(item.n);
    if (item.n === 1) break;
  }
  return { all, early };
}"""

ERROR_JS = """async () => {
  const { DrizzleError } = await import("/drizzle.js");
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
  return { beforeError, error, pong };
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

        async def server_side() -> tuple[int, int]:
            return probe.closed, sum(len(session.streams) for session in gateway.hub.sessions)

        # the break's __cancel__ was answered before the loop ended: its generator is closed, the socket still open
        assert server.run(server_side()) == (2, 0)
        result.update(page.evaluate(ERROR_JS))
        context.close()
    assert not errors, errors
    assert result["all"] == [{"n": n, "tag": {"name": f"t{n % 3}"}} for n in range(5)]
    assert result["early"] == [0, 1]
    assert result["beforeError"] == [0, 1]
    assert result["error"] == {"drizzleError": True, "code": "NOT_FOUND", "details": {"n": 2}}
    assert result["pong"] == "pong"
    assert probe.closed == 3
    assert probe.produced == 5 + 2 + 2

