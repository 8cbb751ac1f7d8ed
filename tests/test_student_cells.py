"""The Colab cells: the badge points at the notebook, the set-up installs only inside Colab."""

import subprocess
import sys
import types

import pytest

from course_utils.links import colab_url, pip_requirement
from course_utils.notebooks import read_notebook
from course_utils.student_cells import BADGE_ID, SETUP_ID, badge_cell, setup_cell
from tests.conftest import LESSONS
from tests.helpers import ROOT


def test_badge_opens_this_notebook_in_colab():
    cell = badge_cell("01_dataloader_batching")
    assert cell.id == BADGE_ID and cell.cell_type == "markdown"
    assert f"({colab_url('notebooks/01_dataloader_batching/01_dataloader_batching.ipynb')})" in cell.source


def test_setup_cell_does_nothing_outside_colab(monkeypatch):
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append(a))
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(setup_cell().source, {})
    assert calls == []


def test_setup_cell_installs_course_utils_in_colab(monkeypatch):
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda command, **k: calls.append((command, k)))
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    exec(setup_cell().source, {})
    assert calls == [([sys.executable, "-m", "pip", "install", "--quiet", pip_requirement()], {"check": True})]


@pytest.mark.parametrize("lesson", LESSONS)
def test_every_student_notebook_starts_with_the_badge_and_the_setup(lesson):
    student = read_notebook(ROOT / "notebooks" / lesson / f"{lesson}.ipynb")
    cells = {cell.id: cell for cell in student.cells}
    assert cells[BADGE_ID].source == badge_cell(lesson).source
    assert cells[SETUP_ID].source == setup_cell().source


@pytest.mark.parametrize("lesson", LESSONS)
def test_solutions_have_no_added_cells(lesson):
    solution = read_notebook(ROOT / "solutions" / lesson / f"{lesson}.ipynb")
    assert not {BADGE_ID, SETUP_ID, "quiz-widget"} & {cell.id for cell in solution.cells}
