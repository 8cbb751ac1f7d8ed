"""``course grade LESSON``: collect -> prepare -> execute -> score -> report, one way through.

Each stage hands typed values to the next in memory. One progress display covers every stage,
with an ETA. What may be reused from an earlier run is decided by a fingerprint of the
submission, the lesson and the grading code itself, so a fix to a grader regrades everyone.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import nbformat
from tqdm.auto import tqdm

from course_tools.grade.collect import CollectError, collect
from course_tools.grade.execute import Executed, Job, execute
from course_tools.grade.kernel import RunSettings
from course_tools.grade.prepare import (InvalidLesson, LessonSpec, Prepared, RepairWorker, hidden_tests_warning,
                                        load_lesson, prepare)
from course_tools.grade.report import record
from course_tools.grade.results import Status, SubmissionResult, load_results
from course_tools.grade.score import ScoringError, max_score_of, register_lesson, score_all
from course_tools.grade.verdict import draw_seeds, probe_source
from course_tools.release import LESSON_NAME, lesson_notebook
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

@contextmanager
def _progress(lesson: str, students: int) -> Iterator[tqdm]:
    with tqdm(total=students * len(STAGES), desc=f"{lesson}: prepare", unit="step", file=sys.stderr,
              bar_format="{desc} {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}]",
              disable=students == 0) as bar:
        yield bar


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


def grade(root: Path, lesson_name: str, options: Options = Options()) -> list[SubmissionResult]:
    """Grade every submission of ``lesson_name`` under ``root``; return one result per student."""
    root = Path(root).resolve()
    sandboxed = _check_options(root, lesson_name, options)
    try:
        lesson = load_lesson(root, lesson_name)
        collected = collect(root, lesson_name, options.archive)
        with tempfile.TemporaryDirectory(prefix="course-grade-release-") as scratch:
            register_lesson(root, lesson_name, Path(scratch))
    except (InvalidLesson, CollectError, ScoringError) as error:
        raise GradingError(str(error)) from None
    if lesson.hidden:
        print(hidden_tests_warning(lesson), file=sys.stderr)

    with _progress(lesson_name, len(collected)) as bar:
        prepared = []
        with RepairWorker(options.settings.limits) as repairer:
            for item in collected:
                prepared.append(prepare(root, lesson, item, repairer))
                bar.update()
        results = {p.student: _invalid(lesson, p) for p in prepared if p.problem}
        runnable = [p for p in prepared if not p.problem]
        earlier = {} if options.force else {r.student: r for r in load_results(root, lesson_name)}
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

        bar.set_description_str(f"{lesson_name}: execute")
        by_student = {p.student: p for p in to_run}
        seeds = draw_seeds(lesson_name)
        probes = tuple((grade_id, probe_source(lesson_name, grade_id, seed)) for grade_id, seed in seeds.items())
        jobs = [Job(p.student, nbformat.writes(p.notebook), str(root), sandboxed, options.settings, probes)
                for p in to_run]

        def finished(run: Executed) -> None:
            _cache_run(root, lesson_name, by_student[run.student], run)
            bar.update()

        runs.update(execute(jobs, _executor(options), seeds, on_done=finished) if jobs else {})

        bar.set_description_str(f"{lesson_name}: score")
        bar.update(len(collected) - len(runs))
        repairs = {p.student: p.repairs for p in runnable}
        fingerprints = {p.student: p.fingerprint for p in runnable}
        results.update(score_all(root, lesson, runs, repairs, fingerprints, on_done=lambda student: bar.update()))
    ordered = [results[student] for student in sorted(results)]
    record(root, lesson_name, ordered)
    return ordered
