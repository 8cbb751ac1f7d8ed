"""Late work, through nbgrader's own machinery: the due date, extensions and the penalty policy.

- **When it was handed in**: nbgrader's ``timestamp.txt`` beside the graded notebook, which
  :mod:`course_tools.grade.attempts` writes for every attempt (from the ``timestamp.txt`` that came
  with it, the zip member's date, or the file's time).
- **When it was due**: the gradebook assignment's ``duedate``, as formgrader and
  ``nbgrader db assignment add LESSON --duedate="2026-11-21 17:00:00 UTC"`` set it.
- **Extensions**: per student, in the course config (``c.LatePolicy.extensions``), written into
  the gradebook as nbgrader's own extension before the submission is scored, so formgrader shows them.
- **The penalty**: :class:`CoursePenalty`, nbgrader's late-submission plugin
  (``c.AssignLatePenalties.plugin_class``), applies :class:`LatePolicy`.

Configured in ``nbgrader_config.py``, for example::

    c.LatePolicy.method = "per_hour"   # "none" (default), "fixed" or "per_hour"
    c.LatePolicy.per_hour = 0.05       # 5 % of the earned score per hour late ...
    c.LatePolicy.floor = 0.5           # ... but a late submission always keeps half of it
    c.LatePolicy.fixed = 0.2           # with method "fixed": 20 % off whenever late
    c.LatePolicy.extensions = {"leo": {"01_dataloader_batching": 48}}   # hours, per student and lesson
"""

from __future__ import annotations

from typing import Any

from nbconvert.exporters.exporter import ResourcesDict
from nbformat import NotebookNode
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.plugins import LateSubmissionPlugin
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Dict, Enum, Float
from traitlets.config import Configurable

LATE_METHODS = ("none", "fixed", "per_hour")


class LatePolicy(Configurable):
    """How much of its score a late submission loses, and who has an extension (the course's config)."""

    method = Enum(LATE_METHODS, default_value="none",
                  help="'none': no penalty; 'fixed': `fixed` of the score off when late; "
                       "'per_hour': `per_hour` of the score off per hour late, keeping at least `floor`").tag(config=True)
    fixed = Float(0.0, min=0.0, max=1.0, help="the share of the earned score a late submission loses").tag(config=True)
    per_hour = Float(0.0, min=0.0, max=1.0, help="the share of the earned score lost per hour late").tag(config=True)
    floor = Float(0.0, min=0.0, max=1.0, help="the least share of its earned score a late submission keeps"
                  ).tag(config=True)
    extensions = Dict(help="student id -> {lesson: hours of extension}").tag(config=True)

    def penalty(self, score: float, seconds_late: float) -> float:
        """The points a submission that earned ``score`` loses for being ``seconds_late`` (after extensions)."""
        if seconds_late <= 0 or score <= 0 or self.method == "none":
            return 0.0
        share = self.fixed if self.method == "fixed" else min(self.per_hour * seconds_late / 3600, 1 - self.floor)
        return round(score * max(share, 0.0), 6)

    def extension_hours(self, student: str, lesson: str) -> float:
        """The hours of extension ``student`` has for ``lesson`` (0 when none)."""
        given: Any = self.extensions.get(student, {})
        hours = given.get(lesson, 0) if isinstance(given, dict) else 0
        try:
            return max(float(hours), 0.0)
        except (TypeError, ValueError):
            raise ValueError(f"c.LatePolicy.extensions[{student!r}][{lesson!r}] must be a number of hours, "
                             f"got {hours!r}") from None


class CoursePenalty(LateSubmissionPlugin):
    """nbgrader's late-submission plugin applying the course's :class:`LatePolicy`."""

    def late_submission_penalty(self, student_id: str, score: float, total_seconds_late: float) -> float | None:
        penalty = LatePolicy(parent=self).penalty(score, total_seconds_late)
        return penalty or None


class SubmissionTime(NbGraderPreprocessor):
    """Feedback step: when the submission was handed in and how late, from the gradebook, for the feedback page."""

    def preprocess(self, nb: NotebookNode, resources: ResourcesDict) -> tuple[NotebookNode, ResourcesDict]:
        info = resources["nbgrader"]
        with Gradebook(info["db_url"]) as gradebook:
            try:
                submission = gradebook.find_submission(info["assignment"], info["student"])
            except MissingEntry:
                return nb, resources
            stamp = submission.timestamp
            resources["course_time"] = {
                "submitted_at": f"{stamp:%Y-%m-%d %H:%M} UTC" if stamp is not None else "",
                "late_by": round(float(submission.total_seconds_late or 0) / 3600, 2)}
        return nb, resources
