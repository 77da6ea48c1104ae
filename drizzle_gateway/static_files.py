"""HTTP routes for the browser: ``/drizzle.js`` and the ``/_explorer`` page.

The files live in the package's ``static/`` folder and are served as they
are: no build step, no templates beyond the websocket path the explorer
connects to.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

import tornado.web

STATIC_DIR = Path(__file__).parent / "static"
EXPLORER_PATH = "/_explorer"


CONTENT_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


class StaticFile(tornado.web.StaticFileHandler):
    """Serves a file of ``static/`` (JavaScript modules, CSS), revalidated on every load."""

    def get_content_type(self) -> str:
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


def browser_routes(ws_path: str, *, explorer: bool) -> list[tuple[str, type, dict[str, Any]]]:
    """Routes for ``/drizzle.js`` and, when ``explorer`` is true, ``/_explorer``."""
    routes: list[tuple[str, type, dict[str, Any]]] = [
        (r"/(drizzle\.js)", StaticFile, {"path": str(STATIC_DIR)}),
    ]
    if explorer:
        routes += [
            (rf"{EXPLORER_PATH}/?", ExplorerPage, {"ws_path": ws_path}),
            (rf"{EXPLORER_PATH}/(explorer\.js|explorer\.css)", StaticFile, {"path": str(STATIC_DIR)}),
        ]
    return routes
