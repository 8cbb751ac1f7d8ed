"""Prepare: turn each collected submission into the notebook to run, and decide what may be reused.

The lesson is read once (:class:`LessonSpec`): its source (hidden tests included), its committed
release, and the digest of the grading code. A committed release that no longer matches the
source is a clear error; ``course grade`` never rewrites ``notebooks/`` or ``solutions/``.

Each submission is repaired (course_tools.repair) and given the source's test cells, hidden tests
included. nbgrader's autograde reads the repaired notebook from ``submitted/``, so it is written
there, beside the original kept under ``.original/``.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat import NotebookNode

import course_utils
from course_tools.grade.collect import ORIGINALS, Collected
from course_tools.grade.feedback import exercise_titles
from course_tools.nbgrader_hooks import is_test_cell, without_hidden_tests
from course_tools.notebooks import read_notebook
from course_tools.release import lesson_notebook
from course_tools.repair import InvalidSubmission, parse_submission, repair

MAX_SUBMISSION_BYTES = 16 * 2**20


@dataclass(frozen=True)
class LessonSpec:
    """What every submission of a lesson is graded against."""

    name: str
    source: NotebookNode
    release: NotebookNode
    fingerprint: str                 # the lesson source and the grading code, hashed together
    tests: dict[str, str]            # grade id -> the test cell's source, hidden tests included
    visible_tests: dict[str, str]    # grade id -> the test cell as the student's notebook shows it
    titles: dict[str, str]           # grade id -> the exercise heading it checks


@dataclass(frozen=True)
class Prepared:
    """One submission, ready to run (or not gradable, with the reason)."""

    student: str
    fingerprint: str                 # changes when the submission, the lesson or the grading code does
    notebook: NotebookNode | None = None
    repairs: tuple[str, ...] = ()
    problem: str = ""


def _digest(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()


def grading_code_digest(root: Path) -> str:
    """A hash of every file whose change could change a grade: both packages and the nbgrader config."""
    import course_tools

    files = []
    for package in (Path(course_utils.__file__).parent, Path(course_tools.__file__).parent):
        files += sorted(p for p in package.rglob("*.py") if "__pycache__" not in p.parts)
    config = Path(root) / "nbgrader_config.py"
    if config.is_file():
        files.append(config)
    return _digest(*(p.name.encode() + b"\0" + p.read_bytes() for p in files))


def load_lesson(root: Path, lesson: str) -> LessonSpec:
    """Read the lesson's source and committed release; refuse a stale release."""
    source_path = lesson_notebook(root, lesson)
    release_path = lesson_notebook(root, lesson, "notebooks")
    if not release_path.is_file():
        raise InvalidLesson(f"{release_path} is missing: run `make notebooks` and commit notebooks/")
    source, release = read_notebook(source_path), read_notebook(release_path)
    tests = {c.metadata.nbgrader.grade_id: c.source for c in source.cells if is_test_cell(c)}
    visible = {c.metadata.nbgrader.grade_id: c.source for c in release.cells if is_test_cell(c)}
    stale = sorted(set(tests) ^ set(visible)) or [g for g in tests if without_hidden_tests(tests[g]) != visible[g].strip()]
    if stale:
        raise InvalidLesson(f"notebooks/{lesson} is stale: its test cells {', '.join(stale)} differ from solutions/. "
                            "Run `make notebooks` and commit notebooks/ (course grade never rewrites them).")
    fingerprint = _digest(source_path.read_bytes(), release_path.read_bytes(), grading_code_digest(root).encode())
    return LessonSpec(lesson, source, release, fingerprint, tests, visible, exercise_titles(source))


class InvalidLesson(RuntimeError):
    """The lesson itself cannot be graded (missing or stale release); the message says what to do."""


def with_hidden_tests(notebook: NotebookNode, lesson: LessonSpec) -> NotebookNode:
    """The notebook to run: the source's test cells (hidden tests included) in place of the student's copies."""
    runnable = nbformat.from_dict(notebook)
    for cell in runnable.cells:
        if is_test_cell(cell):
            cell.source = lesson.tests[cell.metadata.nbgrader.grade_id]
    return runnable


def prepare(root: Path, lesson: LessonSpec, collected: Collected) -> Prepared:
    """Repair one collected submission and write the repaired notebook where nbgrader looks for it."""
    if collected.problem or collected.notebook is None:
        return Prepared(collected.student, "", problem=collected.problem or "no notebook in the submission")
    raw = collected.notebook.read_bytes()
    fingerprint = _digest(raw, lesson.fingerprint.encode())
    if len(raw) > MAX_SUBMISSION_BYTES:
        return Prepared(collected.student, fingerprint,
                        problem=f"the notebook is {len(raw) / 2**20:.1f} MiB; at most {MAX_SUBMISSION_BYTES // 2**20} MiB is graded")
    try:
        fixed = repair(parse_submission(raw.decode("utf-8", errors="replace")), lesson.release,
                       submitted_name=collected.notebook.name, release_name=f"{lesson.name}.ipynb",
                       source=lesson.source)
    except InvalidSubmission as error:
        return Prepared(collected.student, fingerprint, problem=str(error))
    folder = Path(root) / "submitted" / collected.student / lesson.name
    for stale in folder.glob("*.ipynb"):  # only the repaired notebook may be found by nbgrader
        stale.unlink()
    nbformat.write(fixed.notebook, folder / f"{lesson.name}.ipynb")
    timestamp = folder / ORIGINALS / "timestamp.txt"
    if timestamp.exists() and not (folder / "timestamp.txt").exists():
        shutil.copy(timestamp, folder / "timestamp.txt")
    return Prepared(collected.student, fingerprint, with_hidden_tests(fixed.notebook, lesson), tuple(fixed.notes))
