"""Every lesson has the same shape in each role: the same files in the same places, under the same names.

Student side, ``course_utils/checks/lessonNN/``: ``__init__.py`` (assembles only), ``common.py``, and
one ``exN.py`` per exercise of the notebook; each exercise module declares its ``EXERCISE`` (or
several), its ``DIAGNOSES`` as data, its ``FORBIDDEN_CALLS`` and its probe. Grader side,
``tools/course_tools/grade/judges/lessonNN.py`` with ``JUDGES`` and ``EXPECTED``. Tests,
``tests/zoos/lessonNN.py`` with ``ZOO``. See docs/architecture.md and CONTRIBUTING.md.
"""

from __future__ import annotations

import importlib
import re

import pytest

from course_utils.diagnoses import Exercise, checks_module
from tests.conftest import LESSONS
from tests.helpers import ROOT, graded_cells

MAX_LINES = 520  # "split a module that grows past about 500 lines along the lesson's exercises"
PUBLIC = ("LESSON", "CATALOGUE", "DIAGNOSES", "FORBIDDEN_CALLS", "PROBES")


def exercise_numbers(lesson: str) -> list[str]:
    """The exercise numbers of the lesson's graded cells ("ex1-tests", "ex1-values-tests" -> "1")."""
    return sorted({re.match(r"ex(\d+)-", grade_id).group(1) for grade_id in graded_cells(lesson)})


@pytest.mark.parametrize("lesson", LESSONS)
def test_the_student_side_has_the_lesson_shape(lesson):
    folder = ROOT / "course_utils" / "checks" / f"lesson{lesson[:2]}"
    assert folder.is_dir(), f"{folder} is the lesson's checks package"
    for name in ["__init__", "common", *(f"ex{number}" for number in exercise_numbers(lesson))]:
        assert (folder / f"{name}.py").is_file(), f"{lesson}: {name}.py is missing"
    package = importlib.import_module(checks_module(lesson))
    assert all(hasattr(package, name) for name in PUBLIC), f"{lesson}: the package assembles {PUBLIC}"
    assert package.LESSON == lesson
    assert set(package.PROBES) == set(graded_cells(lesson)), "one probe per graded cell"
    assert {diagnosis.exercise for diagnosis in package.CATALOGUE} <= set(graded_cells(lesson))


@pytest.mark.parametrize("lesson", LESSONS)
def test_each_exercise_module_declares_its_own_diagnoses(lesson):
    declared = []
    for number in exercise_numbers(lesson):
        module = importlib.import_module(f"{checks_module(lesson)}.ex{number}")
        exercises = [value for value in vars(module).values() if isinstance(value, Exercise)]
        assert exercises and all(exercise.lesson == lesson for exercise in exercises), module.__name__
        assert all(exercise.grade_id.startswith(f"ex{number}-") for exercise in exercises), module.__name__
        assert isinstance(module.FORBIDDEN_CALLS, tuple), module.__name__
        declared += list(module.DIAGNOSES)
    assert tuple(declared) == importlib.import_module(checks_module(lesson)).CATALOGUE, \
        "the catalogue is the exercise modules' diagnoses, in exercise order"


@pytest.mark.parametrize("lesson", LESSONS)
def test_the_grader_side_and_the_zoo_have_the_lesson_shape(lesson):
    judges = importlib.import_module(f"course_tools.grade.judges.lesson{lesson[:2]}")
    assert set(judges.JUDGES) == set(graded_cells(lesson)) and isinstance(judges.EXPECTED, dict)
    zoo = importlib.import_module(f"tests.zoos.lesson{lesson[:2]}").ZOO
    assert zoo.lesson == lesson


def test_no_lesson_module_grows_past_about_500_lines():
    files = [*(ROOT / "course_utils" / "checks").glob("lesson[0-9][0-9]/*.py"),
             *(ROOT / "tools" / "course_tools" / "grade" / "judges").glob("lesson[0-9][0-9].py")]
    assert files
    long = {str(path.relative_to(ROOT)): lines for path in files
            if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"split these along the lesson's exercises: {long}"


def test_nothing_of_a_lesson_sits_outside_its_places():
    strays = sorted(path.name for path in (ROOT / "course_utils").glob("*.py")
                    if re.search(r"lesson\d\d|loop_grader|fit_grader", path.name))
    strays += sorted(path.name for path in (ROOT / "tests").glob("*.py")
                     if re.match(r"(zoo_lesson\d\d|loop_zoo|test_zoo_lesson\d\d|test_verdict_lesson\d\d)\.py$", path.name))
    assert not strays, f"a lesson's files belong in its package, its judges module or its zoo: {strays}"
