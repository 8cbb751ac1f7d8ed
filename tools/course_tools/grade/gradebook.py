"""The gradebook is the one source of scores: what formgrader changes reaches every file ``course grade`` writes.

nbgrader keeps each grade cell's ``auto_score``, the ``manual_score`` and ``extra_credit`` given in
formgrader (the manual score wins), the submission's time, its extension and its late penalty.
``course grade`` reads them back for every student on every run (:func:`sync`), so
``course-grades.csv``, the results JSON, the class report and any export agree with formgrader.

A manual grade belongs to the attempt it was given for. When a student hands in a new attempt,
:func:`take_overrides` clears it (nbgrader would otherwise keep it over the new attempt's score)
and says what it was, so the report can flag it as stale.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta, timezone
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry

from course_tools.grade.results import Status, SubmissionResult


def db_url(root: Path) -> str:
    """The course gradebook (``nbgrader_config.py`` puts it in the course root)."""
    return f"sqlite:///{Path(root) / 'gradebook.db'}"


@dataclass(frozen=True)
class Record:
    """One submission as the gradebook holds it."""

    points: dict[str, tuple[float, float]]   # grade id -> (score: manual over auto, plus extra credit; max)
    overridden: tuple[str, ...]              # grade ids with a manual score or extra credit
    submitted_at: str                        # ISO 8601, UTC ("" when unknown)
    seconds_late: float
    penalty: float


def read(root: Path, lesson: str, student: str) -> Record | None:
    """The gradebook's record of ``student``'s submission of ``lesson`` (None when it has none)."""
    with Gradebook(db_url(root)) as gradebook:
        try:
            submission = gradebook.find_submission(lesson, student)
        except MissingEntry:
            return None
        points: dict[str, tuple[float, float]] = {}
        overridden = []
        penalty = 0.0
        for notebook in submission.notebooks:
            penalty += float(notebook.late_submission_penalty or 0)
            for grade in notebook.grades:
                points[grade.name] = (float(grade.score or 0), float(grade.max_score or 0))
                if grade.manual_score is not None or grade.extra_credit:
                    overridden.append(grade.name)
        stamp = submission.timestamp
        return Record(points, tuple(overridden),
                      stamp.replace(tzinfo=timezone.utc).isoformat() if stamp is not None else "",
                      float(submission.total_seconds_late or 0), round(penalty, 6))


def prepare_submission(root: Path, lesson: str, student: str, extension_hours: float) -> None:
    """Make sure the gradebook has the submission, with the course config's extension (nbgrader's own field)."""
    with Gradebook(db_url(root)) as gradebook:
        gradebook.update_or_create_student(student)
        gradebook.update_or_create_submission(lesson, student)
        minutes = round(extension_hours * 60)
        current = gradebook.find_submission(lesson, student).extension
        if (current or timedelta()) != timedelta(minutes=minutes):
            gradebook.grant_extension(lesson, student, minutes=minutes)


def take_overrides(root: Path, lesson: str, student: str, earlier_attempt: str) -> tuple[str, ...]:
    """Clear the manual grades and extra credit given for an earlier attempt; say what they were."""
    with Gradebook(db_url(root)) as gradebook:
        try:
            submission = gradebook.find_submission(lesson, student)
        except MissingEntry:
            return ()
        stale = []
        for notebook in submission.notebooks:
            for grade in notebook.grades:
                if grade.manual_score is None and not grade.extra_credit:
                    continue
                given = [f"manual score {grade.manual_score:g}" if grade.manual_score is not None else "",
                         f"extra credit {grade.extra_credit:g}" if grade.extra_credit else ""]
                stale.append(f"{grade.name}: {' and '.join(g for g in given if g)} given in formgrader for the "
                             f"attempt of {earlier_attempt or 'an earlier run'}; review it for the new attempt")
                grade.manual_score, grade.extra_credit = None, None
        gradebook.db.commit()
        return tuple(stale)


def with_record(result: SubmissionResult, record: Record | None) -> SubmissionResult:
    """``result`` with its points, time, lateness and penalty as the gradebook holds them."""
    if record is None or result.status is Status.INVALID:
        return result
    exercises = tuple(replace(e, points=record.points.get(e.grade_id, (e.points, e.max_points))[0])
                      for e in result.exercises)
    raw = sum(e.points for e in exercises)
    return replace(result, exercises=exercises, score=round(max(raw - record.penalty, 0.0), 6),
                   penalty=record.penalty, submitted_at=record.submitted_at,
                   late_by=round(record.seconds_late / 3600, 4), overridden=record.overridden)


def sync(root: Path, lesson: str, results: list[SubmissionResult]) -> list[SubmissionResult]:
    """Every result with the gradebook's current scores (manual grades and extra credit included)."""
    return [with_record(result, read(root, lesson, result.student)) for result in results]
