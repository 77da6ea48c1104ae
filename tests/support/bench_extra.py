"""The bench's own tests need its extra (picows, python-socketio, aiohttp, matplotlib); without it they skip."""

from __future__ import annotations

import importlib.util

import pytest

MISSING = [name for name in ("picows", "socketio", "aiohttp", "matplotlib") if importlib.util.find_spec(name) is None]

needs_bench_extra = pytest.mark.skipif(
    bool(MISSING), reason=f"the bench needs its extra (missing {', '.join(MISSING)}): pip install -e '.[bench]'")
"""The mark for a test module of the bench: ``pytestmark = needs_bench_extra``."""
