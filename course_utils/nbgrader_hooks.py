"""nbgrader plug-ins that close grading traps; ``nbgrader_config.py`` wires them in.

Stock nbgrader gives 0 to a grade cell that wrote anything to stderr, so a harmless library
warning (a deprecation notice from torch, say) would zero a correct answer. Only an *error*
should cost marks, so stderr text in grade cells is moved to stdout before grades are saved:
the student and instructor still see it in the feedback.
"""

from __future__ import annotations

import secrets

from nbconvert.exporters.exporter import ResourcesDict
from nbformat import NotebookNode
from nbgrader.preprocessors import NbGraderPreprocessor
from nbgrader.utils import is_grade, is_solution


class StderrIsNotAnError(NbGraderPreprocessor):
    """Turn stderr stream outputs of autograded test cells into stdout, so warnings cost nothing."""

    def preprocess_cell(self, cell: NotebookNode, resources: ResourcesDict, index: int
                        ) -> tuple[NotebookNode, ResourcesDict]:
        if cell.cell_type == "code" and is_grade(cell) and not is_solution(cell):
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
