"""CONTRIBUTING.md's recipe, followed: a new lesson needs no edit outside its own new files.

In a copy of the course that holds the shared code and no lesson at all, the test writes a throwaway
lesson ``99_throwaway`` in each role, exactly as the recipe says (a solution notebook; the checks
package ``course_utils/checks/lesson99/``; the judges module; the bug zoo), runs ``course expected``
and ``course release`` there, then the shared runners and catalogue tests on the copy. They must
pass, and lesson 99's cases must be among those collected and run: nothing registers the lesson,
it is found by name.

The copy's root and ``tools/`` come first on ``PYTHONPATH``: the editable installs of the course's
packages are import hooks placed after Python's path finder, so the copy's packages win, and the
test checks that they do.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from textwrap import dedent

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from tests.helpers import ROOT

pytestmark = [pytest.mark.pipeline, pytest.mark.notebook]

LESSON = "99_throwaway"

# Another lesson's files, left out of the copy: the test depends on the shared code only.
OTHER_LESSONS = shutil.ignore_patterns("__pycache__", "lesson[0-9][0-9]", "lesson[0-9][0-9].py", "lesson[0-9][0-9]-*.json")
TEST_FILES = ("__init__.py", "conftest.py", "helpers.py", "grading_corpus.py", "zoos/__init__.py",
              "test_zoos.py", "test_rechecks.py", "test_diagnoses.py", "test_import_graph.py",
              "test_expected.py", "test_source_scan.py", "test_release.py", "test_package_boundary.py")
# Whole files that must pass on a course whose only lesson is 99; of the others, lesson 99's cases.
WHOLE_FILES = ("test_diagnoses", "test_import_graph", "test_expected", "test_package_boundary")

# --- the lesson, file by file, as CONTRIBUTING.md's recipe writes it -----------------------------------

FILES = {
    "course_utils/checks/lesson99/__init__.py": '''
        """Lesson 99, a throwaway lesson (tests/test_new_lesson.py). Modules: ``common``, ``ex1`` (double)."""

        from __future__ import annotations

        from course_utils.checks.lesson99.common import LESSON
        from course_utils.checks.lesson99.ex1 import DIAGNOSES as EX1_DIAGNOSES
        from course_utils.checks.lesson99.ex1 import FORBIDDEN_CALLS as EX1_FORBIDDEN_CALLS
        from course_utils.checks.lesson99.ex1 import check_double
        from course_utils.checks.lesson99.ex1 import probe as probe_ex1
        from course_utils.diagnoses import by_code

        CATALOGUE = (*EX1_DIAGNOSES,)
        DIAGNOSES = by_code(CATALOGUE)
        FORBIDDEN_CALLS = (*EX1_FORBIDDEN_CALLS,)
        PROBES = {"ex1-tests": probe_ex1}

        __all__ = ["CATALOGUE", "DIAGNOSES", "FORBIDDEN_CALLS", "LESSON", "PROBES", "check_double"]
    ''',
    "course_utils/checks/lesson99/common.py": '''
        """What lesson 99's exercises share: the lesson's name and the inputs both sides of the re-check build."""

        from __future__ import annotations

        import random

        LESSON = "99_throwaway"
        CHECK_INPUTS = (3, -1.5, 10)  # the visible check's inputs; their answers are stored data


        def scenario(seed: int) -> list[float]:
            """The re-check's inputs for ``seed``, built the same in the kernel's probe and in the grader's judge."""
            draw = random.Random(seed)
            return [round(draw.uniform(-100, 100), 3) for _ in range(5)]
    ''',
    "course_utils/checks/lesson99/ex1.py": '''
        """Lesson 99, Exercise 1: ``double(x)``."""

        from __future__ import annotations

        from collections.abc import Callable
        from typing import Any

        from course_utils.checks.core import check
        from course_utils.checks.expected import load
        from course_utils.checks.learner import call_or_fail
        from course_utils.checks.lesson99.common import LESSON, scenario
        from course_utils.diagnoses import Exercise, fail_with

        EXERCISE = Exercise(LESSON, "ex1-tests", "Exercise 1 · Double")
        DIAGNOSES = EXERCISE.diagnoses(
            ("double-crashed", "double raised an error", "run your cell on a number of your own first", "interface"),
            ("double-adds-two", "double(x) added 2 to x", "multiply by 2: return 2 * x", "numerics"),
            ("double-squares", "double(x) multiplied x by itself", "multiply by 2, not by x", "numerics"),
        )
        FORBIDDEN_CALLS = ()


        def check_double(double: Callable[[Any], Any]) -> None:
            """``double`` on the stored inputs; each typical mistake is named by the value it returns."""
            stored = load("lesson99-double")
            for x, wanted in zip(stored["inputs"], stored["doubled"]):
                subject = f"double({x})"
                found = call_or_fail("double-crashed", double, x, subject=subject)
                if type(found) in (int, float) and found == wanted:
                    continue
                if found == x + 2:
                    fail_with("double-adds-two", expected=wanted, found=found, subject=subject)
                if found == x * x:
                    fail_with("double-squares", expected=wanted, found=found, subject=subject)
                check(False, f"{subject} is not 2 · x", expected=wanted, found=found, hint="return 2 * x")


        def probe(namespace: dict[str, Any], seed: int) -> dict[str, Any]:
            """The kernel's half of the re-check: the learner's ``double`` on inputs drawn from ``seed``, as values."""
            results = [namespace["double"](x) for x in scenario(seed)]
            return {"doubled": [r if type(r) in (int, float) else f"a {type(r).__name__}" for r in results]}
    ''',
    "tools/course_tools/grade/judges/lesson99.py": '''
        """Lesson 99's judge and the reference answers of its visible check (tests/test_new_lesson.py)."""

        from __future__ import annotations

        from typing import Any

        from course_tools.grade.judges._compare import close
        from course_utils.checks.lesson99.common import CHECK_INPUTS, scenario


        def judge_double(values: dict[str, Any], seed: int) -> str:
            """Exercise 1: 2 · x for every drawn x."""
            found = values.get("doubled")
            inputs = scenario(seed)
            if not isinstance(found, list) or len(found) != len(inputs):
                return "double sent back no list of results"
            for x, value in zip(inputs, found):
                if not close(value, 2 * x):
                    return f"double({x}) returned {value!r}, not 2 · x"
            return ""


        JUDGES = {"ex1-tests": judge_double}
        EXPECTED = {"lesson99-double": lambda: {"inputs": list(CHECK_INPUTS), "doubled": [2 * x for x in CHECK_INPUTS]}}
    ''',
    "tests/zoos/lesson99.py": '''
        """Lesson 99's bug zoo (tests/test_new_lesson.py): double, correct and with each catalogued mistake."""

        from __future__ import annotations

        from functools import partial

        from tests.zoos import Zoo, mutants, variant

        doubler = partial(variant, "ex1-tests")
        CANONICAL = """
        def double(x):
            return 2 * x
        """

        ZOO = Zoo("99_throwaway", (
            doubler("canonical", CANONICAL),
            doubler("adds-itself", "def double(x):\\n    return x + x"),
            *mutants("ex1-tests", CANONICAL, (
                ("adds-two", "double-adds-two", "2 * x", "x + 2"),
                ("squares", "double-squares", "2 * x", "x * x", {"says": ("multiplied x by itself",)}),
                ("crashes", "double-crashed", "return 2 * x", "raise ValueError('no')", {"refuted_with": "ValueError"}),
            )),
        ), min_bugs=3, min_correct=2)
    ''',
}

SOLUTION = ("def double(x):\n"
            '    """Twice `x`."""\n'
            "    ### BEGIN SOLUTION\n"
            "    return 2 * x\n"
            "    ### END SOLUTION")
GRADE_CELL = ('from course_utils.checks.lesson99 import check_double\n\n'
              'check_double(double)\n'
              'checks.report_passed("Exercise 1")')


def nbgrader_metadata(grade_id: str, *, graded: bool) -> dict:
    """A solution cell's (graded=False) or a graded test cell's nbgrader metadata, as the lessons carry it."""
    if graded:
        return {"grade": True, "grade_id": grade_id, "locked": True, "points": 1, "schema_version": 3,
                "solution": False, "task": False}
    return {"grade": False, "grade_id": grade_id, "locked": False, "schema_version": 3, "solution": True, "task": False}


def solution_notebook() -> nbformat.NotebookNode:
    """The lesson's source: a title, the set-up cell, the exercise's text, answer cell and graded test cell."""
    cells = [
        new_markdown_cell("# Lesson 99 · Throwaway\n\nA lesson that exists only inside a test.", id="title"),
        new_code_cell("from course_utils import checks", id="setup"),
        new_markdown_cell("### Exercise 1 · Double (1 point)\n\nWrite `double(x)`, which returns `2 · x`.", id="ex1-text"),
        new_code_cell(SOLUTION, id="ex1-answer", metadata={"nbgrader": nbgrader_metadata("ex1-answer", graded=False)}),
        new_code_cell(GRADE_CELL, id="ex1-tests", metadata={"nbgrader": nbgrader_metadata("ex1-tests", graded=True)}),
    ]
    return new_notebook(cells=cells, metadata={"kernelspec": {"display_name": "Python 3 (ipykernel)",
                                                              "language": "python", "name": "python3"},
                                               "language_info": {"name": "python"}})


def shared_course(destination: Path) -> Path:
    """The course's shared code and configuration, without any lesson."""
    destination.mkdir(parents=True)
    for name in ("nbgrader_config.py", "pyproject.toml"):
        shutil.copy(ROOT / name, destination / name)
    shutil.copytree(ROOT / "course_utils", destination / "course_utils", ignore=OTHER_LESSONS)
    shutil.copytree(ROOT / "tools" / "course_tools", destination / "tools" / "course_tools", ignore=OTHER_LESSONS)
    for name in TEST_FILES:
        (destination / "tests" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "tests" / name, destination / "tests" / name)
    return destination


def add_lesson(course: Path) -> None:
    """Lesson 99 in each role: its own new files, and no edit anywhere else."""
    for relative, text in FILES.items():
        path = course / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dedent(text).lstrip(), encoding="utf-8")
    folder = course / "solutions" / LESSON
    folder.mkdir(parents=True)
    nbformat.write(solution_notebook(), str(folder / f"{LESSON}.ipynb"))


def run(course: Path, *command: str, timeout: int = 300) -> str:
    """``python command...`` in ``course`` with the copy's packages first on the path; its output (it must succeed)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST_", "COV_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(course), str(course / "tools")])
    env.setdefault("OMP_NUM_THREADS", "1")
    result = subprocess.run([sys.executable, *command], cwd=course, env=env, capture_output=True, text=True,
                            timeout=timeout)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(command)} failed ({result.returncode}):\n{output[-6000:]}"
    return output


def test_a_new_lesson_is_found_by_name_and_covered_by_the_shared_tests(tmp_path):
    course = shared_course(tmp_path / "course")
    add_lesson(course)

    where = run(course, "-c", "import course_utils, course_tools, tests; "
                              "print(course_utils.__file__, course_tools.__file__, tests.__file__, sep='\\n')")
    for line in where.splitlines():
        assert Path(line).resolve().is_relative_to(course.resolve()), f"imported from outside the copy: {line}"

    run(course, "-c", "import sys; from course_tools.cli import main; "
                      f"sys.exit(main(['expected', {LESSON!r}]) or main(['release', {LESSON!r}]))")
    assert (course / "course_utils" / "checks" / "expected" / "lesson99-double.json").is_file()
    release = nbformat.read(str(course / "notebooks" / LESSON / f"{LESSON}.ipynb"), as_version=4)
    stub = next(cell for cell in release.cells if cell.get("id") == "ex1-answer")
    assert "raise NotImplementedError()" in stub.source and "2 * x" not in stub.source

    files = [f"tests/{name}" for name in TEST_FILES if name.startswith("test_")]
    selection = " or ".join(["99_throwaway", "99-ex1", *WHOLE_FILES])
    output = run(course, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", f"--basetemp={tmp_path / 'pt'}",
                 *files, "-k", selection)
    passed = re.findall(r"^PASSED (\S+)", output, re.M)
    summary = output.strip().splitlines()[-1]
    assert re.search(r"\d+ passed", summary), output[-6000:]
    assert not re.search(r"\d+ (failed|errors?|skipped|xfailed|xpassed)", summary), output[-6000:]

    def cases(file: str, test: str) -> set[str]:
        return {node.split("[", 1)[1].rstrip("]") for node in passed if node.startswith(f"tests/{file}.py::{test}[")}

    correct = {"99-ex1-tests-canonical", "99-ex1-tests-adds-itself"}
    buggy = {"99-ex1-tests-adds-two", "99-ex1-tests-squares", "99-ex1-tests-crashes"}
    assert cases("test_zoos", "test_the_zoo_meets_its_bar") == {LESSON}
    assert cases("test_zoos", "test_every_diagnosis_belongs_to_a_grade_cell_of_the_lesson") == {LESSON}
    assert cases("test_zoos", "test_correct_variant_passes_the_grade_cell") == correct
    assert cases("test_zoos", "test_buggy_variant_fails_the_grade_cell_with_its_code") == buggy
    assert cases("test_rechecks", "test_every_graded_cell_has_a_probe_and_a_judge") == {LESSON}
    assert cases("test_rechecks", "test_the_solution_passes") == {"99-ex1-tests"}
    assert cases("test_rechecks", "test_the_stub_fails") == {"99-ex1-tests"}
    assert cases("test_rechecks", "test_every_correct_zoo_variant_passes") == correct
    assert cases("test_rechecks", "test_every_mistake_that_changes_values_fails") == buggy
    assert cases("test_expected", "test_stored_results_match_the_references") == {"lesson99-double"}
    assert cases("test_source_scan", "test_no_answer_of_any_solution_is_flagged") == {LESSON}
    assert cases("test_source_scan", "test_no_correct_variant_of_any_bug_zoo_is_flagged") == {LESSON}
    assert cases("test_release", "test_lesson_source_folder_holds_only_its_notebook") == {LESSON}
    for name in ("test_every_lesson_has_its_checks_module_found_by_name",
                 "test_every_catalogued_diagnosis_says_where_it_belongs",
                 "test_fail_with_names_a_catalogued_code_and_refuses_an_unknown_one"):
        assert f"tests/test_diagnoses.py::{name}" in passed, name
    assert "tests/test_import_graph.py::test_neither_package_has_an_import_circle" in passed
    assert {case for case in cases("test_package_boundary", "test_student_module_imports_no_instructor_or_jupyter_tooling")
            if "lesson99" in case} == {f"course_utils/checks/lesson99/{name}.py" for name in ("__init__", "common", "ex1")}
