"""The explorer and the chat page as a newcomer meets them, in a real Chromium.

Pre-filled inputs the server accepts, a channel box that remembers, no stale
contract after a failed connect, no unhandled rejections, a path prefix,
and layouts at phone and desktop widths (screenshots in ``test-artifacts/``).
Without a browser these tests skip with the reason; with
``DRIZZLE_REQUIRE_BROWSER=1`` they fail instead.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from marshmallow import Schema, fields, validate

from drizzle_gateway import Gateway, Limits, Resource, action
from examples.chat.app import make_gateway as make_chat_gateway
from examples.todo.app import make_gateway as make_todo_gateway
from tests.support.browser import ARTIFACTS, ROOT, Pages, ServerThread, open_explorer, sidebar_keys
from tests.support.browser import browser_fixture as browser_fixture  # the fixtures browser and pages
from tests.support.browser import pages_fixture as pages_fixture
from tests.support.gateways import rebuilt
from tests.support.ports import free_port


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def explorer_gateway(make=make_todo_gateway, **options: Any) -> Gateway:
    """The gateway ``make`` builds (an example's), with the explorer and ``options`` (of `Gateway` and `rebuilt`)."""
    return rebuilt(make(), explorer=True, **options)


def settled(page, selector: str) -> dict:
    """Wait until the result box `selector` shows a reply or an error; its status and code."""
    page.wait_for_selector(f"{selector}[data-status='ok'], {selector}[data-status='error']")
    status = page.get_attribute(selector, "data-status")
    code = page.inner_text(f"{selector} .code") if status == "error" else None
    return {"status": status, "code": code, "text": page.inner_text(selector)}


# -- the explorer: pre-filled inputs -------------------------------------------------

# What the server may still answer to a valid pre-filled input: the data is
# fine, the situation is not (no todo 0 yet, no authenticate hook).
EXPECTED_REFUSALS = {
    "todo": {"action:todos.get": "NOT_FOUND", "action:todos.update": "NOT_FOUND", "action:__auth__": "UNAUTHENTICATED"},
    "chat": {"action:__auth__": "UNAUTHENTICATED"},
}
# Built-ins no topic of the example allows are not offered: the examples' topics keep
# no history, and the todo example's topic takes no client publish and has no presence.
NOT_OFFERED = {"todo": {"action:__history__", "action:__publish__", "action:__presence__"},
               "chat": {"action:__history__"}}


@pytest.mark.parametrize("example", ["todo", "chat"])
def test_every_prefilled_input_of_the_examples_is_accepted_by_the_server(pages, example):
    make = {"todo": make_todo_gateway, "chat": make_chat_gateway}[example]
    with ServerThread(explorer_gateway(make)) as server:
        page = open_explorer(pages, server.url("/_explorer"))
        outcomes = {}
        published = []
        assert not NOT_OFFERED[example] & set(sidebar_keys(page))
        for key in sidebar_keys(page):
            page.click(f"#sidebar button[data-key='{key}']")
            if key.startswith("action:"):
                page.click("#call")
                outcomes[key] = settled(page, "#result")
                continue
            if page.is_enabled("#subscribe"):
                page.click("#subscribe")
                outcomes[f"{key} subscribe"] = settled(page, "#subscribe-result")
            if page.locator("#publish").count():
                page.click("#publish")
                outcomes[f"{key} publish"] = settled(page, "#publish-result")
                # the published pre-fill reached the subscription: the payload, sent_at and all
                page.wait_for_selector("#events li")
                published.append(json.loads(page.inner_text("#events li pre")))
        expected_actions = {"todo": 12, "chat": 10}[example]  # __cancel__, todos.search; __presence__ on chat
        assert len([k for k in outcomes if k.startswith("action:")]) == expected_actions, outcomes
        refusals = EXPECTED_REFUSALS[example]
        for key, outcome in outcomes.items():
            if key in refusals:
                assert outcome["code"] == refusals[key], (key, outcome)
            else:
                assert outcome["status"] == "ok", (key, outcome)
        if example == "chat":
            assert [set(event) for event in published] == [{"author", "text", "sent_at"}]


class Inner(Schema):
    level = fields.Int(required=True, validate=validate.Range(min=3))


class Form(Schema):
    """One field of each kind and constraint the pre-fill has to satisfy."""

    email = fields.Email(required=True)
    nickname = fields.Str(required=True, validate=validate.Length(min=2), metadata={"example": "ada"})
    kind = fields.Str(required=True, validate=validate.OneOf(["book", "film"]))
    code = fields.Str(required=True, validate=validate.Regexp(r"^[A-Z]{3}-\d{2}$"))
    pin = fields.Str(required=True, validate=validate.Length(min=6, max=6))
    at = fields.DateTime(required=True)
    day = fields.Date(required=True)
    count = fields.Int(required=True, validate=validate.Range(min=1, max=10))
    ratio = fields.Float(required=True, validate=validate.Range(min=0, min_inclusive=False, max=1))
    tags = fields.List(fields.Str(), required=True, validate=validate.Length(min=1))
    page = fields.Int(load_default=7)
    ref = fields.UUID(required=True)
    homepage = fields.Url(required=True)
    inner = fields.Nested(Inner, required=True)


class Forms(Resource):
    """A form with every constraint."""

    name = "forms"

    @action(input=Form)
    async def submit(self, data: dict) -> dict:
        """Echo what was accepted."""
        return {"accepted": sorted(data)}


def test_prefilled_input_satisfies_every_kind_of_field_constraint(pages):
    gateway = Gateway(resources=[Forms], title="forms", explorer=True)
    with ServerThread(gateway) as server:
        page = open_explorer(pages, server.url("/_explorer"))
        page.click("button[data-key='action:forms.submit']")
        prefilled = json.loads(page.input_value("#action-input"))
        assert prefilled["nickname"] == "ada", "metadata example"
        assert prefilled["kind"] == "book", "first enum value"
        assert prefilled["page"] == 7, "load_default"
        page.click("#call")
        outcome = settled(page, "#result")
        assert outcome["status"] == "ok", outcome
        assert len(json.loads(page.inner_text("#result pre"))["accepted"]) == len(Form().fields)


# -- the explorer: the channel box ---------------------------------------------------------


def test_the_channel_box_starts_as_docs_browser_md_says(pages):
    docs = (ROOT / "docs" / "browser.md").read_text(encoding="utf-8")
    claim = re.search(r"`([^`]+)` for `chat\.\{room\}`", docs)
    assert claim, "docs/browser.md says what the channel box holds for chat.{room}"
    with ServerThread(explorer_gateway(make_chat_gateway)) as server:
        page = open_explorer(pages, server.url("/_explorer"))
        page.click("button[data-key='topic:chat.{room}']")
        assert page.input_value("#channel") == claim.group(1)


def test_going_back_to_a_topic_shows_its_channel_and_live_subscription(pages):
    with ServerThread(explorer_gateway(make_chat_gateway)) as server:
        page = open_explorer(pages, server.url("/_explorer"))
        page.click("button[data-key='topic:chat.{room}']")
        page.fill("#channel", "chat.lobby")
        page.click("#subscribe")
        page.wait_for_selector("#subscribe-result[data-status='ok']")

        # away on an action, a message is said in the lobby
        page.click("button[data-key='action:rooms.say']")
        page.fill("#action-input", json.dumps({"room": "lobby", "author": "ada", "text": "while you were away"}))
        page.click("#call")
        page.wait_for_selector("#result[data-status='ok']")
        assert page.locator("button[data-key='topic:chat.{room}'] .live").count() == 1, "the sidebar shows it is live"

        page.click("button[data-key='topic:chat.{room}']")
        assert page.input_value("#channel") == "chat.lobby"
        assert page.inner_text("#subscribe-result") == "subscribed to chat.lobby"
        page.wait_for_selector("#events li")
        assert json.loads(page.inner_text("#events li pre"))["text"] == "while you were away"
        assert page.inner_text("#live-channels") == "Live here: chat.lobby"
        screenshot(page, "explorer-live.png")

        # another channel of the same topic, then back through the live list
        page.fill("#channel", "chat.dev")
        assert page.inner_text("#subscribe-result") == "not subscribed to chat.dev"
        assert page.locator("#events li").count() == 0
        page.click("#live-channels button[data-channel='chat.lobby']")
        assert page.input_value("#channel") == "chat.lobby"
        assert page.locator("#events li").count() == 1
        page.click("#unsubscribe")
        page.wait_for_selector("#subscribe-result:text('not subscribed to chat.lobby')")
        assert page.locator("button[data-key='topic:chat.{room}'] .live").count() == 0


# -- the explorer: connecting ------------------------------------------------------------


def test_a_failed_connect_clears_the_old_contract_and_says_what_failed(pages):
    with ServerThread(explorer_gateway()) as server:
        page = open_explorer(pages, server.url("/_explorer"))
        good = page.input_value("#endpoint")
        page.click("button[data-key='action:todos.list']")
        page.click("#call")
        page.wait_for_selector("#result[data-status='ok']")

        dead = f"ws://127.0.0.1:{free_port()}/ws"
        page.fill("#endpoint", dead)
        page.click("#reconnect")
        page.wait_for_selector("#status[data-state='closed']")
        assert page.inner_text("#status") == "not connected"
        assert page.locator("#sidebar button").count() == 0, "no contract from the old connection"
        assert page.inner_text("#title") == ""
        assert page.locator("#call, #result").count() == 0, "no form or reply of the old connection"
        panel = page.inner_text("#panel")
        assert f"Could not connect to {dead}" in panel
        assert "NOT_CONNECTED" in panel
        assert "null" not in panel
        screenshot(page, "explorer-not-connected.png")

        page.fill("#endpoint", good)
        page.click("#reconnect")
        page.wait_for_selector("#status[data-state='open']")
        page.wait_for_selector("button[data-key='action:todos.list']")


class BrokenSchemaGateway(Gateway):
    """A gateway that cannot build anyone's ``__schema__``."""

    async def schema_for(self, user: Any) -> dict:
        raise RuntimeError("the contract is unavailable")


def test_a_failing_schema_request_is_shown_not_thrown(pages):
    with ServerThread(explorer_gateway(kind=BrokenSchemaGateway)) as server:
        page = pages.open(server.url("/_explorer"))
        page.wait_for_selector("#problem")
        assert page.inner_text("#problem .code") == "INTERNAL_ERROR"
        assert "Could not read __schema__" in page.inner_text("#problem")
        assert pages.problems() == []


def test_a_refused_unsubscribe_is_shown_not_thrown(pages):
    with ServerThread(explorer_gateway(make_chat_gateway, limits=Limits(rate=0.001, burst=4))) as server:
        page = open_explorer(pages, server.url("/_explorer"))
        page.click("button[data-key='topic:chat.{room}']")
        page.click("#subscribe")
        page.wait_for_selector("#subscribe-result[data-status='ok']")
        page.click("button[data-key='action:__ping__']")
        for _ in range(10):  # use up the connection's burst
            page.click("#call")
            if settled(page, "#result")["code"] == "RATE_LIMITED":
                break
        assert page.inner_text("#result .code") == "RATE_LIMITED"
        page.click("button[data-key='topic:chat.{room}']")
        page.click("#unsubscribe")
        page.wait_for_selector("#subscribe-result[data-status='error']")
        assert page.inner_text("#subscribe-result").startswith("RATE_LIMITED:")
        assert pages.problems() == []


class PrefixedGateway:
    """A gateway's routes under a path prefix, as a proxy forwarding /prefix/... would serve them."""

    def __init__(self, gateway: Gateway, prefix: str) -> None:
        self.gateway = gateway
        self.prefix = prefix

    def routes(self) -> list:
        return [(self.prefix + pattern, *rest) for pattern, *rest in self.gateway.routes()]

    async def close(self) -> None:
        await self.gateway.close()


@pytest.mark.parametrize("path", ["/_explorer", "/_explorer/"])
def test_the_explorer_works_under_a_path_prefix(pages, path):
    with ServerThread(PrefixedGateway(explorer_gateway(), "/tools/live")) as server:
        page = open_explorer(pages, server.url(f"/tools/live{path}"))
        assert page.input_value("#endpoint") == server.url("/tools/live/ws", scheme="ws")
        assert page.evaluate("getComputedStyle(document.querySelector('.topbar')).display") == "flex", "styled"
        page.click("button[data-key='action:__ping__']")
        page.click("#call")
        page.wait_for_selector("#result[data-status='ok']")
        assert json.loads(page.inner_text("#result pre")) == "pong"


# -- the explorer: descriptions and layout -------------------------------------------------


def test_rest_literals_in_descriptions_are_shown_as_code(pages):
    with ServerThread(explorer_gateway(make_chat_gateway)) as server:
        page = open_explorer(pages, server.url("/_explorer"))
        page.click("button[data-key='action:rooms.say']")
        doc = page.inner_text("#panel .doc")
        assert "`" not in doc
        assert doc == "Post a message to a room: kept in its history and published to chat.{room}."
        assert page.inner_text("#panel .doc code") == "chat.{room}"
        page.click("button[data-key='action:__publish__']")
        assert page.inner_text("#panel .doc code") == "client_publish=True"


LAYOUT_JS = """() => {
  const status = document.getElementById("status");
  const box = status.getBoundingClientRect();
  const atCenter = document.elementFromPoint(box.left + box.width / 2, box.top + box.height / 2);
  return {
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
    status: { left: box.left, right: box.right, top: box.top, bottom: box.bottom, text: status.textContent },
    statusTextFits: status.scrollWidth <= status.clientWidth + 1,
    statusOnTop: atCenter === status || status.contains(atCenter),
  };
}"""


def assert_fits(page, status_text: str) -> None:
    layout = page.evaluate(LAYOUT_JS)
    assert layout["scrollWidth"] <= layout["innerWidth"], f"horizontal overflow: {layout}"
    status = layout["status"]
    assert status["text"] == status_text
    assert 0 <= status["left"] and status["right"] <= layout["innerWidth"] and status["top"] >= 0, layout
    assert layout["statusTextFits"] and layout["statusOnTop"], f"the status is clipped or covered: {layout}"


SCHEMA_BOXES_JS = """() => [...document.querySelectorAll("#panel .schema-card")].map((card) => ({
  fields: card.querySelectorAll(".tree > li").length,
  clippedWidth: card.scrollWidth - card.clientWidth,
  rawShown: card.querySelector("pre.schema")?.checkVisibility() ?? false,
}))"""


@pytest.mark.parametrize("width", [390, 600, 1280])
def test_the_explorer_fits_phone_tablet_and_desktop_widths(pages, width):
    with ServerThread(explorer_gateway()) as server:
        page = open_explorer(pages, server.url("/_explorer"), width=width, height=800)
        page.click("button[data-key='action:todos.create']")
        assert_fits(page, "open")
        boxes = page.evaluate(SCHEMA_BOXES_JS)
        assert [box["fields"] for box in boxes] == [2, 5], "NewTodoInput and Todo, one line per field"
        for box in boxes:
            assert box["clippedWidth"] <= 1, f"schema box cut off: {box}"
            assert not box["rawShown"], f"the JSON Schema stays folded: {box}"
        screenshot(page, f"explorer-{width}.png")
        if width < 900:  # the panel has the screen: back to the list
            page.click("#back")
        page.click("button[data-key='topic:todos']")
        assert_fits(page, "open")
        screenshot(page, f"explorer-topic-{width}.png")


# -- the chat page -----------------------------------------------------------------------


def open_chat(pages: Pages, url: str, width: int = 1280, height: int = 800, context: Any = None):
    page = pages.open(url, width, height, context)
    page.wait_for_selector("body[data-ready]")
    page.wait_for_selector("#status[data-state='open']")
    return page


@pytest.mark.parametrize("width", [390, 1280])
def test_the_chat_page_fits_phone_and_desktop_widths(pages, width):
    with ServerThread(make_chat_gateway()) as server:
        page = open_chat(pages, server.url("/?name=ada"), width=width, height=760)
        page.fill("#text", "a message long enough to need a second line on a narrow phone screen, surely")
        page.click("#send")
        page.wait_for_selector("#messages li.mine")
        assert_fits(page, "connected")
        title = page.evaluate("""() => {
          const h1 = document.querySelector("h1");
          return { height: h1.getBoundingClientRect().height, line: parseFloat(getComputedStyle(h1).fontSize) * 1.45,
                   text: h1.textContent, clipped: h1.scrollWidth > h1.clientWidth + 1 };
        }""")
        assert title["height"] < 1.5 * title["line"], f"the title wraps: {title}"
        assert not title["clipped"], f"the title is cut: {title}"
        card = page.evaluate("""() => {
          const app = document.querySelector(".app").getBoundingClientRect();
          const send = document.getElementById("send").getBoundingClientRect();
          return { left: app.left, right: app.right, sendRight: send.right, innerWidth };
        }""")
        assert 0 <= card["left"] and card["right"] <= card["innerWidth"], card
        assert card["sendRight"] <= card["right"], f"the send button sticks out of the card: {card}"
        screenshot(page, f"chat-{width}.png")


def test_the_chat_page_works_under_a_path_prefix(pages):
    with ServerThread(PrefixedGateway(make_chat_gateway(), "/tools/chat")) as server:
        page = open_chat(pages, server.url("/tools/chat/?name=ada"))
        page.fill("#text", "behind a proxy")
        page.click("#send")
        page.wait_for_selector("#messages li.mine:has-text('behind a proxy')")


def test_a_guest_name_survives_a_reload_and_keeps_your_messages_yours(pages):
    with ServerThread(make_chat_gateway()) as server:
        page = open_chat(pages, server.url("/"), width=390, height=760)
        name = page.input_value("#author")
        assert re.fullmatch(r"guest-\d+", name)
        page.fill("#text", "remember me")
        page.click("#send")
        page.wait_for_selector("#messages li.mine:has-text('remember me')")
        page.reload()
        page.wait_for_selector("body[data-ready]")
        assert page.input_value("#author") == name
        page.wait_for_selector("#messages li:has-text('remember me')")
        assert page.locator("#messages li.mine:has-text('remember me')").count() == 1
        # a second tab of the same browser is the same guest
        other = open_chat(pages, server.url("/"), context=page.context)
        assert other.input_value("#author") == name


def test_a_room_name_the_server_refuses_shows_the_error_and_keeps_the_text(pages):
    with ServerThread(make_chat_gateway()) as server:
        page = open_chat(pages, server.url("/?room=has%20space&name=ada"), width=390, height=760)
        page.wait_for_function("document.getElementById('error').textContent.length > 0")
        assert page.inner_text("#error").startswith("cannot join #has space:")
        page.evaluate("window.sameDocument = true")
        page.fill("#text", "is anyone here?")
        page.press("#text", "Enter")
        page.wait_for_selector("#error:has-text('Room:')")
        assert page.inner_text("#error") == "Room: String does not match expected pattern."
        assert page.evaluate("window.sameDocument") is True, "Enter did not reload the page"
        assert page.url.endswith("/?room=has%20space&name=ada")
        assert page.input_value("#text") == "is anyone here?"
        assert page.input_value("#room") == "has space"
        screenshot(page, "chat-bad-room.png")


def member_list(page) -> list[str]:
    return page.eval_on_selector_all("#members li", "items => items.map(item => item.textContent)")


def wait_for_members(page, names: list[str]) -> None:
    """Wait until the page lists exactly ``names`` as the room's members (and counts them)."""
    page.wait_for_function("expected => [...document.querySelectorAll('#members li')].map(li => li.textContent)"
                           ".join(',') === expected", arg=",".join(names))
    assert page.inner_text("#member-count") == f"{len(names)} here:"


def test_the_chat_page_lists_who_is_in_the_room_by_joins_and_leaves(pages):
    with ServerThread(make_chat_gateway()) as server:
        ada = open_chat(pages, server.url("/?room=people&name=ada"), width=390, height=760)
        wait_for_members(ada, ["ada"])
        assert ada.get_attribute("#members li", "class") == "me"
        bob = open_chat(pages, server.url("/?room=people&name=bob"))
        wait_for_members(bob, ["ada", "bob"])  # listed when it joined
        wait_for_members(ada, ["ada", "bob"])  # told by bob's join
        second_tab = open_chat(pages, server.url("/?room=people&name=bob"))
        wait_for_members(second_tab, ["ada", "bob"])  # one bob, however many tabs
        bob.close()
        ada.evaluate("window.stillOne = true")
        second_tab.fill("#text", "still here")
        second_tab.click("#send")
        ada.wait_for_selector("#messages li:has-text('still here')")  # after bob's first tab went
        assert member_list(ada) == ["ada", "bob"], "closing one of two tabs is no leave"
        second_tab.close()
        wait_for_members(ada, ["ada"])
        ada.fill("#author", "ada lovelace")
        ada.press("#author", "Enter")
        wait_for_members(ada, ["ada lovelace"])
        other_room = open_chat(pages, server.url("/?room=elsewhere&name=carol"))
        wait_for_members(other_room, ["carol"])
        assert member_list(ada) == ["ada lovelace"]
        screenshot(ada, "chat-members-390.png")


def test_the_explorer_links_its_contract_under_a_path_prefix(pages):
    with ServerThread(PrefixedGateway(explorer_gateway(), "/tools/live")) as server:
        page = open_explorer(pages, server.url("/tools/live/_explorer"))
        links = page.evaluate("""async () => Promise.all([...document.querySelectorAll(".contract-links a")].map(
            async (a) => { const r = await fetch(a.href); return [a.textContent, r.status, await r.text()]; }))""")
        assert [(text, status) for text, status, _ in links] == [("AsyncAPI", 200), ("TypeScript", 200)]
        document = json.loads(links[0][2])
        assert document["servers"]["gateway"]["pathname"] == "/tools/live/ws"
        assert "todos.create" in document["operations"]
        assert "export function typed(dz: DrizzleLike): Api {" in links[1][2]
