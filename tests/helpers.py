"""Shared test helpers: executing notebooks, reading grade-cell results, building submissions."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbformat import NotebookNode
from nbgrader.utils import determine_grade, is_grade, is_solution

from course_tools.nbgrader_hooks import StderrIsNotAnError
from course_tools.release import nbgrader_env

ROOT = Path(__file__).resolve().parents[1]
SOLUTION_MARKER = re.compile(r"^\s*### (BEGIN|END) SOLUTION\s*$")


def execute(notebook: NotebookNode, cwd: Path, timeout: int = 120) -> NotebookNode:
    """Execute ``notebook`` in a fresh kernel, in ``cwd``, keeping going after errors."""
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(cwd)}})
    client.execute()
    return notebook


def error_outputs(notebook: NotebookNode) -> dict[str, str]:
    """Map cell id -> 'ename: evalue' for every cell that raised."""
    return {
        cell.id: f"{output.ename}: {output.evalue}"
        for cell in notebook.cells if cell.cell_type == "code"
        for output in cell.outputs if output.output_type == "error"
    }


def grade_cells(notebook: NotebookNode) -> dict[str, float]:
    """Map grade id -> the fraction of points our nbgrader configuration gives each executed test cell.

    The configuration moves stderr text of test cells to stdout before scoring (course_tools.nbgrader_hooks),
    so here too only errors count.
    """
    results = {}
    notebook, _ = StderrIsNotAnError().preprocess(nbformat.from_dict(notebook), {})
    for cell in notebook.cells:
        if cell.cell_type == "code" and is_grade(cell) and not is_solution(cell):
            score, max_score = determine_grade(cell)
            results[cell.metadata.nbgrader.grade_id] = score / max_score if max_score else 1.0
    return results


def student_answer(source_cell: NotebookNode) -> str:
    """What a student who solved the exercise would have typed: the solution without markers."""
    return "\n".join(line for line in source_cell.source.splitlines() if not SOLUTION_MARKER.match(line))


def fill_answers(release: NotebookNode, source: NotebookNode) -> NotebookNode:
    """Return a copy of the student notebook with every solution cell answered from the source."""
    answers = {c.metadata.nbgrader.grade_id: student_answer(c) for c in source.cells if is_solution(c)}
    filled = nbformat.from_dict(release)
    for cell in filled.cells:
        if is_solution(cell):
            cell.source = answers[cell.metadata.nbgrader.grade_id]
    return filled


def nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a stock nbgrader command in ``course`` and fail loudly with its output if it fails."""
    result = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=nbgrader_env(),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def copy_course(destination: Path, lessons: list[str], *, with_release: bool = True) -> Path:
    """Copy the course's config and the given lessons into ``destination`` (a fresh course root)."""
    destination.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "nbgrader_config.py", destination)
    folders = ["solutions", "notebooks"] if with_release else ["solutions"]
    for folder in folders:
        for lesson in lessons:
            shutil.copytree(ROOT / folder / lesson, destination / folder / lesson)
    return destination


def grade_cell_errors(notebook: NotebookNode) -> dict[str, str]:
    """Map grade id -> the text of the error each failing test cell raised."""
    return {
        cell.metadata.nbgrader.grade_id: f"{output.ename}: {output.evalue}"
        for cell in notebook.cells if cell.cell_type == "code" and is_grade(cell) and not is_solution(cell)
        for output in cell.outputs if output.output_type == "error"
    }


def missing_tool(reason: str) -> None:
    """Skip for a tool this machine lacks, with the reason; under CI=true, fail: .ci/run installs it."""
    import os

    import pytest

    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true, and yet {reason} (.ci/run installs it: a skip would hide a failure)")
    pytest.skip(reason)


def lesson_notebook(lesson: str, *, release: bool = False) -> NotebookNode:
    """The lesson's source notebook (``solutions/``), or its student release (``notebooks/``)."""
    folder = "notebooks" if release else "solutions"
    return nbformat.read(str(ROOT / folder / lesson / f"{lesson}.ipynb"), as_version=4)


def graded_cells(lesson: str) -> tuple[str, ...]:
    """The grade ids of the lesson's test cells (graded, not answer cells), in notebook order."""
    return tuple(cell.metadata.nbgrader.grade_id for cell in lesson_notebook(lesson).cells
                 if cell.cell_type == "code" and is_grade(cell) and not is_solution(cell))


def answer_cell_ids(lesson: str) -> tuple[str, ...]:
    """The ids of the lesson's answer cells that hold code to grade (every solution cell but the quiz's)."""
    return tuple(cell.id for cell in lesson_notebook(lesson).cells
                 if cell.cell_type == "code" and is_solution(cell) and cell.id != "quiz-answers")


def setup_imports(source: str) -> str:
    """Only the import statements of a setup cell (no device picking, no folders, no printing)."""
    tree = ast.parse(source)
    return "\n".join(ast.unparse(node) for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom)))


def solution_namespace(lesson: str, answer_cells: tuple[str, ...] | None = None, *, release: bool = False) -> dict:
    """The setup cell's imports and the answer cells, run as a student would have typed them.

    ``release=True`` runs the student's starting code instead (the stubs of ``notebooks/``).
    """
    cells = {cell.id: cell for cell in lesson_notebook(lesson, release=release).cells}
    namespace: dict = {"__name__": "__main__"}
    exec(setup_imports(cells["setup"].source), namespace)  # noqa: S102 - the lesson's own cells
    for cell_id in answer_cells or answer_cell_ids(lesson):
        exec(student_answer(cells[cell_id]), namespace)  # noqa: S102
    return namespace


def with_source(namespace: dict, source: str) -> dict:
    """A copy of ``namespace`` after running ``source`` in it (a zoo variant's student cell)."""
    changed = dict(namespace)
    exec(source, changed)  # noqa: S102 - the zoo's own student cells
    return changed


def recheck(lesson: str, namespace: dict, grade_id: str, seed: int):
    """The grader's re-check of one cell, with the kernel's part played by ``namespace``."""
    from course_tools.grade.verdict import judge
    from course_utils.verdict_probes import probe_line

    return judge(lesson, grade_id, seed, probe_line(lesson, grade_id, namespace, seed))


def add_hidden_test(course: Path, lesson: str, grade_id: str, code: str) -> str:
    """Give a test cell of the course copy's source an instructor-style hidden test; return the block added.

    The release is unchanged (a hidden test is not in the student's notebook), so the copy stays
    consistent for ``course grade``.
    """
    path = course / "solutions" / lesson / f"{lesson}.ipynb"
    notebook = nbformat.read(str(path), as_version=4)
    block = f"### BEGIN HIDDEN TESTS\n{code.strip()}\n### END HIDDEN TESTS"
    [cell] = [c for c in notebook.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id]
    cell.source = cell.source.rstrip() + "\n" + block
    nbformat.write(notebook, str(path))
    return block


def remove_hidden_tests(course: Path, lesson: str) -> None:
    """Remove every hidden-test block from the course copy's source (as the course's own lessons have none)."""
    from course_tools.nbgrader_hooks import is_test_cell, without_hidden_tests

    path = course / "solutions" / lesson / f"{lesson}.ipynb"
    notebook = nbformat.read(str(path), as_version=4)
    for cell in notebook.cells:
        if is_test_cell(cell):
            cell.source = without_hidden_tests(cell.source)
    nbformat.write(notebook, str(path))
