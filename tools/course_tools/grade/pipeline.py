"""``course grade LESSON``: collect -> prepare -> execute -> score -> report, one way through.

Each stage hands typed values to the next in memory. One progress display covers every stage,
with an ETA. What may be reused from an earlier run is decided by a fingerprint of the
submission, the lesson and the grading code itself, so a fix to a grader regrades everyone.
"""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import nbformat

from course_tools.grade import gradebook
from course_tools.grade.attempts import remember_repaired
from course_tools.grade.bounded import describe_error
from course_tools.grade.collect import Collected, CollectError, collect, find_students
from course_tools.grade.execute import Executed, Job, execute
from course_tools.grade.lateness import LatePolicy
from course_tools.grade.kernel import RunSettings
from course_tools.grade.progress import Progress
from course_tools.grade.prepare import (InvalidLesson, LessonSpec, Prepared, RepairWorker, hidden_tests_warning,
                                        load_lesson, prepare)
from course_tools.grade.report import record
from course_tools.grade.results import Status, SubmissionResult, load_results
from course_tools.grade.score import (
    ScoringError, course_config, max_score_of, register_lesson, score_all, write_feedback,
)
from course_tools.grade.verdict import draw_seeds, probe_source
from course_tools.release import LESSON_NAME, lesson_notebook, stale_release
from course_tools.sandbox import sandbox_problem

CACHE_DIR = ".course-grade"
STAGES = ("prepare", "execute", "score")  # collect is instant; report is one write


class GradingError(RuntimeError):
    """``course grade`` cannot start or go on; the message says why and what to do."""


@dataclass(frozen=True)
class Options:
    """How to grade: parallelism, where, and what may be reused."""

    jobs: int = 1
    cluster: str | None = None      # a Dask scheduler address; None: local processes
    force: bool = False
    archive: Path | None = None
    allow_unsandboxed: bool = False
    settings: RunSettings = RunSettings()
    students: tuple[str, ...] = ()  # grade only these (and --force only them); empty: everyone


# --- the cache of executions ------------------------------------------------------------------

def _cache_folder(root: Path, lesson: str, student: str) -> Path:
    return root / CACHE_DIR / lesson / "runs" / student


def _cached_run(root: Path, lesson: str, prepared: Prepared) -> Executed | None:
    folder = _cache_folder(root, lesson, prepared.student)
    try:
        meta = json.loads((folder / "run.json").read_text())
        if meta["fingerprint"] != prepared.fingerprint:
            return None
        notebook = nbformat.read(str(folder / "executed.ipynb"), as_version=4)
        return Executed(prepared.student, notebook, Status(meta["status"]), meta["reason"], meta["seconds"],
                        dict(meta["printed"]), {k: int(v) for k, v in meta["seeds"].items()})
    except (OSError, ValueError, KeyError):
        return None


def _cache_run(root: Path, lesson: str, prepared: Prepared, run: Executed) -> None:
    folder = _cache_folder(root, lesson, prepared.student)
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(run.notebook, str(folder / "executed.ipynb"))
    meta = {"fingerprint": prepared.fingerprint, "status": run.status.value, "reason": run.reason,
            "seconds": run.seconds, "printed": run.printed, "seeds": run.seeds}
    (folder / "run.json").write_text(json.dumps(meta))  # written last: an interrupted write is no cache entry


# --- the stages, under one progress display ----------------------------------------------------

def _executor(options: Options) -> object:
    from course_tools.executors import DaskExecutor, LocalExecutor

    return DaskExecutor(options.cluster) if options.cluster else LocalExecutor(options.jobs)


def _check_options(root: Path, lesson: str, options: Options) -> bool:
    """Refuse what cannot work; return whether the kernels are sandboxed."""
    if not LESSON_NAME.match(lesson) or not lesson_notebook(root, lesson).is_file():
        raise GradingError(f"no lesson {lesson!r} under {root / 'solutions'}")
    if options.jobs < 1:
        raise GradingError(f"--jobs must be at least 1, got {options.jobs}")
    problem = sandbox_problem()
    if problem and not options.allow_unsandboxed:
        raise GradingError(f"NO SANDBOX: {problem}. Student code would run with your rights and could read the "
                           "solutions and rewrite the gradebook. Fix that, or pass --no-sandbox to grade anyway.")
    unknown = sorted(set(options.students) - set(find_students(root, lesson))) if options.archive is None else []
    if unknown:
        raise GradingError(f"no submission of {lesson} by {', '.join(unknown)} under {root / 'submitted'}")
    if problem:
        print(f"WARNING: grading WITHOUT a sandbox ({problem}); student code runs with your rights.", file=sys.stderr)
    return problem is None


def _unchanged(root: Path, lesson: str, prepared: Prepared, earlier: SubmissionResult | None) -> bool:
    """An earlier complete run already scored exactly this submission and wrote its feedback."""
    return (earlier is not None and earlier.fingerprint == prepared.fingerprint and earlier.status is not Status.INVALID
            and (root / "feedback" / prepared.student / lesson / f"{lesson}.html").is_file())


def _invalid(lesson: LessonSpec, prepared: Prepared) -> SubmissionResult:
    return SubmissionResult(prepared.student, lesson.name, Status.INVALID, 0.0, max_score_of(lesson),
                            reason=prepared.problem)


def _prepare_one(root: Path, lesson: LessonSpec, item: object, repairer: RepairWorker) -> Prepared:
    """Prepare one submission; anything that goes wrong is that student's ``invalid`` row, never the class's end."""
    try:
        return prepare(root, lesson, item, repairer)
    except Exception as error:  # noqa: BLE001 - one student's notebook must never stop the class
        return Prepared(item.student, "", problem=f"preparing this notebook failed: {describe_error(error)}")


def _new_attempts(collected: list[Collected], earlier: dict[str, SubmissionResult]) -> list[Collected]:
    """Students whose graded attempt is not the one graded last time (or who were never graded)."""
    return [c for c in collected if c.attempt and (c.new_attempt or (c.student in earlier
                                                                     and earlier[c.student].attempt != c.attempt))]


def _announce(lesson: str, fresh: list[Collected], earlier: dict[str, SubmissionResult]) -> None:
    """Say who handed in a new attempt since the last run (first hand-ins are only counted)."""
    again = [c for c in fresh if c.student in earlier]
    if again:
        names = ", ".join(f"{c.student} ({c.submitted_at:%Y-%m-%d %H:%M} UTC)" if c.submitted_at else c.student
                          for c in again)
        print(f"{lesson}: new attempt from {names}", file=sys.stderr)
    if len(fresh) > len(again):
        print(f"{lesson}: {len(fresh) - len(again)} first hand-in(s)", file=sys.stderr)


def _finish(root: Path, lesson: str, results: dict[str, SubmissionResult], collected: dict[str, Collected],
            stale: dict[str, tuple[str, ...]], rescored: set[str]) -> list[SubmissionResult]:
    """Every result with its attempt and the gradebook's current scores; feedback rewritten where they moved."""
    config = None
    finished = []
    for student in sorted(results):
        result = results[student]
        item = collected.get(student)
        if item is not None:
            result = replace(result, attempt=item.attempt, late_marker=item.late_marker)
        synced = gradebook.with_record(result, gradebook.read(root, lesson, student))
        if student in stale:
            synced = replace(synced, stale_overrides=stale[student])
        elif synced.overridden:
            synced = replace(synced, stale_overrides=())  # reviewed again in formgrader
        if student not in rescored and synced.status is not Status.INVALID and synced.exercises != result.exercises:
            config = config or course_config(root)
            write_feedback(root, lesson, student, config)  # a grade changed in formgrader since the feedback
        finished.append(synced)
    return finished


def grade(root: Path, lesson_name: str, options: Options = Options()) -> list[SubmissionResult]:
    """Grade every submission of ``lesson_name`` under ``root``; return one result per student."""
    root = Path(root).resolve()
    sandboxed = _check_options(root, lesson_name, options)
    only = options.students or None
    try:
        lesson = load_lesson(root, lesson_name)
        collected = collect(root, lesson_name, options.archive, students=only)
        with tempfile.TemporaryDirectory(prefix="course-grade-release-") as scratch:
            register_lesson(root, lesson_name, Path(scratch))
            outdated = stale_release(root, lesson_name, Path(scratch) / lesson_name / f"{lesson_name}.ipynb")
    except (InvalidLesson, CollectError, ScoringError) as error:
        raise GradingError(str(error)) from None
    if outdated:
        raise GradingError(f"{outdated}. Run `make notebooks` and commit notebooks/ (course grade never rewrites them).")
    if lesson.hidden:
        print(hidden_tests_warning(lesson), file=sys.stderr)

    kept = {r.student: r for r in load_results(root, lesson_name)}
    fresh = _new_attempts(collected, kept)
    _announce(lesson_name, fresh, kept)
    with Progress(lesson_name, len(collected) * len(STAGES)) as bar:
        prepared = []
        with RepairWorker(options.settings.limits) as repairer:
            for item in collected:
                prepared.append(_prepare_one(root, lesson, item, repairer))
                remember_repaired(root / "submitted" / item.student / lesson_name,
                                  root / "submitted" / item.student / lesson_name / f"{lesson_name}.ipynb")
                bar.update()
        results = {p.student: _invalid(lesson, p) for p in prepared if p.problem}
        runnable = [p for p in prepared if not p.problem]
        earlier = {} if options.force else kept
        runs: dict[str, Executed] = {}
        to_run = []
        for item in runnable:
            if _unchanged(root, lesson_name, item, earlier.get(item.student)):
                results[item.student] = earlier[item.student]  # scored and given feedback from this very run
                continue
            cached = None if options.force else _cached_run(root, lesson_name, item)
            if cached is not None:
                runs[item.student] = cached
            else:
                to_run.append(item)
        bar.update(len(collected) - len(to_run))  # invalid and unchanged submissions need no run

        bar.stage("execute")
        by_student = {p.student: p for p in to_run}
        seeds = draw_seeds(lesson_name)
        probes = tuple((grade_id, probe_source(lesson_name, grade_id, seed)) for grade_id, seed in seeds.items())
        jobs = [Job(p.student, nbformat.writes(p.notebook), str(root), sandboxed, options.settings, probes)
                for p in to_run]

        def finished(run: Executed) -> None:
            try:
                _cache_run(root, lesson_name, by_student[run.student], run)
            except Exception:  # noqa: BLE001 - the cache is optional: a notebook it cannot hold just runs again
                pass
            bar.finished(run.student)
            bar.update()

        runs.update(execute(jobs, _executor(options), seeds, on_done=finished, on_start=bar.started) if jobs else {})

        bar.stage("score")
        bar.update(len(collected) - len(runs))
        repairs = {p.student: p.repairs for p in runnable}
        fingerprints = {p.student: p.fingerprint for p in runnable}
        by_item = {c.student: c for c in collected}
        stale = _prepare_gradebook(root, lesson_name, list(runs), by_item, kept)
        results.update(score_all(root, lesson, runs, repairs, fingerprints, on_done=lambda student: bar.update()))
    if only:  # the other students' results stand as they were
        results = {**{s: r for s, r in kept.items() if s not in only}, **results}
    ordered = _finish(root, lesson_name, results, by_item, stale, set(runs))
    record(root, lesson_name, ordered)
    return ordered


def _prepare_gradebook(root: Path, lesson: str, students: list[str], collected: dict[str, Collected],
                       kept: dict[str, SubmissionResult]) -> dict[str, tuple[str, ...]]:
    """Before scoring: each student's extension in the gradebook, and formgrader grades of an earlier attempt cleared.

    Returns the cleared grades by student (stale overrides, for the report).
    """
    policy = LatePolicy(config=course_config(root))
    stale = {}
    for student in students:
        gradebook.prepare_submission(root, lesson, student, policy.extension_hours(student, lesson))
        before = kept.get(student)
        item = collected.get(student)
        if before is not None and before.attempt and item is not None and item.attempt != before.attempt:
            stale[student] = gradebook.take_overrides(root, lesson, student, before.attempt)
    return {student: cleared for student, cleared in stale.items() if cleared}
