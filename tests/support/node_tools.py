"""The npm tools of the contract tests (tests/contract): @asyncapi/parser and tsc.

They are installed with ``npm ci --prefix tests/contract``. Without them the
tests that need them skip, or fail when ``DRIZZLE_REQUIRE_NODE_TOOLS=1``
(as in CI), like the browser tests without a browser.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT / "tests" / "contract"
NODE_MODULES = CONTRACT / "node_modules"
TSC = NODE_MODULES / "typescript" / "bin" / "tsc"
ASYNCAPI_PARSER = NODE_MODULES / "@asyncapi" / "parser"
REQUIRE_NODE_TOOLS = "DRIZZLE_REQUIRE_NODE_TOOLS"


def node_tools_unavailable(reason: str) -> None:
    """Skip the test, or fail it when the environment requires the node tools."""
    if os.environ.get(REQUIRE_NODE_TOOLS) == "1":
        pytest.fail(f"{REQUIRE_NODE_TOOLS}=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def node() -> str:
    """The ``node`` executable, or a skip."""
    found = shutil.which("node")
    if found is None:
        node_tools_unavailable("node is not installed (apt-get install nodejs)")
    return found


def require(path: Path) -> Path:
    """``path`` inside tests/contract/node_modules, or a skip saying how to install it."""
    node()
    if not path.exists():
        node_tools_unavailable(f"{path.relative_to(ROOT)} is missing (run: npm ci --prefix tests/contract)")
    return path


def run_node(*args: str | Path, cwd: Path = CONTRACT, timeout: float = 120) -> subprocess.CompletedProcess:
    """``node args...`` in ``cwd``, its output captured as text."""
    return subprocess.run([node(), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def websocket_flags() -> list[str]:
    """The node flags that give it a global ``WebSocket`` (node 22 has one; 20.10 behind a flag), or a skip."""
    for flags in ([], ["--experimental-websocket"]):
        result = subprocess.run([node(), *flags, "-e", "process.exit(typeof WebSocket === 'function' ? 0 : 1)"],
                                capture_output=True, text=True, timeout=30)
        if result.returncode == 0:
            return flags
    node_tools_unavailable("this node has no WebSocket (node 20.10 or newer has one)")
    return []
