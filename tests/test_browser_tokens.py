"""drizzle.js's getToken in a real Chromium: refreshed ahead of the expiry, the connection outlives it.

The gateway's hook reads ``name@deadline`` (unix seconds). One page connects
with ``getToken`` (a token good for 1.5 s each time, refreshed 0.7 s ahead),
another with one fixed token of the same first deadline. The fixed one is
closed with 4003 once the deadline has passed; the refreshed one still
answers after that. Without a browser these tests skip (or fail with
``DRIZZLE_REQUIRE_BROWSER=1``).
"""

from __future__ import annotations

import pytest

from drizzle_gateway import Identity
from drizzle_gateway.runtime.auth import Credentials
from tests.support.browser import BLANK_ROUTE, ServerThread, chromium
from tests.support.serve_app import make_gateway

TIMEOUT_MS = 15000


def authenticate(credentials: Credentials):
    name, _, deadline = (credentials.token or "").partition("@")
    if not name:
        return None
    return Identity({"name": name}, expires_at=float(deadline)) if deadline else {"name": name}


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


CONNECT_JS = """async (fixed) => {
  const { Drizzle } = await import("/drizzle.js");
  window.log = { asked: [], closes: [], errors: [] };
  const options = fixed === null
    ? { getToken: async () => { log.asked.push(Date.now()); return `ann@${Date.now() / 1000 + 1.5}`; },
        refreshAhead: 700 }
    : { token: fixed };
  window.dz = await Drizzle.connect(`ws://${location.host}/ws`, options);
  dz.on("close", (info) => log.closes.push(info));
  dz.on("error", (error) => log.errors.push(`${error.code}: ${error.message}`));
}"""


def test_get_token_refreshes_ahead_of_the_expiry_and_the_connection_outlives_it(browser):
    with ServerThread(make_gateway(authenticate=authenticate, auth_throttle=False,
                                   extra_routes=[BLANK_ROUTE])) as server:
        context = browser.new_context()
        context.set_default_timeout(TIMEOUT_MS)
        try:
            refreshed = context.new_page()
            refreshed.goto(server.url("/blank"))
            refreshed.evaluate(CONNECT_JS, None)
            first_deadline = refreshed.evaluate("log.asked[0]") / 1000 + 1.5
            fixed = context.new_page()
            fixed.goto(server.url("/blank"))
            fixed.evaluate(CONNECT_JS, f"ann@{first_deadline}")
            fixed.wait_for_function("log.closes.length === 1")  # the first deadline has passed
            assert fixed.evaluate("log.closes") == [{"code": 4003, "reason": "token expired", "willReconnect": False}]
            whoami = refreshed.evaluate("""async () => (await dz.call("lab", "whoami")).user.name""")
            assert whoami == "ann"
            log = refreshed.evaluate("log")
            assert log["closes"] == [] and log["errors"] == []
            assert len(log["asked"]) >= 2 and log["asked"][1] / 1000 < first_deadline  # refreshed before it
        finally:
            context.close()
