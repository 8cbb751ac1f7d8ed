"""Write ``reports/LESSON.html`` and ``reports/LESSON.json`` (the same numbers), and the course page.

When two or more lessons are graded, each lesson's page has an "Across lessons" section and
``reports/course.html`` and ``reports/course.json`` hold the cross-lesson view alone. Grading one
lesson changes that view, so every graded lesson's page is then written again: no page is stale.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from course_tools.grade.results import SubmissionResult, graded_lessons, load_results, results_path
from course_tools.report.across import CourseReport, summarize_course
from course_tools.report.catalogue import load_catalogue
from course_tools.report.html import across_section, render_course, render_lesson
from course_tools.report.summary import summarize
from course_utils.diagnoses import Diagnosis

REPORTS = "reports"
COURSE = "course"
FORMAT = 1  # the JSON layout's version, for scripts that read it


class ReportError(RuntimeError):
    """There is nothing to report (the lesson was never graded); the message says what to run."""


def _write(path: Path, text: str) -> Path:
    """Write atomically: a reader never sees half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)
    return path


def _json(data: Mapping[str, Any]) -> str:
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


def _read(root: Path, lesson: str) -> list[SubmissionResult]:
    try:
        return load_results(root, lesson)
    except (ValueError, KeyError, TypeError) as error:
        raise ReportError(f"{results_path(root, lesson)} cannot be read ({error}); grade {lesson} again") from error


def _lesson_files(root: Path, lesson: str, results: list[SubmissionResult], course: CourseReport | None,
                  across: str | None, diagnoses: Mapping[str, Diagnosis]) -> list[Path]:
    report = summarize(lesson, results, diagnoses)
    folder = Path(root) / REPORTS
    data = {"format": FORMAT, **report.to_json(), "across_lessons": course.to_json() if course else None}
    return [_write(folder / f"{lesson}.html", render_lesson(report, across)),
            _write(folder / f"{lesson}.json", _json(data))]


def _course_files(root: Path, course: CourseReport, across: str) -> list[Path]:
    folder = Path(root) / REPORTS
    return [_write(folder / f"{COURSE}.html", render_course(course, across)),
            _write(folder / f"{COURSE}.json", _json({"format": FORMAT, **course.to_json()}))]


def write_lessons(root: Path, lessons: list[str] | None = None,
                  diagnoses: Mapping[str, Diagnosis] | None = None) -> list[Path]:
    """Write the reports of ``lessons`` (default: every graded lesson); return the paths, those asked for first.

    With two or more lessons graded, the cross-lesson view spans them all: every graded lesson's
    page is written (each shows the view) and the course page too.
    """
    root = Path(root)
    results = {lesson: _read(root, lesson) for lesson in lessons or ()}
    for lesson in graded_lessons(root):
        if lesson not in results:
            try:
                results[lesson] = _read(root, lesson)
            except ReportError as error:  # another lesson's broken file costs the cross-lesson view that lesson
                print(f"course report: {error}; left out of the cross-lesson view", file=sys.stderr)
    results = {lesson: results[lesson] for lesson in sorted(results) if results[lesson]}  # drop empty runs
    for lesson in lessons or ():
        if lesson not in results:
            raise ReportError(f"{lesson} has no graded submissions: run `course grade {lesson}` first")
    lessons = list(results) if lessons is None else lessons
    if not lessons:
        raise ReportError("no lesson has been graded here: run `course grade LESSON` in the course root first")
    diagnoses = load_catalogue() if diagnoses is None else diagnoses
    if len(results) < 2:
        return [path for lesson in lessons for path in _lesson_files(root, lesson, results[lesson], None, None,
                                                                     diagnoses)]
    course = summarize_course(results, diagnoses)
    across = across_section(course)
    # The asked lessons first (write_report returns the first path), then every other page the view is on.
    order = list(lessons) + [lesson for lesson in results if lesson not in lessons]
    written = [path for lesson in order for path in _lesson_files(root, lesson, results[lesson], course, across,
                                                                  diagnoses)]
    return written + _course_files(root, course, across)


def write_report(root: Path, lesson: str, diagnoses: Mapping[str, Diagnosis] | None = None) -> Path:
    """Write ``reports/LESSON.html`` and ``.json`` (with 2+ lessons graded, also the course page and the others).

    Returns the lesson's HTML file, the path ``course grade`` prints at its end.
    """
    return write_lessons(root, [lesson], diagnoses)[0]
