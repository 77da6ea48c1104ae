"""What the wheel ships: the packages, their static files, the license and the ``py.typed`` markers."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("setup.cfg", "pyproject.toml", "README.md", "LICENSE", "drizzle_gateway", "tornado_drizzle")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    """A wheel built from a copy of the checkout (pip wheel, with the setuptools of this venv)."""
    source = tmp_path_factory.mktemp("source")
    for name in SOURCES:
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy
        copy(ROOT / name, source / name, **({"ignore": shutil.ignore_patterns("__pycache__")}
                                             if (ROOT / name).is_dir() else {}))
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                             "-w", str(out), str(source)], capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr
    (built,) = out.glob("drizzle_gateway-*.whl")
    with zipfile.ZipFile(built) as archive:
        yield archive


@pytest.mark.timeout(300)
def test_the_wheel_ships_the_license_and_the_typing_markers(wheel):
    names = wheel.namelist()
    assert "drizzle_gateway/py.typed" in names and "tornado_drizzle/py.typed" in names
    (license_file,) = [name for name in names if name.endswith(".dist-info/LICENSE")
                       or name.endswith(".dist-info/licenses/LICENSE")]
    assert wheel.read(license_file).decode().startswith("MIT License\n\nCopyright (c) drizzle_gateway contributors\n")
    metadata = wheel.read(next(name for name in names if name.endswith(".dist-info/METADATA"))).decode()
    assert "License: MIT" in metadata or "License-Expression: MIT" in metadata


@pytest.mark.timeout(300)
def test_the_wheel_ships_the_browser_files_and_every_module(wheel):
    names = set(wheel.namelist())
    for static in ("drizzle.js", "drizzle.d.ts", "explorer.html", "explorer.js", "explorer.css", "package.json"):
        assert f"drizzle_gateway/static/{static}" in names
    modules = {str(path.relative_to(ROOT)) for package in ("drizzle_gateway", "tornado_drizzle")
               for path in (ROOT / package).rglob("*.py")}
    assert modules <= names, sorted(modules - names)
