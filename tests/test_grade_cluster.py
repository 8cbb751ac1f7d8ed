"""`course grade --cluster`: each submission's sandboxed run is a task on a real Dask cluster over loopback TCP.

A LocalCluster of two worker processes stands in for the instructor's cluster; scoring, feedback,
the gradebook and the class report stay in the grading process, exactly as with local jobs.
"""

from __future__ import annotations

import os

import nbformat
import pytest

from course_tools.cli import main
from course_tools.grade.kernel import RunSettings
from course_tools.grade.pipeline import Options, grade
from course_tools.grade.results import Status
from course_tools.notebooks import read_notebook
from course_tools.sandbox import sandbox_problem
from tests.helpers import copy_course, fill_answers
from tests.loop_zoo import BUGGY

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
    bug = next(v for v in BUGGY if v.name == "no-zero-grad")
    next(c for c in buggy.cells if c.get("id") == "ex1-train-one-epoch").source = bug.source
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
    assert lost[0].diagnoses[0] == bug.bug
    for student in results:
        assert (root / "feedback" / student / LESSON / f"{LESSON}.html").is_file()

    # the class report reads what the cluster run recorded
    monkeypatch.chdir(root)
    assert main(["report", LESSON]) == 0
    assert (root / "reports" / f"{LESSON}.html").is_file() and (root / "reports" / f"{LESSON}.json").is_file()
    capsys.readouterr()
