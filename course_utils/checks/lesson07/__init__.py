"""Lesson 07 (the epoch loop): to be moved here from course_utils.loop_grader and course_utils.fit_grader."""

from course_utils.loop_grader import CATALOGUE, FORBIDDEN_CALLS, LESSON  # noqa: F401
from course_utils.diagnoses import by_code

DIAGNOSES = by_code(CATALOGUE)
