"""A clone of the repository runs its own tests: no test reads a file outside it (such as a ``../shared`` folder
beside the clone). The real-world fixtures live in ``ato_gateway/wire/tests/fixtures/``."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# A relative climb out of a folder, the repository's parent, or a folder named like the one beside the repository
# that the fixtures first came from.
OUTSIDE = re.compile(r"""\.\./|\bREPO\.parent\b|["'/]shared["'/]""")


def _test_files() -> list[Path]:
    skip = {".venv", ".git", "node_modules", "var"}
    return sorted(
        path
        for path in REPO.rglob("*.py")
        if not skip & set(path.relative_to(REPO).parts)
        and ("tests" in path.relative_to(REPO).parts or path.name.startswith("test_") or path.name == "conftest.py")
    )


def test_no_test_reads_outside_the_repository() -> None:
    files = _test_files()
    assert len(files) > 20  # the scan found the test suite
    offending = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for path in files
        if path != Path(__file__).resolve()
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if OUTSIDE.search(line)
    ]
    assert offending == []


def test_the_fixtures_are_in_the_repository_with_their_source() -> None:
    fixtures = REPO / "ato_gateway" / "wire" / "tests" / "fixtures"
    assert (fixtures / "keystores" / "ato-usi-test-keystore.xml").stat().st_size > 10_000
    assert "ato-pub/usi.cl.java" in (fixtures / "README.md").read_text()
    assert "phax/phase4" in (REPO / "ato_gateway" / "wire" / "schemas" / "README.md").read_text()
