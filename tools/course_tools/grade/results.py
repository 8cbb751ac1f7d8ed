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

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["status"] = self.status.value
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SubmissionResult:
        exercises = tuple(ExerciseResult(**{**e, "diagnoses": tuple(e.get("diagnoses", ()))})
                          for e in data.get("exercises", ()))
        return cls(**{**data, "status": Status(data["status"]), "exercises": exercises,
                      "repairs": tuple(data.get("repairs", ()))})


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
