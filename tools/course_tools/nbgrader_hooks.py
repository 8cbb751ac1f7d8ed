"""nbgrader plug-ins that close grading traps; ``nbgrader_config.py`` wires them in.

Stock nbgrader gives 0 to a grade cell that wrote anything to stderr, so a harmless library
warning (a deprecation notice from torch, say) would zero a correct answer. Only an *error*
should cost marks, so stderr text in grade cells is moved to stdout before grades are saved:
the student and instructor still see it in the feedback.
"""

from __future__ import annotations

import re
import secrets

import nbformat
from nbconvert.exporters.exporter import ResourcesDict
from nbformat import NotebookNode
from nbgrader.preprocessors import NbGraderPreprocessor
from nbgrader.utils import is_grade, is_solution
from traitlets import Dict


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


class NoPartialCredit(NbGraderPreprocessor):
    """A test cell passes or fails: a value it displays is never read as a partial score.

    nbgrader scores a grade cell by the first ``execute_result`` whose value is a number, even when
    an error follows it, so anything that displays a number in a test cell (a student's
    ``pre_run_cell`` hook, say) could set its score. The course's test cells never give partial
    credit, so their results are turned into plain displays before grades are saved.
    """

    def preprocess_cell(self, cell: NotebookNode, resources: ResourcesDict, index: int
                        ) -> tuple[NotebookNode, ResourcesDict]:
        if is_test_cell(cell):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "execute_result":
                    output["output_type"] = "display_data"
                    output.pop("execution_count", None)
        return cell, resources


def unguessable_skip_tag() -> str:
    """Return a fresh tag name for ``Execute.skip_cells_with_tag``.

    nbgrader skips cells carrying that tag during autograde; with the default
    ``skip-execution`` a student could tag the test cells and have them never fail. A random
    tag made at every run cannot be guessed from the public configuration.
    """
    return "course-never-skip-" + secrets.token_hex(16)


class CachedExecution(NbGraderPreprocessor):
    """Stands in for nbgrader's Execute during ``course grade``: the outputs come from the sandbox.

    ``course grade`` has already run each submission in a sandboxed kernel and hands the executed
    notebooks over in memory, through this preprocessor's ``executed`` trait (a traitlets config
    value, set by :mod:`course_tools.grade.score`). Their outputs are put into the notebook that
    nbgrader sanitised, cell by cell (matched by cell id), so nbgrader scores and records them.
    A cell without an execution gets an error, so it can never earn marks by default.
    """

    executed = Dict(help="'<student>/<notebook>' -> the notebook as the sandbox executed it").tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: ResourcesDict) -> tuple[NotebookNode, ResourcesDict]:
        info = resources["nbgrader"]
        executed = self.executed.get(f"{info['student']}/{info['notebook']}")
        by_id = {cell.get("id"): cell for cell in executed.cells} if executed is not None else {}
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            ran = by_id.get(cell.get("id"))
            if ran is None:
                cell.outputs = [nbformat.v4.new_output("error", ename="NotGraded", evalue="no sandboxed run of this cell",
                                                       traceback=["NotGraded: no sandboxed run of this cell"])]
            else:
                cell.outputs, cell.execution_count = ran.outputs, ran.get("execution_count")
        return nb, resources


_HIDDEN_TESTS = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS[ \t]*$.*?^[ \t]*### END HIDDEN TESTS[ \t]*$\n?", re.M | re.S)


def without_hidden_tests(test_source: str) -> str:
    """A source test cell as the student's notebook shows it: the hidden-test block removed."""
    return _HIDDEN_TESTS.sub("", test_source).strip()


def hidden_test_lines(test_source: str) -> list[str]:
    """The lines of a source test cell's hidden-test blocks, markers included ([] when it has none)."""
    return [line for block in _HIDDEN_TESTS.findall(test_source) for line in block.splitlines()]
