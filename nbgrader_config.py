"""nbgrader configuration: the repository root is the course root.

Stock commands work from here, for example::

    nbgrader generate_assignment 01_dataloader_batching --force   # or: make notebooks
    nbgrader autograde 01_dataloader_batching
    nbgrader generate_feedback 01_dataloader_batching
    nbgrader export
"""

from pathlib import Path

from nbconvert.preprocessors import ClearMetadataPreprocessor
from nbgrader.preprocessors import (
    AssignLatePenalties,
    CheckCellMetadata,
    Execute,
    IgnorePattern,
    LimitOutput,
    SaveAutoGrades,
)

from course_tools.grade.feedback import configure_feedback
from course_tools.nbgrader_hooks import NoPartialCredit, StderrIsNotAnError, unguessable_skip_tag

c = get_config()  # noqa: F821  (injected by traitlets when nbgrader loads this file)

ROOT = Path(__file__).resolve().parent

c.CourseDirectory.root = str(ROOT)
c.CourseDirectory.course_id = "pytorch-training-loop"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "notebooks"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"
c.CourseDirectory.db_url = f"sqlite:///{ROOT / 'gradebook.db'}"
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".DS_Store"]

# Lessons finish in seconds on a laptop; a cell that runs for minutes is stuck, not slow.
c.Execute.timeout = 120
c.Execute.interrupt_on_timeout = True
# A student must not be able to skip test cells by tagging them (see course_tools.nbgrader_hooks).
c.Execute.skip_cells_with_tag = unguessable_skip_tag()

# Stock autograde pipeline plus two steps: stderr warnings in test cells do not cost marks, and a test
# cell passes or fails (a number it displays is never read as a partial score).
# `course grade` replaces Execute with the outputs of its sandboxed runs (course_tools.grade.score).
c.Autograde.autograde_preprocessors = [
    Execute,
    IgnorePattern,
    ClearMetadataPreprocessor,
    LimitOutput,
    StderrIsNotAnError,
    NoPartialCredit,
    SaveAutoGrades,
    AssignLatePenalties,
    CheckCellMetadata,
]

# Feedback teaches without leaking (course_tools.grade.feedback): a table of exercises first, no hidden
# tests, no tracebacks into the course's modules, student output sanitised. autograded/ keeps everything.
configure_feedback(c)

# A deleted test cell comes back from the source, so deleting it cannot dodge a failing test.
c.OverwriteCells.add_missing_cells = True

c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
