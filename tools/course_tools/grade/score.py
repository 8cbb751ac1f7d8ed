"""Score: nbgrader records the points of every executed submission, then writes each student's feedback.

nbgrader runs in this process, configured through its own traitlets config: the course's
``nbgrader_config.py``, with its Execute step replaced by :class:`CachedExecution`, which is handed
the executed notebooks in memory. This process is the only writer of the gradebook. Each student
is scored on their own, so one submission nbgrader cannot handle becomes that student's
``invalid`` row and never stops the class.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.converters import Autograde, GenerateAssignment, GenerateFeedback
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import Execute
from nbgrader.utils import is_solution
from nbformat import NotebookNode
from traitlets.config import Config, PyFileConfigLoader

from course_tools.grade.bounded import describe_error
from course_tools.grade.execute import Executed
from course_tools.grade.kernel import error_output
from course_tools.grade.judge_worker import JudgeWorker
from course_tools.grade.verdict import Verdict, judge
from course_tools.grade.feedback import diagnosis_codes, failure_message
from course_tools.grade.prepare import LessonSpec
from course_tools.grade.results import ExerciseResult, Status, SubmissionResult
from course_tools.grade.source_scan import ForbiddenFinding, scan_notebook
from course_tools.nbgrader_hooks import CachedExecution, is_test_cell
from course_utils.diagnoses import NOT_ATTEMPTED_CODE, catalogue, format_failure

class ScoringError(RuntimeError):
    """nbgrader could not be set up for the lesson at all; the message says why."""


def course_config(root: Path) -> Config:
    """The course's own nbgrader configuration (``nbgrader_config.py`` in the course root)."""
    loader = PyFileConfigLoader("nbgrader_config.py", path=str(root))
    config = loader.load_config()
    config.CourseDirectory.root = str(root)
    return config


def grading_config(root: Path, executed: dict[str, Executed], lesson: str) -> Config:
    """The course's config, with nbgrader's Execute replaced by the in-memory sandbox outputs."""
    config = course_config(root)
    steps = list(config.Autograde.get("autograde_preprocessors", Autograde.autograde_preprocessors.default_value))
    config.Autograde.autograde_preprocessors = [CachedExecution if step is Execute else step for step in steps]
    config.CachedExecution.executed = {f"{student}/{lesson}": run.notebook for student, run in executed.items()}
    return config


@contextlib.contextmanager
def _quiet_nbgrader() -> object:
    """nbgrader in this process: quiet (it logs every file it copies; the grader shows its own progress),
    and able to start ``alembic``, which it runs as a subprocess from this interpreter's ``bin/``."""
    tools = str(Path(sys.executable).parent)
    if tools not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join([tools, os.environ.get("PATH", "")])
    log = io.StringIO()
    handler = logging.StreamHandler(log)
    loggers = [logging.getLogger(name) for name in ("traitlets", "nbgrader", "")]
    saved = [(lg, lg.handlers[:], lg.level, lg.propagate) for lg in loggers]
    for lg in loggers:
        lg.handlers, lg.propagate = [handler], False
        lg.setLevel(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(log):
            yield log
    finally:
        for lg, handlers, level, propagate in saved:
            lg.handlers, lg.propagate = handlers, propagate
            lg.setLevel(level)


def _converter(kind: type, config: Config, **course: str) -> object:
    settings = Config(config)
    for key, value in course.items():
        setattr(settings.CourseDirectory, key, value)
    coursedir = CourseDirectory(config=settings)
    return kind(coursedir=coursedir, config=settings)


def register_lesson(root: Path, lesson: str, scratch: Path) -> None:
    """Record the lesson's notebooks and grade cells in the gradebook, from the source.

    nbgrader does this when it generates an assignment; here it generates into ``scratch``, so the
    committed ``notebooks/`` are never rewritten by grading.
    """
    config = course_config(root)
    config.GenerateAssignment.force = True
    with _quiet_nbgrader() as log:
        converter = _converter(GenerateAssignment, config, assignment_id=lesson, release_directory=str(scratch))
        try:
            converter.start()
        except Exception as error:  # noqa: BLE001 - nbgrader's own errors name the problem
            raise ScoringError(f"nbgrader could not register {lesson}: {error}\n{log.getvalue()[-2000:]}") from error


def _points(root: Path, lesson: str, student: str) -> dict[str, tuple[float, float]]:
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        try:
            notebook = gradebook.find_submission_notebook(lesson, lesson, student)
        except MissingEntry:
            return {}
        return {grade.name: (float(grade.score or 0), float(grade.max_score or 0)) for grade in notebook.grades}


def untouched_exercises(notebook: NotebookNode, release: NotebookNode) -> set[str]:
    """Grade ids of the test cells whose answer cells (those since the previous test cell) all still hold the stub."""
    stubs = {c.get("id"): c.source.strip() for c in release.cells if is_solution(c)}
    untouched, answers = set(), []
    for cell in notebook.cells:
        if is_solution(cell) and cell.cell_type == "code":
            answers.append(cell)
        elif is_test_cell(cell):
            if answers and all(stubs.get(a.get("id")) == a.source.strip() for a in answers):
                untouched.add(cell.metadata.nbgrader.grade_id)
            answers = []
    return untouched


def _not_attempted_message() -> str:
    what = catalogue()[NOT_ATTEMPTED_CODE]
    return f"✗ {what.what} [{what.code}]\n    hint:     {what.hint}"


def _exercises(run: Executed, lesson: LessonSpec, points: dict[str, tuple[float, float]]) -> tuple[ExerciseResult, ...]:
    cells = {c.metadata.nbgrader.grade_id: c for c in run.notebook.cells if is_test_cell(c)}
    untouched = untouched_exercises(run.notebook, lesson.release)
    results = []
    for grade_id, title in lesson.titles.items():
        score, maximum = points.get(grade_id, (0.0, 0.0))
        cell = cells.get(grade_id)
        message = failure_message(cell) if cell is not None else "the test cell did not run"
        if grade_id in untouched:  # what the check says of a stub is no mistake of the student's
            message = _not_attempted_message()
        lost = score < maximum
        results.append(ExerciseResult(grade_id, title, score, maximum, diagnosis_codes(message) if lost else (),
                                      message if lost else ""))
    return tuple(results)


def apply_verdicts(lesson: LessonSpec, run: Executed, judge: Callable[[str, str, int, str], Verdict] = judge) -> Executed:
    """Let the grader's re-check overrule the kernel: a refuted cell fails, and a refuted pass means tampering.

    The executed notebook is changed in place, so nbgrader scores the refuted cells 0 and the
    feedback shows why. ``course grade`` passes :meth:`JudgeWorker.judge`, so judges run bounded.
    """
    tampered = []
    for cell in run.notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id") if is_test_cell(cell) else None
        if grade_id not in run.seeds:
            continue
        verdict = judge(lesson.name, grade_id, run.seeds[grade_id], run.printed.get(grade_id, ""))
        if verdict.passed:
            continue
        if not failure_message(cell):
            tampered.append(f"{lesson.titles.get(grade_id, grade_id)} passed in the notebook's own kernel, "
                            f"but the grader's re-check failed: {verdict.reason}")
        cell.outputs.append(error_output("CheckFailed", f"\n✗ the grader's re-check of this exercise failed\n"
                                                        f"    expected: the values a correct answer gives on inputs drawn at grading time\n"
                                                        f"    found:    {verdict.reason}\n"
                                                        f"    hint:     make the checks above pass without changing how they run."))
    if tampered and run.status is Status.OK:
        return replace(run, status=Status.TAMPERED, reason="; ".join(tampered))
    return run


def _forbidden_message(found: ForbiddenFinding) -> str:
    """The failure a forbidden call earns: the catalogue's diagnosis, expected, found (cell and line), the fix."""
    rule = found.rule
    expected = f"your own code inside {rule.inside}, without {' or '.join(rule.calls)}"
    diagnosis = catalogue().get(rule.code)
    if diagnosis is None:
        return f"\n✗ {rule.inside} calls {found.call}, which this exercise asks you to write yourself\n" \
               f"    expected: {expected}\n    found:    {found.where}\n    hint:     write it without {found.call}"
    return format_failure(diagnosis, expected=expected, found=str(found.where), subject=rule.inside)


def apply_source_scan(lesson: LessonSpec, run: Executed) -> Executed:
    """The grader's reading of the submitted source (:mod:`course_tools.grade.source_scan`) applied to one run.

    A forbidden library call gives its exercise 0, with the diagnosis first in the test cell's
    output; a construct that reaches into the grading machinery marks the submission ``tampered``,
    naming the cell and line (the points of the checks stand: the re-check judged them).
    """
    found = scan_notebook(run.notebook, lesson.release, lesson.name)
    cells = {c.metadata.nbgrader.grade_id: c for c in run.notebook.cells if is_test_cell(c)}
    for grade_id, hit in found.forbidden.items():
        if grade_id in cells:
            cells[grade_id].outputs.insert(0, error_output("CheckFailed", _forbidden_message(hit)))
    if not found.tampering:
        return run
    shown = "; ".join(str(f) for f in found.tampering[:5])
    more = f" (+{len(found.tampering) - 5} more)" if len(found.tampering) > 5 else ""
    reason = f"the notebook's own code reaches into the grading: {shown}{more}"
    if run.status is Status.OK:
        return replace(run, status=Status.TAMPERED, reason=reason)
    return replace(run, reason=f"{run.reason}; {reason}" if run.reason else reason)


def score(root: Path, lesson: LessonSpec, run: Executed, *, repairs: tuple[str, ...], config: Config,
          max_score: float) -> SubmissionResult:
    """Autograde one executed submission in-process; return the student's result (invalid if nbgrader fails)."""
    with _quiet_nbgrader() as log:
        converter = _converter(Autograde, config, assignment_id=lesson.name, student_id=run.student)
        converter.force = True
        try:
            converter.start()
        except Exception as error:  # noqa: BLE001 - one student's notebook must never stop the class
            detail = log.getvalue().strip().splitlines()[-1:] or [str(error)]
            return SubmissionResult(run.student, lesson.name, Status.INVALID, 0.0, max_score,
                                    reason=f"nbgrader could not score the notebook: {detail[0][:300]}",
                                    repairs=repairs, seconds=run.seconds)
    points = _points(root, lesson.name, run.student)
    exercises = _exercises(run, lesson, points)
    total = sum(e.points for e in exercises)
    return SubmissionResult(run.student, lesson.name, run.status, total, max_score, exercises, run.reason, repairs,
                            run.seconds)


def write_feedback(root: Path, lesson: str, student: str, config: Config) -> Path | None:
    """Render one student's feedback HTML from the autograded notebook; None if nbgrader could not."""
    with _quiet_nbgrader():
        converter = _converter(GenerateFeedback, config, assignment_id=lesson, student_id=student)
        converter.force = True
        try:
            converter.start()
        except Exception:  # noqa: BLE001 - reported by the caller as a missing feedback file
            return None
    path = root / "feedback" / student / lesson / f"{lesson}.html"
    return path if path.is_file() else None


def max_score_of(lesson: LessonSpec) -> float:
    """The lesson's full marks: the points of its test cells."""
    return float(sum(float(c.metadata.nbgrader.get("points", 0) or 0) for c in lesson.source.cells if is_test_cell(c)))


def score_all(root: Path, lesson: LessonSpec, runs: dict[str, Executed], repairs: dict[str, tuple[str, ...]],
              fingerprints: dict[str, str] | None = None,
              on_done: Callable[[str], None] = lambda s: None) -> dict[str, SubmissionResult]:
    """Score every executed submission and write its feedback; one student at a time, none stopping the rest."""
    maximum = max_score_of(lesson)
    failed: dict[str, SubmissionResult] = {}
    with JudgeWorker() as judges:  # hostile values cost one cell of one student, never the grader
        judged = {}
        for student, run in runs.items():
            try:
                judged[student] = apply_source_scan(lesson, apply_verdicts(lesson, run, judges.judge))
            except Exception as error:  # noqa: BLE001 - one student's notebook must never stop the class
                failed[student] = _failed(run, lesson, maximum, "judging", error)
    runs = judged
    config = grading_config(root, runs, lesson.name)
    results = {}
    for student in sorted(runs):
        try:
            result = score(root, lesson, runs[student], repairs=repairs.get(student, ()), config=config,
                           max_score=maximum)
            if result.status is not Status.INVALID and write_feedback(root, lesson.name, student, config) is None:
                result = replace(result, reason=(result.reason + "; " if result.reason else "") + "no feedback could be written")
        except Exception as error:  # noqa: BLE001 - one student's notebook must never stop the class
            result = _failed(runs[student], lesson, maximum, "scoring", error)
        results[student] = replace(result, fingerprint=(fingerprints or {}).get(student, ""))
        on_done(student)
    for student, result in failed.items():
        results[student] = replace(result, fingerprint=(fingerprints or {}).get(student, ""))
        on_done(student)
    return results


def _failed(run: Executed, lesson: LessonSpec, maximum: float, step: str, error: BaseException) -> SubmissionResult:
    """That student's ``invalid`` row when a grading step failed on their notebook (the reason bounded and printable)."""
    return SubmissionResult(run.student, lesson.name, Status.INVALID, 0.0, maximum,
                            reason=f"{step} this notebook failed: {describe_error(error)}",
                            seconds=run.seconds)
