"""The visible checks' stored expected results are exactly what the grader's references compute now."""

from __future__ import annotations

import json
import math

import pytest

from course_tools.expected import builders, render
from course_utils.checks import expected as stored

BUILDERS = builders()


def _close(found, wanted) -> bool:
    # The references compute in float32, and CPUs with other vector units round the last bits differently
    # (up to about 1e-6 seen between two x86 machines): a stale file differs by far more than that.
    if isinstance(wanted, float) or isinstance(found, float):
        return isinstance(found, (int, float)) and math.isclose(found, wanted, rel_tol=1e-5, abs_tol=2e-6)
    if isinstance(wanted, list):
        return isinstance(found, list) and len(found) == len(wanted) and all(map(_close, found, wanted))
    if isinstance(wanted, dict):
        return isinstance(found, dict) and found.keys() == wanted.keys() and all(_close(found[k], wanted[k]) for k in wanted)
    return found == wanted


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_stored_results_match_the_references(name):
    path = stored.EXPECTED_DIR / f"{name}.json"
    assert path.is_file(), f"{path} is missing: run `course expected`"
    built = json.loads(render(BUILDERS[name]()))
    assert _close(stored.load(name), built), f"{path} is stale: run `course expected` and commit it"


def test_every_stored_file_has_a_builder():
    orphans = sorted(p.stem for p in stored.EXPECTED_DIR.glob("*.json") if p.stem not in BUILDERS)
    assert not orphans, f"stored expected results nobody builds any more: {orphans}"


def test_the_stored_files_ship_with_the_student_package():
    import tomllib
    from pathlib import Path

    config = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert "expected/*.json" in config["tool"]["setuptools"]["package-data"]["course_utils.checks"]
