"""Stock nbgrader on a fresh clone: the release registers the lessons, `nbgrader generate_assignment` writes the
same notebooks as `make notebooks`, a stale release is found by content, and the nbgrader exchange round trip
(release_assignment -> fetch_assignment -> submit -> collect -> course grade) works, in a temporary folder."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook
from nbgrader.utils import get_username

from course_tools.grade.gradebook import db_url
from course_tools.grade.pipeline import GradingError, Options, grade
from course_tools.grade.report import GRADES_FILE
from course_tools.notebooks import read_notebook
from course_tools.release import nbgrader_env, release, stale_release
from course_tools.sandbox import sandbox_problem
from tests.helpers import ROOT, copy_course, fill_answers, nbgrader

pytestmark = pytest.mark.pipeline

LESSON = "01_dataloader_batching"
COURSE_ID = "pytorch-training-loop"
UNSANDBOXED = sandbox_problem() is not None and os.environ.get("CI") != "true"


def committed(lesson: str) -> bytes:
    return (ROOT / "notebooks" / lesson / f"{lesson}.ipynb").read_bytes()


def test_stock_generate_assignment_writes_the_committed_release_and_course_release_registers_it(tmp_path):
    course = copy_course(tmp_path / "course", [LESSON], with_release=False)
    nbgrader(course, "generate_assignment", LESSON, "--force")
    released = course / "notebooks" / LESSON / f"{LESSON}.ipynb"
    assert released.read_bytes() == committed(LESSON), "the Colab cell and the quiz widget survive stock nbgrader"
    (course / "gradebook.db").unlink()
    release(course, [LESSON])
    assert released.read_bytes() == committed(LESSON)
    with Gradebook(db_url(course)) as gradebook:
        assignment = gradebook.find_assignment(LESSON)
        assert [n.name for n in assignment.notebooks] == [LESSON]
        assert len(gradebook.find_notebook(LESSON, LESSON).grade_cells) == 3
    assert stale_release(course, LESSON) == ""


def test_nbgrader_autograde_works_right_after_make_notebooks_on_a_fresh_clone(tmp_path):
    course = copy_course(tmp_path / "course", [LESSON])
    assert not (course / "gradebook.db").exists()
    release(course, [LESSON])  # make notebooks
    student = read_notebook(course / "notebooks" / LESSON / f"{LESSON}.ipynb")
    folder = course / "submitted" / "ada" / LESSON
    folder.mkdir(parents=True)
    nbformat.write(fill_answers(student, read_notebook(course / "solutions" / LESSON / f"{LESSON}.ipynb")),
                   str(folder / f"{LESSON}.ipynb"))
    (folder / "timestamp.txt").write_text("2026-11-21 09:00:00.000000 UTC")
    nbgrader(course, "autograde", LESSON)
    nbgrader(course, "generate_feedback", LESSON)
    nbgrader(course, "export")
    with open(course / "grades.csv", newline="") as handle:
        [row] = list(csv.DictReader(handle))
    assert (row["student_id"], float(row["raw_score"]), float(row["max_score"])) == ("ada", 9.0, 9.0)
    assert row["timestamp"].startswith("2026-11-21 09:00:00")
    assert (course / "feedback" / "ada" / LESSON / f"{LESSON}.html").is_file()


def test_a_hand_edited_release_is_found_by_content(tmp_path):
    course = copy_course(tmp_path / "course", [LESSON])
    path = course / "notebooks" / LESSON / f"{LESSON}.ipynb"
    notebook = read_notebook(path)
    notebook.cells = [c for c in notebook.cells if "colab" not in c.source.lower()]  # as an older nbgrader run left it
    nbformat.write(notebook, str(path))
    assert "differs from what solutions" in stale_release(course, LESSON)
    os.environ["PATH"] = nbgrader_env()["PATH"]
    with pytest.raises(GradingError, match="make notebooks"):
        grade(course, LESSON, Options(allow_unsandboxed=True))


def _student(command: list[str], cwd: Path, exchange: Path) -> None:
    env = nbgrader_env()
    result = subprocess.run([sys.executable, "-m", "nbgrader", *command, f"--Exchange.root={exchange}",
                             f"--course={COURSE_ID}"], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"nbgrader {command}: {result.stdout}\n{result.stderr}"


def test_the_nbgrader_exchange_round_trip_ends_in_course_grade(tmp_path):
    course = copy_course(tmp_path / "course", [LESSON])
    exchange = tmp_path / "exchange"
    exchange.mkdir()
    exchange.chmod(0o777)
    release(course, [LESSON])
    nbgrader(course, "release_assignment", LESSON, f"--Exchange.root={exchange}")

    student = get_username()  # the exchange names a submission after the operating-system user
    home = tmp_path / "home"
    home.mkdir()
    _student(["fetch_assignment", LESSON], home, exchange)
    fetched = home / LESSON / f"{LESSON}.ipynb"
    answered = fill_answers(read_notebook(fetched), read_notebook(course / "solutions" / LESSON / f"{LESSON}.ipynb"))
    nbformat.write(answered, str(fetched))
    _student(["submit", LESSON], home, exchange)

    nbgrader(course, "collect", LESSON, f"--Exchange.root={exchange}")
    folder = course / "submitted" / student / LESSON
    stamp = (folder / "timestamp.txt").read_text().strip()
    os.environ["PATH"] = nbgrader_env()["PATH"]
    [result] = grade(course, LESSON, Options(allow_unsandboxed=UNSANDBOXED))
    assert (result.student, result.status.value, result.score, result.max_score) == (student, "ok", 9.0, 9.0)
    with open(course / GRADES_FILE, newline="") as handle:
        [row] = list(csv.DictReader(handle))
    assert row["submitted_at"][:19].replace("T", " ") == stamp[:19], "nbgrader's own submission time"
