"""How a failed check looks in a notebook: its message, never the course's frames, and still an error.

A course check failure (``CheckFailed``) renders through IPython's ``_render_traceback_`` protocol as
its message alone; when it reports an exception of the learner's own code, the learner's frames come
first. nbgrader must still see an error output (``ename``/``evalue`` kept) and score the cell 0.
"""

from __future__ import annotations

import pytest
from nbformat.v4 import new_code_cell, new_notebook

from course_utils.checks import CheckFailed
from course_utils.checks.learner import call_learner, error_text
from course_utils.diagnoses import codes_in
from tests.helpers import execute, grade_cells
from tests.zoos.lesson07 import NO_ZERO_GRAD as EPOCH_WITHOUT_ZERO_GRAD

COURSE_FILES = ("course_utils", "lesson06/", "core.py", "learner.py", "diagnoses.py", "lesson07/")

NO_ZERO_GRAD = '''
def train_step(model, xb, yb, criterion, optimizer):
    loss = criterion(model(xb), yb)
    loss.backward()
    optimizer.step()
    return loss.item()
'''

CRASHES = '''
def helper(loss):
    return loss.item() / 0.0 if False else 1 // 0   # the learner's own line


def train_step(model, xb, yb, criterion, optimizer):
    optimizer.zero_grad()
    loss = criterion(model(xb), yb)
    return helper(loss)
'''


# Lesson 07's checks raise the same CheckFailed: the issue's example was its loop grader's 20 lines of frames.
EPOCH_CRASHES = '''
def train_one_epoch(model, loader, criterion, optimizer, device):
    model.train()
    for features, targets in loader:
        features, targets = features.to(device), targets.to(device)
        optimizer.zero_grad()
        return criterion(model(features), targets.float())   # the learner's own line
'''


def grade_cell(source: str, grade_id: str):
    cell = new_code_cell(source)
    cell.metadata["nbgrader"] = {"grade": True, "grade_id": grade_id, "locked": True, "points": 3,
                                 "schema_version": 3, "solution": False, "task": False}
    return cell


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """One kernel: a failing check on a wrong answer, and one on an answer that raises."""
    check = "from course_utils.checks import lesson06\nlesson06.check_train_step(train_step)"
    epoch = "from course_utils.checks import lesson07\nlesson07.check_train_one_epoch(train_one_epoch)"
    notebook = new_notebook(cells=[new_code_cell(NO_ZERO_GRAD), grade_cell(check, "wrong"),
                                   new_code_cell(CRASHES), grade_cell(check, "crash"),
                                   new_code_cell(EPOCH_WITHOUT_ZERO_GRAD), grade_cell(epoch, "epoch-wrong"),
                                   new_code_cell(EPOCH_CRASHES), grade_cell(epoch, "epoch-crash")])
    return execute(notebook, tmp_path_factory.mktemp("rendering"), timeout=300)


def error_of(notebook, index: int):
    errors = [output for output in notebook.cells[index].outputs if output.output_type == "error"]
    assert len(errors) == 1, notebook.cells[index].outputs
    return errors[0]


@pytest.mark.notebook
def test_a_failed_check_shows_its_message_alone_and_is_still_an_error(executed):
    error = error_of(executed, 1)
    shown = "\n".join(error.traceback)
    assert error.ename == "CheckFailed"
    assert codes_in(error.evalue)[:1] == ["trainstep-no-zero-grad"], error.evalue
    assert not any(name in shown for name in COURSE_FILES), shown
    assert shown.splitlines()[0].startswith("✗ train_step:"), shown
    assert grade_cells(executed)["wrong"] == 0.0


@pytest.mark.notebook
def test_a_learner_exception_shows_the_learners_line_and_no_course_frame(executed):
    error = error_of(executed, 3)
    shown = "\n".join(error.traceback)
    assert error.ename == "CheckFailed" and "[trainstep-raised]" in error.evalue
    assert "1 // 0   # the learner's own line" in shown, shown
    assert "in helper" in shown and "in train_step" in shown, shown
    assert "ZeroDivisionError: integer division or modulo by zero" in shown, shown
    assert not any(name in shown for name in COURSE_FILES), shown
    assert grade_cells(executed)["crash"] == 0.0


def _learner_code() -> None:
    raise KeyError("the learner's key")


def test_a_failure_raised_from_a_learner_exception_shows_the_learners_frames_first():
    """Lessons 07-08 raise their crash report ``from`` the learner's exception."""
    try:
        try:
            _learner_code()
        except KeyError as error:
            raise CheckFailed("\n✗ fit raised KeyError") from error
    except CheckFailed as failure:
        lines = failure._render_traceback_()
    assert lines[0].startswith("Traceback (most recent call last, your code only)")
    assert any("in _learner_code" in line for line in lines)
    assert any(line.startswith("KeyError") for line in lines)
    assert lines[-1] == "✗ fit raised KeyError"


def test_a_plain_failure_renders_its_message_without_blank_lines_or_frames():
    with pytest.raises(CheckFailed) as caught:
        from course_utils.checks import check_equal
        check_equal(1, 2, "one", hint="use two")
    assert caught.value._render_traceback_() == str(caught.value).strip("\n").splitlines()


def test_an_error_with_no_learner_frame_adds_nothing_above_the_message():
    """An error raised by the course's or a library's code alone is already named by the message."""
    _, error = call_learner(int, "not a number")
    failure = CheckFailed(f"\n✗ found: {error_text(error)}")
    assert failure._render_traceback_() == [f"✗ found: {error_text(error)}"]


@pytest.mark.notebook
def test_lesson_07s_check_failures_render_the_same_way(executed):
    wrong, crash = error_of(executed, 5), error_of(executed, 7)
    for error in (wrong, crash):
        shown = "\n".join(error.traceback)
        assert error.ename == "CheckFailed", error.ename
        assert not any(name in shown for name in COURSE_FILES), shown
    assert "\n".join(wrong.traceback).startswith("✗ train_one_epoch:"), wrong.traceback
    shown = "\n".join(crash.traceback)
    assert "targets.float())   # the learner's own line" in shown and "in train_one_epoch" in shown, shown
    scores = grade_cells(executed)
    assert scores["epoch-wrong"] == 0.0 and scores["epoch-crash"] == 0.0
