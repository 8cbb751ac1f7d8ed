"""notebooks/ is generated from solutions/ by nbgrader, committed clean and never stale."""

import filecmp

import pytest

from course_tools.cli import main
from course_tools.notebooks import dirty_reasons, solution_markers
from course_tools.release import ReleaseError, release
from tests.conftest import LESSONS
from tests.helpers import ROOT


def committed(folder):
    return sorted((ROOT / folder).glob("*/*.ipynb"))


def test_there_are_lessons_and_each_has_a_release():
    assert LESSONS and LESSONS[0] == "01_dataloader_batching"
    for lesson in LESSONS:
        assert (ROOT / "notebooks" / lesson / f"{lesson}.ipynb").is_file(), f"{lesson} has no student notebook"


@pytest.mark.parametrize("folder", ["solutions", "notebooks"])
def test_committed_notebooks_are_clean(folder):
    problems = {str(path): dirty_reasons(path) for path in committed(folder) if dirty_reasons(path)}
    assert not problems, f"run `make notebooks` (or `course clean`): {problems}"


def test_student_notebooks_hold_no_answers():
    assert solution_markers(committed("notebooks")) == []


@pytest.mark.parametrize("lesson", LESSONS)
def test_lesson_source_folder_holds_only_its_notebook(lesson):
    """nbgrader copies every file of a lesson folder into the release: nothing else may sit there."""
    files = sorted(p.name for p in (ROOT / "solutions" / lesson).iterdir())
    assert files == [f"{lesson}.ipynb"]


@pytest.mark.pipeline
def test_notebooks_folder_is_not_stale(make_course):
    course = make_course(with_release=False)
    release(course)
    comparison = filecmp.dircmp(course / "notebooks", ROOT / "notebooks", ignore=[".ipynb_checkpoints"])
    stale = []
    for lesson in LESSONS:
        sub = comparison.subdirs.get(lesson)
        assert sub is not None, f"notebooks/{lesson} is missing: run `make notebooks`"
        _, mismatch, errors = filecmp.cmpfiles(sub.left, sub.right, sub.left_list, shallow=False)
        stale += mismatch + errors + sub.right_only
    stale += [name for name in comparison.right_only if name != ".ipynb_checkpoints"]
    assert not stale, f"notebooks/ is stale ({stale}): run `make notebooks` and commit the result"


def test_release_refuses_unknown_lessons(make_course):
    course = make_course(with_release=False)
    with pytest.raises(ReleaseError, match="not a lesson name"):
        release(course, ["lesson one"])
    with pytest.raises(ReleaseError, match="has no notebook"):
        release(course, ["99_missing"])


def test_release_outside_a_course_root(tmp_path):
    with pytest.raises(ReleaseError, match="no nbgrader_config.py"):
        release(tmp_path)


def test_cli_reports_errors_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["release"]) == 1
    assert "course release: " in capsys.readouterr().err


def test_cli_check_passes_on_the_repository(monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    assert main(["check"]) == 0
    assert "all notebooks are clean" in capsys.readouterr().out
