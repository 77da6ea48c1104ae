"""A throw-away nginx in front of a test gateway: prefix, configuration, logs and pid in a folder of its own.

Without the nginx binary the tests that need it skip with the reason,
unless ``DRIZZLE_REQUIRE_NGINX=1`` (set in CI), where they fail instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.ports import wait_for_port

REQUIRE_NGINX = "DRIZZLE_REQUIRE_NGINX"
BINARY = "/usr/sbin/nginx"

MAIN = """\
daemon off;
worker_processes 1;
pid nginx.pid;
error_log error.log info;
events {{ worker_connections 256; }}
http {{
    access_log access.log;
    client_body_temp_path temp/body;
    proxy_temp_path temp/proxy;
    fastcgi_temp_path temp/fastcgi;
    uwsgi_temp_path temp/uwsgi;
    scgi_temp_path temp/scgi;
    include {site};
}}
"""
"""The main configuration around a site: what Debian's /etc/nginx/nginx.conf sets, in the prefix folder."""


def nginx_binary() -> str:
    """The nginx program; skips the test without it (fails when ``DRIZZLE_REQUIRE_NGINX=1``)."""
    found = shutil.which("nginx") or (BINARY if os.access(BINARY, os.X_OK) else None)
    if found is None:
        reason = "nginx is not installed (apt-get install nginx)"
        if os.environ.get(REQUIRE_NGINX) == "1":
            pytest.fail(f"{reason} ({REQUIRE_NGINX}=1)")
        pytest.skip(reason)
    return found


class Nginx:
    """nginx serving ``site`` (what goes in its ``http`` block) from ``folder``, in the foreground."""

    def __init__(self, site: str, folder: Path) -> None:
        self.binary = nginx_binary()
        self.folder = folder
        (folder / "temp").mkdir(parents=True, exist_ok=True)
        (folder / "site.conf").write_text(site)
        (folder / "nginx.conf").write_text(MAIN.format(site=folder / "site.conf"))
        self.process: subprocess.Popen | None = None

    def start(self, port: int) -> Nginx:
        """Start it and wait until it accepts on 127.0.0.1:``port`` (the site's ``listen``)."""
        self.process = subprocess.Popen([self.binary, "-p", f"{self.folder}/", "-c", str(self.folder / "nginx.conf"),
                                         "-e", str(self.folder / "error.log")],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            wait_for_port(port, timeout=20, process=self.process)
        except RuntimeError:
            raise AssertionError(f"nginx did not start: {self.process.stderr.read()}{self.error_log()}") from None
        return self

    def error_log(self) -> str:
        path = self.folder / "error.log"
        return path.read_text() if path.exists() else ""

    def stop(self) -> None:
        """Stop it (fast shutdown) and wait for it to end."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
