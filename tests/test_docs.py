"""The docs say what the code does: tables list every knob, links and versions are real."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

import drizzle_gateway
from drizzle_gateway import Limits

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]+\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor for a markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_security_limits_table_lists_every_limits_field():
    text = (ROOT / "docs/security.md").read_text()
    table = [line for line in text.splitlines() if line.startswith("| `")]
    documented = {name for line in table for name in re.findall(r"`(\w+)`", line.split("|")[1])}
    assert {field.name for field in dataclasses.fields(Limits)} <= documented


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: path.name)
def test_relative_links_point_at_files_and_headings_that_exist(doc):
    for target in LINK.findall(doc.read_text()):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        linked = (doc.parent / path).resolve() if path else doc
        assert linked.exists(), f"{doc.name} links to {target}"
        if anchor:
            headings = re.findall(r"^#+ (.+)$", linked.read_text(), re.M)
            assert anchor in {slug(h) for h in headings}, f"{doc.name} links to {target}"


def test_security_points_to_the_page_that_describes_4008():
    text = (ROOT / "docs/security.md").read_text()
    sentence = next(part for part in text.split(". ") if "(4008)" in part)
    targets = LINK.findall(sentence)
    assert targets, sentence
    assert "4008" in (ROOT / "docs" / targets[0].partition("#")[0]).read_text()


def test_no_versionadded_beyond_the_package_version():
    version = tuple(int(part) for part in drizzle_gateway.__version__.split(".")[:2])
    for source in (ROOT / "drizzle_gateway").rglob("*.py"):
        for found in re.findall(r"versionadded:: ([\d.]+)", source.read_text()):
            assert tuple(int(part) for part in found.split(".")[:2]) <= version, f"{source.name}: {found}"


@pytest.mark.parametrize("doc", ["README.md", "docs/security.md"])
def test_inline_commands_use_the_venv(doc):
    """Commands quoted in the text name the venv's programs (the README never activates it)."""
    text = (ROOT / doc).read_text()
    for found in re.finditer(r"`([^`\n]*\b(?:python3? -m|pip install)\b[^`\n]*)`", text):
        command = found.group(1)
        assert command.startswith((".venv/bin/", "python3 -m venv .venv && .venv/bin/")), command
