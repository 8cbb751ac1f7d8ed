"""No forged output earns points, even without a sandbox: the verdict is the grader's own re-check.

The forgeries of the adversarial class that harm nothing but the verdict run here without root or
bubblewrap (the grader runs the kernels unsandboxed, as `course grade --no-sandbox` does), so the
re-check is tested on every machine. tests/test_grading.py runs the whole class in the sandbox.
"""

from __future__ import annotations

import nbformat
import pytest

from course_tools.grade.kernel import RunSettings
from course_tools.grade.pipeline import Options, grade
from course_tools.notebooks import read_notebook
from tests import grading_corpus as corpus
from tests.helpers import copy_course, fill_answers

pytestmark = pytest.mark.pipeline

LESSON = corpus.LESSON
FORGERIES = {
    "forge-run-code": corpus.FORGE_RUN_CODE,
    "forge-input-transformer": corpus.FORGE_INPUT_TRANSFORMER,
    "fake-checks-name": corpus.FAKE_CHECKS_NAME,
    "no-reload": corpus.NO_RELOAD,
    "fake-integrity-module": corpus.FAKE_INTEGRITY_MODULE,
}


def test_forged_passes_score_nothing_and_are_named_tampered(tmp_path, monkeypatch, capsys):
    root = copy_course(tmp_path / "course", [LESSON])
    release = read_notebook(root / "notebooks" / LESSON / f"{LESSON}.ipynb")
    source = read_notebook(root / "solutions" / LESSON / f"{LESSON}.ipynb")
    notebooks = {"correct": fill_answers(release, source)}
    for student, code in FORGERIES.items():
        notebooks[student] = corpus.after_answers(nbformat.from_dict(release), code)
    for student, notebook in notebooks.items():
        folder = root / "submitted" / student / LESSON
        folder.mkdir(parents=True)
        nbformat.write(notebook, str(folder / f"{LESSON}.ipynb"))
    monkeypatch.setattr("course_tools.grade.pipeline.sandbox_problem", lambda: "this test grades unsandboxed")
    settings = RunSettings(cell_timeout=30, notebook_timeout=180)
    results = {r.student: r for r in grade(root, LESSON, Options(jobs=2, allow_unsandboxed=True, settings=settings))}
    capsys.readouterr()
    assert results["correct"].score == results["correct"].max_score > 0, results["correct"]
    for student in FORGERIES:
        assert results[student].score == 0, f"{student} forged {results[student].score} points"
        assert results[student].status.value == "tampered", (student, results[student].status, results[student].reason)
