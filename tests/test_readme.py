"""The README runs as written: its tour, its client script and its commands."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import tornado.web

from drizzle_gateway.client import Client
from tests.support.logged_lines import Lines, listening
from tests.support.ports import free_port, free_ports, wait_for_port
from tests.support.redis_server import no_redis
from tests.support.tls import self_signed

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
COMMAND = str(Path(sys.executable).with_name("drizzle-gateway"))


def code_blocks(language: str) -> list[str]:
    """The README's fenced code blocks in ``language`` (``sh`` and ``bash`` count as one)."""
    languages = ("sh", "bash") if language in ("sh", "bash") else (language,)
    return [body for lang, body in re.findall(r"```(\w*)\n(.*?)```", README.read_text(), re.S) if lang in languages]


def tour_namespace() -> dict:
    text = README.read_text()
    tour = text[text.index("## A tour"):]
    code = re.search(r"```python\n(.*?)```", tour, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "README.md (tour)", "exec"), namespace)  # noqa: S102 - our own README
    return namespace


def section(title: str) -> str:
    """The README from heading ``title`` to the next heading of the same level."""
    text = README.read_text()
    level = title.split(" ")[0]
    start = text.index(title + "\n")
    end = text.find("\n" + level + " ", start + len(title))
    return text[start:end if end != -1 else len(text)]


def block_after(text: str, marker: str, language: str = "python") -> str:
    """The first fenced ``language`` block of ``text`` after ``marker``."""
    return re.search(rf"```{language}\n(.*?)```", text[text.index(marker):], re.S).group(1)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("runner", ["pytest-asyncio", "pytest-tornado"])
def test_the_testing_example_passes_against_the_saved_tour(tmp_path, runner):
    """The tour saved as mytodo/app.py, the test as mytodo/test_app.py, run by the README's command."""
    testing = section("## Testing your gateway")
    project = tmp_path / "mytodo"
    project.mkdir()
    (project / "app.py").write_text(block_after(section("## A tour"), "## A tour"))
    test = block_after(testing, "mytodo/test_app.py")
    if runner == "pytest-tornado":  # as the README says: the other marker, nothing else
        assert "write `@pytest.mark.gen_test` in place of\n`@pytest.mark.asyncio`" in testing
        test = test.replace("@pytest.mark.asyncio", "@pytest.mark.gen_test")
    (project / "test_app.py").write_text(test)
    command = block_after(testing, "and run it from the checkout", "sh").strip()
    install = ".venv/bin/pip install pytest pytest-asyncio && "
    assert install in command  # (installed here by the test extra)
    command = command.replace(install, "").replace("../.venv/bin/python", sys.executable)
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    result = subprocess.run(["bash", "-c", command], cwd=tmp_path, capture_output=True, text=True, timeout=100,
                            env={**env, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^1 passed", result.stdout.splitlines()[-1]), result.stdout
    if runner == "pytest-asyncio":
        assert "warning" not in result.stdout.lower(), result.stdout
    else:
        assert "DeprecationWarning: make_current is deprecated" in result.stdout  # what the README warns of


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


def client_script() -> str:
    text = README.read_text()
    after = text[text.index("save this as `chat_client.py`"):]
    return re.search(r"```python\n(.*?)```", after, re.S).group(1)


def test_the_history_example_prints_what_it_says(capsys):
    code = block_after(README.read_text(), "(`TestClient` has the client's methods)")
    exec(compile(code, "README.md (history)", "exec"), {"__name__": "readme_history"})  # noqa: S102 - our README
    printed = capsys.readouterr().out.splitlines()
    said = [line.rsplit("  # ", 1)[1] for line in code.splitlines() if line.strip().startswith("print(")]
    assert printed == said and len(said) == 3


def test_the_presence_example_prints_what_it_says(capsys):
    code = block_after(section("## Presence"), "member cut to their `member_fields`:")
    exec(compile(code, "README.md (presence)", "exec"), {"__name__": "readme_presence"})  # noqa: S102 - our README
    printed = capsys.readouterr().out.splitlines()
    said = [line.rsplit("  # ", 1)[1] for line in code.splitlines() if line.strip().startswith("print(")]
    assert printed == said and len(said) == 3


def test_client_script_runs_against_the_chat_example(tmp_path):
    port = free_port()
    server = subprocess.Popen([COMMAND, "serve", "examples.chat.app:gateway", "--port", str(port)], cwd=ROOT,
                              stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert "listening on" in listening(server, 1)[0]
        script = tmp_path / "chat_client.py"
        script.write_text(client_script().replace("127.0.0.1:8888", f"127.0.0.1:{port}"))
        result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                                timeout=60)
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("sent at 20")
    assert lines[1] == "heard on chat.lobby {'author': 'ada', 'text': 'hi'}"
    assert lines[2] == "1 message(s) in the lobby"
    assert lines[3].startswith("refused: INVALID_DATA {'room': ")


def test_the_tokens_demo_keeps_its_connection_past_the_first_token_and_reads_history(tmp_path):
    text = README.read_text()
    after = text[text.index("save this as `tokens_demo.py`"):]
    script = tmp_path / "tokens_demo.py"
    script.write_text(re.search(r"```python\n(.*?)```", after, re.S).group(1))
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "refused: UNAUTHENTICATED: the token was refused",
        "after 3 s: pong",
        "[(2, 'two'), (3, 'three')]",
    ]


def test_commands_use_the_venv_the_set_up_made():
    """Every command line runs from the venv the set-up creates (the README never activates it)."""
    programs = re.compile(r"(?:^|[\s;&|(])(drizzle-gateway|pip|python3?)(?=\s)")
    for block in code_blocks("sh"):
        for line in block.splitlines():
            for found in programs.finditer(line):
                start = found.start(1)
                assert line[:start].endswith(".venv/bin/") or line[start:].startswith("python3 -m venv"), line


@pytest.mark.skipif(not (ROOT / ".venv/bin/drizzle-gateway").exists(), reason="no .venv in the checkout")
def test_cli_commands_run_as_written():
    lines = [line.split("#")[0].strip() for block in code_blocks("sh") for line in block.splitlines()]
    commands = [line for line in lines if line.startswith(".venv/bin/drizzle-gateway") and " serve " not in line]
    assert commands, "the README shows the schema and help commands"
    for command in commands:
        result = subprocess.run(command, shell=True, cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, (command, result.stderr)


def test_the_custom_field_example_describes_itself_as_it_says(capsys):
    text = README.read_text()
    code = re.search(r"```python\n(.*?)```", text[text.index("## The contract outside the gateway"):], re.S).group(1)
    exec(compile(code, "README.md (custom field)", "exec"), {})  # noqa: S102 - our own README
    printed = capsys.readouterr().out.splitlines()
    said = [line.split("# ", 1)[1] for line in code.splitlines() if line.startswith("print(")]
    assert printed == said and len(said) == 2


def test_the_tls_client_snippet_connects_to_a_gateway_with_a_private_certificate(tmp_path):
    cert, key = self_signed(tmp_path)
    (tmp_path / "ca.pem").write_bytes(cert.read_bytes())
    port = free_port()
    server = subprocess.Popen([COMMAND, "serve", "examples.chat.app:gateway", "--port", str(port),
                               "--certfile", str(cert), "--keyfile", str(key)], cwd=ROOT,
                              stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert f"listening on wss://127.0.0.1:{port}/ws" in listening(server, 1)[0]
        text = README.read_text()
        snippet = re.search(r"```python\n(.*?)```", text[text.index("### TLS"):], re.S).group(1)
        # the one change: the example's host and port (placeholder) become the test server's
        assert snippet.count("gateway.example:8888") == 1
        script = tmp_path / "tls_client.py"
        script.write_text(snippet.replace("gateway.example:8888", f"127.0.0.1:{port}")
                          + "\n\nimport asyncio\n\nasyncio.run(main())\n")
        result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                                timeout=60)
        assert (result.returncode, result.stdout) == (0, "pong\n"), result.stderr
    finally:
        server.terminate()
        assert server.wait(timeout=10) == 0


def test_every_table_has_one_separator_row_under_its_header():
    tables: list[list[str]] = []
    previous = ""
    for line in README.read_text().splitlines():
        if line.startswith("|"):
            if not previous.startswith("|"):
                tables.append([])
            tables[-1].append(line)
        previous = line
    separator = re.compile(r"^\|(\s*:?-{3,}:?\s*\|)+$")
    assert tables
    for table in tables:
        rows = [n for n, line in enumerate(table) if separator.match(line)]
        assert rows == [1], table[:3]


@pytest.mark.timeout(90)
def test_the_two_process_redis_command_runs_its_own_redis_and_stops_on_ctrl_c(tmp_path):
    """The README's command, on free ports: both gateways share topics through the Redis it started."""
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        no_redis("redis-server and redis-cli are not installed (apt-get install redis-server)")
    block = block_after(section("## Scaling out: several processes on one Redis"), "Ctrl-C stops all three", "bash")
    redis_port, first, second = free_port(), free_port(), free_port()
    command = (block.replace("6390", str(redis_port)).replace("8001 8002", f"{first} {second}")
               .replace(".venv/bin/drizzle-gateway", COMMAND))
    shell = subprocess.Popen(["bash", "-c", command], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, start_new_session=True)
    try:
        for port in (first, second):
            wait_for_port(port, timeout=30, process=shell)
        heard = asyncio.run(publish_across(first, second))
        assert heard == {"author": "ada", "text": "across"}
        os.killpg(shell.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground group gets SIGINT
        output, _ = shell.communicate(timeout=30)
    finally:
        if shell.poll() is None:
            os.killpg(shell.pid, signal.SIGKILL)
            shell.wait()
    assert "topics shared through redis " in output and f"at redis://127.0.0.1:{redis_port}/0" in output
    listed = subprocess.run(["ps", "-o", "pid=,stat=,args=", "-s", str(shell.pid)], capture_output=True, text=True,
                            timeout=10).stdout.splitlines()
    running = [line for line in listed if line.split()[1][0] != "Z"]  # (a zombie waits on whoever reaps orphans)
    assert running == [], "processes of the command still run after Ctrl-C"


async def publish_across(first: int, second: int) -> dict:
    async with Client(f"ws://127.0.0.1:{first}/ws") as publisher, Client(f"ws://127.0.0.1:{second}/ws") as listener:
        await listener.subscribe("chat.lobby", fields=["author", "text"])
        await publisher.publish("chat.lobby", {"author": "ada", "text": "across"})
        return (await listener.next_event(timeout=10)).data


def test_the_publisher_snippet_reaches_redis_as_it_says(redis_server, capsys):
    """"Publishing from your backend": two events on ``drizzle:todos``, then ``False`` printed."""
    import redis

    text = README.read_text()
    code = re.search(r"```python\n(.*?)```", text[text.index("### Publishing from your backend"):], re.S).group(1)
    assert "redis://127.0.0.1:6379/0" in code
    observer = redis.Redis.from_url(redis_server.url).pubsub(ignore_subscribe_messages=True)
    observer.subscribe("drizzle:todos")
    try:
        assert observer.get_message(timeout=5) is None  # the subscribe confirmation
        namespace: dict = {}
        exec(compile(code.replace("redis://127.0.0.1:6379/0", redis_server.url), "README.md (publisher)", "exec"),
             namespace)  # noqa: S102 - our own README
        namespace["publisher"].close()
        heard = [observer.get_message(timeout=5) for _ in range(2)]
    finally:
        observer.close()
    assert [json.loads(message["data"].partition(b" ")[2])["done"] for message in heard] == [False, True]
    assert capsys.readouterr().out == "False\n"


def test_the_streaming_example_prints_what_it_says(capsys):
    text = README.read_text()
    section = text[text.index("## Streaming replies"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    exec(compile(code, "README.md (streaming)", "exec"), {"__name__": "readme"})  # noqa: S102 - our own README
    printed = capsys.readouterr().out.splitlines()
    assert [line for line in printed if line != "generator closed"] == ["{'id': 1}", "{'id': 3}"]
    assert printed.count("generator closed") == 2  # the stream that ran out, and the one left early


def serve_commands() -> list[str]:
    """Every one-line ``drizzle-gateway serve`` command of the README (the shell loop excepted), as written."""
    lines = [line.split("  #")[0].strip() for block in code_blocks("sh") for line in block.splitlines()]
    return [line.removesuffix("&").strip() for line in lines
            if line.startswith(".venv/bin/drizzle-gateway serve ") and "$" not in line and "--help" not in line]


@pytest.mark.timeout(240)
def test_every_serve_command_starts_serves_and_drains_on_sigterm(redis_server, tmp_path):
    """Each README ``serve`` line runs as written; only ports, the Redis URL and the certificate's path change."""
    commands = serve_commands()
    assert any("--workers" in command for command in commands) and any("--certfile" in command for command in commands)
    cert, key = self_signed(tmp_path)
    for command in commands:
        port = free_port()
        line = re.sub(r"--port \d+", f"--port {port}", command) if "--port" in command else f"{command} --port {port}"
        workers = re.search(r"--workers (\w+)", line)
        count = 1 if workers is None else (os.cpu_count() or 1) if workers[1] == "auto" else int(workers[1])
        line = re.sub(r"--metrics-port \d+", f"--metrics-port {free_ports(count)}", line)  # P, P+1... per worker
        line = re.sub(r"redis://127\.0\.0\.1:6379/0", redis_server.url, line)
        line = line.replace("cert.pem", str(cert)).replace("key.pem", str(key))
        line = line.replace(".venv/bin/drizzle-gateway", COMMAND)
        server = subprocess.Popen(shlex.split(line), cwd=ROOT, stderr=subprocess.PIPE, text=True,
                                  start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        logged = Lines(server)
        try:
            # its port is bound before it serves: wait for the line that says it does (a worker's, with --workers)
            logged.wait(lambda text: "listening on ws" in text, timeout=30)
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
            errors = "\n".join(logged.until_end(timeout=10))
        finally:
            if server.poll() is None:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
        assert server.returncode == 0, (command, errors[-2000:])
        assert "listening on ws" in errors, (command, errors[-2000:])
