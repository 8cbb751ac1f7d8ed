"""nbgrader configuration: the repository root is the course root.

Stock commands work from here, for example::

    nbgrader generate_assignment 01_dataloader_batching --force   # the same notebooks as: make notebooks
    nbgrader db assignment add 01_dataloader_batching --duedate="2026-11-21 17:00:00 UTC"
    nbgrader autograde 01_dataloader_batching
    nbgrader generate_feedback 01_dataloader_batching
    nbgrader export
"""

from pathlib import Path

from nbconvert.preprocessors import ClearMetadataPreprocessor
from nbgrader.converters import GenerateAssignment
from nbgrader.preprocessors import (
    AssignLatePenalties,
    CheckCellMetadata,
    Execute,
    IgnorePattern,
    LimitOutput,
    SaveAutoGrades,
)

from course_tools.grade.feedback import configure_feedback
from course_tools.grade.lateness import CoursePenalty, SubmissionTime
from course_tools.nbgrader_hooks import NoPartialCredit, StderrIsNotAnError, unguessable_skip_tag
from course_tools.release import StudentRelease

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

# The release as the course ships it, whoever runs it (`make notebooks` or a stock `nbgrader
# generate_assignment`): nbgrader's own steps, then the student-only cells (Colab set-up, quiz widget)
# and the committed clean form.
c.GenerateAssignment.preprocessors = GenerateAssignment.class_traits()["preprocessors"].default() + [StudentRelease]

# Late work (course_tools.grade.lateness): the due date is the gradebook assignment's (formgrader, or
# `nbgrader db assignment add LESSON --duedate=...`); the time is nbgrader's timestamp.txt of each attempt.
c.AssignLatePenalties.plugin_class = CoursePenalty
c.LatePolicy.method = "none"     # "none", "fixed" (c.LatePolicy.fixed = 0.2) or "per_hour" (per_hour, floor)
c.LatePolicy.extensions = {}     # {"student-id": {"01_dataloader_batching": 48}}: hours, per student and lesson

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
# ... and says when the submission was handed in and how late (course_tools.grade.lateness).
c.GenerateFeedback.preprocessors = [*c.GenerateFeedback.preprocessors, SubmissionTime]

# A deleted test cell comes back from the source, so deleting it cannot dodge a failing test.
c.OverwriteCells.add_missing_cells = True

c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
