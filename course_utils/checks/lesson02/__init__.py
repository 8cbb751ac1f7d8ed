"""Lesson 02 · Normalization: the catalogue of typical mistakes, the visible checks, the probes.

- :mod:`.common`: the lesson's name and sections, the seeded tables, how values are compared;
- :mod:`.ex1`: Exercise 1, ``Scaler`` (:func:`check_scaler`, :func:`check_scaler_running_example`);
- :mod:`.ex2`: Exercise 2, ``normalize_splits`` (:func:`check_normalize_splits`,
  :func:`check_splits_running_example`), judged with the course's stand-in Scaler.

Each exercise module's ``probe`` is the kernel's half of the grader's re-check.
"""

from course_utils.checks.lesson02 import ex1, ex2
from course_utils.checks.lesson02.common import LESSON, METHODS
from course_utils.checks.lesson02.ex1 import SCALER_CHECKS, check_scaler, check_scaler_running_example, fingerprint
from course_utils.checks.lesson02.ex2 import StandIn, check_normalize_splits, check_splits_running_example
from course_utils.diagnoses import by_code

CATALOGUE = ex1.DIAGNOSES + ex2.DIAGNOSES
DIAGNOSES = by_code(CATALOGUE)
FORBIDDEN_CALLS = ex1.FORBIDDEN_CALLS + ex2.FORBIDDEN_CALLS
PROBES = {"ex1-tests": ex1.probe, "ex2-tests": ex2.probe}

__all__ = [
    "CATALOGUE", "DIAGNOSES", "FORBIDDEN_CALLS", "LESSON", "METHODS", "PROBES", "SCALER_CHECKS", "StandIn",
    "check_normalize_splits", "check_scaler", "check_scaler_running_example", "check_splits_running_example",
    "fingerprint",
]
