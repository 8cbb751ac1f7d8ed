"""nbgrader plug-ins that close grading traps; ``nbgrader_config.py`` wires them in.

Stock nbgrader gives 0 to a grade cell that wrote anything to stderr, so a harmless library
warning (a deprecation notice from torch, say) would zero a correct answer. Only an *error*
should cost marks, so stderr text in grade cells is moved to stdout before grades are saved:
the student and instructor still see it in the feedback.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import nbformat
from nbconvert.exporters.exporter import ResourcesDict
from nbformat import NotebookNode
from nbgrader.preprocessors import NbGraderPreprocessor
from nbgrader.utils import is_grade, is_solution


def is_test_cell(cell: NotebookNode) -> bool:
    """A code cell nbgrader grades by its output (a grade cell that is not an answer cell)."""
    return cell.cell_type == "code" and is_grade(cell) and not is_solution(cell)


class StderrIsNotAnError(NbGraderPreprocessor):
    """Turn stderr stream outputs of autograded test cells into stdout, so warnings cost nothing."""

    def preprocess_cell(self, cell: NotebookNode, resources: ResourcesDict, index: int
                        ) -> tuple[NotebookNode, ResourcesDict]:
        if is_test_cell(cell):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "stream" and output.get("name") == "stderr":
                    output["name"] = "stdout"
        return cell, resources


def unguessable_skip_tag() -> str:
    """Return a fresh tag name for ``Execute.skip_cells_with_tag``.

    nbgrader skips cells carrying that tag during autograde; with the default
    ``skip-execution`` a student could tag the test cells and have them never fail. A random
    tag made at every run cannot be guessed from the public configuration.
    """
    return "course-never-skip-" + secrets.token_hex(16)


CACHE_ENV_VAR = "COURSE_GRADE_CACHE"


def cached_notebook_path(cache: Path, assignment: str, student: str, notebook: str) -> Path:
    """Where ``course grade`` leaves the sandboxed execution of one submitted notebook."""
    return cache / assignment / student / f"{notebook}.ipynb"


class CachedExecution(NbGraderPreprocessor):
    """Stands in for nbgrader's Execute during ``course grade``: the outputs come from the sandbox.

    ``course grade`` has already run the submission in a sandboxed kernel; here its outputs are
    put into the notebook nbgrader sanitised, cell by cell, so nbgrader scores and records them.
    A cell without an execution gets an error, so it can never earn marks by default.
    """

    def preprocess(self, nb: NotebookNode, resources: ResourcesDict) -> tuple[NotebookNode, ResourcesDict]:
        info = resources["nbgrader"]
        path = cached_notebook_path(Path(os.environ[CACHE_ENV_VAR]), info["assignment"], info["student"],
                                    info["notebook"])
        executed = nbformat.read(str(path), as_version=4) if path.exists() else None
        by_id = {cell.get("id"): cell for cell in executed.cells} if executed else {}
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            source = by_id.get(cell.get("id"))
            if source is None or (is_test_cell(cell) and source.source != cell.source):
                cell.outputs = [nbformat.v4.new_output("error", ename="NotGraded", evalue="no sandboxed run of this cell",
                                                       traceback=["NotGraded: no sandboxed run of this cell"])]
            else:
                cell.outputs, cell.execution_count = source.outputs, source.get("execution_count")
        return nb, resources
