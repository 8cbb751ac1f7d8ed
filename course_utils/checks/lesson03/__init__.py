"""Lesson 03 (forward pass): the catalogue of typical mistakes and the checks that recognise them.

Each check runs the learner's code on seeded models and inputs the notebook never prints, compares
the result with PyTorch's own answer (stored as data, ``checks/expected/lesson03-*.json``, computed on
the grader's side), and when they differ works out *which* typical mistake reproduces the learner's
result (ReLU missing, softmax inside ``forward``, argmax over the batch, frozen parameters counted, ...).
The first line of every failure message ends with its code. Importing this package has no side effects.

- ``common``: the lesson's name, section headings and seeded sizes, shared by the exercises;
- ``ex1``: Exercise 1 · An MLP of any size (``check_mlp``);
- ``ex2``: Exercise 2 · Predict classes (``check_predict``);
- ``ex3``: Exercise 3 · Count trainable parameters (``check_count_parameters``).
"""

from __future__ import annotations

from course_utils.checks.lesson03 import ex1, ex2, ex3
from course_utils.checks.lesson03.common import LESSON
from course_utils.checks.lesson03.ex1 import check_mlp
from course_utils.checks.lesson03.ex2 import check_predict
from course_utils.checks.lesson03.ex3 import check_count_parameters
from course_utils.diagnoses import by_code

CATALOGUE = ex1.DIAGNOSES + ex2.DIAGNOSES + ex3.DIAGNOSES
DIAGNOSES = by_code(CATALOGUE)
FORBIDDEN_CALLS = ex1.FORBIDDEN_CALLS + ex2.FORBIDDEN_CALLS + ex3.FORBIDDEN_CALLS
PROBES = {ex1.EXERCISE.grade_id: ex1.probe, ex2.EXERCISE.grade_id: ex2.probe, ex3.EXERCISE.grade_id: ex3.probe}

__all__ = ["CATALOGUE", "DIAGNOSES", "FORBIDDEN_CALLS", "LESSON", "PROBES", "check_count_parameters", "check_mlp",
           "check_predict"]
