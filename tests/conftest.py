"""Fixtures shared by the test modules."""

from __future__ import annotations

import os
import re
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


# The runners that serve every lesson with one kernel, namespace or course per lesson; their tests are
# scheduled per file and lesson, so that the lessons spread over the workers.
PER_LESSON_FILES = frozenset({"tests/test_zoos.py", "tests/test_rechecks.py", "tests/test_nbgrader_pipeline.py"})
_LESSON_ID = re.compile(r"\[(\d\d)[-_]")


def lesson_scope(nodeid: str) -> str:
    """The scheduling scope of a test: its file, or its file and lesson in a per-lesson runner.

    A file's tests stay on one worker (module fixtures built once, ordered tests in order), as with
    ``--dist loadfile``; a per-lesson runner's test ids start with the lesson's number.
    """
    path, _, rest = nodeid.partition("::")
    match = _LESSON_ID.search(rest) if path in PER_LESSON_FILES else None
    return f"{path}::{match.group(1)}" if match else path


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """``--dist loadfile``, except that the per-lesson runners are split by lesson (see :func:`lesson_scope`).

    (pytest-xdist's own ``loadgroup`` marks do not reach its scheduler under this pytest.)
    """
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class LessonScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return lesson_scope(nodeid)

    return LessonScheduling(config, log)
