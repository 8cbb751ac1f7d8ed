"""The numbers of one lesson's class report, computed from ``course grade``'s results and the catalogue.

Definitions (the page's footer repeats them):

- *graded*: the scored submissions, every status but ``invalid`` (as in the gradebook: a timed-out
  or crashed notebook keeps the points of the cells that finished); the scores, the median, the
  mean (:func:`course_tools.grade.results.class_mean`, the one class mean) and every share are over
  them. Every submission whose status is not ``ok`` is also listed with its reason.
- *common confusions* leave out ``not-attempted``: an untouched exercise is no confusion.
- *repaired*: a notebook ``course grade`` repaired; a rename alone is recorded, not a repair.
- *points lost to a diagnosis*: an exercise that lost points charges them to the main (first) code
  its failure message names; one that names none is charged to "no diagnosis named".
- *share who lost points to a diagnosis*: graded students whose exercise was charged to it, over the
  graded students with exercise results.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from course_tools.grade.results import ExerciseResult, Status, SubmissionResult, class_mean, scored
from course_tools.report.catalogue import entry
from course_utils.diagnoses import NOT_ATTEMPTED_CODE, Diagnosis

CONFUSIONS = 3       # the diagnoses that cost the class the most points
LOWEST = 5           # students with the lowest scores, below full marks
ONE_BAR_PER_POINT = 30  # up to this many points, the histogram has one bar per whole point
FIRST_LINE = 160     # characters kept of an unexplained failure's first line
_EPSILON = 1e-9


@dataclass(frozen=True)
class Bin:
    """One bar of the score histogram: scores in [low, high); the last bar also holds ``high``
    (with one bar per point, the last bar is full marks alone: low == high == max score)."""

    low: float
    high: float
    students: int


@dataclass(frozen=True)
class Scores:
    submissions: int
    graded: int
    max_score: float
    median: float | None
    mean: float | None
    full_marks: int
    histogram: tuple[Bin, ...]


@dataclass(frozen=True)
class DiagnosisCount:
    """How many graded students lost points to one diagnosis in one exercise (or in the lesson)."""

    code: str | None     # None: points lost with no diagnosis named
    what: str
    family: str
    known: bool          # False: the catalogue does not hold this code (it changed after grading)
    students: int
    share: float         # students / graded
    points_lost: float


@dataclass(frozen=True)
class ExerciseSummary:
    grade_id: str
    title: str
    max_points: float
    mean_points: float
    full_points: int     # graded students with full points
    full_share: float
    diagnoses: tuple[DiagnosisCount, ...]  # most students first


@dataclass(frozen=True)
class Confusion:
    """A diagnosis among those that cost the class the most points, with what students were told."""

    code: str
    what: str
    hint: str
    section: str
    family: str
    known: bool
    exercises: tuple[str, ...]  # titles of the exercises where it cost points
    students: int
    share: float
    points_lost: float
    share_of_lost: float        # of all points the graded class lost


@dataclass(frozen=True)
class Loss:
    """One exercise a student lost points on, and why."""

    exercise: str
    points_lost: float
    code: str | None
    what: str
    known: bool
    message: str         # first line of the failure message when no diagnosis was named, else ""


@dataclass(frozen=True)
class StudentLine:
    student: str
    status: str
    score: float
    max_score: float
    losses: tuple[Loss, ...]
    reason: str
    repairs: tuple[str, ...]        # repairs proper (a rename is in ``renamed_from``)
    renamed_from: str = ""
    submitted_at: str = ""
    late_by: float = 0.0            # hours
    late_marker: bool = False
    penalty: float = 0.0
    stale_overrides: tuple[str, ...] = ()


@dataclass(frozen=True)
class ClassReport:
    lesson: str
    status_counts: dict[str, int]
    scores: Scores
    exercises: tuple[ExerciseSummary, ...]
    confusions: tuple[Confusion, ...]
    lowest: tuple[StudentLine, ...]     # the lowest scores below full marks
    also_at_cutoff: int                  # students left out of ``lowest`` with the same score as its last
    not_graded: tuple[StudentLine, ...]  # status not ok: invalid (no score), crashed, timed out, tampered, lost
    repaired: tuple[StudentLine, ...]    # graded after ``course grade`` repaired the notebook (renames are not)
    unknown_codes: tuple[str, ...]       # codes named by results but missing from the catalogue
    late: tuple[StudentLine, ...] = ()             # handed in after the due date (and extension), or so says the LMS
    stale_overrides: tuple[StudentLine, ...] = ()  # formgrader grades cleared by a new attempt: review them
    renamed: int = 0                               # notebooks handed in under another name (recorded only)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def lost(exercise: ExerciseResult) -> float:
    return max(exercise.max_points - exercise.points, 0.0)


def charged_code(exercise: ExerciseResult) -> str | None:
    """The code an exercise's lost points are charged to: its main (first) diagnosis, or None."""
    return exercise.diagnoses[0] if exercise.diagnoses else None


def _share(part: float, whole: float) -> float:
    return round(part / whole, 4) if whole else 0.0


def histogram(scores: list[float], max_score: float) -> tuple[Bin, ...]:
    """Bars of one point each for small totals, the last holding full marks alone; else 20 equal bars."""
    if max_score <= 0:
        return ()
    if max_score <= ONE_BAR_PER_POINT:
        edges = [float(k) for k in range(math.floor(max_score + _EPSILON) + 1)]
        if edges[-1] < max_score - _EPSILON:
            edges.append(float(max_score))
        bins = [[edges[i], edges[i + 1], 0] for i in range(len(edges) - 1)] + [[float(max_score)] * 2 + [0]]
    else:
        width = max_score / 20
        bins = [[round(k * width, 6), round((k + 1) * width, 6), 0] for k in range(20)]
    for score in scores:
        index = next((i for i, (_, high, _) in enumerate(bins) if score < high - _EPSILON), len(bins) - 1)
        bins[index][2] += 1
    return tuple(Bin(low, high, count) for low, high, count in bins)


def _exercise_order(results: Iterable[SubmissionResult]) -> dict[str, tuple[str, float]]:
    """grade id -> (title, max points), in the order the notebooks hold the exercises."""
    order: dict[str, tuple[str, float]] = {}
    for result in results:
        for exercise in result.exercises:
            title, most = order.get(exercise.grade_id, (exercise.title, 0.0))
            order[exercise.grade_id] = (title or exercise.grade_id, max(most, exercise.max_points))
    return order


def _first_line(message: str) -> str:
    line = next((text.strip() for text in message.strip().splitlines() if text.strip()), "")
    return line if len(line) <= FIRST_LINE else line[:FIRST_LINE - 1] + "…"


def _student_line(result: SubmissionResult, diagnoses: Mapping[str, Diagnosis]) -> StudentLine:
    losses = []
    for exercise in result.exercises:
        if lost(exercise) > _EPSILON:
            code = charged_code(exercise)
            text = entry(code, diagnoses)
            losses.append(Loss(exercise.title or exercise.grade_id, lost(exercise), code, text.what, text.known,
                               "" if code else _first_line(exercise.message)))
    return StudentLine(result.student, result.status.value, result.score, result.max_score, tuple(losses),
                       result.reason, result.real_repairs, result.renamed_from, result.submitted_at, result.late_by,
                       result.late_marker, result.penalty, tuple(result.stale_overrides))


def _counts(charges: list[tuple[str | None, str, float]], graded: int,
            diagnoses: Mapping[str, Diagnosis]) -> list[DiagnosisCount]:
    """Group (code, student, points) charges by code: distinct students and points, most students first."""
    students: dict[str | None, set[str]] = {}
    points: dict[str | None, float] = {}
    for code, student, amount in charges:
        students.setdefault(code, set()).add(student)
        points[code] = points.get(code, 0.0) + amount
    counts = []
    for code, who in students.items():
        text = entry(code, diagnoses)
        counts.append(DiagnosisCount(code, text.what, text.family, text.known, len(who), _share(len(who), graded),
                                     round(points[code], 4)))
    return sorted(counts, key=lambda c: (-c.students, -c.points_lost, c.code is None, c.code or ""))


def _confusions(order: Mapping[str, tuple[str, float]], charges: Mapping[str, list[tuple[str | None, str, float]]],
                graded: int, diagnoses: Mapping[str, Diagnosis]) -> tuple[Confusion, ...]:
    """The named diagnoses that cost the class the most points over every exercise (ties: more students)."""
    all_charges = [charge for grade_id in order for charge in charges[grade_id]]
    total_lost = sum(amount for _, _, amount in all_charges)
    titles: dict[str, list[str]] = {}
    for grade_id, (title, _) in order.items():
        for code, _, _ in charges[grade_id]:
            if code is not None and title not in titles.setdefault(code, []):
                titles[code].append(title)
    ranked = sorted((c for c in _counts(all_charges, graded, diagnoses)
                     if c.code is not None and c.code != NOT_ATTEMPTED_CODE),
                    key=lambda c: (-c.points_lost, -c.students, c.code))
    confusions = []
    for count in ranked[:CONFUSIONS]:
        text = entry(count.code, diagnoses)
        confusions.append(Confusion(count.code, text.what, text.hint, text.section, text.family, text.known,
                                    tuple(titles[count.code]), count.students, count.share, count.points_lost,
                                    _share(count.points_lost, total_lost)))
    return tuple(confusions)


def summarize(lesson: str, results: list[SubmissionResult], diagnoses: Mapping[str, Diagnosis]) -> ClassReport:
    """The class report of ``lesson`` from its results, with every text looked up in ``diagnoses``."""
    graded = scored(results)
    max_score = max((r.max_score for r in results), default=0.0)
    scores = sorted(r.score for r in graded)
    status_counts = {status.value: sum(r.status is status for r in results) for status in Status}

    judged = [r for r in graded if r.exercises]  # the shares per exercise are over those with exercise results
    order = _exercise_order(graded)
    by_exercise: dict[str, list[ExerciseResult]] = {grade_id: [] for grade_id in order}
    charges: dict[str, list[tuple[str | None, str, float]]] = {grade_id: [] for grade_id in order}
    for result in graded:
        for exercise in result.exercises:
            by_exercise[exercise.grade_id].append(exercise)
            if lost(exercise) > _EPSILON:
                charges[exercise.grade_id].append((charged_code(exercise), result.student, lost(exercise)))

    exercises = []
    for grade_id, (title, max_points) in order.items():
        done = by_exercise[grade_id]
        full = sum(e.full for e in done)
        mean_points = round(statistics.fmean(e.points for e in done), 4) if done else 0.0
        exercises.append(ExerciseSummary(grade_id, title, max_points, mean_points, full, _share(full, len(judged)),
                                         tuple(_counts(charges[grade_id], len(judged), diagnoses))))

    confusions = _confusions(order, charges, len(judged), diagnoses)

    lines = {r.student: _student_line(r, diagnoses) for r in results}
    below_full = sorted((r for r in graded if r.score < r.max_score - _EPSILON), key=lambda r: (r.score, r.student))
    named = {code for r in results for e in r.exercises for code in e.diagnoses}
    return ClassReport(
        lesson=lesson,
        status_counts=status_counts,
        scores=Scores(len(results), len(graded), max_score,
                      statistics.median(scores) if scores else None,
                      class_mean(results),
                      sum(r.score >= r.max_score - _EPSILON for r in graded),
                      histogram(scores, max_score)),
        exercises=tuple(exercises),
        confusions=confusions,
        lowest=tuple(lines[r.student] for r in below_full[:LOWEST]),
        also_at_cutoff=sum(abs(r.score - below_full[LOWEST - 1].score) < _EPSILON for r in below_full[LOWEST:])
        if len(below_full) > LOWEST else 0,
        not_graded=tuple(lines[r.student] for r in sorted(results, key=lambda r: r.student)
                         if r.status is not Status.OK),
        repaired=tuple(lines[r.student] for r in sorted(graded, key=lambda r: r.student) if r.real_repairs),
        unknown_codes=tuple(sorted(code for code in named if code not in diagnoses)),
        late=tuple(lines[r.student] for r in sorted(results, key=lambda r: r.student) if r.late_by > 0 or r.late_marker),
        stale_overrides=tuple(lines[r.student] for r in sorted(results, key=lambda r: r.student) if r.stale_overrides),
        renamed=sum(1 for r in results if r.renamed_from),
    )
