"""Execute: run each prepared notebook in its own sandboxed kernel, on local processes or a Dask cluster.

A job carries everything a worker needs (the notebook as JSON, the course root, the limits), so
the same function runs in a local process pool and on a cluster worker
(:mod:`course_tools.executors`). A worker that dies mid-job loses nothing: its submission comes
back as ``worker-lost`` with the reason, and the rest of the class goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from course_tools.grade.kernel import RunSettings, error_output, run_submission
from course_tools.grade.results import Status
from course_tools.sandbox import FIRST_SANDBOX_UID


@dataclass(frozen=True)
class Job:
    """One submission to run; plain data, so it travels to any worker."""

    student: str
    notebook_json: str
    course_root: str
    sandboxed: bool
    settings: RunSettings
    probes: tuple[tuple[str, str], ...] = ()  # (grade id, probe expression) for the grader's re-check


@dataclass(frozen=True)
class Executed:
    """One submission after its run: the executed notebook and what happened."""

    student: str
    notebook: NotebookNode
    status: Status
    reason: str = ""
    seconds: float = 0.0
    printed: dict[str, str] = field(default_factory=dict)  # grade id -> what its re-check probe evaluated to
    seeds: dict[str, int] = field(default_factory=dict)     # grade id -> the seed its probe was drawn with


def run_job(job: Job) -> tuple[str, str, str, float, dict[str, str]]:
    """Run one job in a sandbox (on whatever worker this is); return plain data for the way back."""
    from course_tools.executors import current_slot

    uid = FIRST_SANDBOX_UID + current_slot() if job.sandboxed else None
    result = run_submission(nbformat.reads(job.notebook_json, as_version=4), Path(job.course_root), uid=uid,
                            settings=job.settings, probes=dict(job.probes))
    return nbformat.writes(result.notebook), result.status, result.reason, result.seconds, result.printed


def _lost(job: Job, error: BaseException) -> Executed:
    notebook = nbformat.reads(job.notebook_json, as_version=4)
    reason = f"the worker running this submission was lost ({type(error).__name__}: {error})"
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = [error_output("NotRun", f"not run: {reason}")]
    return Executed(job.student, notebook, Status.WORKER_LOST, reason)


def execute(jobs: Iterable[Job], executor: object, seeds: dict[str, int],
            on_done: Callable[[Executed], None] = lambda e: None,
            on_start: Callable[[str], None] = lambda student: None) -> dict[str, Executed]:
    """Run every job on ``executor``; call ``on_start``/``on_done`` as each starts/finishes; return the results."""
    results: dict[str, Executed] = {}
    for job, outcome in executor.map_unordered(run_job, list(jobs),  # type: ignore[attr-defined]
                                               on_start=lambda job: on_start(job.student)):
        if isinstance(outcome, BaseException):
            executed = _lost(job, outcome)
        else:
            notebook_json, status, reason, seconds, printed = outcome
            executed = Executed(job.student, nbformat.reads(notebook_json, as_version=4), Status(status), reason,
                                seconds, printed, dict(seeds))
        results[job.student] = executed
        on_done(executed)
    return results
