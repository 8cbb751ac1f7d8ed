"""`course grade` against an adversarial class: every submission gets its expected score and the
rest of the class, the course files and the gradebook come through untouched."""

from __future__ import annotations

import csv
import hashlib
import os
import re
import shutil
import tempfile
import socket
import threading
import time
from pathlib import Path

import pytest

from course_tools.cli import main
from course_tools.grade.kernel import RunSettings
from course_tools.grade.pipeline import Options, grade
from course_tools.grade.report import GRADES_FILE
from course_tools.notebooks import read_notebook
from course_tools.sandbox import sandbox_problem
from tests.grading_corpus import (
    EXFILTRATIONS, HIDDEN_MARK, HIDDEN_TEST_CELL, INSTRUCTOR_HIDDEN_TEST, LESSON, OK_OR_TIMED_OUT, TAMPERED_OR_OK, corpus,
)
from tests.helpers import add_hidden_test, copy_course, missing_tool, remove_hidden_tests

pytestmark = pytest.mark.pipeline

PROBLEM = sandbox_problem()
# Under CI=true the sandbox's tools are installed by .ci/run: a missing one is a failure there, not a skip.
needs_sandbox = pytest.mark.skipif(PROBLEM is not None and os.environ.get("CI") != "true",
                                   reason=f"no sandbox on this machine: {PROBLEM}")
# Generous: on a loaded machine (2 cores, several jobs) importing torch alone can take over 10 s.
SETTINGS = RunSettings(cell_timeout=40, notebook_timeout=300)
SECRET_VARIABLE, HOST_SECRET = "COURSE_TEST_INSTRUCTOR_TOKEN", "instructor-secret-5f1c9e"


def snapshot(root: Path) -> dict[str, str]:
    files = [p for folder in ("solutions", "notebooks") for p in (root / folder).rglob("*") if p.is_file()]
    files.append(root / "nbgrader_config.py")
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


class Listener:
    """A TCP server on 127.0.0.1 that records whether any submission reached it."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.2)
        self.port = self.server.getsockname()[1]
        self.connections = 0
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.running:
            try:
                connection, _ = self.server.accept()
                self.connections += 1
                connection.close()
            except OSError:
                continue

    def close(self) -> None:
        self.running = False
        self.thread.join(timeout=2)
        self.server.close()


def read_grades(root: Path) -> dict[str, dict[str, str]]:
    with open(root / GRADES_FILE, newline="") as handle:
        return {row["student_id"]: row for row in csv.DictReader(handle) if row["assignment"] == LESSON}


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    if PROBLEM is not None:
        missing_tool(f"no sandbox on this machine: {PROBLEM}")
    root = copy_course(tmp_path_factory.mktemp("class") / "course", [LESSON])
    remove_hidden_tests(root, LESSON)  # the course's lessons have none; an instructor may add their own:
    add_hidden_test(root, LESSON, HIDDEN_TEST_CELL, INSTRUCTOR_HIDDEN_TEST)
    listener = Listener()
    secret_folder = Path(tempfile.mkdtemp(prefix="course-grade-secret-", dir="/home" if os.access("/home", os.W_OK) else None))
    (secret_folder / "secret.txt").write_text(HOST_SECRET)
    cases = corpus(str(root), listener.port, str(secret_folder))
    release = read_notebook(root / "notebooks" / LESSON / f"{LESSON}.ipynb")
    source = read_notebook(root / "solutions" / LESSON / f"{LESSON}.ipynb")
    for case in cases:
        folder = root / "submitted" / case.student / LESSON
        folder.mkdir(parents=True)
        (folder / case.file_name).write_bytes(case.build(release, source, {}))
    before = snapshot(root)
    start = time.perf_counter()
    os.environ[SECRET_VARIABLE] = HOST_SECRET  # the instructor's environment: must reach no kernel and no feedback
    try:
        outcomes = {o.student: o for o in grade(root, LESSON, Options(jobs=2, settings=SETTINGS))}
    finally:
        del os.environ[SECRET_VARIABLE]
        shutil.rmtree(secret_folder, ignore_errors=True)
    seconds = time.perf_counter() - start
    listener.close()
    return root, cases, outcomes, before, listener, seconds


@needs_sandbox
def test_every_submission_gets_its_expected_score_and_status(graded_class):
    root, cases, outcomes, *_ = graded_class
    grades = read_grades(root)
    wrong = {}
    for case in cases:
        row = grades.get(case.student)
        found = (float(row["score"]) if row else None, row["status"] if row else None)
        allowed = {TAMPERED_OR_OK: {"tampered", "ok"}, OK_OR_TIMED_OUT: {"ok", "timed-out"}}.get(case.status,
                                                                                               {case.status})
        if found[0] != case.score or found[1] not in allowed:
            wrong[case.student] = f"expected {(case.score, case.status)}, found {found} ({row and row['reason']})"
    assert not wrong, wrong


@needs_sandbox
def test_reasons_and_repairs_are_recorded(graded_class):
    root, *_ = graded_class
    grades = read_grades(root)
    assert "not valid JSON" in grades["truncated"]["reason"]
    assert "kernel died" in grades["os-exit"]["reason"]
    assert "ignored interrupts" in grades["ignores-sigint"]["reason"]
    assert "metadata restored" in grades["stripped"]["repairs"]
    assert "renamed from my homework (1).ipynb" in grades["renamed"]["repairs"]
    assert "reordered" in grades["reordered"]["repairs"]


@needs_sandbox
def test_no_course_file_is_lost_or_changed_and_nothing_escaped(graded_class):
    root, _, _, before, listener, _ = graded_class
    assert snapshot(root) == before
    assert (root / "gradebook.db").is_file()
    assert listener.connections == 0, "a submission reached a port on the grader's machine"


@needs_sandbox
def test_originals_are_kept_beside_the_repaired_notebook(graded_class):
    root, *_ = graded_class
    originals = list((root / "submitted" / "renamed" / LESSON / ".attempts").glob("*/my homework (1).ipynb"))
    assert len(originals) == 1, "the hand-in is kept, read-only, as the student's attempt"
    assert (root / "submitted" / "renamed" / LESSON / f"{LESSON}.ipynb").is_file()


@needs_sandbox
def test_hidden_failures_are_explained_in_the_executed_notebook(graded_class):
    root, *_ = graded_class
    executed = read_notebook(root / ".course-grade" / LESSON / "runs" / "reads-solutions" / "executed.ipynb")
    errors = [o.ename for c in executed.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert "FileNotFoundError" in errors or "PermissionError" in errors


@needs_sandbox
def test_feedback_for_every_graded_student(graded_class):
    root, cases, *_ = graded_class
    for case in cases:
        if case.status != "invalid":
            assert (root / "feedback" / case.student / LESSON / f"{LESSON}.html").is_file(), case.student


@needs_sandbox
def test_tampering_is_named_with_its_reason(graded_class):
    root, *_ = graded_class
    grades = read_grades(root)
    for student in ("forge-run-code", "forge-input-transformer", "fake-checks-name"):
        assert grades[student]["status"] == "tampered" and "re-check" in grades[student]["reason"], grades[student]


@needs_sandbox
def test_no_instructor_secret_and_no_active_content_reaches_the_feedback(graded_class):
    root, *_ = graded_class
    active = re.compile(r"<script[^>]*>[^<]*pwned|<img[^>]*onerror|href=[\"']?javascript:", re.I)
    for path in (root / "feedback").glob(f"*/{LESSON}/{LESSON}.html"):
        page = path.read_text()
        assert HOST_SECRET not in page, f"{path}: the instructor's secret reached the feedback"
        assert not active.search(page), f"{path}: {active.search(page)}"
    hostile = (root / "feedback" / "hostile-output" / LESSON / f"{LESSON}.html").read_text()
    assert "pwned-by-html" in hostile, "the student's code is still shown, as text"


@needs_sandbox
def test_one_hostile_file_never_stops_the_class(graded_class):
    root, cases, *_ = graded_class
    grades = read_grades(root)
    assert set(grades) == {case.student for case in cases}, "every student has a row"
    executed = read_notebook(root / ".course-grade" / LESSON / "runs" / "reads-home" / "executed.ipynb")
    printed = "".join(o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.outputs)
    assert "hidden:" in printed and "LEAKED" not in printed and HOST_SECRET not in printed


@needs_sandbox
def test_feedback_teaches_without_leaking(graded_class):
    """The table comes first; no hidden-test source (even as student output, plain, reversed or hex), no course
    tracebacks, no student scripts; autograded/ keeps all."""
    import html

    root, *_ = graded_class
    lines = [line.strip() for line in INSTRUCTOR_HIDDEN_TEST.strip().splitlines() if len(line.strip()) > 20]
    forms = {form for text in lines for form in (text, text[::-1], text.encode().hex())}
    # the message of a failing hidden assert is feedback the instructor wrote; a correct notebook shows none,
    # so for the exfiltrating (correct) notebooks even the mark alone must be gone
    mark = {HIDDEN_MARK, HIDDEN_MARK[::-1], HIDDEN_MARK.encode().hex()}
    for path in (root / "feedback").glob(f"*/{LESSON}/{LESSON}.html"):
        page = path.read_text()
        assert page.index('id="course-feedback-summary"') < page.index('id="notebook"'), path
        searched = forms | mark if path.parts[-3] in EXFILTRATIONS else forms
        leaked = sorted(form for form in searched if form in page or html.escape(form) in page)
        assert not leaked, f"{path}: hidden tests leaked: {leaked[:2]}"
        assert "course_utils/" not in page and "BEGIN HIDDEN TESTS" not in page, path
    autograded = (root / "autograded" / "correct" / LESSON / f"{LESSON}.ipynb").read_text()
    assert "BEGIN HIDDEN TESTS" in autograded, "the instructor's copy keeps the hidden tests"
    for student in EXFILTRATIONS:
        kept = (root / "autograded" / student / LESSON / f"{LESSON}.ipynb").read_text()
        assert HIDDEN_MARK.encode().hex() in kept, f"{student} read nothing: the attack tests nothing"


@needs_sandbox
def test_the_empty_notebook_recipe_is_named_tampered(graded_class):
    root, *_ = graded_class
    row = read_grades(root)["empty-notebook-recipe"]
    assert (float(row["score"]), row["status"]) == (0.0, "tampered") and "re-check" in row["reason"], row


@needs_sandbox
def test_running_again_grades_nothing_twice_and_loses_nothing(graded_class, capsys):
    root, *_ = graded_class
    grades = read_grades(root)
    start = time.perf_counter()
    outcomes = grade(root, LESSON, Options(jobs=2, settings=SETTINGS))
    assert time.perf_counter() - start < 60, "unchanged submissions must not run again"
    assert read_grades(root) == grades
    assert len(outcomes) == len(grades)


def test_refuses_loudly_without_a_sandbox(make_course, monkeypatch, capsys):
    course = make_course(["01_dataloader_batching"])
    monkeypatch.setattr("course_tools.grade.pipeline.sandbox_problem", lambda: "pretend bwrap is missing")
    monkeypatch.chdir(course)
    assert main(["grade", LESSON]) == 1
    error = capsys.readouterr().err
    assert "NO SANDBOX: pretend bwrap is missing" in error and "--no-sandbox" in error


def test_bad_lesson_and_jobs(make_course, monkeypatch, capsys):
    course = make_course(["01_dataloader_batching"])
    monkeypatch.chdir(course)
    assert main(["grade", "99_nothing"]) == 1
    assert "no lesson '99_nothing'" in capsys.readouterr().err
    assert main(["grade", LESSON, "--jobs", "0"]) == 1
    assert "--jobs must be at least 1" in capsys.readouterr().err


def test_grades_without_a_sandbox_only_when_asked(make_course, monkeypatch, capsys):
    from tests.helpers import fill_answers

    course = make_course(["01_dataloader_batching"])
    release = read_notebook(course / "notebooks" / LESSON / f"{LESSON}.ipynb")
    source = read_notebook(course / "solutions" / LESSON / f"{LESSON}.ipynb")
    folder = course / "submitted" / "alice" / LESSON
    folder.mkdir(parents=True)
    (folder / f"{LESSON}.ipynb").write_text(__import__("nbformat").writes(fill_answers(release, source)))
    monkeypatch.setattr("course_tools.grade.pipeline.sandbox_problem", lambda: "pretend bwrap is missing")
    outcomes = grade(course, LESSON, Options(allow_unsandboxed=True, settings=SETTINGS))
    assert "grading WITHOUT a sandbox" in capsys.readouterr().err
    assert [o.status for o in outcomes] == ["ok"]
    assert float(read_grades(course)["alice"]["score"]) == 9.0


# --- issue 18, items 5 and 6: hostile values and text (grading_corpus.hostile_value_cases) --------

@needs_sandbox
def test_hostile_values_and_text_are_cut_before_they_are_stored_or_printed(graded_class):
    from course_tools.grade.report import summary
    from course_tools.grade.results import results_path

    root, _, outcomes, *_ = graded_class
    for student in ("ename-flood", "error-flood"):
        autograded = root / "autograded" / student / LESSON / f"{LESSON}.ipynb"
        feedback = root / "feedback" / student / LESSON / f"{LESSON}.html"
        assert autograded.stat().st_size < 6 * 2**20, f"{student}: the autograded notebook kept the flood"
        assert feedback.stat().st_size < 8 * 2**20, f"{student}: the feedback kept the flood"
    printed = summary(list(outcomes.values()), LESSON, root)
    assert max(len(line) for line in printed.splitlines()) < 400, "a table as wide as an exception's name"
    assert "\x1b" not in printed and "\x07" not in printed, "escapes reached the instructor's terminal"
    for path in (root / GRADES_FILE, results_path(root, LESSON)):
        text = path.read_text()
        assert "E" * 1000 not in text and "\x1b" not in text and "\\u001b" not in text, path
        assert "owned-title" not in text and "http://evil/" not in text, f"{path}: an escape's payload was kept"
    escaped = (root / "feedback" / "terminal-escapes" / LESSON / f"{LESSON}.html").read_text()
    assert "\x1b" not in escaped and "\x07" not in escaped and "Escaped" in escaped


@needs_sandbox
def test_a_lone_surrogate_is_replaced_and_graded(graded_class):
    root, *_ = graded_class
    autograded = (root / "autograded" / "surrogate" / LESSON / f"{LESSON}.ipynb").read_text(encoding="utf-8")
    assert "\ufffd" in autograded or "\\ufffd" in autograded


@needs_sandbox
def test_no_feedback_page_loads_a_remote_image(graded_class):
    root, *_ = graded_class
    remote = re.compile(r"<img[^>]*\ssrc=[\"']?(https?:)?//", re.I)
    for path in (root / "feedback").glob(f"*/{LESSON}/{LESSON}.html"):
        page = path.read_text()
        assert not remote.search(page), f"{path}: {remote.search(page)}"
        assert "cdnjs.cloudflare.com" not in page, f"{path}: loads MathJax from a CDN"
    page = (root / "feedback" / "remote-image" / LESSON / f"{LESSON}.html").read_text()
    assert "beacon" in page, "the student's output is still shown, without its remote image"
