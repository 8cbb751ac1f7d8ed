"""A term of grading, as a new instructor works it: late and extended work with their penalties, formgrader
overrides that survive re-runs, one student regraded, and a resubmission graded with the old attempt kept.

The pipeline part grades lesson 01 for real (sandboxed where the machine allows) in a fresh course;
the policy, mean and report parts are unit tests on typed results.
"""

from __future__ import annotations

import csv
import io
import json
import os
from datetime import datetime, timezone

import nbformat
import pytest
from nbgrader.api import Gradebook

from course_tools.cli import main
from course_tools.grade.attempts import attempts
from course_tools.grade.gradebook import db_url
from course_tools.grade.kernel import RunSettings
from course_tools.grade.lateness import LatePolicy
from course_tools.grade.pipeline import GradingError, Options, grade
from course_tools.grade.progress import Progress
from course_tools.grade.report import GRADES_COLUMNS, GRADES_FILE, summary
from course_tools.grade.results import ExerciseResult, Status, SubmissionResult, class_mean
from course_tools.notebooks import read_notebook
from course_tools.release import nbgrader_env
from course_tools.report.summary import summarize
from course_tools.sandbox import sandbox_problem
from course_utils.diagnoses import catalogue
from tests.helpers import copy_course, fill_answers

LESSON = "01_dataloader_batching"
SETTINGS = RunSettings(cell_timeout=60, notebook_timeout=300)
DUE = "2026-11-20 17:00:00 UTC"
POLICY = f"""
c.LatePolicy.method = "per_hour"
c.LatePolicy.per_hour = 0.05
c.LatePolicy.floor = 0.5
c.LatePolicy.extensions = {{"ned": {{"{LESSON}": 48}}}}
"""


# --- the late policy, the mean and the report, on typed values -------------------------------

def test_the_late_policies():
    assert LatePolicy().penalty(9, 3600 * 5) == 0, "none by default"
    assert LatePolicy(method="fixed", fixed=0.2).penalty(9, 1) == pytest.approx(1.8)
    hourly = LatePolicy(method="per_hour", per_hour=0.05, floor=0.5)
    assert hourly.penalty(9, 0) == 0
    assert hourly.penalty(9, 4 * 3600) == pytest.approx(1.8)
    assert hourly.penalty(9, 100 * 3600) == pytest.approx(4.5), "the floor keeps half the score"
    extended = LatePolicy(extensions={"ned": {LESSON: 48}})
    assert (extended.extension_hours("ned", LESSON), extended.extension_hours("ned", "02_x")) == (48, 0)
    with pytest.raises(ValueError, match="number of hours"):
        LatePolicy(extensions={"ned": {LESSON: "two days"}}).extension_hours("ned", LESSON)


def _result(student, score, status=Status.OK, codes=(), repairs=(), late_by=0.0, penalty=0.0, stale=()):
    exercise = ExerciseResult("ex1-tests", "Exercise 1", score, 9.0, codes, "x" if codes else "")
    return SubmissionResult(student, LESSON, status, score, 9.0, (exercise,), repairs=tuple(repairs),
                            late_by=late_by, penalty=penalty, stale_overrides=tuple(stale))


def test_one_mean_no_confusion_from_untouched_work_and_renames_are_not_repairs(tmp_path):
    results = [_result("a", 9), _result("b", 6, Status.TIMED_OUT), _result("c", 0, codes=("not-attempted",)),
               _result("d", 0, Status.INVALID), _result("e", 9, repairs=("renamed from hw.ipynb",)),
               _result("f", 7.2, late_by=4.0, penalty=1.8, stale=("ex1-tests: manual score 2 ...",))]
    assert class_mean(results) == round((9 + 6 + 0 + 9 + 7.2) / 5, 4)
    report = summarize(LESSON, results, catalogue())
    assert report.scores.mean == class_mean(results) and report.scores.graded == 5
    assert report.confusions == (), "not-attempted is no confusion"
    assert report.repaired == () and report.renamed == 1
    assert [line.student for line in report.late] == ["f"] and [line.student for line in report.stale_overrides] == ["f"]
    text = summary(results, LESSON, tmp_path)
    assert f"class mean: {class_mean(results):g}/9" in text and "0 repaired notebook(s), 1 renamed" in text
    assert "late: f by 4 h, -1.8 point(s)" in text and "STALE OVERRIDE f" in text


def test_progress_redraws_every_second_on_a_terminal_and_prints_plain_lines_elsewhere():
    import time

    stream = io.StringIO()
    with Progress(LESSON, 3, stream, interval=0.1, terminal=True) as progress:
        progress.started("leo")
        time.sleep(0.55)
        assert progress.redraws >= 4, "the bar is redrawn while nothing finishes"
        assert "running: leo 00:00" in stream.getvalue()
        progress.finished("leo")
        progress.update(3)
    plain = io.StringIO()
    with Progress(LESSON, 2, plain, interval=0.05, heartbeat=0.1) as progress:
        progress.stage("execute")
        progress.started("mia")
        time.sleep(0.35)
        progress.update(2)
    lines = plain.getvalue().splitlines()
    assert "\r" not in plain.getvalue() and all(line.startswith(f"{LESSON}: ") for line in lines)
    assert sum("running: mia" in line for line in lines) >= 2, "a heartbeat line while a submission runs"
    assert lines[-1].startswith(f"{LESSON}: execute 2/2")


def test_the_help_names_the_files_grading_writes(capsys):
    with pytest.raises(SystemExit):
        main(["grade", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name in ("course-grades.csv", "gradebook.db", "feedback/", "autograded/", "reports/", ".attempts/", "--student"):
        assert name in text
    assert "into grades.csv" not in text


# --- the term, for real -----------------------------------------------------------------------

def _hand_in(root, student, notebook, timestamp=None, name=f"{LESSON}.ipynb"):
    folder = root / "submitted" / student / LESSON
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, str(folder / name))
    if timestamp:
        (folder / "timestamp.txt").write_text(timestamp)
    return folder


def _grades(root):
    with open(root / GRADES_FILE, newline="") as handle:
        return {row["student_id"]: row for row in csv.DictReader(handle)}


@pytest.fixture(scope="module")
def term(tmp_path_factory):
    os.environ["PATH"] = nbgrader_env()["PATH"]  # nbgrader starts alembic when it creates the gradebook
    root = copy_course(tmp_path_factory.mktemp("term") / "course", [LESSON])
    with open(root / "nbgrader_config.py", "a") as config:
        config.write(POLICY)
    with Gradebook(db_url(root)) as gradebook:  # the due date, as formgrader sets it
        gradebook.update_or_create_assignment(LESSON, duedate=DUE)
    release = read_notebook(root / "notebooks" / LESSON / f"{LESSON}.ipynb")
    full = fill_answers(release, read_notebook(root / "solutions" / LESSON / f"{LESSON}.ipynb"))
    _hand_in(root, "leo", full, "2026-11-20 09:00:00.000000 UTC")
    _hand_in(root, "mia", full, "2026-11-20 21:00:00.000000 UTC")   # 4 h late
    _hand_in(root, "ned", full, "2026-11-21 19:00:00.000000 UTC")   # 26 h late, 48 h extension
    _hand_in(root, "pia", release, "2026-11-20 10:00:00.000000 UTC")  # nothing answered
    options = Options(jobs=2, settings=SETTINGS,
                      allow_unsandboxed=sandbox_problem() is not None and os.environ.get("CI") != "true")
    first = {r.student: r for r in grade(root, LESSON, options)}
    return root, options, full, first


@pytest.mark.pipeline
def test_late_and_extended_work_through_nbgrader(term):
    root, _, _, first = term
    assert {s: (r.status, r.score) for s, r in first.items()} == {
        "leo": (Status.OK, 9.0), "mia": (Status.OK, pytest.approx(7.2)), "ned": (Status.OK, 9.0),
        "pia": (Status.OK, 0.0)}, {s: r.reason for s, r in first.items()}
    rows = _grades(root)
    assert list(rows["leo"]) == GRADES_COLUMNS
    assert (rows["mia"]["late_by"], rows["mia"]["penalty"], rows["mia"]["score"]) == ("4", "1.8", "7.2")
    assert (rows["ned"]["late_by"], rows["ned"]["penalty"]) == ("", ""), "the extension covers 26 h"
    assert rows["leo"]["submitted_at"].startswith("2026-11-20T09:00:00")
    assert rows["pia"]["diagnoses"] == "not-attempted not-attempted not-attempted"
    with Gradebook(db_url(root)) as gradebook:  # what formgrader shows
        assert all(gradebook.find_submission(LESSON, s).timestamp is not None for s in first)
        assert gradebook.find_submission(LESSON, "ned").extension.total_seconds() == 48 * 3600
        assert gradebook.find_submission(LESSON, "mia").late_submission_penalty == pytest.approx(1.8)
    report = json.loads((root / ".course-grade" / LESSON / "results.json").read_text())
    assert {r["student"]: r["late_by"] for r in report}["mia"] == 4.0
    page = (root / "feedback" / "mia" / LESSON / f"{LESSON}.html").read_text()
    assert "Handed in 2026-11-20 21:00 UTC" in page and "4.0 h late" in page and "-1.8" in page


@pytest.mark.pipeline
def test_formgrader_overrides_survive_reruns_and_one_student_is_regraded(term, capsys):
    root, options, _, _ = term
    with Gradebook(db_url(root)) as gradebook:  # as formgrader writes them
        gradebook.find_grade("ex1-tests", LESSON, LESSON, "pia").manual_score = 2.0
        gradebook.find_grade("ex3-tests", LESSON, LESSON, "leo").extra_credit = 1.0
        gradebook.db.commit()
    grade(root, LESSON, options)  # nothing changed: nothing runs, the gradebook's scores are read back
    rows = _grades(root)
    assert (rows["pia"]["score"], rows["leo"]["score"]) == ("2", "10")
    leo_run = root / ".course-grade" / LESSON / "runs" / "leo" / "run.json"
    before = leo_run.stat().st_mtime_ns
    again = grade(root, LESSON, Options(force=True, students=("pia",), jobs=1, settings=options.settings,
                                        allow_unsandboxed=options.allow_unsandboxed))
    assert [r.student for r in again] == ["leo", "mia", "ned", "pia"], "the others' results stand"
    assert leo_run.stat().st_mtime_ns == before, "--force --student pia ran pia alone"
    rows = _grades(root)
    assert (rows["pia"]["score"], rows["leo"]["score"], rows["mia"]["score"]) == ("2", "10", "7.2")
    with pytest.raises(GradingError, match="no submission of .* by zed"):
        grade(root, LESSON, Options(students=("zed",), allow_unsandboxed=options.allow_unsandboxed))
    capsys.readouterr()


@pytest.mark.pipeline
def test_a_resubmission_is_graded_and_the_old_attempt_kept(term, capsys, monkeypatch):
    root, options, full, _ = term
    folder = root / "submitted" / "leo" / LESSON
    [first] = attempts(folder)
    kept = (first.folder / f"{LESSON}.ipynb").read_bytes()
    resubmitted = nbformat.from_dict(full)
    resubmitted.cells.append(nbformat.v4.new_code_cell("print('second try')"))
    _hand_in(root, "leo", resubmitted, name="leo homework v2.ipynb")  # a hand copy: no timestamp.txt
    monkeypatch.chdir(root)
    assert main(["grade", LESSON, "--student", "leo"]
                + (["--no-sandbox"] if options.allow_unsandboxed else [])) == 0
    out = capsys.readouterr()
    assert "new attempt from leo" in out.err
    assert "STALE OVERRIDE leo: ex3-tests: extra credit 1" in out.out
    rows = _grades(root)
    # The new attempt is graded, without the extra credit given for the old one. A hand copy's time is its
    # file's: today, long past the due date, so the policy's floor keeps half of its 9 points.
    assert (rows["leo"]["score"], rows["leo"]["penalty"]) == ("4.5", "4.5")
    assert rows["pia"]["score"] == "2"
    kept_attempts = attempts(folder)
    assert len(kept_attempts) == 2 and (kept_attempts[0].folder / f"{LESSON}.ipynb").read_bytes() == kept
    assert kept_attempts[1].submitted_at > datetime(2026, 11, 21, tzinfo=timezone.utc)
    report = json.loads((root / "reports" / f"{LESSON}.json").read_text())
    assert [line["student"] for line in report["stale_overrides"]] == ["leo"]
