"""Judges run in a worker process with memory and time limits: hostile values cost one cell, never the class.

A judge reads values a submission sent back and compares them with PyTorch's answer. Those values
are the student's: a 2 KB pickle can hold a list DAG whose ``str`` never ends, a tensor whose
comparison exhausts memory. So the judge never runs in the grader's own process. The worker is a
**fork** of the grader (cheap: torch and the judges are already imported; a fresh interpreter would
import torch again for every start) with an address-space limit above what it inherited, one
thread for PyTorch, and a wall-clock limit per judgement. A judgement past its limits fails that
cell for that student ("the re-check went past its limits"), and a fresh fork takes the next one.

Before any judge sees them, values whose expanded size (shared parts counted each time they are
reached, :func:`course_tools.grade.bounded.expanded_size`) is beyond :data:`MAX_EXPANDED_NODES`
fail at once: no probe of the course sends back more than a few thousand nodes.

The pool mechanics are the repair worker's (``course_tools.grade.prepare.RepairWorker``), with a
fork instead of a fresh interpreter.
"""

from __future__ import annotations

import multiprocessing
import resource
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from course_tools.grade.bounded import expanded_size, short_text

MAX_EXPANDED_NODES = 200_000
MAX_REASON_CHARS = 600
JUDGE_MEMORY_BYTES = 2 * 2**30   # on top of what the fork inherits from the grader
JUDGE_SECONDS = 120.0            # lesson 07's and 08's judges run short reference loops


def _address_space() -> int:
    """This process's current virtual size in bytes (0 when /proc cannot say)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _limit_fork(extra_bytes: int) -> None:
    """In the forked worker: PyTorch on one thread (fork-safe), and at most ``extra_bytes`` more memory."""
    try:
        import torch

        torch.set_num_threads(1)
    except Exception:  # noqa: BLE001 - a worker without torch judges nothing that needs it
        pass
    current = _address_space()
    if current:
        limit = current + extra_bytes
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _too_big(values: Any) -> str:
    size = expanded_size(values, MAX_EXPANDED_NODES)
    return (f"the values sent back expand to more than {MAX_EXPANDED_NODES} parts (lists sharing each other)"
            if size > MAX_EXPANDED_NODES else "")


def _judge_here(lesson: str, grade_id: str, seed: int, printed: str) -> tuple[bool, str]:
    """In the worker: screen the values, then run the grader's judge; plain data back."""
    from course_tools.grade.verdict import judge, read_values

    values = read_values(printed, grade_id)
    problem = _too_big(values) if values is not None else ""
    if problem:
        return False, problem
    verdict = judge(lesson, grade_id, seed, printed)
    return bool(verdict.passed), short_text(verdict.reason, MAX_REASON_CHARS)


class LimitedWorker:
    """One forked process that runs functions under memory and time limits; a run past them is an answer, not a crash."""

    def __init__(self, extra_bytes: int = JUDGE_MEMORY_BYTES, seconds: float = JUDGE_SECONDS) -> None:
        self.extra_bytes, self.seconds = extra_bytes, seconds
        self._pool: ProcessPoolExecutor | None = None

    def _worker(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("fork"),
                                             initializer=_limit_fork, initargs=(self.extra_bytes,))
        return self._pool

    def _discard(self) -> None:
        if self._pool is not None:
            for process in list(getattr(self._pool, "_processes", {}).values()):
                process.kill()
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def run(self, function: Callable[..., Any], *args: Any) -> tuple[bool, Any]:
        """``(True, result)``, or ``(False, why)`` when the run went past its limits or its worker died."""
        try:
            future = self._worker().submit(function, *args)
            return True, future.result(timeout=self.seconds)
        except FutureTimeout:
            self._discard()
            return False, f"it took more than {self.seconds:g} s"
        except (BrokenProcessPool, MemoryError):
            self._discard()
            return False, "it went past its memory limit"
        except Exception as error:  # noqa: BLE001 - an answer that cannot come back (unpicklable, odd) is a failure
            return False, f"it failed ({type(error).__name__})"

    def __enter__(self) -> LimitedWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self._discard()


class JudgeWorker(LimitedWorker):
    """The grader's judges, one judgement at a time, in a limited fork (see the module docstring)."""

    def judge(self, lesson: str, grade_id: str, seed: int, printed: str) -> Any:
        """The :class:`course_tools.grade.verdict.Verdict` of one probe's values, judged in the worker."""
        from course_tools.grade.verdict import Verdict

        finished, outcome = self.run(_judge_here, lesson, grade_id, seed, printed)
        if not finished:
            return Verdict(grade_id, False, f"the re-check of the values sent back stopped: {outcome}")
        passed, reason = outcome
        return Verdict(grade_id, passed, reason)

