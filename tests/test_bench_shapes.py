"""The bench's shapes on a tiny run: every server takes its turns, every note and reply is checked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.bench_extra import needs_bench_extra

pytestmark = needs_bench_extra

ROOT = Path(__file__).resolve().parent.parent

RUN = """
import json, sys
from bench import shapes
from bench.shapes import local

problems = []
if __name__ == "__main__":
    report = lambda what, text: problems.append(f"{what}: {text}")
    targets = {kind: local(kind) for kind in ("gateway", "gateway-no-metrics", "tornado", "picows")}
    made = shapes.client_fanout(targets, 5, 2, 10, 1, report)
    made += shapes.requests(targets, "posts.publish", 2, 8, 0.1, 0.3, 1, report)
    made += shapes.mixed({"gateway": local("gateway")}, 3, 5, 0.1, 2, 0.5, 1, report)
    print(json.dumps({"results": made, "problems": problems, "rows": shapes.rows(made)}))
"""


@pytest.mark.timeout(240)
def test_a_tiny_run_of_each_shape_takes_turns_on_every_server_and_sees_every_note(tmp_path):
    script = tmp_path / "shapes.py"
    script.write_text(RUN)
    result = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=230,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["problems"] == []
    fanout = {r["kind"]: r for r in out["results"] if r["scenario"] == "client_fanout"}
    requests = {r["kind"]: r for r in out["results"] if r["scenario"] == "requests"}
    assert set(fanout) == set(requests) == {"gateway", "gateway-no-metrics", "tornado", "picows"}
    assert all(r["deliveries_per_s"] > 0 for r in fanout.values())  # 2 bursts of 10 notes to 5 members each
    assert all(r["rps"] > 0 and r["depth"] == 8 for r in requests.values())
    (mixed,) = (r for r in out["results"] if r["scenario"] == "mixed")
    assert mixed["rps"] > 0 and mixed["deliveries_per_s"] > 0
    rows = {row[0]: row for row in out["rows"]}
    assert "tornado rate" in rows["requests posts.publish 2 conns x 8 in flight: gateway"][2]
    assert "picows rate" in rows["requests posts.publish 2 conns x 8 in flight: gateway"][2]
    assert "the gateway rate" in rows["client-published fan-out 10 x 2 notes to 5 subs: gateway-no-metrics"][2]
