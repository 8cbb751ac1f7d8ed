"""Lesson 04 (loss): the catalogue of typical mistakes and the checks that recognise them.

``cross_entropy`` (exercise 1, three grade cells: values, numerical stability, weights and label
smoothing) is run with PyTorch's own cross-entropy switched off and compared with ``F.cross_entropy``'s
stored values and gradients; ``choose_loss`` (exercise 2) is recognised by what its loss module
computes. The first line of every failure message ends with its code. Importing this package has no
side effects.

- ``common``: the lesson's name, section headings, the checks' seeds and comparisons, shared by the exercises;
- ``ex1``: Exercise 1 · Cross-entropy by hand (``check_cross_entropy``, ``check_cross_entropy_stability``,
  ``check_cross_entropy_weights_smoothing``);
- ``ex2``: Exercise 2 · Choose the loss (``check_choose_loss``).
"""

from __future__ import annotations

from course_utils.checks.lesson04 import ex1, ex2
from course_utils.checks.lesson04.common import LESSON
from course_utils.checks.lesson04.ex1 import (
    check_cross_entropy,
    check_cross_entropy_stability,
    check_cross_entropy_weights_smoothing,
)
from course_utils.checks.lesson04.ex2 import check_choose_loss
from course_utils.diagnoses import by_code

CATALOGUE = ex1.DIAGNOSES + ex2.DIAGNOSES
DIAGNOSES = by_code(CATALOGUE)
FORBIDDEN_CALLS = ex1.FORBIDDEN_CALLS + ex2.FORBIDDEN_CALLS
PROBES = {ex1.VALUES_EXERCISE.grade_id: ex1.probe_values, ex1.STABILITY_EXERCISE.grade_id: ex1.probe_stability,
          ex1.WEIGHTS_EXERCISE.grade_id: ex1.probe_weights_smoothing, ex2.EXERCISE.grade_id: ex2.probe}

__all__ = ["CATALOGUE", "DIAGNOSES", "FORBIDDEN_CALLS", "LESSON", "PROBES", "check_choose_loss",
           "check_cross_entropy", "check_cross_entropy_stability", "check_cross_entropy_weights_smoothing"]
