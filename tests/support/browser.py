"""Real Chromium and real servers for the browser tests.

Sync Playwright drives Chromium from the test's thread, so the gateway under
test runs in a thread of its own (`ServerThread`), or in a subprocess
(`GatewayProcess`) when a test must kill and restart it under a page.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import tornado.web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from drizzle_gateway import Gateway
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("DRIZZLE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REQUIRE_BROWSER = "DRIZZLE_REQUIRE_BROWSER"


def browser_unavailable(reason: str) -> None:
    """Skip the browser tests, or fail them when the environment requires a browser."""
    if os.environ.get(REQUIRE_BROWSER) == "1":
        pytest.fail(f"{REQUIRE_BROWSER}=1 but no browser: {reason}", pytrace=False)
    pytest.skip(f"no browser: {reason}")


PAGE_TIMEOUT_MS = 15000
"""How long a page's waits (selectors, clicks) may take."""

RECORD_REJECTIONS = """
window.__rejections = [];
window.addEventListener("unhandledrejection", (event) => {
  window.__rejections.push(String(event.reason && (event.reason.stack || event.reason.message) || event.reason));
});
"""
"""Recorded in each page: Playwright reports uncaught errors, this catches unhandled rejections too."""


class Pages:
    """Opens pages in fresh contexts; remembers uncaught errors, unhandled rejections and console lines."""

    def __init__(self, browser: Any) -> None:
        self.browser = browser
        self.contexts: list = []
        self.pages: list = []
        self.errors: list[str] = []
        self.console: list[str] = []

    def open(self, url: str, width: int = 1280, height: int = 860, context: Any = None):
        """A page at ``url`` in ``context``, or in a new context with a ``width`` x ``height`` viewport."""
        if context is None:
            context = self.browser.new_context(viewport={"width": width, "height": height})
            context.set_default_timeout(PAGE_TIMEOUT_MS)
            context.add_init_script(RECORD_REJECTIONS)
            self.contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("console", lambda message: self.console.append(message.text))
        self.pages.append(page)
        page.goto(url)
        return page

    def problems(self) -> list[str]:
        """Uncaught errors and unhandled rejections of every open page so far."""
        rejections = []
        for page in self.pages:
            if not page.is_closed():
                rejections += page.evaluate("window.__rejections")
        return self.errors + rejections

    def close(self) -> list[str]:
        """Close every context; the `problems` seen until then."""
        problems = self.problems()
        for context in self.contexts:
            context.close()
        return problems


@contextmanager
def chromium() -> Iterator[Any]:
    """Debian's Chromium, headless, launched by Playwright (which downloads nothing)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        browser_unavailable(f"playwright is not installed ({exc})")
    if not Path(CHROMIUM).exists():
        browser_unavailable(f"{CHROMIUM} not found (apt-get install chromium)")
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        except Exception as exc:  # noqa: BLE001 - any launch failure means "no browser here"
            browser_unavailable(f"Chromium did not start: {exc}")
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module", name="browser")
def browser_fixture() -> Iterator[Any]:
    """The module's `chromium` (import it as ``browser_fixture``; tests take it as ``browser``)."""
    with chromium() as launched:
        yield launched


@pytest.fixture(name="pages")
def pages_fixture(browser: Any) -> Iterator[Pages]:
    """A test's `Pages`; an uncaught error or unhandled rejection in any of them fails the test."""
    opened = Pages(browser)
    yield opened
    problems = opened.close()
    assert not problems, f"uncaught errors or unhandled rejections in the page: {problems}"


def open_explorer(pages: Pages, url: str, width: int = 1280, height: int = 860) -> Any:
    """The explorer at ``url``, once connected and its contract listed in the sidebar."""
    page = pages.open(url, width, height)
    page.wait_for_selector("#status[data-state='open']")
    page.wait_for_selector("#sidebar button[data-key]")
    return page


def sidebar_keys(page: Any) -> list[str]:
    """The keys (``action:...``, ``topic:...``) of the explorer's sidebar entries, in order."""
    return page.eval_on_selector_all("#sidebar button[data-key]", "buttons => buttons.map(b => b.dataset.key)")


class BlankPage(tornado.web.RequestHandler):
    """An empty same-origin page from which tests import ``/drizzle.js``."""

    def get(self) -> None:
        self.finish('<!doctype html><html><head><link rel="icon" href="data:,"><title>drizzle test</title></head>'
                    "<body></body></html>")


BLANK_ROUTE = (r"/blank", BlankPage, {})


class ServerThread:
    """Serves a gateway's routes from a thread with its own event loop, on a free loopback port."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gateway-under-test", daemon=True)

    def url(self, path: str = "/", scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> ServerThread:
        sockets = bind_sockets(0, "127.0.0.1")
        self.port = sockets[0].getsockname()[1]
        self._sockets = sockets
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the test server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def run(self, coroutine: Any, timeout: float = 30) -> Any:
        """Run ``coroutine`` on the server's loop (where the gateway lives) and return its result."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = HTTPServer(tornado.web.Application(self.gateway.routes()))
        server.add_sockets(self._sockets)
        self._ready.set()
        await self._stop.wait()
        server.stop()
        await self.gateway.close()


class GatewayProcess:
    """``drizzle-gateway serve TARGET`` in a subprocess that a test can stop and start again."""

    def __init__(self, target: str, port: int | None = None, *args: str) -> None:
        self.target = target
        self.port = port or free_port()
        self.args = args
        self.process: subprocess.Popen | None = None

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self, timeout: float = 30) -> GatewayProcess:
        command = [sys.executable, "-m", "drizzle_gateway.cli", "serve", self.target,
                   "--port", str(self.port), "--log-level", "WARNING", *self.args]
        self.process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                output = self.process.stdout.read().decode() if self.process.stdout else ""
                raise RuntimeError(f"the gateway exited with {self.process.returncode}: {output}")
            try:
                with urllib.request.urlopen(self.url("/drizzle.js"), timeout=1):
                    return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)
        raise RuntimeError(f"the gateway did not listen on port {self.port} within {timeout} s")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()

    def __enter__(self) -> GatewayProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def http_status(url: str) -> int:
    """The status code of a GET to ``url``."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
