"""The test suite's own layout: test modules stand on their own.

A test module imports helpers from tests/support/ and takes shared fixtures
from the conftest.py files, never from another test module and never from
bench/ (bench takes what it shares with the tests from tests/support/).
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
#: What may sit at the top of tests/ besides test modules: the package, the fixtures, the mutation command.
TOP_LEVEL = {"__init__.py", "conftest.py", "mutation.py"}


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports (``from X import y`` counts X and X.y), anywhere in the file."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def leans_on(module: str) -> bool:
    """True for a test module (``tests.test_x``, ``tests.adversarial.test_x``) or anything of bench."""
    parts = module.split(".")
    return parts[0] == "bench" or (parts[0] == "tests" and any(part.startswith("test_") for part in parts[1:]))


def test_no_module_of_the_suite_imports_a_test_module_or_bench():
    found = {
        str(path.relative_to(TESTS.parent)): sorted(filter(leans_on, imported_modules(path)))
        for path in sorted(TESTS.rglob("*.py"))
        if "node_modules" not in path.parts
    }
    assert {path: modules for path, modules in found.items() if modules} == {}


def test_shared_helpers_live_in_tests_support():
    loose = sorted(path.name for path in TESTS.glob("*.py")
                   if not path.name.startswith("test_") and path.name not in TOP_LEVEL)
    assert loose == []
