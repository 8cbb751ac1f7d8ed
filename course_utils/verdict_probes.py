"""The student's side of the grader's re-check: run the learner's functions on inputs drawn at grading time.

``course grade`` does not take the kernel's word for a test cell. Right after each judged test
cell, it asks the kernel to evaluate :func:`probe_line` (an expression of a request of its own,
never a cell) on a seed drawn at grading time: the learner's functions run on fresh scenarios built
from it, and the answer is nothing but values (tensors, numbers, lists), serialised with
``torch.save``. The grader, in its own process, rebuilds the same scenarios from the same seed,
computes the answer with PyTorch, and judges (``course_tools.grade.verdict``). Whatever the
submission does to this process can only change the values sent back, and the values must be
right for inputs nobody saw before grading.

This module holds only what every lesson shares: the probes themselves are the ``probe`` functions
of each lesson's exercise modules, gathered in ``PROBES`` of ``course_utils.checks.lessonNN`` (found
by name), beside the scenario builders both sides use. Nothing here or there is an answer to an
exercise: the reference answers live only on the grader's side (``course_tools.grade.judges``),
which the grading sandbox cannot import. Importing this module has no side effects.
"""

from __future__ import annotations

import base64
import importlib
import io
from collections.abc import Callable
from typing import Any

import torch

from course_utils.diagnoses import checks_module, lesson_modules

MARKER = "COURSE-VERDICT"
Values = dict[str, Any]
Probe = Callable[[dict[str, Any], int], Values]


def encode(values: Values) -> str:
    """Values as one line of text (``torch.save``, base64) for the way back to the grader."""
    buffer = io.BytesIO()
    torch.save(values, buffer)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def probes_for(lesson: str) -> dict[str, Probe]:
    """The lesson's probes by grade id: the ``PROBES`` of its checks package (none for an unknown lesson)."""
    if checks_module(lesson) not in lesson_modules():
        return {}
    return dict(getattr(importlib.import_module(checks_module(lesson)), "PROBES", {}))


def probe_line(lesson: str, grade_id: str, namespace: dict[str, Any], seed: int) -> str:
    """Run one probe on the functions of ``namespace``; return the line the grader reads."""
    try:
        values = probes_for(lesson)[grade_id](namespace, seed)
    except Exception as error:  # noqa: BLE001 - a failing function is an answer the grader judges
        values = {"error": f"{type(error).__name__}: {error}"[:500]}
    return f"{MARKER} {grade_id} {encode(values)}"
