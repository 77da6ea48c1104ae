"""The ``drizzle-gateway`` command, run as a real subprocess from the project root."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.ports import free_port
from drizzle_gateway.client import Client

ROOT = Path(__file__).resolve().parent.parent
COMMAND = str(Path(sys.executable).with_name("drizzle-gateway"))


def test_schema_prints_the_contract_as_json():
    out = subprocess.run([COMMAND, "schema", "examples.todo.app:gateway"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, check=True).stdout
    document = json.loads(out)
    assert document["title"] == "todo example"
    assert [r["name"] for r in document["resources"]] == ["todos"]


def test_bad_target_is_a_clear_error():
    result = subprocess.run([COMMAND, "schema", "examples.todo.app"], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode != 0
    assert "expected MODULE:ATTR" in result.stderr


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
        line = proc.stderr.readline()
        assert re.search(rf"listening on ws://127\.0\.0\.1:{port}/ws", line), line
        line = proc.stderr.readline()
        assert f"explorer at http://127.0.0.1:{port}/_explorer" in line, line
        async with Client(f"ws://127.0.0.1:{port}/ws") as client:
            assert await client.call(*args, fields=fields) == expected
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
