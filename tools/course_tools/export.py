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
from collections.abc import Iterable
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


def _canvas_title(lesson: str, ids: dict[str, str]) -> str:
    return f"{lesson} ({ids[lesson]})" if lesson in ids else lesson


def _rows(roster: Roster, scores: Scores, fmt: str, ids: dict[str, str]) -> tuple[list[str], list[list[str]],
                                                                                list[tuple[str, str]]]:
    left_out: list[tuple[str, str]] = []
    on_roster = {s.student_id for s in roster.students}
    people: list[Student] = list(roster.students)
    for student in scores.students:
        if student not in on_roster:
            if fmt == "csv":
                people.append(Student(student))
            else:
                left_out.append((student, f"not on the roster ({ROSTER_FILE}), so {fmt} cannot match the row"))
    marks = [[_number(scores.scores.get((s.student_id, lesson))) for lesson in scores.lessons] for s in people]
    if fmt == "canvas":
        header = CANVAS_COLUMNS + [_canvas_title(lesson, ids) for lesson in scores.lessons]
        rows = [["    Points Possible", "", "", "", ""] + [_number(scores.max_scores[x]) for x in scores.lessons]]
        for student, mark in zip(people, marks):
            if not (student.lms_id or student.sis_user_id or student.login):
                left_out.append((student.student_id, "no Canvas ID, SIS User ID or SIS Login ID on the roster"))
                continue
            rows.append([student.name or student.student_id, student.lms_id, student.sis_user_id, student.login,
                         student.section] + mark)
        return header, rows, left_out
    if fmt == "moodle":
        header = MOODLE_COLUMNS + list(scores.lessons)
        rows = []
        for student, mark in zip(people, marks):
            if not (student.email or student.sis_user_id or student.login):
                left_out.append((student.student_id, "no e-mail, ID number or username on the roster for Moodle "
                                                     "to match"))
                continue
            first, last = split_name(student.name)
            rows.append([first, last, student.sis_user_id, student.email, student.login] + mark)
        return header, rows, left_out
    header = CSV_COLUMNS + [column for lesson in scores.lessons for column in (lesson, f"{lesson} max")]
    rows = [[getattr(s, c) for c in CSV_COLUMNS]
            + [v for lesson, value in zip(scores.lessons, mark) for v in (value, _number(scores.max_scores[lesson]))]
            for s, mark in zip(people, marks)]
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
        writer.writerows([row[0] if row[0] == "    Points Possible" else safe_csv_cell(row[0]),
                          *(safe_csv_cell(cell) for cell in row[1:])] for row in rows)
    temporary.replace(path)
    students = len(rows) - (1 if fmt == "canvas" else 0)
    return Exported(path, students, left_out)
