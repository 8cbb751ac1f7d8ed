"""The student package (course_utils) never imports the instructor package or Jupyter's tooling.

A lesson notebook in Colab and a sandboxed grading kernel import course_utils alone; anything it
imported from nbformat, nbclient, nbgrader, jupyter or course_tools would have to be installed and
mounted there too.
"""

import ast

import pytest

from tests.helpers import ROOT

FORBIDDEN = ("course_tools", "nbformat", "nbclient", "nbgrader", "nbconvert", "jupyter", "jupyter_client",
             "jupyter_core", "jupyter_server", "jupyterlab")
STUDENT_MODULES = sorted((ROOT / "course_utils").rglob("*.py"))


def imported_names(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


@pytest.mark.parametrize("path", STUDENT_MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_student_module_imports_no_instructor_or_jupyter_tooling(path):
    bad = [name for name in imported_names(path) if name.split(".")[0] in FORBIDDEN]
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}: the student package must stay installable alone"


def test_there_are_student_modules_to_check():
    assert len(STUDENT_MODULES) >= 10
