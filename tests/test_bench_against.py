"""``python -m bench --against REF``: another commit's gateway served from a temporary worktree, in turns."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.bench_extra import needs_bench_extra

pytestmark = needs_bench_extra

ROOT = Path(__file__).resolve().parent.parent


def worktrees() -> set[str]:
    out = subprocess.run(["git", "-C", str(ROOT), "worktree", "list", "--porcelain"], capture_output=True,
                         text=True, check=True).stdout
    return {line.split(" ", 1)[1] for line in out.splitlines() if line.startswith("worktree ")}


RUN = """
import json, sys
from bench import shapes
from bench.ref import RefServer, checkout
from bench.shapes import local

problems = []
if __name__ == "__main__":
    with checkout(sys.argv[1]) as tree:
        print(json.dumps({"tree": str(tree)}), flush=True)
        made = shapes.requests({"gateway": local("gateway"), "gateway@REF": lambda: RefServer(tree)},
                               "orders.create", 2, 2, 0.1, 0.3, 2, lambda what, text: problems.append(text))
    print(json.dumps({"results": made, "problems": problems, "rows": shapes.rows(made)}))
"""


@pytest.mark.timeout(240)
def test_against_serves_the_ref_from_its_own_worktree_in_turns_and_removes_it(tmp_path):
    script = tmp_path / "against.py"
    script.write_text(RUN)
    before = worktrees()
    result = subprocess.run([sys.executable, str(script), "HEAD"], cwd=ROOT, capture_output=True, text=True,
                            timeout=230, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    first, last = (json.loads(line) for line in result.stdout.strip().splitlines()[-2:])
    assert first["tree"] not in before  # a worktree of its own...
    assert worktrees() == before  # ...removed after
    assert not Path(first["tree"]).exists()
    by_kind = {r["kind"]: r for r in last["results"]}
    assert set(by_kind) == {"gateway", "gateway@REF"} and not last["problems"]
    assert all(len(r["rates"]) == 2 and min(r["rates"]) > 0 for r in by_kind.values())  # each had its windows
    ref_row = next(row for row in last["rows"] if row[0].endswith("gateway@REF"))
    assert "× the gateway rate" in ref_row[2]


REFUSED = """
import sys
from bench.ref import RefServer

if __name__ == "__main__":
    try:
        RefServer(__import__("pathlib").Path(sys.argv[1]))  # no drizzle_gateway there: it falls through to ours
    except RuntimeError as exc:
        print(exc)
"""


@pytest.mark.timeout(120)
def test_a_ref_server_that_imports_this_checkout_is_refused(tmp_path):
    """The REF server says where its drizzle_gateway came from; a tree without one would silently serve ours."""
    script = tmp_path / "refused.py"
    script.write_text(REFUSED)
    empty = tmp_path / "empty"
    empty.mkdir()
    result = subprocess.run([sys.executable, str(script), str(empty)], cwd=ROOT, capture_output=True, text=True,
                            timeout=110, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert "the REF server imported drizzle_gateway from" in result.stdout
    assert f"not from {empty}" in result.stdout
