"""Lesson 06 (optimizer step): the catalogue of typical mistakes and the checks that recognise them.

- :mod:`.common`: the lesson's name, the seeds of the stored results, the probes' values;
- :mod:`.ex1`: Exercise 1, ``ManualSGD`` (``check_manual_sgd``);
- :mod:`.ex2`: Exercise 2, ``train_step`` (``check_train_step``).

Each exercise module holds its diagnoses, its visible check and its probe (the kernel's half of the
grader's re-check, :mod:`course_utils.verdict_probes`).
"""

from course_utils.checks.lesson06 import ex1, ex2
from course_utils.checks.lesson06.common import CHECK_SEEDS, LESSON
from course_utils.checks.lesson06.ex1 import check_manual_sgd
from course_utils.checks.lesson06.ex2 import check_train_step
from course_utils.diagnoses import by_code

CATALOGUE = ex1.DIAGNOSES + ex2.DIAGNOSES
DIAGNOSES = by_code(CATALOGUE)
FORBIDDEN_CALLS = ex1.FORBIDDEN_CALLS + ex2.FORBIDDEN_CALLS
PROBES = {ex1.EXERCISE.grade_id: ex1.probe, ex2.EXERCISE.grade_id: ex2.probe}

__all__ = ["CATALOGUE", "CHECK_SEEDS", "DIAGNOSES", "FORBIDDEN_CALLS", "LESSON", "PROBES", "check_manual_sgd",
           "check_train_step"]
