"""Helpers for the PyTorch training-loop course.

Import the module you need, for example ``from course_utils.data import make_course_data``.
Nothing heavy is imported here, so ``import course_utils`` is instant and has no side effects.
"""

__version__ = "0.1.0"
