"""The README runs as written: its tour, its client script and its commands."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import tornado.web

from drizzle_gateway.client import Client
from tests.support.logged_lines import listening
from tests.support.ports import free_port

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


def test_the_testing_example_passes_against_the_tour():
    text = README.read_text()
    section = text[text.index("## Testing your gateway"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace = tour_namespace()
    exec(compile(code, "README.md (testing)", "exec"), namespace)  # noqa: S102 - our own README
    asyncio.run(namespace["test_create_announces_the_new_todo"]())


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


def test_the_streaming_example_prints_what_it_says(capsys):
    text = README.read_text()
    section = text[text.index("## Streaming replies"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    exec(compile(code, "README.md (streaming)", "exec"), {"__name__": "readme"})  # noqa: S102 - our own README
    printed = capsys.readouterr().out.splitlines()
    assert [line for line in printed if line != "generator closed"] == ["{'id': 1}", "{'id': 3}"]
    assert printed.count("generator closed") == 2  # the stream that ran out, and the one left early
