"""The Colab cells: the badge points at the notebook, the set-up installs only inside Colab."""

import subprocess
import sys
import types

import pytest

from course_tools.links import colab_url, pip_requirement
from course_tools.notebooks import read_notebook
from course_tools.student_cells import BADGE_ID, SETUP_ID, badge_cell, setup_cell
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


# Colab's matplotlib has its font cache; a fresh venv builds it on first import through fc-list (a subprocess),
# so it is built before subprocess.run is replaced.
COLAB_LIKE = '''import subprocess, sys, types
import matplotlib.font_manager
for name in ("nbgrader", "nbformat", "nbclient"):
    sys.modules[name] = None  # importing them now fails: the notebook must not need them
sys.modules["google.colab"] = types.ModuleType("google.colab")
pip_calls = []
_run = subprocess.run  # pip installs are recorded, not run; other commands (torchrun in lesson 08) run
subprocess.run = lambda command, **options: (pip_calls.append(command) if "pip" in command
                                             else _run(command, **options))'''


@pytest.mark.notebook
@pytest.mark.parametrize("lesson", LESSONS)
def test_a_solved_student_notebook_runs_colab_style_without_nbgrader(lesson, tmp_path):
    """As in Colab: the set-up cell asks pip for course_utils, and every cell, checks included, runs without nbgrader."""
    import nbformat

    from tests.helpers import error_outputs, execute, fill_answers

    student = read_notebook(ROOT / "notebooks" / lesson / f"{lesson}.ipynb")
    solved = fill_answers(student, read_notebook(ROOT / "solutions" / lesson / f"{lesson}.ipynb"))
    solved.cells.insert(0, nbformat.v4.new_code_cell(COLAB_LIKE, id="colab-like"))
    solved.cells.append(nbformat.v4.new_code_cell("print([call[1:] for call in pip_calls])", id="pip-calls"))
    notebook = execute(solved, cwd=tmp_path)
    assert error_outputs(notebook) == {}
    printed = "".join(output.get("text", "") for output in notebook.cells[-1].outputs)
    assert printed.strip() == repr([["-m", "pip", "install", "--quiet", pip_requirement()]])
