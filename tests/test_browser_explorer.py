"""The explorer as a user of an authenticating gateway meets it, in a real Chromium.

A token box that authenticates and reloads the contract, a reason for every
close, example pre-fills that fit their schema and are never sent unasked, the
check before sending, Ctrl+Enter, the call history across reloads, the frame
log, copy as code that runs, and the phone and desktop layouts. Screenshots go
to ``$DRIZZLE_ARTIFACTS`` (a temporary folder when unset).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from marshmallow import Schema, fields

from drizzle_gateway import ActionError, ErrorCode, Limits, Resource, Topic, action
from drizzle_gateway.contract.introspection import ISO_DATETIME
from drizzle_gateway.contract.typescript import typescript
from drizzle_gateway.wire.codec import encode
from examples.chat.app import ChatMessage
from examples.chat.app import make_gateway as make_chat_gateway
from examples.todo.app import make_gateway as make_todo_gateway
from tests.support.browser import ROOT, ServerThread, open_explorer, sidebar_keys
from tests.support.browser import browser_fixture as browser_fixture  # the fixtures browser and pages
from tests.support.browser import pages_fixture as pages_fixture
from tests.support.gateways import rebuilt
from tests.support.node_tools import CONTRACT, TSC, require, run_node

TOKEN = "s3cret"
ARTIFACTS = Path(os.environ.get("DRIZZLE_ARTIFACTS") or Path(tempfile.gettempdir()) / "drizzle-artifacts")


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def check_token(credentials: Any) -> str | None:
    """The authenticate hook of these tests: one good token."""
    return "ada" if credentials.token == TOKEN else None


def authenticating(**options: Any):
    """The chat example behind a token, with the explorer."""
    return rebuilt(make_chat_gateway(), explorer=True, authenticate=check_token, **options)


def sent_frames(page) -> list[dict]:
    """The request frames the frame log shows as sent."""
    texts = page.eval_on_selector_all("#frame-list li[data-direction='out'] code",
                                      "codes => codes.map(c => c.textContent)")
    return [json.loads(text) for text in texts]


def call_and_settle(page, selector: str = "#result") -> str:
    page.click("#call")
    page.wait_for_selector(f"{selector}[data-status='ok'], {selector}[data-status='error']")
    return page.get_attribute(selector, "data-status")


# -- authentication ----------------------------------------------------------------------------


def test_a_token_authenticates_reloads_the_contract_and_calls_and_subscriptions_work(pages):
    with ServerThread(authenticating()) as server:
        page = open_explorer(pages, server.url("/_explorer"))
        assert "action:rooms.say" not in sidebar_keys(page), "the contract is hidden before authentication"
        assert "once you authenticate" in page.inner_text("#panel")

        page.fill("#token", TOKEN)
        page.click("#reconnect")
        page.wait_for_selector("button[data-key='action:rooms.say']")
        assert page.inner_text("#status") == "open"
        assert {"action": "__auth__", "data": {"token": TOKEN}} in [
            {k: v for k, v in frame.items() if k != "request_id"} for frame in sent_frames(page)]

        page.click("button[data-key='topic:chat.{room}']")
        page.fill("#channel", "chat.lobby")
        page.click("#subscribe")
        page.wait_for_selector("#subscribe-result[data-status='ok']")
        page.click("button[data-key='action:rooms.say']")
        page.fill("#action-input", json.dumps({"room": "lobby", "author": "ada", "text": "behind a token"}))
        assert call_and_settle(page) == "ok"
        page.click("button[data-key='topic:chat.{room}']")
        page.wait_for_selector("#events li")
        assert json.loads(page.inner_text("#events li pre"))["text"] == "behind a token"


def test_calling_auth_by_hand_lists_the_contract_and_keeps_the_token(pages):
    with ServerThread(authenticating()) as server:
        page = open_explorer(pages, server.url("/_explorer"))
        page.click("button[data-key='action:__auth__']")
        page.fill("#action-input", json.dumps({"token": TOKEN}))
        assert call_and_settle(page) == "ok"
        assert json.loads(page.inner_text("#result pre")) == {"authenticated": True}
        page.wait_for_selector("button[data-key='action:rooms.say']")
        assert page.input_value("#token") == TOKEN, "used again on the next connection"
        assert "__auth__" not in page.inner_text("#history"), "a token is not kept in the history"


def test_a_refused_token_says_so(pages):
    with ServerThread(authenticating()) as server:
        page = open_explorer(pages, server.url("/_explorer"))
        page.fill("#token", "wrong")
        page.press("#token", "Enter")
        page.wait_for_selector("#problem")
        assert page.inner_text("#problem .code") == "UNAUTHENTICATED"
        assert "refused the token" in page.inner_text("#problem")


def test_an_auth_timeout_close_shows_its_code_and_reason(pages):
    with ServerThread(authenticating(limits=Limits(auth_timeout=0.5))) as server:
        # Not `open_explorer`, which waits to see the state "open": a loaded machine can take longer than the
        # 0.5 s it lasts to show it, and then that wait never ends.
        page = pages.open(server.url("/_explorer"), 1280, 860)
        page.wait_for_selector("#status[data-state='closed']")
        assert page.inner_text("#status") == "closed (4001)"
        notice = page.inner_text("#notice")
        assert "4001 not authenticated: not authenticated in time" in notice
        assert "Enter a token" in notice
        assert page.is_visible("#notice")
        page.click("#frames summary")
        closes = page.eval_on_selector_all("#frame-list li[data-direction='close']", "li => li.map(x => x.textContent)")
        assert any("4001" in text for text in closes)
        screenshot(page, "explorer-auth-timeout.png")


# -- pre-fills, the check, sending ---------------------------------------------------------------


def with_history_topic():
    """The chat example plus a topic that keeps history (and a typed DateTime in its payload)."""
    return rebuilt(make_chat_gateway(), explorer=True, topics=[Topic("log.{day}", ChatMessage, history=10)])


def test_prefills_fit_their_schema_and_nothing_is_sent_before_call(pages):
    gateway = rebuilt(make_todo_gateway(), explorer=True)
    with ServerThread(gateway) as server:
        page = open_explorer(pages, server.url("/_explorer"))
        for key in sidebar_keys(page):
            page.click(f"#sidebar button[data-key='{key}']")
            if key.startswith("action:"):
                status = page.get_attribute("#action-check", "data-status")
                assert status == "ok", (key, page.inner_text("#action-check"))
            elif page.locator("#publish-check").count():
                assert page.get_attribute("#publish-check", "data-status") == "ok", key
        assert [frame["action"] for frame in sent_frames(page)] == ["__schema__"], "only the contract was read"
        assert gateway.state["todos"] == {}

        page.click("button[data-key='action:todos.create']")
        prefilled = json.loads(page.input_value("#action-input"))
        assert prefilled == {"title": "example", "tags": []}
        assert call_and_settle(page) == "ok"
        assert [todo["title"] for todo in gateway.state["todos"].values()] == ["example"]


def test_history_is_offered_only_for_topics_that_keep_it(pages):
    with ServerThread(rebuilt(make_chat_gateway(), explorer=True)) as server:
        page = open_explorer(pages, server.url("/_explorer"))
        assert "action:__history__" not in sidebar_keys(page)
    with ServerThread(with_history_topic()) as server:
        page = open_explorer(pages, server.url("/_explorer"))
        page.click("button[data-key='action:__history__']")
        assert json.loads(page.input_value("#action-input"))["topic"] == "log.example"
        assert call_and_settle(page) == "ok"


def test_the_check_stops_a_bad_input_until_sent_anyway(pages):
    gateway = rebuilt(make_todo_gateway(), explorer=True)
    with ServerThread(gateway) as server:
        page = open_explorer(pages, server.url("/_explorer"))
        page.click("button[data-key='action:todos.create']")
        page.fill("#action-input", json.dumps({"title": "", "tags": "not a list", "colour": 1}))
        assert page.get_attribute("#action-check", "data-status") == "error"
        assert page.inner_text("#action-check").splitlines() == [
            "title: at least 1 character", "tags: expected array, got string", "colour: unknown field"]
        assert call_and_settle(page) == "error"
        assert page.inner_text("#result .code") == "SCHEMA CHECK"
        assert "create" not in [frame["action"] for frame in sent_frames(page)], "not sent"
        page.click("#send-anyway")
        page.wait_for_selector("#result .code:text('INVALID_DATA')")
        assert gateway.state["todos"] == {}


@pytest.mark.parametrize("keys", ["Control+Enter", "Meta+Enter"])
def test_ctrl_enter_sends(pages, keys):
    gateway = rebuilt(make_todo_gateway(), explorer=True)
    with ServerThread(gateway) as server:
        page = open_explorer(pages, server.url("/_explorer"))
        page.click("button[data-key='action:todos.create']")
        page.fill("#action-input", json.dumps({"title": "by keyboard"}))
        page.press("#action-input", keys)
        page.wait_for_selector("#result[data-status='ok']")
        assert [todo["title"] for todo in gateway.state["todos"].values()] == ["by keyboard"]


def test_a_streaming_action_lists_its_items_as_they_come(pages):
    gateway = rebuilt(make_todo_gateway(), explorer=True)
    with ServerThread(gateway) as server:
        page = open_explorer(pages, server.url("/_explorer"))
        page.click("button[data-key='action:todos.create']")
        for title in ("milk", "eggs", "oat milk"):
            page.fill("#action-input", json.dumps({"title": title}))
            assert call_and_settle(page) == "ok"
        page.click("button[data-key='action:todos.search']")
        page.fill("#action-input", json.dumps({"q": "milk"}))
        assert call_and_settle(page) == "ok"
        items = page.eval_on_selector_all("#stream-items li pre", "pres => pres.map(p => JSON.parse(p.textContent))")
        assert [item["title"] for item in items] == ["milk", "oat milk"]
        assert page.inner_text("#stream-status") == "ended: 2 items"


class Endless(Resource):
    """A stream that sends one item, then waits for ever; its ``finally`` is noted."""

    name = "endless"
    closed: list[str] = []  # noqa: RUF012 (the test reads what the server's generator did)

    @action(output=ChatMessage)
    async def tail(self, data: Any):
        try:
            yield {"author": "ada", "text": "first"}
            await asyncio.Event().wait()
        finally:
            Endless.closed.append("closed")


def test_stop_cancels_a_stream_and_its_generator_is_closed(pages):
    Endless.closed.clear()
    gateway = rebuilt(make_chat_gateway(), explorer=True)
    gateway.add_resource(Endless)
    with ServerThread(gateway) as server:
        page = open_explorer(pages, server.url("/_explorer"))
        page.click("button[data-key='action:endless.tail']")
        page.click("#call")
        page.wait_for_selector("#stream-items li")
        assert page.get_attribute("#result", "data-status") == "pending"
        page.click("#stream-stop")
        page.wait_for_selector("#result[data-status='ok']")
        assert page.inner_text("#stream-status") == "ended: 1 item"
        assert page.query_selector("#stream-stop") is None
        assert "__cancel__" in [frame.get("action") for frame in sent_frames(page)]
    assert Endless.closed == ["closed"]


def test_the_history_survives_a_reload_and_replays_without_sending(pages):
    gateway = rebuilt(make_todo_gateway(), explorer=True)
    with ServerThread(gateway) as server:
        page = open_explorer(pages, server.url("/_explorer"))
        page.click("button[data-key='action:todos.create']")
        page.fill("#action-input", json.dumps({"title": "remember me", "tags": ["a"]}))
        page.check("#action-fields input[value='id']")
        assert call_and_settle(page) == "ok"

        page.reload()
        page.wait_for_selector("#history button[data-history]")
        assert page.inner_text("#history button[data-history='0']").startswith("todos.create")
        page.click("#history button[data-history='0']")
        assert json.loads(page.input_value("#action-input")) == {"title": "remember me", "tags": ["a"]}
        assert page.is_checked("#action-fields input[value='id']")
        assert len(gateway.state["todos"]) == 1, "replaying fills the form, it sends nothing"
        page.click("#clear-history")
        assert page.locator("#history button[data-history]").count() == 0


# -- the schema view ---------------------------------------------------------------------------


def test_the_schema_view_names_types_as_the_codegen_and_dates_by_name(pages):
    with ServerThread(with_history_topic()) as server:
        page = open_explorer(pages, server.url("/_explorer"))
        page.click("button[data-key='action:rooms.say']")
        generated = typescript(json.loads(encode(make_chat_gateway().schema())))
        inputs, output = page.eval_on_selector_all(".schema-card code.type", "codes => codes.map(c => c.textContent)")
        assert (inputs, output) == ("NewMessageInput", "ChatMessage")
        assert f"export interface {inputs} " in generated and f"export interface {output} " in generated
        fields = page.eval_on_selector_all(".schema-card:last-child .tree > li", "lis => lis.map(li => li.textContent)")
        sent_at = next(text for text in fields if text.startswith("sent_at"))
        assert "ISO 8601 date-time" in sent_at and "\\d" not in sent_at
        assert page.evaluate(f"""async () => (await import("{server.url('/_explorer/explorer-types.js')}"))
                             .KNOWN_PATTERNS[{json.dumps(ISO_DATETIME)}]""") == "ISO 8601 date-time (offset optional)"
        assert not page.is_visible(".schema-card pre.schema"), "the JSON Schema itself stays folded"


# -- copy as code --------------------------------------------------------------------------------


def test_copied_python_and_drizzle_js_run_against_the_gateway(pages, tmp_path):
    gateway = authenticating()
    with ServerThread(gateway) as server:
        page = open_explorer(pages, server.url("/_explorer"))
        page.fill("#token", TOKEN)
        page.click("#reconnect")
        page.wait_for_selector("button[data-key='action:rooms.say']")
        page.click("button[data-key='action:rooms.say']")
        page.fill("#action-input", json.dumps({"room": "lobby", "author": "ada", "text": "from python"}))
        page.check("#action-fields input[value='text']")
        python = page.text_content("#code-python")
        assert "fields=[\"text\"]" in python
        script = tmp_path / "snippet.py"
        script.write_text(python)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        ran = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, env=env)
        assert ran.returncode == 0, ran.stderr
        assert ran.stdout.strip() == "{'text': 'from python'}"

        page.fill("#action-input", json.dumps({"room": "lobby", "author": "ada", "text": "from drizzle.js"}))
        code = page.text_content("#code-drizzle")
        page.evaluate("""async (code) => {
          const url = URL.createObjectURL(new Blob([code], { type: "text/javascript" }));
          await import(url);
        }""", code)
        assert any("from drizzle.js" in line for line in pages.console), pages.console
        said = [message["text"] for message in gateway.state["history"]["lobby"]]
        assert said == ["from python", "from drizzle.js"]
        assert [frame["action"] for frame in sent_frames(page)].count("say") == 0, "the page itself sent nothing"


def test_copied_typescript_type_checks_against_the_generated_module(pages, tmp_path):
    require(TSC)
    with ServerThread(with_history_topic()) as server:
        page = open_explorer(pages, server.url("/_explorer"))
        snippets = []
        page.click("button[data-key='action:rooms.say']")
        page.check("#action-fields input[value='author']")
        snippets.append(page.text_content("#code-typescript"))
        page.click("button[data-key='topic:chat.{room}']")
        snippets.append(page.text_content("#code-typescript"))  # the publish
        page.fill("#publish-input", "")
        snippets.append(page.text_content("#code-typescript"))  # nothing to publish: the subscribe
        schema = json.loads(encode(server.gateway.schema()))
    assert "api.rooms.say(" in snippets[0] and ".publish(" in snippets[1] and ".subscribe(" in snippets[2]
    (tmp_path / "generated").mkdir()
    (tmp_path / "generated" / "api.ts").write_text(typescript(schema))
    for index, snippet in enumerate(snippets):
        (tmp_path / "generated" / f"snippet{index}.ts").write_text(snippet)
    shutil.copy(CONTRACT / "package.json", tmp_path / "package.json")
    (tmp_path / "node_modules").symlink_to(CONTRACT / "node_modules", target_is_directory=True)
    config = {"compilerOptions": {"target": "ES2022", "module": "NodeNext", "moduleResolution": "NodeNext",
                                  "strict": True, "noEmit": True, "skipLibCheck": True, "types": [],
                                  "lib": ["ES2022", "DOM"]},
              "include": ["generated/**/*.ts"]}
    (tmp_path / "tsconfig.json").write_text(json.dumps(config))
    checked = run_node(TSC, "--pretty", "false", "-p", "tsconfig.json", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


# -- layouts ---------------------------------------------------------------------------------------

LAYOUT_JS = """() => {
  const box = (id) => {
    const element = document.getElementById(id);
    const rect = element.getBoundingClientRect();
    const style = getComputedStyle(element);
    return { left: rect.left, right: rect.right, top: rect.top, width: rect.width, height: rect.height,
             shown: style.display !== "none", overflowY: style.overflowY,
             scrolls: element.scrollHeight > element.clientHeight + 1 };
  };
  return { nav: box("sidebar"), main: box("main"), innerWidth, innerHeight,
           scrollWidth: document.documentElement.scrollWidth };
}"""


def test_on_a_phone_the_list_and_the_panel_each_take_the_screen_in_turn(pages):
    with ServerThread(with_history_topic()) as server:
        page = open_explorer(pages, server.url("/_explorer"), width=390, height=844)
        layout = page.evaluate(LAYOUT_JS)
        assert layout["scrollWidth"] <= layout["innerWidth"], layout
        nav = layout["nav"]
        assert nav["shown"] and not layout["main"]["shown"], layout
        assert nav["left"] == 0 and abs(nav["width"] - layout["innerWidth"]) <= 1, f"the list fills the width: {layout}"
        assert not nav["scrolls"], f"the list is no scroll box of its own: {layout}"
        assert page.is_visible("#sidebar button[data-key='action:__unsubscribe__']") or page.evaluate(
            "document.documentElement.scrollHeight > innerHeight"), "the whole list is reachable by scrolling the page"
        screenshot(page, "explorer-phone-list-390.png")

        page.click("button[data-key='action:rooms.say']")
        layout = page.evaluate(LAYOUT_JS)
        main = layout["main"]
        assert main["shown"] and not layout["nav"]["shown"], layout
        assert main["left"] == 0 and abs(main["width"] - layout["innerWidth"]) <= 1, f"the panel fills it: {layout}"
        assert main["top"] < 250, f"the panel starts near the top, not below the list: {layout}"
        assert layout["scrollWidth"] <= layout["innerWidth"], layout
        assert page.is_visible("#call") or page.locator("#call").count() == 1
        screenshot(page, "explorer-phone-panel-390.png")

        page.click("#back")
        layout = page.evaluate(LAYOUT_JS)
        assert layout["nav"]["shown"] and not layout["main"]["shown"], layout
        assert page.get_attribute("button[data-key='action:rooms.say']", "aria-current") == "true"


def test_on_a_desktop_the_list_and_the_panel_sit_side_by_side_and_call_is_in_view(pages):
    with ServerThread(with_history_topic()) as server:
        page = open_explorer(pages, server.url("/_explorer"), width=1280, height=800)
        page.click("button[data-key='action:rooms.say']")
        layout = page.evaluate(LAYOUT_JS)
        assert layout["nav"]["shown"] and layout["main"]["shown"], layout
        assert layout["nav"]["right"] <= layout["main"]["left"] + 1, layout
        assert layout["scrollWidth"] <= layout["innerWidth"], layout
        call = page.locator("#call").bounding_box()
        assert call is not None and call["y"] + call["height"] <= 800, f"Call is in view, above the fold: {call}"
        call_and_settle(page)
        page.click("#frames summary")
        screenshot(page, "explorer-1280.png")


# -- what the gateway sends is shown as text, never run as HTML ----------------------------------

MARKUP = '<img src="x" onerror="window.__ran = true"><b>bold</b>'


class Shouted(Schema):
    text = fields.Str(required=True, metadata={"description": f"what to say {MARKUP}"})


class Loud(Resource):
    """A resource whose docs, errors and events hold markup: <script>window.__ran = true</script>."""

    name = "loud"

    @action(Shouted, Shouted)
    async def refuse(self, data):
        """Refuses, with markup in its message: <img src="x" onerror="window.__ran = true">."""
        raise ActionError(ErrorCode.FORBIDDEN, f"no {MARKUP}")

    @action(Shouted, Shouted)
    async def announce(self, data):
        """Publishes what it is given to the news."""
        await self.gateway.publish("news", data)
        return data


def test_markup_in_docs_errors_events_and_frames_is_shown_as_text(pages):
    gateway = rebuilt(make_chat_gateway(), explorer=True, resources=[Loud], topics=[Topic("news", Shouted)])
    with ServerThread(gateway) as server:
        page = open_explorer(pages, server.url("/_explorer"))
        assert "<script>window.__ran = true</script>" in page.inner_text("#sidebar")
        page.click("#frames summary")
        page.click("button[data-key='topic:news']")
        page.click("#subscribe")
        page.wait_for_selector("#subscribe-result[data-status='ok']")
        page.click("button[data-key='action:loud.refuse']")
        assert MARKUP in page.inner_text("#panel"), "the field's description"
        page.fill("#action-input", json.dumps({"text": MARKUP}))
        assert call_and_settle(page) == "error"
        assert page.inner_text("#result .message") == f"no {MARKUP}"
        page.click("button[data-key='action:loud.announce']")
        page.fill("#action-input", json.dumps({"text": MARKUP}))
        assert call_and_settle(page) == "ok"
        assert json.dumps(MARKUP) in page.text_content("#code-drizzle"), "the copied code"
        page.click("button[data-key='topic:news']")
        page.wait_for_selector("#events li")
        assert json.loads(page.inner_text("#events li pre")) == {"text": MARKUP}
        assert json.dumps(MARKUP) in page.inner_text("#frame-list")
        assert page.evaluate("document.querySelectorAll('#sidebar b, #panel img, #panel b, #frames img').length") == 0
        assert page.evaluate("window.__ran") is None
