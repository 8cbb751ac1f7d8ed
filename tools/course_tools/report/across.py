"""The numbers of the cross-lesson view: one line per student over the lessons, and each family's trend.

A family's value in a lesson is the share of that lesson's graded students who lost points to at
least one diagnosis of the family (charged as in :mod:`.summary`). It is ``None`` (no point on the
line) when the lesson's catalogue cannot diagnose the family and nobody lost points to it there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from course_tools.grade.results import Status, SubmissionResult
from course_tools.report.catalogue import entry
from course_tools.report.summary import charged_code, lost
from course_utils.diagnoses import FAMILIES, Diagnosis

_EPSILON = 1e-9


@dataclass(frozen=True)
class LessonScore:
    lesson: str
    status: str          # "missing" when the student has no submission of the lesson
    score: float | None
    max_score: float | None
    fraction: float | None  # score / max score of a graded submission, else None


@dataclass(frozen=True)
class StudentRow:
    student: str
    lessons: tuple[LessonScore, ...]
    mean_fraction: float | None  # over the lessons the student was graded in


@dataclass(frozen=True)
class FamilyPoint:
    lesson: str
    students: int
    share: float | None
    points_lost: float


@dataclass(frozen=True)
class FamilyTrend:
    family: str
    points: tuple[FamilyPoint, ...]


@dataclass(frozen=True)
class CourseReport:
    lessons: tuple[str, ...]
    students: tuple[StudentRow, ...]
    families: tuple[FamilyTrend, ...]  # families some student lost points to, in the catalogue's order

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _score(lesson: str, result: SubmissionResult | None) -> LessonScore:
    if result is None:
        return LessonScore(lesson, "missing", None, None, None)
    graded = result.status is not Status.INVALID and result.max_score > 0
    return LessonScore(lesson, result.status.value, result.score, result.max_score,
                       round(result.score / result.max_score, 4) if graded else None)


def _family_order(family: str) -> tuple[int, str]:
    return (FAMILIES.index(family) if family in FAMILIES else len(FAMILIES), family)


def summarize_course(results: Mapping[str, list[SubmissionResult]], diagnoses: Mapping[str, Diagnosis]) -> CourseReport:
    """The cross-lesson view of ``results`` (lesson -> that lesson's results), lessons in course order."""
    lessons = tuple(sorted(results))
    by_student: dict[str, dict[str, SubmissionResult]] = {}
    for lesson in lessons:
        for result in results[lesson]:
            by_student.setdefault(result.student, {})[lesson] = result
    rows = []
    for student in sorted(by_student):
        scores = tuple(_score(lesson, by_student[student].get(lesson)) for lesson in lessons)
        fractions = [s.fraction for s in scores if s.fraction is not None]
        rows.append(StudentRow(student, scores, round(sum(fractions) / len(fractions), 4) if fractions else None))

    diagnosable = {(d.lesson, d.family) for d in diagnoses.values()}
    hits: dict[tuple[str, str], set[str]] = {}
    points: dict[tuple[str, str], float] = {}
    graded: dict[str, int] = {}
    for lesson in lessons:
        done = [r for r in results[lesson] if r.status is not Status.INVALID and r.exercises]
        graded[lesson] = len(done)
        for result in done:
            for exercise in result.exercises:
                if lost(exercise) > _EPSILON:
                    key = (lesson, entry(charged_code(exercise), diagnoses).family)
                    hits.setdefault(key, set()).add(result.student)
                    points[key] = points.get(key, 0.0) + lost(exercise)
    families = sorted({family for _, family in hits}, key=_family_order)
    trends = []
    for family in families:
        line = []
        for lesson in lessons:
            key = (lesson, family)
            seen = key in hits or key in diagnosable
            students = len(hits.get(key, ()))
            share = round(students / graded[lesson], 4) if seen and graded[lesson] else None
            line.append(FamilyPoint(lesson, students, share, round(points.get(key, 0.0), 4)))
        trends.append(FamilyTrend(family, tuple(line)))
    return CourseReport(lessons, tuple(rows), tuple(trends))
