"""The browser files over HTTP: /drizzle.js always, /_explorer when enabled, the CLI's default."""

from __future__ import annotations

import json

import pytest
import tornado.web

from drizzle_gateway.contract.typescript import typescript
from drizzle_gateway.transport.browser_routes import STATIC_DIR
from drizzle_gateway.wire.codec import encode
from tests.support.browser import GatewayProcess, http_status


@pytest.fixture
def app(gateway):
    """The gateway's routes with its websocket at ``/socket`` (the explorer where ``gateway_options`` enable it)."""
    return tornado.web.Application(gateway.routes("/socket"))


@pytest.mark.gen_test
async def test_the_client_is_served_as_a_javascript_module(http_client, base_url):
    response = await http_client.fetch(f"{base_url}/drizzle.js")
    assert response.headers["Content-Type"].startswith("text/javascript")
    assert response.body == (STATIC_DIR / "drizzle.js").read_bytes()


@pytest.mark.gen_test
async def test_the_explorer_is_off_unless_enabled(http_client, base_url):
    response = await http_client.fetch(f"{base_url}/_explorer", raise_error=False)
    assert response.code == 404


@pytest.mark.gen_test
@pytest.mark.gateway_options(explorer=True)
async def test_an_enabled_explorer_connects_to_the_gateways_websocket_path(app, http_client, base_url):
    page = await http_client.fetch(f"{base_url}/_explorer")
    assert b'<meta name="drizzle-ws-path" content="/socket">' in page.body
    script = await http_client.fetch(f"{base_url}/_explorer/explorer.js")
    assert script.headers["Content-Type"].startswith("text/javascript")
    style = await http_client.fetch(f"{base_url}/_explorer/explorer.css")
    assert style.headers["Content-Type"].startswith("text/css")
    outside = await http_client.fetch(f"{base_url}/_explorer/../gateway.py", raise_error=False)
    assert outside.code == 404


@pytest.mark.parametrize(("flags", "status"), [((), 200), (("--no-explorer",), 404)], ids=["default", "no-explorer"])
def test_serve_enables_the_explorer_by_default(flags, status):
    with GatewayProcess("examples.todo.app:gateway", None, *flags) as server:
        assert http_status(server.url("/_explorer")) == status
        assert http_status(server.url("/drizzle.js")) == 200


def test_the_chat_example_serves_its_page():
    with GatewayProcess("examples.chat.app:gateway") as server:
        assert http_status(server.url("/")) == 200
        assert http_status(server.url("/app.py")) == 404


@pytest.mark.gen_test
@pytest.mark.gateway_options(explorer=True)
async def test_the_explorer_links_the_contract_as_asyncapi_and_typescript(app, gateway, http_client, base_url):
    page = (await http_client.fetch(f"{base_url}/_explorer")).body.decode()
    assert 'data-file="asyncapi.json">AsyncAPI</a>' in page
    assert 'data-file="api.ts">TypeScript</a>' in page
    document = await http_client.fetch(f"{base_url}/_explorer/asyncapi.json")
    assert document.headers["Content-Type"] == "application/json; charset=utf-8"
    host = base_url.removeprefix("http://")
    assert json.loads(document.body) == json.loads(encode(gateway.asyncapi(host=host, path="/socket")))
    types = await http_client.fetch(f"{base_url}/_explorer/api.ts")
    assert types.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert types.body.decode() == typescript(json.loads(encode(gateway.schema())))


@pytest.mark.gen_test
@pytest.mark.gateway_options(explorer=True, authenticate=lambda credentials: None)
async def test_the_contract_files_show_what_an_unauthenticated_connection_sees(app, gateway, http_client, base_url):
    """A gateway that hides its contract until a connection authenticates hides it over HTTP too."""
    document = json.loads((await http_client.fetch(f"{base_url}/_explorer/asyncapi.json")).body)
    assert "todos.create" not in document["operations"]
    assert "__auth__" in document["operations"]
    types = (await http_client.fetch(f"{base_url}/_explorer/api.ts")).body.decode()
    assert "NewTodo" not in types
