"""Report: the one writer of ``course grade``'s results: ``course-grades.csv``, the results JSON, and the summary.

``nbgrader export`` keeps writing its own ``grades.csv``; ``course grade`` writes
``course-grades.csv`` beside it, with a status, a reason and the repairs for every submission, so
neither overwrites the other. Every cell that came from a submission (ids, reasons) is made safe
for spreadsheets and terminals first.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from course_tools.grade.feedback import diagnosis_line
from course_tools.grade.results import (
    Status, SubmissionResult, class_mean, graded_lessons, load_results, save_results, scored,
)
from course_tools.grade.sanitize import safe_csv_cell, safe_terminal_text
from course_utils.diagnoses import catalogue

GRADES_FILE = "course-grades.csv"
GRADES_COLUMNS = ["student_id", "assignment", "score", "max_score", "status", "reason", "repairs", "diagnoses",
                  "submitted_at", "late_by", "penalty"]


def _number(value: float) -> str:
    return f"{value:g}"


def late_text(result: SubmissionResult) -> str:
    """How late, in hours past the due date and any extension; the LMS's word when only it knows ("" on time)."""
    if result.late_by > 0:
        return _number(round(result.late_by, 2))
    return "late (LMS)" if result.late_marker else ""


def _row(result: SubmissionResult) -> dict[str, str]:
    lost = [code for exercise in result.exercises for code in exercise.diagnoses[:1]]
    return {"student_id": safe_csv_cell(result.student), "assignment": result.lesson, "score": _number(result.score),
            "max_score": _number(result.max_score), "status": result.status.value,
            "reason": safe_csv_cell(result.reason), "repairs": safe_csv_cell("; ".join(result.repairs)),
            "diagnoses": " ".join(lost), "submitted_at": result.submitted_at, "late_by": late_text(result),
            "penalty": _number(result.penalty) if result.penalty else ""}


def write_grades(root: Path) -> Path:
    """Write ``course-grades.csv`` for every lesson graded so far (atomically: never half a file)."""
    path = Path(root) / GRADES_FILE
    temporary = path.with_suffix(".csv.tmp")
    with open(temporary, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=GRADES_COLUMNS)
        writer.writeheader()
        for lesson in graded_lessons(root):
            writer.writerows(_row(result) for result in load_results(root, lesson))
    temporary.replace(path)
    return path


def record(root: Path, lesson: str, results: list[SubmissionResult]) -> Path:
    """Keep the lesson's results for ``course report`` and rewrite ``course-grades.csv``."""
    save_results(root, lesson, results)
    return write_grades(root)


def _table(headers: list[str], rows: Iterable[list[str]]) -> str:
    rows = [headers] + [list(row) for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(headers))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths)] + lines[1:])


def _one_line(result: SubmissionResult) -> str:
    """The student's main finding, as one printable line (kernel text in it never reaches the terminal raw)."""
    return safe_terminal_text(_finding(result), 90)


def _finding(result: SubmissionResult) -> str:
    if result.status is not Status.OK:
        return result.reason
    known = catalogue()
    codes = [e.diagnoses[0] for e in result.exercises if e.diagnoses]
    if not codes:
        missed = [e for e in result.exercises if not e.full]
        if not missed:
            return "full marks"
        first = diagnosis_line(missed[0].message[:2000]) or "no diagnosis"
        return f"{missed[0].title}: {first}" + (f" (+{len(missed) - 1} more)" if len(missed) > 1 else "")
    main = known.get(codes[0])
    more = f" (+{len(codes) - 1} more)" if len(codes) > 1 else ""
    return f"{main.what if main else codes[0]}{more}"


def student_table(results: list[SubmissionResult]) -> str:
    """One line per student: score, status and the main diagnosis."""
    return _table(["student", "score", "status", "diagnosis"],
                  [[safe_terminal_text(r.student, 64), f"{_number(r.score)}/{_number(r.max_score)}", r.status.value,
                    _one_line(r)] for r in sorted(results, key=lambda r: r.student)])


def exercise_table(results: list[SubmissionResult]) -> str:
    """For each exercise: how many students lost points, and to which diagnoses."""
    graded = [r for r in results if r.exercises]
    titles: dict[str, str] = {}
    lost: Counter[str] = Counter()
    causes: dict[str, Counter[str]] = {}
    for result in graded:
        for exercise in result.exercises:
            titles.setdefault(exercise.grade_id, exercise.title)
            if not exercise.full:
                lost[exercise.grade_id] += 1
                causes.setdefault(exercise.grade_id, Counter())[exercise.diagnoses[0] if exercise.diagnoses else "other"] += 1
    rows = []
    for grade_id, title in titles.items():
        top = ", ".join(f"{safe_terminal_text(code, 40)} ×{count}" for code, count in causes.get(grade_id, Counter()).most_common(3))
        rows.append([title, f"{lost[grade_id]}/{len(graded)}", top or "-"])
    return _table(["exercise", "lost points", "main diagnoses"], rows)


def summary(results: list[SubmissionResult], lesson: str, root: Path) -> str:
    """What ``course grade`` prints at the end: both tables, the counts and where the files are."""
    full = sum(1 for r in results if r.max_score and r.score >= r.max_score)
    problems = Counter(r.status.value for r in results if r.status is not Status.OK)
    mean = class_mean(results)
    maximum = max((r.max_score for r in results), default=0.0)
    lines = [student_table(results), "", exercise_table(results), "",
             f"{lesson}: {len(results)} student(s), {full} with full marks, "
             f"{sum(1 for r in results if r.real_repairs)} repaired notebook(s), "
             f"{sum(1 for r in results if r.renamed_from)} renamed",
             f"class mean: {'-' if mean is None else _number(mean)}/{_number(maximum)} over "
             f"{len(scored(results))} scored submission(s) (every status but invalid)"]
    lines += [f"  {count} × {status}" for status, count in sorted(problems.items())]
    late = [r for r in results if r.late_by > 0 or r.late_marker]
    lines += [f"  late: {safe_csv_cell(r.student)} by {late_text(r)} h, -{_number(r.penalty)} point(s)" if r.late_by > 0
              else f"  late: {safe_csv_cell(r.student)} (the LMS says so; set the due date in the gradebook)"
              for r in late]
    lines += [f"  STALE OVERRIDE {safe_csv_cell(r.student)}: {note}" for r in results for note in r.stale_overrides]
    lines.append(f"grades: {Path(root) / GRADES_FILE}; feedback: {Path(root) / 'feedback'}/<student>/{lesson}/")
    return "\n".join(lines)
