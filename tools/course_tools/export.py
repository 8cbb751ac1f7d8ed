"""``course export``: the gradebook as the file a learning platform imports.

Scores come from nbgrader's gradebook (``gradebook.db``), the one place that holds the autograde
*and* whatever was changed in formgrader (manual grades, extra credit), with the late penalty taken
off as ``nbgrader export`` does: ``max(0, score - late penalty)``. A student with no graded
submission gets an empty cell, which every platform reads as "no grade" (never a 0 that would
overwrite a grade given there). Students come from the roster (``roster.csv``), which supplies the
identifiers each platform matches rows by.

- ``canvas``: the Canvas gradebook CSV, columns ``Student, ID, SIS User ID, SIS Login ID, Section``,
  one column per lesson (``<lesson> (<Canvas assignment id>)`` with ``--assignment-id``, else
  ``<lesson>``, which Canvas imports as a new assignment), and Canvas's ``Points Possible`` row;
- ``moodle``: Moodle's grade import CSV, ``First name, Last name, ID number, Email address,
  Username`` and one column per lesson; map ``Email address`` (or ``ID number``) to the user
  field of the same name on import;
- ``csv``: every field of the roster and, per lesson, the score and ``<lesson> max``.

Cells are made safe for spreadsheets (:func:`course_tools.grade.sanitize.safe_csv_cell`).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from course_tools.grade.sanitize import safe_csv_cell
from course_tools.roster import GRADEBOOK, ROSTER_FILE, Roster, RosterError, Student, split_name
from course_tools.roster import load as load_roster

FORMATS = ("canvas", "moodle", "csv")
EXPORT_DIR = "exports"
CANVAS_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
MOODLE_COLUMNS = ["First name", "Last name", "ID number", "Email address", "Username"]
CSV_COLUMNS = ["student_id", "name", "lms_id", "login", "email", "sis_user_id", "section"]


class ExportError(RuntimeError):
    """Nothing can be exported; the message says why and what to do."""


@dataclass(frozen=True)
class Scores:
    """What the gradebook holds for the lessons exported."""

    lessons: list[str]
    max_scores: dict[str, float]                      # lesson -> points possible
    scores: dict[tuple[str, str], float]              # (student id, lesson) -> score after the late penalty
    students: list[str]                               # every student the gradebook knows


@dataclass(frozen=True)
class Exported:
    """The file written and the students left out of it (with why)."""

    path: Path
    rows: int
    left_out: list[tuple[str, str]]


def read_scores(root: Path, lessons: Iterable[str] = ()) -> Scores:
    """Scores from the gradebook, manual grades and extra credit included, late penalties taken off."""
    from nbgrader.api import Gradebook, MissingEntry

    database = Path(root) / GRADEBOOK
    if not database.is_file():
        raise ExportError(f"no gradebook ({database}): grade a lesson first (course grade LESSON)")
    wanted = list(dict.fromkeys(lessons))
    with Gradebook(f"sqlite:///{database}") as gradebook:
        known = sorted(a.name for a in gradebook.assignments)
        missing = [lesson for lesson in wanted if lesson not in known]
        if missing:
            raise ExportError(f"the gradebook has no lesson {', '.join(missing)}; it has "
                              f"{', '.join(known) or 'none'} (grade it first: course grade LESSON)")
        chosen = wanted or known
        if not chosen:
            raise ExportError("the gradebook holds no lesson yet: grade one first (course grade LESSON)")
        max_scores, scores = {}, {}
        for lesson in chosen:
            max_scores[lesson] = float(gradebook.find_assignment(lesson).max_score or 0.0)
            for student in gradebook.students:
                try:
                    submission = gradebook.find_submission(lesson, student.id)
                except MissingEntry:
                    continue
                penalty = submission.late_submission_penalty or 0.0
                scores[(student.id, lesson)] = max(0.0, float(submission.score or 0.0) - penalty)
        students = sorted(s.id for s in gradebook.students)
    return Scores(chosen, max_scores, scores, students)


def _number(value: float | None) -> str:
    return "" if value is None else f"{round(value, 2):g}"


@dataclass(frozen=True)
class Layout:
    """One platform's import file: its identity columns, and when a row is one it can match."""

    columns: list[str]
    identity: Callable[[Student], list[str]]
    matchable: Callable[[Student], bool]
    unmatched: str  # why a row it cannot match is left out


LAYOUTS = {
    "canvas": Layout(CANVAS_COLUMNS,
                     lambda s: [s.name or s.student_id, s.lms_id, s.sis_user_id, s.login, s.section],
                     lambda s: bool(s.lms_id or s.sis_user_id or s.login),
                     "no Canvas ID, SIS User ID or SIS Login ID on the roster"),
    "moodle": Layout(MOODLE_COLUMNS,
                     lambda s: [*split_name(s.name), s.sis_user_id, s.email, s.login],
                     lambda s: bool(s.email or s.sis_user_id or s.login),
                     "no e-mail, ID number or username on the roster for Moodle to match"),
    "csv": Layout(CSV_COLUMNS, lambda s: [getattr(s, c) for c in CSV_COLUMNS], lambda s: True, ""),
}
CANVAS_POINTS_ROW = "    Points Possible"  # Canvas's own second row, spaces included


def _score_columns(fmt: str, lesson: str, ids: dict[str, str], scores: Scores, student: str | None) -> list[str]:
    """One lesson's header cells (``student`` None) or one student's cells for it, in ``fmt``."""
    if student is None:
        title = f"{lesson} ({ids[lesson]})" if fmt == "canvas" and lesson in ids else lesson
        return [title, f"{lesson} max"] if fmt == "csv" else [title]
    mark = _number(scores.scores.get((student, lesson)))
    return [mark, _number(scores.max_scores[lesson])] if fmt == "csv" else [mark]


def _rows(roster: Roster, scores: Scores, fmt: str, ids: dict[str, str]) -> tuple[
        list[str], list[list[str]], list[tuple[str, str]]]:
    """The header, the rows and the students left out (with why) of ``fmt``'s file."""
    layout = LAYOUTS[fmt]
    left_out: list[tuple[str, str]] = []
    people = list(roster.students)
    on_roster = {s.student_id for s in people}
    for student in scores.students:
        if student in on_roster:
            continue
        if fmt == "csv":
            people.append(Student(student))
        else:
            left_out.append((student, f"not on the roster ({ROSTER_FILE}), so {fmt} cannot match the row"))
    header = layout.columns + [c for x in scores.lessons for c in _score_columns(fmt, x, ids, scores, None)]
    rows = []
    if fmt == "canvas":
        rows.append([CANVAS_POINTS_ROW] + [""] * (len(layout.columns) - 1)
                    + [_number(scores.max_scores[x]) for x in scores.lessons])
    for person in people:
        if not layout.matchable(person):
            left_out.append((person.student_id, layout.unmatched))
            continue
        rows.append(layout.identity(person)
                    + [c for x in scores.lessons for c in _score_columns(fmt, x, ids, scores, person.student_id)])
    return header, rows, left_out


def parse_assignment_ids(pairs: Iterable[str]) -> dict[str, str]:
    """``LESSON=ID`` pairs (``--assignment-id``) as a mapping; a malformed pair is an error that says so."""
    ids = {}
    for pair in pairs:
        lesson, _, number = pair.partition("=")
        if not lesson or not re.fullmatch(r"\d+", number):
            raise ExportError(f"--assignment-id {pair!r}: write LESSON=ID, the number in the Canvas assignment's "
                              "address (…/assignments/ID)")
        ids[lesson] = number
    return ids


def export(root: Path, fmt: str, lessons: Iterable[str] = (), output: Path | None = None,
           assignment_ids: dict[str, str] | None = None) -> Exported:
    """Write the gradebook's scores of ``lessons`` (default: all) in ``fmt``; return what was written."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    root = Path(root)
    try:
        roster = load_roster(root)
    except RosterError as error:
        raise ExportError(str(error)) from None
    if fmt != "csv" and not roster:
        raise ExportError(f"--to {fmt} needs the class roster for the identifiers {fmt} matches rows by: "
                          "course roster import FILE (the class list exported from the platform)")
    scores = read_scores(root, lessons)
    unknown = sorted(set(assignment_ids or {}) - set(scores.lessons))
    if unknown:
        raise ExportError(f"--assignment-id names lessons not exported: {', '.join(unknown)}")
    header, rows, left_out = _rows(roster, scores, fmt, assignment_ids or {})
    path = Path(output) if output is not None else root / EXPORT_DIR / f"{fmt}-grades.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        # Canvas's own marker row starts with spaces on purpose; every other cell is made spreadsheet-safe.
        writer.writerows([row[0] if row[0] == CANVAS_POINTS_ROW else safe_csv_cell(row[0]),
                          *(safe_csv_cell(cell) for cell in row[1:])] for row in rows)
    temporary.replace(path)
    students = len(rows) - (1 if fmt == "canvas" else 0)
    return Exported(path, students, left_out)
