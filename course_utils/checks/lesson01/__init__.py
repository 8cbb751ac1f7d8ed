"""Lesson 01 · Datasets, loaders and batches: the catalogue of typical mistakes, the visible checks, the probes.

- :mod:`.common`: the lesson's name, the sections to revisit, the seeds whose expected results are stored;
- :mod:`.ex1`: Exercise 1, ``CourseDataset`` (:func:`check_course_dataset`);
- :mod:`.ex2`: Exercise 2, ``make_loader`` (:func:`check_make_loader`);
- :mod:`.ex3`: Exercise 3, ``batch_sizes`` (:func:`check_batch_sizes`).

Each check runs the learner's code on seeded inputs the notebook never prints and compares what it
does with what PyTorch's own ``DataLoader`` does (stored as data, ``checks/expected/lesson01-*.json``,
computed on the grader's side). Each exercise module's ``probe`` is the kernel's half of the grader's re-check.
"""

from course_utils.checks.lesson01 import ex1, ex2, ex3
from course_utils.checks.lesson01.common import CHECK_SEEDS, LESSON
from course_utils.checks.lesson01.ex1 import bad_inputs, check_course_dataset
from course_utils.checks.lesson01.ex2 import check_make_loader, loader_case
from course_utils.checks.lesson01.ex3 import PRINTED_BATCH_CASES, batch_cases, check_batch_sizes, seeded_batch_cases
from course_utils.diagnoses import by_code

CATALOGUE = ex1.DIAGNOSES + ex2.DIAGNOSES + ex3.DIAGNOSES
DIAGNOSES = by_code(CATALOGUE)
FORBIDDEN_CALLS = ex1.FORBIDDEN_CALLS + ex2.FORBIDDEN_CALLS + ex3.FORBIDDEN_CALLS
PROBES = {"ex1-tests": ex1.probe, "ex2-tests": ex2.probe, "ex3-tests": ex3.probe}

__all__ = [
    "CATALOGUE", "CHECK_SEEDS", "DIAGNOSES", "FORBIDDEN_CALLS", "LESSON", "PRINTED_BATCH_CASES", "PROBES",
    "bad_inputs", "batch_cases", "check_batch_sizes", "check_course_dataset", "check_make_loader", "loader_case",
    "seeded_batch_cases",
]
