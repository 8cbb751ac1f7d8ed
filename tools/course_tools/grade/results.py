"""The typed values that flow through ``course grade`` and out of it, into grades, feedback and reports.

collect -> prepare -> execute -> score -> report: each stage takes and returns these values in
memory. The final :class:`SubmissionResult` of every student is the one thing written down for
later commands (``course report``), as JSON, by :mod:`course_tools.grade.report`.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any


class Status(str, Enum):
    """What happened to one submission, as ``grades.csv`` and the reports show it."""

    OK = "ok"
    INVALID = "invalid"            # not a gradable notebook (malformed, hostile, too large, conflicting)
    TAMPERED = "tampered"          # the submission interfered with the grading machinery
    KERNEL_DIED = "kernel-died"
    TIMED_OUT = "timed-out"
    SANDBOX_FAILED = "sandbox-failed"
    WORKER_LOST = "worker-lost"    # a cluster worker died and the task could not be re-run

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class ExerciseResult:
    """One graded cell of one submission: its points and, when it lost points, why."""

    grade_id: str                       # nbgrader's grade id of the test cell, e.g. "ex1-tests"
    title: str                          # the exercise as the lesson names it, e.g. "Exercise 1 · make_loader"
    points: float
    max_points: float
    diagnoses: tuple[str, ...] = ()     # diagnosis codes named by the failure message, main one first
    message: str = ""                   # the failure message the student reads ("" when it passed)

    @property
    def full(self) -> bool:
        return self.points >= self.max_points


@dataclass(frozen=True)
class SubmissionResult:
    """Everything ``course grade`` knows about one student's submission of one lesson."""

    student: str
    lesson: str
    status: Status
    score: float
    max_score: float
    exercises: tuple[ExerciseResult, ...] = ()
    reason: str = ""
    repairs: tuple[str, ...] = ()
    seconds: float = 0.0
    fingerprint: str = ""  # of the submission, lesson and grading code this result was computed from
    attempt: str = ""             # the graded attempt (its folder under submitted/<student>/<lesson>/.attempts/)
    submitted_at: str = ""        # when it was handed in, ISO 8601 UTC, as the gradebook holds it
    late_by: float = 0.0          # hours past the due date and any extension (0: on time, or no due date)
    late_marker: bool = False     # the LMS named the upload late
    penalty: float = 0.0          # points taken off ``score`` by the late policy
    overridden: tuple[str, ...] = ()        # grade ids whose points were given in formgrader
    stale_overrides: tuple[str, ...] = ()   # formgrader grades cleared because a new attempt came in

    @property
    def renamed_from(self) -> str:
        """The file name the student handed in, when it was not the lesson's ("" otherwise)."""
        return next((note[len(RENAMED):] for note in self.repairs if note.startswith(RENAMED)), "")

    @property
    def real_repairs(self) -> tuple[str, ...]:
        """The repairs proper: a rename is recorded, but it repairs nothing."""
        return tuple(note for note in self.repairs if not note.startswith(RENAMED))

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["status"] = self.status.value
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SubmissionResult:
        exercises = tuple(ExerciseResult(**{**e, "diagnoses": tuple(e.get("diagnoses", ()))})
                          for e in data.get("exercises", ()))
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{**{k: v for k, v in data.items() if k in known}, "status": Status(data["status"]),
                      "exercises": exercises, "repairs": tuple(data.get("repairs", ())),
                      "overridden": tuple(data.get("overridden", ())),
                      "stale_overrides": tuple(data.get("stale_overrides", ()))})


RENAMED = "renamed from "  # the note course_tools.repair writes for a notebook handed in under another name


def scored(results: list[SubmissionResult]) -> list[SubmissionResult]:
    """The submissions that have a score: every status but ``invalid`` (nbgrader scored them all)."""
    return [r for r in results if r.status is not Status.INVALID]


def class_mean(results: list[SubmissionResult]) -> float | None:
    """THE class mean, wherever it is shown: the mean ``score`` (after late penalties) of the scored submissions.

    Every status but ``invalid`` counts, as in the gradebook: a timed-out or crashed notebook keeps
    the points of the cells that finished. None when nothing was scored.
    """
    counted = scored(results)
    return round(sum(r.score for r in counted) / len(counted), 4) if counted else None


@dataclass
class GradingRun:
    """The results of one ``course grade LESSON`` run, in student order."""

    lesson: str
    results: list[SubmissionResult] = field(default_factory=list)


RESULTS_FILE = "results.json"  # under <course root>/.course-grade/<lesson>/


def results_path(root: Path, lesson: str) -> Path:
    """Where ``course grade`` leaves a lesson's results for ``course report``."""
    return Path(root) / ".course-grade" / lesson / RESULTS_FILE


def save_results(root: Path, lesson: str, results: list[SubmissionResult]) -> Path:
    """Write the lesson's results atomically (a crash mid-write never leaves half a file)."""
    path = results_path(root, lesson)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps([r.to_json() for r in sorted(results, key=lambda r: r.student)], indent=1))
    temporary.replace(path)
    return path


def load_results(root: Path, lesson: str) -> list[SubmissionResult]:
    """The results of the last ``course grade`` of ``lesson`` (an empty list if it was never graded)."""
    path = results_path(root, lesson)
    if not path.is_file():
        return []
    return [SubmissionResult.from_json(item) for item in json.loads(path.read_text())]


def graded_lessons(root: Path) -> list[str]:
    """Lessons that ``course grade`` has results for, in course order."""
    folder = Path(root) / ".course-grade"
    return sorted(p.parent.name for p in folder.glob(f"*/{RESULTS_FILE}")) if folder.is_dir() else []
