"""drizzle.js re-subscribes every channel after a server restart, in a real Chromium.

A page subscribes to 60 channels; the gateway is killed and started again on
the same port; once the page has reconnected, each of the 60 channels must
deliver an event to it. Without a browser these tests skip (or fail with
``DRIZZLE_REQUIRE_BROWSER=1``).
"""

from __future__ import annotations

import signal

import pytest

from tests.support.browser import GatewayProcess, chromium

TIMEOUT_MS = 20000
CHANNELS = 60

CLIENT_JS = """async (channels) => {
  const { Drizzle } = await import("/drizzle.js");
  window.log = { errors: [], reconnects: 0, states: [] };
  window.seen = new Set();
  window.dz = await Drizzle.connect(`ws://${location.host}/ws`, { backoff: { initial: 200, max: 1000 } });
  dz.on("error", (error) => log.errors.push(`${error.code}: ${error.message}`));
  dz.on("reconnect", () => { log.reconnects += 1; });
  dz.on("state", (state) => log.states.push(state));
  for (let i = 0; i < channels; i++) {
    await dz.subscribe(`chat.room${i}`, (data, meta) => seen.add(meta.topic));
  }
  return dz.subscriptions.size;
}"""

# drizzle.js does not send a publish again after a RATE_LIMITED (only after a
# reconnect), so the publishing page waits out a RATE_LIMITED itself.
PUBLISH_JS = """async (channels) => {
  const { Drizzle } = await import("/drizzle.js");
  const dz = await Drizzle.connect(`ws://${location.host}/ws`);
  const publishOnce = async (channel) => {
    for (let attempt = 0; attempt < 20; attempt++) {
      try {
        return await dz.publish(channel, { author: { name: "bob" }, text: `to ${channel}` });
      } catch (error) {
        if (error.code !== "RATE_LIMITED") throw error;
        await new Promise((resolve) => setTimeout(resolve, 1000 * error.details.retry_after));
      }
    }
    throw new Error(`could not publish to ${channel}`);
  };
  for (let i = 0; i < channels; i++) await publishOnce(`chat.room${i}`);
  dz.close();
}"""


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


@pytest.mark.parametrize("target", ["tests.support.serve_app:make_gateway", "tests.support.throttled_app:make_gateway"],
                         ids=["default-limits", "rate-limited"])
def test_every_channel_delivers_again_after_the_server_is_killed_and_restarted(browser, target):
    server = GatewayProcess(target).start()
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    page_errors: list[str] = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda error: page_errors.append(str(error)))
        page.goto(server.url("/drizzle.js"))
        assert page.evaluate(CLIENT_JS, CHANNELS) == CHANNELS

        server.stop(signal.SIGKILL)
        page.wait_for_function("dz.state === 'reconnecting'")
        server.start()
        page.wait_for_function("log.reconnects === 1 && dz.state === 'open'")
        assert page.evaluate("log.errors") == []
        assert page.evaluate("dz.subscriptions.size") == CHANNELS

        publisher = context.new_page()
        publisher.goto(server.url("/drizzle.js"))
        publisher.evaluate(PUBLISH_JS, CHANNELS)
        page.wait_for_function(f"seen.size === {CHANNELS}")
        assert page.evaluate("[...seen].sort()") == sorted(f"chat.room{i}" for i in range(CHANNELS))
        assert page.evaluate("log.errors") == []
        assert page.evaluate("log.reconnects") == 1
    finally:
        context.close()
        server.stop()
    assert not page_errors, f"uncaught errors in the page: {page_errors}"
