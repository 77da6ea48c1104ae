"""HTTP routes for the browser: ``/drizzle.js`` and the ``/_explorer`` page.

The files live in the package's ``static/`` folder and are served as they
are (the explorer is a few ES modules, ``explorer*.js``): no build step, no
templates beyond the websocket path the explorer connects to. Beside the page, ``/_explorer/asyncapi.json`` and
``/_explorer/api.ts`` give the contract the page shows as an AsyncAPI 3.0
document and as TypeScript (see `drizzle_gateway.contract.asyncapi` and
`drizzle_gateway.contract.typescript`), as an unauthenticated connection's
``__schema__`` has it: a gateway that hides its contract until a
connection authenticates hides it here too.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any

import tornado.web

from ..contract.asyncapi import asyncapi_document
from ..contract.typescript import typescript
from ..wire.codec import encode

STATIC_DIR = Path(__file__).parent.parent / "static"
EXPLORER_PATH = "/_explorer"


EXPLORER_FILES = r"explorer(?:-[a-z]+)?\.js|explorer\.css"
"""The explorer's own files: its page module, the modules beside it (``explorer-check.js``...), its CSS."""

CONTENT_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


class StaticFile(tornado.web.StaticFileHandler):
    """Serves a file of ``static/`` (JavaScript modules, CSS), revalidated on every load."""

    def get_content_type(self) -> str:
        assert self.absolute_path is not None  # validated before the headers are set, as Tornado's own asserts
        return CONTENT_TYPES.get(Path(self.absolute_path).suffix) or super().get_content_type()

    def set_extra_headers(self, path: str) -> None:
        self.set_header("Cache-Control", "no-cache")


class ExplorerPage(tornado.web.RequestHandler):
    """The explorer's HTML, told which websocket path to connect to."""

    def initialize(self, ws_path: str) -> None:
        self.ws_path = ws_path

    def get(self) -> None:
        html = (STATIC_DIR / "explorer.html").read_text(encoding="utf-8")
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        self.finish(html.replace("{{ws_path}}", escape(self.ws_path)))


def gateway_serving(application: tornado.web.Application, ws_path: str) -> Any:
    """The gateway whose websocket route in ``application`` serves ``ws_path``, or None."""
    for rule in application.wildcard_router.rules:
        gateway = rule.target_kwargs.get("gateway")
        regex = getattr(rule.matcher, "regex", None)
        if gateway is not None and regex is not None and regex.fullmatch(ws_path):
            return gateway
    return None


class ContractFile(tornado.web.RequestHandler):
    """The contract of the gateway at ``ws_path`` as ``asyncapi.json`` or ``api.ts``."""

    def initialize(self, ws_path: str) -> None:
        self.ws_path = ws_path

    async def get(self, name: str) -> None:
        # the routes may sit under a prefix (a proxy's, an app's): the websocket's path has the page's
        prefix = self.request.path[:self.request.path.rindex(f"{EXPLORER_PATH}/")]
        ws_path = prefix + self.ws_path
        gateway = gateway_serving(self.application, ws_path)
        if gateway is None:
            raise tornado.web.HTTPError(404)
        schema = json.loads(encode(await gateway.schema_for(None)))
        self.set_header("Cache-Control", "no-cache")
        if name == "asyncapi.json":
            self.set_header("Content-Type", "application/json; charset=utf-8")
            self.finish(encode(asyncapi_document(schema, host=self.request.host, path=ws_path)))
        else:
            self.set_header("Content-Type", "text/plain; charset=utf-8")  # shown by the browser, not downloaded
            self.finish(typescript(schema))


def browser_routes(ws_path: str, *, explorer: bool) -> list[tuple[str, type, dict[str, Any]]]:
    """Routes for ``/drizzle.js`` and, when ``explorer`` is true, ``/_explorer`` and its contract files."""
    routes: list[tuple[str, type, dict[str, Any]]] = [
        (r"/(drizzle\.js)", StaticFile, {"path": str(STATIC_DIR)}),
    ]
    if explorer:
        routes += [
            (rf"{EXPLORER_PATH}/?", ExplorerPage, {"ws_path": ws_path}),
            (rf"{EXPLORER_PATH}/({EXPLORER_FILES})", StaticFile, {"path": str(STATIC_DIR)}),
            (rf"{EXPLORER_PATH}/(asyncapi\.json|api\.ts)", ContractFile, {"ws_path": ws_path}),
        ]
    return routes
