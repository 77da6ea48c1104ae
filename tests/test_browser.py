"""drizzle.js, the explorer and the chat example in a real Chromium.

Without a browser these tests skip with the reason; with
``DRIZZLE_REQUIRE_BROWSER=1`` (as CI sets) they fail instead.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from examples.chat.app import make_gateway as make_chat_gateway
from examples.todo.app import make_gateway as make_todo_gateway
from tests.support.browser import ARTIFACTS, BLANK_ROUTE, ROOT, GatewayProcess, ServerThread, chromium
from tests.support.gateways import rebuilt
from tests.support.ports import free_port, wait_for_port
from tests.support.serve_app import make_gateway as make_test_gateway
from tests.support.tls import self_signed

TIMEOUT_MS = 15000
COMMAND = str(Path(sys.executable).with_name("drizzle-gateway"))


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


@pytest.fixture
def open_page(browser):
    """Open pages in fresh browser contexts; page errors fail the test."""
    contexts = []
    errors: list[str] = []

    def _open(url: str, width: int = 1100, height: int = 760):
        context = browser.new_context(viewport={"width": width, "height": height})
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(url)
        return page

    yield _open
    for context in contexts:
        context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


@pytest.fixture
def served(gateway_options):
    """A test gateway of its own (todo example + test resources) with a blank page, served from a thread."""
    with ServerThread(make_test_gateway(**{"extra_routes": [BLANK_ROUTE], **gateway_options})) as server:
        yield server


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


# -- drizzle.js ------------------------------------------------------------------

OUTCOME_JS = """() => {
window.outcome = async (promise) => {
  const { DrizzleError } = await import("/drizzle.js");
  try {
    return { ok: true, data: await promise };
  } catch (error) {
    return { ok: false, drizzleError: error instanceof DrizzleError, code: error.code,
             message: error.message, details: error.details ?? null };
  }
};
window.connect = async (options = {}) => {
  const { Drizzle } = await import("/drizzle.js");
  return Drizzle.connect(`ws://${location.host}/ws`, options);
};
}"""


def test_calls_resolve_and_every_error_reaches_js_as_drizzle_error(served, open_page):
    page = open_page(served.url("/blank"))
    page.evaluate(OUTCOME_JS)
    results = page.evaluate("""async () => {
      const dz = await connect({ timeout: 5000 });
      const results = {
        created: await outcome(dz.call("todos", "create", { title: "milk", tags: ["shop"] })),
        invalid_data: await outcome(dz.call("todos", "create", {})),
        invalid_fields: await outcome(dz.call("todos", "list", undefined, { fields: ["nope"] })),
        resource_not_found: await outcome(dz.call("nowhere", "list")),
        action_not_found: await outcome(dz.call("todos", "explode")),
        topic_not_found: await outcome(dz.subscribe("nowhere", () => {})),
        forbidden: await outcome(dz.publish("alerts", { author: { name: "eve" }, text: "hi" })),
        validation_error: await outcome(dz.request({ action: 42 })),
        internal_error: await outcome(dz.call("lab", "fail")),
        own_code: await outcome(dz.call("lab", "refuse")),
        not_found: await outcome(dz.call("todos", "get", { id: 99 })),
        timeout: await outcome(dz.call("lab", "sleep", { seconds: 3, tag: "slow" }, { timeout: 300 })),
        still_fine: await outcome(dz.ping()),
      };
      dz.close();
      return results;
    }""")
    owner = {"name": "ada", "email": "ada@example.com"}
    assert results["created"] == {
        "ok": True, "data": {"id": 1, "title": "milk", "done": False, "tags": ["shop"], "owner": owner}}
    expected_codes = {
        "invalid_data": "INVALID_DATA", "invalid_fields": "INVALID_FIELDS", "resource_not_found": "RESOURCE_NOT_FOUND",
        "action_not_found": "ACTION_NOT_FOUND", "topic_not_found": "TOPIC_NOT_FOUND", "forbidden": "FORBIDDEN",
        "validation_error": "VALIDATION_ERROR", "internal_error": "INTERNAL_ERROR", "own_code": "QUOTA_EXCEEDED",
        "not_found": "NOT_FOUND", "timeout": "TIMEOUT",
    }
    for name, code in expected_codes.items():
        outcome = results[name]
        assert outcome["ok"] is False and outcome["drizzleError"] is True, (name, outcome)
        assert outcome["code"] == code, (name, outcome)
        assert outcome["message"], (name, outcome)
    assert results["invalid_data"]["details"] == {"title": ["Missing data for required field."]}
    assert results["invalid_fields"]["details"]["fields"] == ["nope"]
    assert results["own_code"]["details"] == {"limit": 3}
    assert results["not_found"]["details"] == {"id": 99}
    assert "secret" not in json.dumps(results["internal_error"])
    assert results["still_fine"] == {"ok": True, "data": "pong"}


def test_field_selection_on_calls_and_on_events(served, open_page):
    page = open_page(served.url("/blank"))
    page.evaluate(OUTCOME_JS)
    result = page.evaluate("""async () => {
      const dz = await connect();
      await dz.call("todos", "create", { title: "milk" });
      const reply = await dz.call("todos", "get", { id: 1 }, { fields: ["id", "owner.name"] });
      const listed = await dz.call("todos", "list", undefined, { fields: ["title"] });
      const events = [];
      const arrived = new Promise((resolve) => dz.subscribe("chat.fields", (data, meta) => {
        events.push({ data, topic: meta.topic });
        resolve();
      }, { fields: ["author.name", "seq"] }));
      await new Promise((resolve) => setTimeout(resolve, 0));
      await dz.publish("chat.fields", { author: { name: "ada", email: "ada@example.com" }, text: "hi", seq: 7 });
      await arrived;
      dz.close();
      return { reply, listed, events };
    }""")
    assert result["reply"] == {"id": 1, "owner": {"name": "ada"}}
    assert result["listed"] == [{"title": "milk"}]
    assert result["events"] == [{"topic": "chat.fields", "data": {"author": {"name": "ada"}, "seq": 7}}]


def test_invalid_publish_is_refused_and_seen_by_nobody(served, open_page):
    listener = open_page(served.url("/blank"))
    listener.evaluate(OUTCOME_JS)
    listener.evaluate("""async () => {
      window.dz = await connect();
      window.seen = [];
      await dz.subscribe("chat.room1", (data) => seen.push(data.text));
    }""")
    sender = open_page(served.url("/blank"))
    sender.evaluate(OUTCOME_JS)
    outcomes = sender.evaluate("""async () => {
      const dz = await connect();
      const refused = await outcome(dz.publish("chat.room1", { author: { name: "eve" }, text: "x".repeat(101) }));
      const accepted = await outcome(dz.publish("chat.room1", { author: { name: "ada" }, text: "ok" }));
      return { refused, accepted };
    }""")
    assert outcomes["refused"]["code"] == "INVALID_DATA"
    assert outcomes["refused"]["details"] == {"payload": {"text": ["Longer than maximum length 100."]}}
    assert outcomes["accepted"] == {"ok": True, "data": {"topic": "chat.room1", "duplicate": False}}
    listener.wait_for_function("seen.length >= 1")
    assert listener.evaluate("seen") == ["ok"]


# -- the chat example --------------------------------------------------------------


def open_chat(open_page, url: str, name: str):
    page = open_page(f"{url}?name={name}", width=900, height=640)
    page.wait_for_selector("body[data-ready]")
    page.wait_for_selector("#status[data-state='open']")
    return page


def say(page, text: str) -> None:
    page.fill("#text", text)
    page.click("#send")


def message_texts(page) -> list[str]:
    return page.eval_on_selector_all("#messages li:not(.empty) .text", "items => items.map(i => i.textContent)")


def test_chat_pages_exchange_messages_through_the_typed_topic(open_page):
    with ServerThread(make_chat_gateway()) as server:
        ada = open_chat(open_page, server.url("/"), "ada")
        bob = open_chat(open_page, server.url("/"), "bob")
        assert ada.inner_text("#status") == "connected"
        say(ada, "hello bob")
        bob.wait_for_selector("#messages li:has-text('hello bob')")
        say(bob, "hi ada, how are things?")
        ada.wait_for_selector("#messages li:has-text('how are things')")
        say(ada, "typed and validated, as promised")
        bob.wait_for_selector("#messages li:has-text('as promised')")
        ada.wait_for_selector("#messages li.mine:has-text('as promised')")
        expected = ["hello bob", "hi ada, how are things?", "typed and validated, as promised"]
        assert message_texts(ada) == expected
        assert message_texts(bob) == expected
        assert ada.inner_text("#messages li:not(.mine) .author") == "bob"
        # a page opened later gets the room's history
        carol = open_chat(open_page, server.url("/"), "carol")
        carol.wait_for_function("document.querySelectorAll('#messages li .text').length === 3")
        assert message_texts(carol) == expected
        screenshot(ada, "chat.png")


def test_chat_refuses_a_too_long_message_and_nobody_sees_it(open_page):
    """Over the schema's maxLength Send is off and the page says so; what the server refuses is said for people."""
    with ServerThread(make_chat_gateway()) as server:
        ada = open_chat(open_page, server.url("/"), "ada")
        bob = open_chat(open_page, server.url("/"), "bob")
        ada.fill("#text", "x" * 500)
        assert (ada.inner_text("#counter"), ada.is_enabled("#send"), ada.inner_text("#error")) == ("500/500", True, "")
        ada.fill("#text", "x" * 501)
        assert ada.inner_text("#counter") == "501/500"
        assert ada.is_disabled("#send")
        assert ada.inner_text("#error") == "Message too long (501/500)"
        ada.press("#text", "Enter")  # no implicit submission past a disabled Send
        assert ada.input_value("#text") == "x" * 501, "the refused text stays for editing"
        screenshot(ada, "chat-refused.png")
        ada.fill("#text", "x" * 499)
        assert (ada.is_enabled("#send"), ada.inner_text("#error")) == (True, "")
        # a refusal the page cannot foresee (a name over 40 characters, past the input's maxlength) is said plainly
        ada.evaluate("document.getElementById('author').value = 'a'.repeat(41)")
        say(ada, "from a long name")
        ada.wait_for_function("document.getElementById('error').textContent.length > 0")
        assert ada.inner_text("#error") == "Name: Length must be between 1 and 40."
        ada.fill("#author", "ada")
        say(ada, "short enough")
        bob.wait_for_selector("#messages li:has-text('short enough')")
        ada.wait_for_selector("#messages li:has-text('short enough')")
        assert message_texts(bob) == ["short enough"]
        assert message_texts(ada) == ["short enough"]
        carol = open_chat(open_page, server.url("/"), "carol")
        carol.wait_for_selector("#messages li:has-text('short enough')")
        assert message_texts(carol) == ["short enough"]


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGKILL], ids=["service-restart-1012", "killed"])
def test_chat_page_reconnects_and_resubscribes_after_a_server_restart(open_page, stop_signal):
    server = GatewayProcess("examples.chat.app:gateway").start()
    try:
        ada = open_chat(open_page, server.url("/"), "ada")
        say(ada, "before the restart")
        ada.wait_for_selector("#messages li:has-text('before the restart')")
        server.stop(stop_signal)
        ada.wait_for_selector("#status[data-state='reconnecting']")
        assert ada.inner_text("#status") == "reconnecting…"
        server.start()
        ada.wait_for_selector("#status[data-state='open']")
        bob = open_chat(open_page, server.url("/"), "bob")
        say(bob, "after the restart")
        ada.wait_for_selector("#messages li:has-text('after the restart')")
        assert message_texts(ada) == ["before the restart", "after the restart"]
    finally:
        server.stop()


# -- the explorer --------------------------------------------------------------------


def test_explorer_lists_the_todo_actions_and_calls_one_through_its_form(open_page):
    with ServerThread(rebuilt(make_todo_gateway(), explorer=True)) as server:
        page = open_page(server.url("/_explorer"), width=1280, height=860)
        page.wait_for_selector("#status[data-state='open']")
        page.wait_for_selector("#sidebar button")
        listed = page.eval_on_selector_all("#sidebar button", "buttons => buttons.map(b => b.dataset.key)")
        for name in ["create", "get", "list", "update", "watch"]:
            assert f"action:todos.{name}" in listed
        assert "topic:todos" in listed
        assert page.inner_text("#title") == "todo example"

        page.click("button[data-key='action:todos.create']")
        assert json.loads(page.input_value("#action-input")) == {"title": "example", "tags": []}
        assert "Add a todo" in page.inner_text("#panel .doc")
        page.fill("#action-input", '{"title": "buy milk", "tags": ["shop"]}')
        page.check("#action-fields input[value='id']")
        page.check("#action-fields input[value='title']")
        page.check("#action-fields input[value='owner.name']")
        page.click("#call")
        page.wait_for_selector("#result[data-status='ok']")
        assert json.loads(page.inner_text("#result pre")) == {"id": 1, "title": "buy milk", "owner": {"name": "ada"}}
        screenshot(page, "explorer.png")

        page.fill("#action-input", '{"tags": "not a list"}')
        page.click("#call")
        page.wait_for_selector("#result[data-status='error']")
        assert page.inner_text("#result .code") == "SCHEMA CHECK", "checked in the page first"
        page.click("#send-anyway")
        page.wait_for_selector("#result .code:text('INVALID_DATA')")
        details = json.loads(page.inner_text("#result .details"))
        assert set(details) == {"title", "tags"}
        screenshot(page, "explorer-error.png")


@pytest.mark.gateway_options(explorer=True)
def test_explorer_watches_a_topic_and_publishes_to_it(gateway, open_page):
    with ServerThread(gateway) as server:
        explore_chat_topic(open_page(server.url("/_explorer"), width=1280, height=860))


def explore_chat_topic(page) -> None:
    page.wait_for_selector("button[data-key='topic:chat.{room}']")
    page.click("button[data-key='topic:chat.{room}']")
    page.fill("#channel", "chat.lobby")
    page.check("#topic-fields input[value='text']")
    page.click("#subscribe")
    page.wait_for_selector("#subscribe-result[data-status='ok']")
    page.fill("#publish-input", json.dumps({"author": {"name": "ada"}, "text": "hello from the explorer"}))
    page.click("#publish")
    page.wait_for_selector("#publish-result[data-status='ok']")
    page.wait_for_selector("#events li")
    assert json.loads(page.inner_text("#events li pre")) == {"text": "hello from the explorer"}

    page.fill("#publish-input", json.dumps({"author": {"name": "eve"}, "text": "x" * 101}))
    page.click("#publish")
    page.wait_for_selector("#publish-result[data-status='error']")
    assert page.inner_text("#publish-result .code") == "SCHEMA CHECK", "checked in the page first"
    page.click("#send-anyway")
    page.wait_for_selector("#publish-result .code:text('INVALID_DATA')")
    assert page.locator("#events li").count() == 1, "the refused payload reached nobody"
    screenshot(page, "explorer-topic.png")


def test_heartbeat_notices_a_frozen_server_and_reconnects_when_it_thaws(open_page):
    """A stopped (not closed) server sends no close frame: only the __ping__ heartbeat can tell."""
    server = GatewayProcess("examples.chat.app:gateway").start()
    try:
        page = open_page(server.url("/drizzle.js"))
        page.evaluate("""async () => {
          const { Drizzle } = await import("/drizzle.js");
          window.log = [];
          window.dz = await Drizzle.connect(`ws://${location.host}/ws`, {
            heartbeatInterval: 300, heartbeatTimeout: 700, backoff: { initial: 200, max: 1000 } });
          for (const type of ["close", "reconnect"]) dz.on(type, (detail) => log.push({ type, detail }));
          window.seen = [];
          await dz.subscribe("chat.lobby", (data) => seen.push(data.text));
        }""")
        server.process.send_signal(signal.SIGSTOP)
        try:
            page.evaluate("""() => {
              window.inFlight = dz.call("rooms", "history", { room: "lobby" }, { timeout: 60000 })
                .then(() => "resolved", (error) => error.code);
            }""")
            page.wait_for_function("log.some(entry => entry.type === 'close')")
            assert page.evaluate("inFlight") == "CONNECTION_LOST"
            closed = page.evaluate("log[0].detail")
            assert closed == {"code": 1006, "reason": "heartbeat timeout", "willReconnect": True}
            assert page.evaluate("dz.state") == "reconnecting"
        finally:
            server.process.send_signal(signal.SIGCONT)
        page.wait_for_function("log.some(entry => entry.type === 'reconnect')")
        assert page.evaluate("dz.state") == "open"
        reply = page.evaluate("dz.call('rooms', 'say', { room: 'lobby', author: 'ada', text: 'thawed' })")
        assert reply["text"] == "thawed"
        page.wait_for_function("seen.includes('thawed')")
    finally:
        server.stop()


def test_a_page_served_over_https_connects_over_wss_from_a_path(browser, tmp_path):
    """drizzle.js given "/ws" on an https page opens wss:// (Chromium told to accept the self-signed certificate)."""
    cert, key = self_signed(tmp_path)
    port = free_port()
    proc = subprocess.Popen([COMMAND, "serve", "examples.chat.app:gateway", "--port", str(port),
                             "--certfile", str(cert), "--keyfile", str(key)], cwd=ROOT, stderr=subprocess.DEVNULL)
    context = browser.new_context(ignore_https_errors=True)
    try:
        wait_for_port(port, timeout=20, process=proc)
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        page.goto(f"https://127.0.0.1:{port}/")
        url, pong = page.evaluate("""async () => {
          const { Drizzle } = await import("/drizzle.js");
          const dz = await Drizzle.connect("/ws");
          const pong = await dz.ping();
          dz.close();
          return [dz.url, pong];
        }""")
        assert (url, pong) == (f"wss://127.0.0.1:{port}/ws", "pong")
    finally:
        context.close()
        proc.terminate()
        assert proc.wait(timeout=10) == 0


def test_the_readme_browser_snippet_runs_on_a_page_of_the_chat_example(open_page):
    """The README's module script, as written, in a page the chat example serves."""
    text = (ROOT / "README.md").read_text()
    intro = text[text.index("## In the browser"):]
    assert "of a page the chat example serves" in intro
    snippet = re.search(r"```js\n(.*?)```", intro, re.S).group(1)
    with ServerThread(make_chat_gateway()) as server:
        page = open_chat(open_page, server.url("/"), "carol")
        logged: list[str] = []
        page.on("console", lambda message: logged.append(message.text))
        page.add_script_tag(content=snippet + "\nwindow.readmeHistory = history;\n", type="module")
        page.wait_for_function("window.readmeHistory !== undefined")
        assert page.evaluate("window.readmeHistory") == [{"text": "hi"}]  # publishes skip rooms.say and its history
        page.wait_for_function("document.querySelectorAll('#messages li .text').length === 2")
    assert logged[:1] == ["chat.lobby ada hi"] and "chat.lobby bob hello" in logged
    assert any(re.fullmatch(r"sent at \d{4}-\d\d-\d\dT[\d:.]+(Z|[+-]\d\d:\d\d)", line) for line in logged), logged
