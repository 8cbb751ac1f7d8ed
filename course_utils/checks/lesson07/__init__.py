"""Lesson 07 (the epoch loop): the catalogue of typical mistakes, the visible checks and the re-check's probes.

Modules:

- :mod:`~course_utils.checks.lesson07.common`: the lesson's name, the scenarios, findings and failures;
- :mod:`~course_utils.checks.lesson07.instruments`: the recording model, loss, optimiser and loader;
- :mod:`~course_utils.checks.lesson07.ex1`: Exercise 1, ``train_one_epoch``;
- :mod:`~course_utils.checks.lesson07.ex2`: Exercise 2, ``evaluate``;
- :mod:`~course_utils.checks.lesson07.ex3`: Exercise 3, ``fit``, and the convergence verdict of the lesson's run.
"""

from course_utils.checks.lesson07 import ex1, ex2, ex3
from course_utils.checks.lesson07.common import LESSON
from course_utils.checks.lesson07.ex1 import check_train_one_epoch
from course_utils.checks.lesson07.ex2 import check_evaluate
from course_utils.checks.lesson07.ex3 import check_convergence, check_fit, converged, run_course_fit
from course_utils.diagnoses import by_code

CATALOGUE = ex1.DIAGNOSES + ex2.DIAGNOSES + ex3.DIAGNOSES
DIAGNOSES = by_code(CATALOGUE)
FORBIDDEN_CALLS = ex1.FORBIDDEN_CALLS + ex2.FORBIDDEN_CALLS + ex3.FORBIDDEN_CALLS
PROBES = {"ex1-tests": ex1.probe, "ex2-tests": ex2.probe, "ex3-tests": ex3.probe}

__all__ = [
    "CATALOGUE", "DIAGNOSES", "FORBIDDEN_CALLS", "LESSON", "PROBES", "check_convergence", "check_evaluate",
    "check_fit", "check_train_one_epoch", "converged", "run_course_fit",
]
