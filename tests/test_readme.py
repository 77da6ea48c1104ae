"""The README's tour runs as written and does what its comments say."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import tornado.web

from drizzle_gateway.client import Client

README = Path(__file__).resolve().parent.parent / "README.md"


def tour_namespace() -> dict:
    text = README.read_text()
    tour = text[text.index("## A tour"):]
    code = re.search(r"```python\n(.*?)```", tour, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "README.md (tour)", "exec"), namespace)  # noqa: S102 - our own README
    return namespace


@pytest.fixture
def app() -> tornado.web.Application:
    return tour_namespace()["app"]


@pytest.mark.gen_test
async def test_tour_serves_what_it_declares(http_server, http_port):
    async with Client(f"ws://127.0.0.1:{http_port}/ws") as client:
        await client.call("todos", "watch")
        assert await client.call("todos", "create", {"title": "milk"}, fields=["id"]) == {"id": 1}
        event = await client.next_event(2)
        assert (event.topic, event.data) == ("todos", {"id": 1, "title": "milk", "done": False})
        await client.subscribe("chat.lobby")
        await client.publish("chat.lobby", {"author": "ada", "text": "hi"})
        assert (await client.next_event(2)).data == {"author": "ada", "text": "hi"}
