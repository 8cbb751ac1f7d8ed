"""Fixtures shared by the test modules."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from course_tools.release import find_lessons
from tests.helpers import ROOT, copy_course

LESSONS = find_lessons(ROOT)

# Kernels started by the tests inherit this: the lessons' tensors are tiny, and with pytest-xdist
# running two workers on two cores, PyTorch's intra-op threads would only compete for them.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture
def make_course(tmp_path: Path) -> Callable[..., Path]:
    """Factory: a temporary course root holding the config and the chosen lessons."""

    def factory(lessons: list[str] | None = None, *, with_release: bool = True) -> Path:
        return copy_course(tmp_path / "course", lessons or LESSONS, with_release=with_release)

    return factory


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give each test a ``--dist loadgroup`` group: its file, or its file and lesson.

    A file's tests stay on one worker, so a module fixture is built once and ordered tests keep their
    order. A runner that serves every lesson with one kernel or namespace per lesson (its module sets
    ``GROUP_BY_LESSON = True``: tests/test_zoos.py, tests/test_rechecks.py) has its tests grouped by
    file and lesson instead, so the lessons spread over the workers.
    """
    for item in items:
        group = item.nodeid.split("::")[0]
        lesson = getattr(getattr(item, "callspec", None), "params", {}).get("lesson")
        if isinstance(lesson, str) and getattr(item.module, "GROUP_BY_LESSON", False):
            group += f"::{lesson}"
        item.add_marker(pytest.mark.xdist_group(group))
