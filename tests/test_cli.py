"""The ``drizzle-gateway`` command, run as a real subprocess from the project root."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
import tornado.web
from tornado.httpclient import AsyncHTTPClient

import drizzle_gateway
from drizzle_gateway import Gateway
from drizzle_gateway.client import Client, RemoteError
from tests.support.logged_lines import Lines, listening
from tests.support.ports import free_port
from tests.support.scrape import fetch
from tests.support.tls import self_signed

ROOT = Path(__file__).resolve().parent.parent
COMMAND = str(Path(sys.executable).with_name("drizzle-gateway"))


def test_schema_prints_the_contract_as_json():
    out = subprocess.run([COMMAND, "schema", "examples.todo.app:gateway"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, check=True).stdout
    document = json.loads(out)
    assert document["title"] == "todo example"
    assert [r["name"] for r in document["resources"]] == ["todos"]


def run(*args: str, cwd: Path = ROOT, command: tuple[str, ...] = (COMMAND,)) -> subprocess.CompletedProcess:
    return subprocess.run([*command, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """The single stderr line of a failed command (and no traceback)."""
    assert result.returncode != 0, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


MISTAKES = {
    "no colon": (["schema", "examples.todo.app"], "expected MODULE:ATTR"),
    "misspelt attribute": (["schema", "examples.todo.app:gatway"], "did you mean 'gateway'?"),
    "missing module": (["schema", "nonexistent_pkg:gateway"], "no module named 'nonexistent_pkg'"),
    "missing submodule": (["serve", "examples.nope:gateway"], "no module named 'examples.nope'"),
    "file path": (["schema", "examples/todo/app.py:gateway"], "give the module's dotted name instead, "
                                                              "e.g. examples.todo.app:gateway"),
    "a Resource class": (["schema", "examples.todo.app:Todos"], "is a Resource class, not a Gateway"),
    "another object": (["schema", "examples.todo.app:todo_changed"], "is a Topic object, not a drizzle_gateway"),
    "log level": (["serve", "examples.todo.app:gateway", "--log-level", "verbose"],
                  "argument --log-level: must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got 'verbose'"),
    "port too big": (["serve", "examples.todo.app:gateway", "--port", "80000"],
                     "argument --port: must be from 0 to 65535"),
    "port not a number": (["serve", "examples.todo.app:gateway", "--port", "http"],
                          "argument --port: must be a number"),
    "path with a space": (["serve", "examples.todo.app:gateway", "--path", "/my ws"],
                          "argument --path: must be a URL path such as /ws"),
    "unknown host": (["serve", "examples.todo.app:gateway", "--host", "no-such-host.invalid"],
                     "--host 'no-such-host.invalid' is not a known host name or address"),
    "foreign address": (["serve", "examples.todo.app:gateway", "--host", "192.0.2.1"],
                        "it is not an address of this machine"),
    "redis URL": (["serve", "examples.todo.app:gateway", "--redis", "localhost:6379"],
                  "argument --redis: must be a URL such as redis://"),
    "unknown command": (["run", "examples.todo.app:gateway"], "invalid choice: 'run'"),
    "trusted proxy": (["serve", "examples.todo.app:gateway", "--trusted-proxy", "proxy.local"],
                      "argument --trusted-proxy: a trusted proxy must be an IP address or a network such as "
                      "10.0.0.0/8, got 'proxy.local'"),
    "forwarded header": (["serve", "examples.todo.app:gateway", "--forwarded-header", "X-Real-IP"],
                         "argument --forwarded-header: invalid choice: 'X-Real-IP'"),
    "log format": (["serve", "examples.todo.app:gateway", "--log-format", "yaml"],
                   "argument --log-format: invalid choice: 'yaml'"),
    "key without certificate": (["serve", "examples.todo.app:gateway", "--keyfile", "key.pem"],
                                "--keyfile needs --certfile"),
    "missing certificate": (["serve", "examples.todo.app:gateway", "--certfile", "nowhere.pem"],
                            "cannot read nowhere.pem: no such file (--certfile, --keyfile)"),
    "not a certificate": (["serve", "examples.todo.app:gateway", "--certfile", "README.md"],
                          "--certfile README.md and --keyfile README.md are not a PEM certificate chain"),
    "no workers": (["serve", "examples.todo.app:gateway", "--workers", "0"], "argument --workers: must be at least 1"),
    "workers not a number": (["serve", "examples.todo.app:gateway", "--workers", "many"],
                             "argument --workers: must be a number of processes or auto"),
}


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_user_mistakes_are_one_clear_line_and_a_failure(mistake):
    args, expected = MISTAKES[mistake]
    assert expected in one_line_error(run(*args))


def test_workers_without_redis_are_refused_with_the_reason_like_any_argument_error():
    result = run("serve", "examples.todo.app:gateway", "--workers", "2")
    line = one_line_error(result)
    assert result.returncode == 2
    assert line.startswith("drizzle-gateway: error: --workers 2 needs --redis URL: each worker is a process")
    assert "only Redis carries a publish from one worker to the subscribers of another" in line


def test_a_port_in_use_is_one_clear_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = one_line_error(run("serve", "examples.todo.app:gateway", "--port", str(port)))
    assert f"port {port} is already in use" in line and "--port 0 picks a free one" in line


def test_factories_that_cannot_be_called_are_clear(tmp_path):
    (tmp_path / "factories.py").write_text(
        "def needs_config(config):\n    pass\n\n\ndef returns_none():\n    return None\n")
    assert "is a function that needs arguments" in one_line_error(run("schema", "factories:needs_config",
                                                                      cwd=tmp_path))
    assert "factories:returns_none() returned NoneType" in one_line_error(run("schema", "factories:returns_none",
                                                                              cwd=tmp_path))


BROKEN_MODULES = {
    "raises": ("def connect():\n    raise RuntimeError('database unreachable')\n\n\nconnect()\n",
               ["line 5, in <module>", "line 2, in connect", "RuntimeError: database unreachable"]),
    "syntax": ("gateway = (\n", ["SyntaxError"]),
    "missing_dependency": ("import not_installed_dependency\n",
                           ["line 1, in <module>", "No module named 'not_installed_dependency'"]),
}


@pytest.mark.parametrize("kind", sorted(BROKEN_MODULES))
def test_a_module_failing_to_import_shows_its_own_traceback(tmp_path, kind):
    source, expected = BROKEN_MODULES[kind]
    (tmp_path / f"broken_{kind}.py").write_text(source)
    result = run("serve", f"broken_{kind}:gateway", cwd=tmp_path)
    assert result.returncode != 0
    assert f"broken_{kind}.py" in result.stderr
    for text in expected:
        assert text in result.stderr
    assert "cli.py" not in result.stderr and "importlib" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last == f"drizzle-gateway: error: importing 'broken_{kind}' failed (its traceback is above)"


def test_a_factory_that_raises_shows_its_own_traceback(tmp_path):
    (tmp_path / "factory.py").write_text("def make():\n    raise KeyError('DATABASE_URL')\n")
    result = run("schema", "factory:make", cwd=tmp_path)
    assert result.returncode != 0
    assert "factory.py\", line 2, in make" in result.stderr and "KeyError: 'DATABASE_URL'" in result.stderr
    assert "cli.py" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].endswith("calling factory:make() failed (its traceback is above)")


def test_redis_without_the_extra_says_how_to_install_it_from_a_checkout():
    without_redis = (sys.executable, "-c", "import sys; sys.modules['redis'] = None; "
                     "from drizzle_gateway.cli import main; main(sys.argv[1:])")
    line = one_line_error(run("serve", "examples.todo.app:gateway", "--redis", "redis://127.0.0.1:6379/0",
                              command=without_redis))
    assert "pip install -e '.[redis]'" in line


def test_serve_refuses_to_start_on_a_redis_that_does_not_answer():
    port = free_port()  # nothing listens there
    line = one_line_error(run("serve", "examples.todo.app:gateway", "--port", "0",
                              "--redis", f"redis://:secret@127.0.0.1:{port}/0"))
    assert line.startswith(f"drizzle-gateway: error: --redis: no Redis answers at redis://127.0.0.1:{port}/0 (")
    assert line.endswith(f"); start redis-server there (e.g. redis-server --port {port}) or fix the URL")
    assert "secret" not in line


def test_serve_logs_the_redis_it_shares_topics_through(redis_server):
    server = subprocess.Popen([COMMAND, "serve", "examples.todo.app:gateway", "--port", "0", "--redis",
                               redis_server.url, "--redis-prefix", "todo:"], cwd=ROOT, stderr=subprocess.PIPE,
                              text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        shared, served = listening(server, 2)
    finally:
        server.terminate()
        server.wait(timeout=10)
    pid = redis_server.process.pid
    assert shared.endswith(f"INFO drizzle_gateway: topics shared through redis {redis_version()} at "
                           f"{redis_server.url} (process {pid}, config file none), channel prefix 'todo:'\n")
    assert "listening on" in served


def redis_version() -> str:
    out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True, timeout=30).stdout
    return re.search(r"v=(\S+)", out).group(1)


def test_help_shows_defaults_and_no_markup():
    for args in (["--help"], ["serve", "--help"], ["schema", "--help"]):
        result = run(*args)
        assert result.returncode == 0
        assert "``" not in result.stdout and "`" not in result.stdout
    text = " ".join(run("serve", "--help").stdout.split())
    for default in ("(default: 127.0.0.1)", "(default: 8888)", "(default: /ws)", "(default: INFO)",
                    "(default: on)", "(default: drizzle:)"):
        assert default in text


def test_version():
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"drizzle-gateway {drizzle_gateway.__version__}"


EXAMPLE_CALLS = {
    "examples.todo.app:gateway": (("todos", "create", {"title": "cli"}), ["title"], {"title": "cli"}),
    "examples.chat.app:gateway": (("rooms", "say", {"room": "lobby", "author": "ada", "text": "hi"}),
                                  ["author", "text"], {"author": "ada", "text": "hi"}),
}


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("target", sorted(EXAMPLE_CALLS))
async def test_serve_logs_where_it_listens_and_answers(target):
    args, fields, expected = EXAMPLE_CALLS[target]
    port = free_port()
    proc = subprocess.Popen([COMMAND, "serve", target, "--port", str(port)], cwd=ROOT,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        lines = listening(proc, 2)
        assert re.search(rf"listening on ws://127\.0\.0\.1:{port}/ws$", lines[0]), lines
        assert lines[1].endswith(f"explorer at http://127.0.0.1:{port}/_explorer\n"), lines
        async with Client(f"ws://127.0.0.1:{port}/ws") as client:
            assert await client.call(*args, fields=fields) == expected
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


@pytest.mark.gen_test(timeout=30)
async def test_serve_logs_the_real_port_the_normalised_path_and_the_example_page():
    proc = subprocess.Popen([COMMAND, "serve", "examples.chat.app:gateway", "--port", "0", "--path", "chat"],
                            cwd=ROOT, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        lines = listening(proc, 3)
        found = re.search(r"listening on ws://127\.0\.0\.1:(\d+)/chat$", lines[0])
        assert found, lines
        port = int(found.group(1))
        assert port != 0
        assert lines[1].endswith(f"explorer at http://127.0.0.1:{port}/_explorer\n"), lines
        assert lines[2].endswith(f"page at http://127.0.0.1:{port}/\n"), lines
        page = await AsyncHTTPClient().fetch(f"http://127.0.0.1:{port}/")
        assert b"<html" in page.body.lower()
        async with Client(f"ws://127.0.0.1:{port}/chat") as client:
            assert await client.ping() == "pong"
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


def test_gateway_pages_are_its_extra_routes_without_parameters():
    routes = [(r"/()", tornado.web.StaticFileHandler, {"path": str(ROOT), "default_filename": "README.md"}),
              (r"/about", tornado.web.RequestHandler), (r"/files/(.*)", tornado.web.StaticFileHandler, {"path": "."}),
              tornado.web.url(r"/help", tornado.web.RequestHandler)]
    assert Gateway(extra_routes=routes).pages == ["/", "/about", "/help"]
    assert Gateway(extra_routes=routes, pages=["/about"]).pages == ["/about"]
    assert Gateway().pages == []


@pytest.mark.gen_test(timeout=30)
async def test_serve_metrics_port_serves_the_metrics_apart_from_the_websocket():
    port, metrics_port = free_port(), free_port()
    proc = subprocess.Popen([COMMAND, "serve", "examples.chat.app:gateway", "--port", str(port),
                             "--metrics-port", str(metrics_port)], cwd=ROOT, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        lines = listening(proc, 4)
        assert lines[3].endswith(f"metrics at http://127.0.0.1:{metrics_port}/metrics\n"), lines
        async with Client(f"ws://127.0.0.1:{port}/ws") as client:
            assert await client.ping() == "pong"
            apart = await fetch(f"http://127.0.0.1:{metrics_port}/metrics")
            assert apart[0] == 200
            assert 'drizzle_requests_total{action="__ping__",code="OK",resource="__builtin__"} 1.0' in apart[1]
            assert (await fetch(f"http://127.0.0.1:{port}/metrics"))[0] == 404
            assert await fetch(f"http://127.0.0.1:{metrics_port}/readyz") == (200, "ready\n")
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


def serving(*args: str) -> subprocess.Popen:
    """``drizzle-gateway serve ARGS`` as a subprocess of the project root, its stderr piped as text."""
    return subprocess.Popen([COMMAND, "serve", *args], cwd=ROOT, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


@pytest.mark.gen_test(timeout=30)
async def test_serve_over_tls_logs_wss_urls_and_answers_a_client_that_trusts_its_certificate(tmp_path):
    cert, key = self_signed(tmp_path)
    port = free_port()
    proc = serving("examples.todo.app:gateway", "--port", str(port), "--certfile", str(cert), "--keyfile", str(key))
    try:
        lines = listening(proc, 2)
        assert lines[0].endswith(f"listening on wss://127.0.0.1:{port}/ws\n"), lines
        assert lines[1].endswith(f"explorer at https://127.0.0.1:{port}/_explorer\n"), lines
        trusting = ssl.create_default_context(cafile=str(cert))
        async with Client(f"wss://127.0.0.1:{port}/ws", ssl=trusting) as client:
            assert await client.call("todos", "create", {"title": "tls"}, fields=["title"]) == {"title": "tls"}
        with pytest.raises(ssl.SSLCertVerificationError):  # the system's authorities do not know it
            await Client(f"wss://127.0.0.1:{port}/ws", timeout=5).connect()
        with pytest.raises(Exception):  # noqa: B017, PT011 - plain ws:// to a TLS port fails, however it fails
            await Client(f"ws://127.0.0.1:{port}/ws", timeout=5).connect()
        page = await AsyncHTTPClient().fetch(f"https://127.0.0.1:{port}/drizzle.js", ssl_options=trusting)
        assert b"export class Drizzle" in page.body
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


@pytest.mark.gen_test(timeout=30)
async def test_serve_logs_one_json_object_a_line_naming_the_client_and_never_a_token():
    port = free_port()
    proc = serving("tests.support.proxied_app:make_gateway", "--port", str(port), "--log-format", "json",
                   "--trusted-proxy", "127.0.0.1")
    log = Lines(proc)
    try:
        log.wait(lambda line: "listening on" in line)
        forwarded = {"X-Forwarded-For": "198.51.100.7"}
        async with Client(f"ws://127.0.0.1:{port}/ws?token=ann-token", headers=forwarded) as ann:
            with pytest.raises(RemoteError):
                await ann.call("lab", "fail")
        guess = Client(f"ws://127.0.0.1:{port}/ws?token=guess-s3cret", headers={"X-Forwarded-For": "198.51.100.8"})
        async with guess:
            with pytest.raises(RemoteError, match="UNAUTHENTICATED"):
                await guess.request({"action": "__auth__", "data": {"token": "second-s3cret"}})
        log.wait(lambda line: "failed" in line)
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
    lines = log.until_end()
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all(set(entry) >= {"time", "level", "logger", "message"} for entry in entries)
    assert entries[0]["message"] == f"drizzle_gateway listening on ws://127.0.0.1:{port}/ws"
    assert entries[0]["time"].endswith("Z") and "client" not in entries[0]
    [failure] = [entry for entry in entries if "failed" in entry["message"]]
    assert (failure["level"], failure["logger"], failure["client"], failure["user"]) == (
        "ERROR", "drizzle_gateway", "198.51.100.7", "ann")
    assert failure["exc_info"].startswith("Traceback") and "RuntimeError" in failure["exc_info"]
    access = {entry["client"]: entry["message"] for entry in entries if entry["logger"] == "tornado.access"}
    assert access.keys() == {"198.51.100.7", "198.51.100.8"}
    assert "GET /ws?token=[redacted] (198.51.100.8)" in access["198.51.100.8"]
    text = "\n".join(lines)
    assert "ann-token" not in text and "s3cret" not in text


@pytest.mark.timeout(60)
def test_serve_stopped_while_the_app_loads_exits_0_without_a_traceback(tmp_path):
    """SIGTERM before serving began (here: an app whose import takes long) ends the command quietly, status 0."""
    (tmp_path / "slow_app.py").write_text(
        "import sys, time\n"
        "from drizzle_gateway import Gateway\n"
        "print('importing', flush=True)\n"
        "time.sleep(60)\n"
        "gateway = Gateway([])\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    proc = subprocess.Popen([COMMAND, "serve", "slow_app:gateway", "--port", str(free_port())], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline() == "importing\n"
        proc.send_signal(signal.SIGTERM)
        _, errors = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (proc.returncode, errors) == (0, "")
