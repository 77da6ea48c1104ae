"""Start ``examples/seed_sample.py`` as it is, ask it one request, print what came back.

The sample listens on the fixed port 8888, so the test runs this script in
a network namespace of its own (``unshare --net``), where nothing else can
hold that port. Prints one JSON line: ``{"reply": ..., "alive": ...}``.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from tornado.websocket import websocket_connect

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.ports import wait_for_port  # noqa: E402

SEED_PORT = 8888


async def ask() -> object:
    ws = await asyncio.wait_for(websocket_connect(f"ws://127.0.0.1:{SEED_PORT}/ws"), 10)
    try:
        await ws.write_message(json.dumps({"resource": "login", "action": "get", "request_id": "r1"}))
        return json.loads(await asyncio.wait_for(ws.read_message(), 10))
    finally:
        ws.close()


def main() -> None:
    process = subprocess.Popen([sys.executable, "examples/seed_sample.py"], cwd=ROOT)
    try:
        wait_for_port(SEED_PORT, timeout=30, process=process)
        reply = asyncio.run(ask())
        sys.stdout.write(json.dumps({"reply": reply, "alive": process.poll() is None}) + "\n")
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


if __name__ == "__main__":
    main()
