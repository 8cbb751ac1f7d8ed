"""Lesson 05 (backward): the catalogue of typical mistakes and the checks that recognise them.

- :mod:`.common`: the lesson's name, the seeds of the stored results, watching autograd;
- :mod:`.ex1`: Exercise 1, ``numerical_gradient`` and ``relative_error`` (``check_gradient_checker``);
- :mod:`.ex2`: Exercise 2, ``cross_entropy_grad`` (``check_cross_entropy_grad``);
- :mod:`.ex3`: Exercise 3, ``accumulated_grad`` (``check_accumulated_grad``).

Each exercise module holds its diagnoses, its visible check and its probe (the kernel's half of the
grader's re-check, :mod:`course_utils.verdict_probes`).
"""

from course_utils.checks.lesson05 import ex1, ex2, ex3
from course_utils.checks.lesson05.common import CHECK_SEEDS, LESSON
from course_utils.checks.lesson05.ex1 import check_gradient_checker, check_numerical_gradient, check_relative_error
from course_utils.checks.lesson05.ex2 import check_cross_entropy_grad
from course_utils.checks.lesson05.ex3 import check_accumulated_grad
from course_utils.diagnoses import by_code

CATALOGUE = ex1.DIAGNOSES + ex2.DIAGNOSES + ex3.DIAGNOSES
DIAGNOSES = by_code(CATALOGUE)
FORBIDDEN_CALLS = ex1.FORBIDDEN_CALLS + ex2.FORBIDDEN_CALLS + ex3.FORBIDDEN_CALLS
PROBES = {ex1.EXERCISE.grade_id: ex1.probe, ex2.EXERCISE.grade_id: ex2.probe, ex3.EXERCISE.grade_id: ex3.probe}

__all__ = ["CATALOGUE", "CHECK_SEEDS", "DIAGNOSES", "FORBIDDEN_CALLS", "LESSON", "PROBES", "check_accumulated_grad",
           "check_cross_entropy_grad", "check_gradient_checker", "check_numerical_gradient", "check_relative_error"]
