"""The grader's own re-check: verdicts computed where no submission's code ever runs.

The kernel that ran a submission is the submission's: its outputs, IPython machinery, modules and
builtins can all be replaced, so a test cell's output there is a claim, not a verdict. For every
graded cell with a judge (``course_tools.grade.judges.lessonNN``), the grader draws a seed at
grading time, the kernel runs the learner's functions on scenarios built from it
(:mod:`course_utils.verdict_probes`) and answers with values only; here, in the grader's process,
the same scenarios are rebuilt, PyTorch computes the answer, and the values are judged.

The probe is an expression (:func:`probe_source`) that the kernel evaluates through the
``user_expressions`` of a request of its own, never a cell (course_tools.grade.kernel): the seed is
in no cell source, and the grader reads the value of that expression in the reply to its own
request, never what the kernel printed. Values are read with ``torch.load(weights_only=True)`` (no
code runs while reading) from at most :data:`MAX_VALUES_BYTES`. No reference answer is importable
in the kernel: they live in ``course_tools`` (the grader's package), which the sandbox hides.

A cell earns its points only when the kernel's check passed AND the re-check passed. When the
kernel claims a pass that the re-check refutes, the submission is marked ``tampered``.
See docs/grading-threat-model.md for what this does and does not cover.
"""

from __future__ import annotations

import base64
import importlib
import io
import re
import secrets
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from course_tools.grade.bounded import short_text
from course_utils.verdict_probes import MARKER, probes_for

MAX_VALUES_BYTES = 8 * 2**20
Judge = Callable[[dict[str, Any], int], str]  # values, seed -> "" when right, else what is wrong


@dataclass(frozen=True)
class Verdict:
    """The re-check of one graded cell: passed, or why not."""

    grade_id: str
    passed: bool
    reason: str = ""


def judges_for(lesson: str) -> dict[str, Judge]:
    """The lesson's judges by grade id: ``JUDGES`` of ``course_tools.grade.judges.lessonNN``."""
    found: dict[str, Judge] = {}
    try:
        module = importlib.import_module(f"course_tools.grade.judges.lesson{lesson[:2]}")
    except ModuleNotFoundError as error:
        if not (error.name or "").startswith("course_tools.grade.judges"):
            raise
    else:
        found.update(getattr(module, "JUDGES", {}))
    return found


def draw_seeds(lesson: str) -> dict[str, int]:
    """A fresh secret seed per judged cell of ``lesson`` (a cell needs both a probe and a judge)."""
    judged = set(judges_for(lesson)) & set(probes_for(lesson))
    return {grade_id: 10_000 + secrets.randbelow(10**9) for grade_id in sorted(judged)}


def probe_source(lesson: str, grade_id: str, seed: int) -> str:
    """The expression the kernel evaluates for one probe (a ``user_expressions`` entry, never a cell).

    It evaluates to the probe's one line (:func:`course_utils.verdict_probes.probe_line`) for the
    functions of the notebook's own namespace.
    """
    return (f"__import__('course_utils.verdict_probes').verdict_probes.probe_line("
            f"{lesson!r}, {grade_id!r}, globals(), {int(seed)})")


def read_values(text: str, grade_id: str) -> dict[str, Any] | None:
    """The values of one probe's answer, read without running any code; None unless well formed.

    ``text`` is exactly what the probe expression evaluated to: one line, its marker, this grade
    id and the values. Anything else (another cell's line, more lines, a longer text) is refused.
    """
    if not isinstance(text, str) or len(text) > MAX_VALUES_BYTES * 4 // 3 + 64:
        return None
    found = re.fullmatch(rf"{re.escape(MARKER)} {re.escape(grade_id)} ([A-Za-z0-9+/=]+)\n?", text)
    if found is None:
        return None
    try:
        raw = base64.b64decode(found.group(1), validate=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values = torch.load(io.BytesIO(raw), weights_only=True)
    except Exception:  # noqa: BLE001 - hostile bytes fail in many ways; every one of them is "unreadable"
        return None
    return values if isinstance(values, dict) else None


def judge(lesson: str, grade_id: str, seed: int, answer: str) -> Verdict:
    """Judge one probe's answer (the text its expression evaluated to); anything unreadable or wrong fails."""
    values = read_values(answer, grade_id)
    if values is None:
        return Verdict(grade_id, False, "the re-check received no readable values from the notebook")
    if "error" in values:
        error = short_text(values["error"])
        if error.startswith("DistributedStartError"):  # the machine's problem, never the student's mistake
            return Verdict(grade_id, False, f"the grading machine could not start the re-check's processes "
                                            f"({error}): grade this student again with --student and --force")
        return Verdict(grade_id, False, f"the re-check's call raised {error}")
    try:
        problem = judges_for(lesson)[grade_id](values, seed)
    except Exception as error:  # noqa: BLE001 - values of the wrong shape are a wrong answer
        problem = f"the values sent back have the wrong form ({type(error).__name__})"
    return Verdict(grade_id, not problem, problem)
