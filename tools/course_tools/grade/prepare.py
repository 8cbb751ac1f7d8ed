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
import multiprocessing
import resource
import shutil
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
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
from course_tools.sandbox import Limits

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
    hidden: tuple[str, ...] = ()     # grade ids of the test cells that have hidden tests (they run in the kernel)


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
    hidden = tuple(g for g, text in tests.items() if without_hidden_tests(text) != text.strip())
    return LessonSpec(lesson, source, release, fingerprint, tests, visible, exercise_titles(source), hidden)


def hidden_tests_warning(lesson: LessonSpec) -> str:
    """What ``course grade`` tells the instructor about a lesson whose source has hidden tests ("" if none)."""
    if not lesson.hidden:
        return ""
    return (f"WARNING: {lesson.name} has hidden tests ({', '.join(lesson.hidden)}). They run inside the student's "
            "own kernel, where the student's code can read them, and they judge what that kernel reports: "
            "they are neither secret nor proof. Their lines are cut from the feedback; for a check that counts, "
            "add a judge on the grader's side (course_tools/grade/judges, docs/grading-threat-model.md).")


class InvalidLesson(RuntimeError):
    """The lesson itself cannot be graded (missing or stale release); the message says what to do."""


def with_hidden_tests(notebook: NotebookNode, lesson: LessonSpec) -> NotebookNode:
    """The notebook to run: the source's test cells (hidden tests included) in place of the student's copies."""
    runnable = nbformat.from_dict(notebook)
    for cell in runnable.cells:
        if is_test_cell(cell):
            cell.source = lesson.tests[cell.metadata.nbgrader.grade_id]
    return runnable


def _limit_this_process(memory_bytes: int, cpu_seconds: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))


def _repair_text(text: str, release_json: str, source_json: str, submitted_name: str,
                 release_name: str) -> tuple[str, list[str]]:
    """One repair, in the repair worker: plain text in and out."""
    fixed = repair(parse_submission(text), nbformat.reads(release_json, as_version=4), submitted_name=submitted_name,
                   release_name=release_name, source=nbformat.reads(source_json, as_version=4))
    return nbformat.writes(fixed.notebook), list(fixed.notes)


class RepairWorker:
    """Repairs submitted notebooks in a process of their own, under the kernel's memory and CPU limits.

    A submission is parsed and repaired before any sandbox exists, so a hostile file must not be
    able to hold the grader: each repair has ``seconds`` of wall time, and the worker that runs it
    is limited like a kernel. A repair past its limits makes that submission ``invalid``, and a
    fresh worker takes the next one.
    """

    def __init__(self, limits: Limits = Limits(), seconds: float = 60.0) -> None:
        self.limits, self.seconds = limits, seconds
        self._pool: ProcessPoolExecutor | None = None

    def _worker(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_limit_this_process,
                                             initargs=(self.limits.memory_bytes, self.limits.cpu_seconds))
        return self._pool

    def _discard(self) -> None:
        if self._pool is not None:
            for process in list(getattr(self._pool, "_processes", {}).values()):
                process.kill()
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def repair(self, text: str, lesson: LessonSpec, submitted_name: str) -> tuple[NotebookNode, list[str]]:
        """The repaired notebook and its notes; :class:`InvalidSubmission` when it cannot be repaired in bounds."""
        future = self._worker().submit(_repair_text, text, nbformat.writes(lesson.release),
                                       nbformat.writes(lesson.source), submitted_name, f"{lesson.name}.ipynb")
        try:
            notebook_json, notes = future.result(timeout=self.seconds)
        except FutureTimeout:
            self._discard()
            raise InvalidSubmission(f"repairing the notebook took more than {self.seconds:g} s") from None
        except BrokenProcessPool:
            self._discard()
            raise InvalidSubmission("repairing the notebook went past the memory or CPU limits") from None
        return nbformat.reads(notebook_json, as_version=4), notes

    def __enter__(self) -> RepairWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self._discard()


def prepare(root: Path, lesson: LessonSpec, collected: Collected, repairer: RepairWorker) -> Prepared:
    """Repair one collected submission and write the repaired notebook where nbgrader looks for it."""
    if collected.problem or collected.notebook is None:
        return Prepared(collected.student, "", problem=collected.problem or "no notebook in the submission")
    raw = collected.notebook.read_bytes()
    fingerprint = _digest(raw, lesson.fingerprint.encode())
    if len(raw) > MAX_SUBMISSION_BYTES:
        return Prepared(collected.student, fingerprint,
                        problem=f"the notebook is {len(raw) / 2**20:.1f} MiB; at most {MAX_SUBMISSION_BYTES // 2**20} MiB is graded")
    try:
        fixed, notes = repairer.repair(raw.decode("utf-8", errors="replace"), lesson, collected.notebook.name)
    except InvalidSubmission as error:
        return Prepared(collected.student, fingerprint, problem=str(error))
    folder = Path(root) / "submitted" / collected.student / lesson.name
    for stale in folder.glob("*.ipynb"):  # only the repaired notebook may be found by nbgrader
        stale.unlink()
    nbformat.write(fixed, folder / f"{lesson.name}.ipynb")
    timestamp = folder / ORIGINALS / "timestamp.txt"
    if timestamp.exists() and not (folder / "timestamp.txt").exists():
        shutil.copy(timestamp, folder / "timestamp.txt")
    return Prepared(collected.student, fingerprint, with_hidden_tests(fixed, lesson), tuple(notes))
