"""``course report``: a synthetic class with known mistakes gives exact counts, in the JSON and the page.

The class (tests/report_class.py) is what ``course grade`` leaves in ``.course-grade/``; the texts
of lesson 07's diagnoses must be the catalogue's own (``course_utils.checks.lesson07``), never copies.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest

from course_tools.grade.results import ExerciseResult, Status, SubmissionResult, save_results
from course_tools.report import write_report
from course_tools.report.command import add_report_command
from course_tools.report.summary import histogram
from course_tools.report.write import ReportError, write_lessons
from course_utils.diagnoses import Diagnosis
from course_utils.checks.lesson07 import DIAGNOSES as BUGS
from tests.report_class import CRASH, L07, L08, diagnoses, lesson07_class, lesson08_class, submission


def _course(tmp_path: Path, *lessons: str) -> Path:
    root = tmp_path / "course"
    classes = {L07: lesson07_class, L08: lesson08_class}
    for lesson in lessons:
        save_results(root, lesson, classes[lesson]())
    return root


def _json(root: Path, name: str) -> dict:
    return json.loads((root / "reports" / f"{name}.json").read_text())


def _counts(exercise: dict) -> list[tuple]:
    return [(d["code"], d["students"], d["share"], d["points_lost"]) for d in exercise["diagnoses"]]


def test_the_json_counts_a_class_with_known_mistakes_exactly(tmp_path):
    root = _course(tmp_path, L07)
    html_path = write_report(root, L07, diagnoses())
    assert html_path == root / "reports" / f"{L07}.html"
    assert sorted(p.name for p in (root / "reports").iterdir()) == [f"{L07}.html", f"{L07}.json"]
    data = _json(root, L07)

    assert data["status_counts"] == {"ok": 20, "invalid": 1, "tampered": 0, "kernel-died": 0, "timed-out": 1,
                                     "sandbox-failed": 0, "worker-lost": 1}
    scores = data["scores"]
    # graded: every status but invalid (the timed-out and lost submissions scored 0 here), as in the gradebook
    assert (scores["submissions"], scores["graded"], scores["max_score"]) == (23, 22, 10.0)
    assert (scores["median"], scores["full_marks"]) == (6.0, 4)
    assert scores["mean"] == round((3 + 6 * 9 + 7 * 5 + 10 * 4) / 22, 4)
    assert {(b["low"], b["high"]): b["students"] for b in scores["histogram"] if b["students"]} == {
        (0.0, 1.0): 3, (3.0, 4.0): 1, (6.0, 7.0): 9, (7.0, 8.0): 5, (10.0, 10.0): 4}

    ex1, ex2, ex3 = data["exercises"]
    # 7 of 20 students missed zero_grad; s03's message also names graph-kept, which is not charged.
    assert _counts(ex1) == [("accumulated-gradients", 7, 0.35, 28.0), ("inputs-not-moved", 3, 0.15, 12.0),
                            (None, 1, 0.05, 4.0)]
    assert (ex1["full_points"], ex1["full_share"], ex1["max_points"]) == (9, 0.45, 4.0)
    assert _counts(ex2) == [("eval-mode", 4, 0.2, 12.0), ("eval-grad", 2, 0.1, 6.0)]
    assert _counts(ex3) == [("no-convergence", 2, 0.1, 6.0)]
    assert (ex2["full_points"], ex3["full_points"]) == (14, 18)
    # The explanation is the catalogue's, the very object the checks raise.
    assert ex1["diagnoses"][0]["what"] == BUGS["accumulated-gradients"].what
    assert ex1["diagnoses"][0]["family"] == "gradients"

    # 28 + 12 + 4 + 12 + 6 + 6 = 68 points lost; eval-mode and inputs-not-moved tie on 12, more students first.
    confusions = data["confusions"]
    assert [(c["code"], c["points_lost"], c["students"]) for c in confusions] == [
        ("accumulated-gradients", 28.0, 7), ("eval-mode", 12.0, 4), ("inputs-not-moved", 12.0, 3)]
    assert confusions[0]["share_of_lost"] == round(28 / 68, 4)
    for confusion in confusions:
        diagnosis = BUGS[confusion["code"]]
        assert (confusion["hint"], confusion["section"], confusion["what"]) == (
            diagnosis.hint, diagnosis.section, diagnosis.what)

    assert [(s["student"], s["score"]) for s in data["lowest"]] == [
        ("s01", 0.0), ("s21", 0.0), ("s23", 0.0), ("s02", 3.0), ("s03", 6.0)]
    assert data["also_at_cutoff"] == 8  # s04-s11 scored 6 as well
    assert [loss["code"] for loss in data["lowest"][0]["losses"]] == ["accumulated-gradients", "eval-mode",
                                                                      "no-convergence"]
    assert [(s["student"], s["status"], s["reason"], s["repairs"]) for s in data["not_graded"]] == [
        ("s21", "timed-out", "the notebook ran longer than 120 s", ["restored the deleted grade cell ex2-tests"]),
        ("s22", "invalid", "not a notebook: the file is not valid JSON", []),
        ("s23", "worker-lost", "the cluster worker died twice", [])]
    assert [s["student"] for s in data["repaired"]] == ["s12", "s21"]  # s21 timed out, but it is scored
    assert data["unknown_codes"] == [] and data["across_lessons"] is None

    page = html_path.read_text()
    for section in ("Scores", "Per exercise", "Common confusions", "Students who may need help"):
        assert f"<h2>{section}</h2>" in page
    assert "Across lessons</h2>" not in page
    assert "7 students (35%)" in page and "the notebook ran longer than 120 s" in page
    assert page.count('src="data:image/png;base64,') == 4  # histogram + one chart per exercise
    assert "<script" not in page.lower() and "http://" not in page and "https://" not in page


def test_an_unexplained_loss_shows_the_first_line_of_its_message(tmp_path):
    root = tmp_path / "course"
    save_results(root, L07, [submission("c", L07, {"ex1-tests": CRASH}), submission("d", L07)])
    data = json.loads(write_report(root, L07, diagnoses()).with_suffix(".json").read_text())
    assert [(loss["code"], loss["message"]) for loss in data["lowest"][0]["losses"]] == [
        (None, "NameError: name 'lossx' is not defined")]
    assert data["confusions"] == []  # points lost with no diagnosis named are no confusion to teach
    page = (root / "reports" / f"{L07}.html").read_text()
    assert "NameError: name &#x27;lossx&#x27; is not defined</code>" in page and "line 3" not in page
    assert "No points were lost to a named diagnosis." in page


def test_across_lessons_one_line_per_student_and_each_family_trend(tmp_path):
    root = _course(tmp_path, L07, L08)
    written = write_lessons(root, diagnoses=diagnoses())
    assert sorted(p.name for p in written) == sorted(
        [f"{L07}.html", f"{L07}.json", f"{L08}.html", f"{L08}.json", "course.html", "course.json"])
    course = _json(root, "course")
    assert _json(root, L07)["across_lessons"] == _json(root, L08)["across_lessons"] == {
        k: v for k, v in course.items() if k != "format"}
    assert course["lessons"] == [L07, L08]
    rows = {row["student"]: row for row in course["students"]}
    assert len(rows) == 24  # s01-s23 took lesson 07, s30 lesson 08 only
    assert [(c["status"], c["fraction"]) for c in rows["s01"]["lessons"]] == [("ok", 0.0), ("ok", 0.5)]
    assert rows["s01"]["mean_fraction"] == 0.25
    assert [(c["status"], c["fraction"]) for c in rows["s30"]["lessons"]] == [("missing", None), ("ok", 1.0)]
    assert [(c["status"], c["fraction"]) for c in rows["s21"]["lessons"]] == [("timed-out", 0.0), ("missing", None)]

    trends = {t["family"]: [(p["students"], p["share"]) for p in t["points"]] for t in course["families"]}
    assert list(trends) == ["modes", "device", "gradients", "metrics", "distributed", "unexplained"]
    assert trends["device"] == [(3, 0.15), (2, 0.2)]        # inputs-not-moved in 07, the model in 08
    assert trends["distributed"] == [(0, None), (1, 0.1)]   # lesson 07 cannot diagnose it: no point
    assert trends["gradients"] == [(7, 0.35), (0, None)]
    assert trends["modes"] == [(6, 0.3), (0, None)]         # eval-mode 4 + eval-grad 2 students

    for name in (L07, L08, "course"):
        page = (root / "reports" / f"{name}.html").read_text()
        assert "<h2>Across lessons</h2>" in page and "<h3>One line per student</h3>" in page
    assert f'href="{L07}.html"' in (root / "reports" / "course.html").read_text()


HOSTILE_ID = '<script>alert("id")</script>'
HOSTILE_REASON = "<img src=x onerror=alert(1)>"
HOSTILE_REPAIR = "</td><script>alert('repair')</script>"
HOSTILE_MESSAGE = "<script>alert('message')</script> broke the loop"


def test_student_provided_strings_are_escaped_everywhere(tmp_path):
    root = tmp_path / "course"
    results = lesson07_class()[:5] + [
        submission(HOSTILE_ID, L07, {"ex1-tests": HOSTILE_MESSAGE}, repairs=(HOSTILE_REPAIR,)),
        submission("<b>bold</b>", L07, status=Status.TAMPERED, reason=HOSTILE_REASON, repairs=(HOSTILE_REPAIR,)),
    ]
    save_results(root, L07, results)
    save_results(root, L08, lesson08_class() + [submission(HOSTILE_ID, L08)])
    write_lessons(root, diagnoses=diagnoses())
    for name in (L07, L08, "course"):
        page = (root / "reports" / f"{name}.html").read_text()
        assert "<script" not in page.lower(), name
        assert "<img src=x" not in page and "<b>bold</b>" not in page, name
        assert "&lt;script&gt;alert(&quot;id&quot;)&lt;/script&gt;" in page, name
    page = (root / "reports" / f"{L07}.html").read_text()
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&lt;/td&gt;&lt;script&gt;alert(&#x27;repair&#x27;)" in page
    assert "&lt;script&gt;alert(&#x27;message&#x27;)&lt;/script&gt; broke the loop" in page
    # The JSON holds the strings as they are (it is data, not markup).
    assert HOSTILE_ID in {s["student"] for s in _json(root, L07)["lowest"]}


def test_unknown_codes_are_shown_by_their_code_not_a_crash(tmp_path):
    root = tmp_path / "course"
    retired = ExerciseResult("ex1-tests", "Exercise 1 · train_one_epoch", 0.0, 4.0, ("retired-check",),
                             "✗ check: an old check [retired-check]")
    results = [SubmissionResult("a", L07, Status.OK, 6.0, 10.0, (retired,)),
               submission("b", L07, {"ex2-tests": ("eval-mode",)})]
    save_results(root, L07, results)
    save_results(root, L08, lesson08_class())
    write_lessons(root, diagnoses={})  # a catalogue that lost every code since the grading
    data = _json(root, L07)
    assert data["unknown_codes"] == ["eval-mode", "retired-check"]
    assert [(d["code"], d["what"], d["known"], d["family"]) for d in data["exercises"][0]["diagnoses"]] == [
        ("retired-check", "retired-check", False, "unknown")]
    assert data["confusions"][0]["hint"] == "" and data["confusions"][0]["section"] == ""
    page = (root / "reports" / f"{L07}.html").read_text()
    assert "<code>retired-check</code> <span class=\"unknown\">(not in the catalogue)</span>" in page
    assert [t["family"] for t in _json(root, "course")["families"]] == ["unknown"]


def test_the_histogram_gives_full_marks_a_bar_of_its_own():
    bins = histogram([0.0, 2.5, 7.0, 7.5, 7.5], 7.5)
    assert [(b.low, b.high, b.students) for b in bins if b.students] == [(0.0, 1.0, 1), (2.0, 3.0, 1),
                                                                        (7.0, 7.5, 1), (7.5, 7.5, 2)]
    large = histogram([0.0, 50.0, 99.9, 100.0], 100.0)
    assert len(large) == 20 and sum(b.students for b in large) == 4 and large[-1].students == 2


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="course")
    add_report_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.run(args)


def test_course_report_writes_every_graded_lesson_and_prints_the_paths(tmp_path, monkeypatch, capsys):
    root = _course(tmp_path, L07, L08)
    monkeypatch.chdir(root)
    assert _run(["report"]) == 0
    printed = capsys.readouterr().out.split("\n")
    assert f"wrote reports/{L07}.html" in printed and "wrote reports/course.json" in printed
    assert _run(["report", L08]) == 0
    # The lesson asked for first; then the pages the cross-lesson view is on, so none is left stale.
    assert capsys.readouterr().out.split("\n") == [
        f"wrote reports/{L08}.html", f"wrote reports/{L08}.json", f"wrote reports/{L07}.html",
        f"wrote reports/{L07}.json", "wrote reports/course.html", "wrote reports/course.json", ""]
    assert _run(["report", "05_backward"]) == 1
    assert re.search(r"05_backward has no graded submissions: run `course grade 05_backward` first",
                     capsys.readouterr().err)


def test_nothing_graded_is_one_clear_error(tmp_path):
    with pytest.raises(ReportError, match="no lesson has been graded"):
        write_lessons(tmp_path)


def test_an_empty_run_is_left_out_and_a_broken_one_costs_only_its_lesson(tmp_path, capsys):
    root = _course(tmp_path, L07)
    save_results(root, L08, [])
    broken = root / ".course-grade" / "06_optimizer_step" / "results.json"
    broken.parent.mkdir(parents=True)
    broken.write_text('[{"student": "x"}]')
    written = write_lessons(root, diagnoses=diagnoses())
    assert sorted(p.name for p in written) == [f"{L07}.html", f"{L07}.json"]
    assert "06_optimizer_step/results.json cannot be read" in capsys.readouterr().err
    with pytest.raises(ReportError, match="cannot be read"):
        write_lessons(root, ["06_optimizer_step"], diagnoses())
    with pytest.raises(ReportError, match=f"{L08} has no graded submissions"):
        write_lessons(root, [L08], diagnoses())


def test_dollar_signs_in_a_catalogue_text_are_printed_not_typeset(tmp_path):
    root = tmp_path / "course"
    catalogue = {"priced": Diagnosis("priced", "costs $5 and $6 {a_b}", "pay $0", "loss", lesson=L07)}
    wrong = ExerciseResult("ex1-tests", "Exercise 1", 0.0, 4.0, ("priced",), "✗ costs [priced]")
    save_results(root, L07, [SubmissionResult("a", L07, Status.OK, 0.0, 4.0, (wrong,))])
    page = write_report(root, L07, catalogue).read_text()
    assert "costs $5 and $6 {a_b} <code>priced</code>" in page
