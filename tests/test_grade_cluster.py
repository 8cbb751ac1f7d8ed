"""`course grade --cluster`: each submission's sandboxed run is a task on a real Dask cluster over loopback TCP.

A LocalCluster of two worker processes stands in for the instructor's cluster; scoring, feedback,
the gradebook and the class report stay in the grading process, exactly as with local jobs.
"""

from __future__ import annotations

import csv
import json
import os

import nbformat
import pytest
from nbgrader.api import Gradebook

from course_tools.cli import main
from course_tools.grade.gradebook import db_url
from course_tools.grade.report import GRADES_FILE, summary
from course_tools.report import write_report
from course_tools.grade.kernel import RunSettings
from course_tools.grade.pipeline import Options, grade
from course_tools.grade.results import Status
from course_tools.notebooks import read_notebook
from course_tools.sandbox import sandbox_problem
from tests.helpers import copy_course, fill_answers
from tests.zoos.lesson07 import NO_ZERO_GRAD

pytestmark = pytest.mark.pipeline

LESSON = "07_epoch_loop_gpu"
SETTINGS = RunSettings(cell_timeout=60, notebook_timeout=300)


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None, silence_logs=40) as local:
        yield local


def submit(root, student, notebook):
    folder = root / "submitted" / student / LESSON
    folder.mkdir(parents=True)
    nbformat.write(notebook, str(folder / f"{LESSON}.ipynb"))


def test_a_class_graded_on_a_dask_cluster_gets_the_same_grades(tmp_path, cluster, monkeypatch, capsys):
    root = copy_course(tmp_path / "course", [LESSON])
    release = read_notebook(root / "notebooks" / LESSON / f"{LESSON}.ipynb")
    source = read_notebook(root / "solutions" / LESSON / f"{LESSON}.ipynb")
    submit(root, "full", fill_answers(release, source))
    submit(root, "empty", release)
    buggy = fill_answers(release, source)
    next(c for c in buggy.cells if c.get("id") == "ex1-train-one-epoch").source = NO_ZERO_GRAD
    submit(root, "buggy", buggy)

    options = Options(cluster=cluster.scheduler_address, settings=SETTINGS,
                      allow_unsandboxed=sandbox_problem() is not None and os.environ.get("CI") != "true")
    results = {r.student: r for r in grade(root, LESSON, options)}

    assert set(results) == {"full", "empty", "buggy"}
    assert all(r.status is Status.OK for r in results.values()), {s: r.reason for s, r in results.items()}
    assert results["full"].score == results["full"].max_score > 0
    assert results["empty"].score == 0
    lost = [e for e in results["buggy"].exercises if not e.full]
    assert [e.grade_id for e in lost] == ["ex1-tests"], "a wrong train_one_epoch costs only its own points"
    assert lost[0].diagnoses[0] == "accumulated-gradients"  # the code the zoo names for NO_ZERO_GRAD
    for student in results:
        assert (root / "feedback" / student / LESSON / f"{LESSON}.html").is_file()

    # the class report reads what the cluster run recorded
    monkeypatch.chdir(root)
    assert main(["report", LESSON]) == 0
    assert (root / "reports" / f"{LESSON}.html").is_file() and (root / "reports" / f"{LESSON}.json").is_file()
    capsys.readouterr()


# --- one story for a timeout, wherever it runs ------------------------------------------------

TIMEOUT_LESSON = "01_dataloader_batching"
# Hangs only on the running example's batch_sizes(1000, 64), which exercise 3's check cell calls after its
# own checks: exercises 1 and 2 finish first and keep their points.
HANGS_IN_THE_CHECK = "    while (n_samples, batch_size) == (1000, 64):\n        pass\n"


def _timeout_class(root) -> None:
    release = read_notebook(root / "notebooks" / TIMEOUT_LESSON / f"{TIMEOUT_LESSON}.ipynb")
    source = read_notebook(root / "solutions" / TIMEOUT_LESSON / f"{TIMEOUT_LESSON}.ipynb")
    full = fill_answers(release, source)
    loops = nbformat.from_dict(full)
    cell = next(c for c in loops.cells if c.get("id") == "ex3-batch-sizes")
    docstring = '    """The size of every batch in one epoch over `n_samples` samples."""\n'
    assert docstring in cell.source
    cell.source = cell.source.replace(docstring, docstring + HANGS_IN_THE_CHECK)
    for student, notebook in (("full", full), ("loops", loops)):
        folder = root / "submitted" / student / TIMEOUT_LESSON
        folder.mkdir(parents=True)
        nbformat.write(notebook, str(folder / f"{TIMEOUT_LESSON}.ipynb"))


def _graded_with_a_timeout(root, options):
    _timeout_class(root)
    results = {r.student: r for r in grade(root, TIMEOUT_LESSON, options)}
    with open(root / GRADES_FILE, newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["status"] != "invalid"]
    csv_mean = round(sum(float(row["score"]) for row in rows) / len(rows), 4)
    write_report(root, TIMEOUT_LESSON)
    json_mean = json.loads((root / "reports" / f"{TIMEOUT_LESSON}.json").read_text())["scores"]["mean"]
    printed = summary(list(results.values()), TIMEOUT_LESSON, root)
    with Gradebook(db_url(root)) as gradebook:  # formgrader's average of the lesson
        formgrader_mean = round(gradebook.average_assignment_score(TIMEOUT_LESSON), 4)
    assert formgrader_mean == csv_mean
    page = (root / "feedback" / "loops" / TIMEOUT_LESSON / f"{TIMEOUT_LESSON}.html").read_text()
    return results, (csv_mean, json_mean, printed), page


def test_a_timeout_is_the_same_story_locally_and_on_a_cluster(tmp_path, cluster):
    settings = RunSettings(cell_timeout=20, notebook_timeout=300)
    unsandboxed = sandbox_problem() is not None and os.environ.get("CI") != "true"
    local_root = copy_course(tmp_path / "local", [TIMEOUT_LESSON])
    dask_root = copy_course(tmp_path / "dask", [TIMEOUT_LESSON])
    local, local_means, local_page = _graded_with_a_timeout(
        local_root, Options(jobs=2, settings=settings, allow_unsandboxed=unsandboxed))
    remote, remote_means, remote_page = _graded_with_a_timeout(
        dask_root, Options(cluster=cluster.scheduler_address, settings=settings, allow_unsandboxed=unsandboxed))

    for results in (local, remote):
        loops = results["loops"]
        assert (loops.status, loops.score, loops.max_score) == (Status.TIMED_OUT, 6.0, 9.0), loops.reason
        assert "ran past 20 s" in loops.reason and "kernel died" not in loops.reason
        assert [e.points for e in loops.exercises] == [3.0, 3.0, 0.0], "the cells before the timeout keep their points"
        assert results["full"].score == 9.0
    assert local["loops"].reason == remote["loops"].reason
    for csv_mean, json_mean, printed in (local_means, remote_means):
        assert csv_mean == json_mean == 7.5, "one class mean: every scored submission, timed-out ones included"
        assert "class mean: 7.5/9 over 2 scored submission(s)" in printed
    for page in (local_page, remote_page):
        assert "BEGIN HIDDEN TESTS" not in page and "seed=hidden_seed" not in page
