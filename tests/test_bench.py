"""``python -m bench`` writes where it is told: never over the committed figures unless asked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.bench_extra import needs_bench_extra

ROOT = Path(__file__).resolve().parent.parent

pytestmark = needs_bench_extra


def test_help_names_an_untracked_default_output_and_a_plot_only_on_request():
    out = subprocess.run([sys.executable, "-m", "bench", "--help"], cwd=ROOT, capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert "default: bench/out/results.json, untracked" in " ".join(out.split())
    assert "--plot FILE" in out
    assert "bench/out/" in (ROOT / ".gitignore").read_text().splitlines()


@pytest.mark.timeout(180)
def test_output_writes_the_figures_there_and_nothing_beside_them(tmp_path):
    committed = {name: (ROOT / "bench" / name).read_bytes() for name in ("results.json", "fanout.png")}
    result = subprocess.run([sys.executable, "-m", "bench", "--quick", "--only", "memory", "--output",
                             str(tmp_path / "figures.json"), "--plot", str(tmp_path / "fanout.png")],
                            cwd=ROOT, capture_output=True, text=True, timeout=170)
    assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["figures.json"]
    assert "no fan-out scenario ran; no plot" in result.stderr
    assert {name: (ROOT / "bench" / name).read_bytes() for name in committed} == committed
