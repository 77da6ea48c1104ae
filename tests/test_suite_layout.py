"""The test suite's own layout: test modules stand on their own, and mirror the package.

A test module imports helpers from tests/support/ and takes shared fixtures
from the conftest.py files, never from another test module and never from
bench/ (bench takes what it shares with the tests from tests/support/).
Each module of the package, ``drizzle_gateway/<layer>/<m>.py``, has its
own tests in ``tests/<layer>/test_<m>.py`` (a top-level module in
``tests/test_<m>.py``); the top-level compat modules that only re-export
a layer's names need none (tests/test_public_paths.py checks them).
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
PACKAGE = TESTS.parent / "drizzle_gateway"
#: Top-level modules that only re-export what a layer defines, for the import paths the README uses.
COMPAT = {"errors.py", "resources.py", "protocol.py", "connection.py"}
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


def mirrored_test(module: Path) -> Path:
    """Where the tests of a package module live: ``tests/<layer>/test_<m>.py``."""
    relative = module.relative_to(PACKAGE)
    return TESTS.joinpath(*relative.parts[:-1], f"test_{relative.name}")


def test_every_module_of_the_package_has_its_own_test_module():
    modules = [path for path in sorted(PACKAGE.rglob("*.py"))
               if path.name != "__init__.py" and path.relative_to(PACKAGE).as_posix() not in COMPAT]
    assert len(modules) > 40
    missing = [str(mirrored_test(path).relative_to(TESTS.parent)) for path in modules
               if not mirrored_test(path).is_file()]
    assert missing == []


def test_the_compat_modules_only_re_export():
    for name in sorted(COMPAT):
        tree = ast.parse((PACKAGE / name).read_text())
        kinds = {type(node).__name__ for node in tree.body[1:]}  # after the docstring
        assert kinds <= {"ImportFrom", "Assign"}, name


def test_the_mirror_sees_a_missing_test_module():
    assert mirrored_test(PACKAGE / "wire" / "codec.py") == TESTS / "wire" / "test_codec.py"
    streams = PACKAGE / "brokers" / "redis" / "streams.py"
    assert mirrored_test(streams) == TESTS / "brokers" / "redis" / "test_streams.py"
    assert mirrored_test(PACKAGE / "gateway.py") == TESTS / "test_gateway.py"
    assert not mirrored_test(PACKAGE / "wire" / "nowhere.py").is_file()
