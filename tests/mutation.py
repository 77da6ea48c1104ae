"""Mutation testing of the guard modules: ``.venv/bin/python -m tests.mutation [MODULE ...]``.

For each guard module (all of `GUARDS` unless some are named), mutmut 3
makes small changes to the module one at a time (a ``<`` for a ``<=``, a
constant off by one, a call's argument dropped...) and runs that module's
own tests (`GUARDS` names them) against each change; a change the tests
still pass *survived*, and shows behaviour no test pins down. Each module
runs in a fresh copy of the project under ``build/mutation/<module>/``
(mutmut works in a ``mutants/`` folder there), so runs never touch the
checkout, and ``mutmut show NAME`` / ``mutmut browse`` run in that folder
afterwards read its results. It prints, per module, the mutants killed
of those made, the score, and each survivor's diff (``--quiet``: names
only). docs/mutation.md argues the survivors that remain. Not part of the
test suite: a module takes minutes (``--jobs`` tests at once, 2 by default).
Needs the ``mutation`` extra (``pip install -e '.[test,mutation]'``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "build" / "mutation"

GUARDS: dict[str, tuple[str, ...]] = {
    "runtime.auth": ("tests/runtime/test_auth.py",),
    "transport.redaction": ("tests/transport/test_redaction.py",),
    "runtime.limits": ("tests/runtime/test_limits.py", "tests/runtime/test_dispatch.py"),
    "contract.permissions": ("tests/contract/test_permissions.py", "tests/runtime/test_auth.py"),
    "runtime.dispatch": ("tests/runtime/test_dispatch.py",),
    "wire.recovery": ("tests/wire/test_recovery.py", "tests/brokers/test_memory.py"),
    "wire.history": ("tests/wire/test_history.py", "tests/brokers/test_memory.py", "tests/wire/test_recovery.py"),
    "brokers.ring": ("tests/brokers/test_ring.py", "tests/brokers/test_memory.py"),
}
"""Each guard module of ``drizzle_gateway`` and the test modules run against its mutants."""

COPIED = ("drizzle_gateway", "tornado_drizzle", "tests", "bench", "examples", "schemas", "pyproject.toml")
"""What of the checkout a run copies (the tests import the last four)."""

STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped",
          36: "timeout", 24: "timeout", -24: "timeout", 152: "timeout", 255: "timeout", 37: "type check"}
"""mutmut's exit codes as the statuses it reports (anything else: suspicious)."""


def mutmut_config(module: str) -> str:
    """The ``[mutmut]`` section of a run's setup.cfg: mutate ``module`` only, run its tests in one process."""
    path = module.replace(".", "/")
    lines = ["[mutmut]", "source_paths = drizzle_gateway", f"only_mutate = drizzle_gateway/{path}.py",
             "also_copy =", *(f"    {path}" for path in COPIED[1:] if path != "tests"),
             "pytest_add_cli_args_test_selection =", *(f"    {test}" for test in GUARDS[module]),
             # one process per mutant (mutmut runs several mutants at once), no cache written into the copy
             "pytest_add_cli_args =", "    -n", "    0", "    -p", "    no:cacheprovider"]
    return "\n".join(lines) + "\n"


def prepare(module: str) -> Path:
    """A fresh copy of the project to mutate ``module`` in."""
    folder = WORK / module
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "node_modules", ".hypothesis", "test-artifacts")
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, folder / name, ignore=ignore)
        else:
            shutil.copy2(source, folder / name)
    (folder / "setup.cfg").write_text(mutmut_config(module))
    return folder


def statuses(folder: Path, module: str) -> dict[str, str]:
    """Each mutant of ``module`` and its status, from the run's results."""
    meta = json.loads((folder / "mutants" / "drizzle_gateway" / f"{module.replace('.', '/')}.py.meta").read_text())
    return {name: STATUS.get(code, "suspicious") for name, code in sorted(meta["exit_code_by_key"].items())}


def run(module: str, jobs: int, quiet: bool) -> tuple[int, int]:
    """Mutate ``module``, print its score and survivors; (killed, made)."""
    folder = prepare(module)
    mutmut = str(Path(sys.executable).with_name("mutmut"))
    started = time.monotonic()
    done = subprocess.run([mutmut, "run", "--max-children", str(jobs)], cwd=folder,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0:
        sys.stdout.write(done.stdout[-4000:])
        raise SystemExit(f"mutmut failed on {module} (exit {done.returncode}); its copy is {folder}")
    found = statuses(folder, module)
    counts = Counter(found.values())
    killed, made = counts["killed"] + counts["timeout"], len(found)
    others = ", ".join(f"{count} {status}" for status, count in sorted(counts.items()) if status != "killed")
    sys.stdout.write(f"{module}: {killed}/{made} killed ({100 * killed / max(made, 1):.1f}%)"
                     f"{'; ' + others if others else ''}; {time.monotonic() - started:.0f} s\n")
    for name, status in found.items():
        if status in ("killed", "timeout"):
            continue
        sys.stdout.write(f"  {status}: {name}\n")
        if not quiet:
            diff = subprocess.run([mutmut, "show", name], cwd=folder, capture_output=True, text=True).stdout
            sys.stdout.write("".join(f"    {line}\n" for line in diff.splitlines()[1:]))
    sys.stdout.flush()
    return killed, made


def main(argv: list[str] | None = None) -> int:
    """Run the named guard modules (all by default); 1 if mutmut could not run."""
    parser = argparse.ArgumentParser(prog="python -m tests.mutation", description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", metavar="MODULE",
                        help=f"guard modules to mutate (default: all of {', '.join(GUARDS)})")
    parser.add_argument("--jobs", type=int, default=2, help="mutants tested at once (default 2)")
    parser.add_argument("--quiet", action="store_true", help="list survivors by name, without their diffs")
    options = parser.parse_args(argv)
    unknown = sorted(set(options.modules) - set(GUARDS))
    if unknown:
        parser.error(f"not a guard module: {', '.join(unknown)} (choose from {', '.join(GUARDS)})")
    if shutil.which("mutmut", path=str(Path(sys.executable).parent)) is None:
        parser.error("mutmut is not installed: .venv/bin/pip install -e '.[test,mutation]'")
    for module in options.modules or GUARDS:
        run(module, options.jobs, options.quiet)
    return 0


if __name__ == "__main__":
    sys.exit(main())
