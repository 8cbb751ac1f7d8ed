"""Self-checks for exercise cells.

:mod:`course_utils.checks.core` holds the building blocks every check cell uses (``check_equal``,
``check_close``, ...); each ``lessonNN`` module (or package) holds that lesson's catalogue of typical
mistakes (:class:`course_utils.diagnoses.Diagnosis`) and the checks that recognise them by behaviour.
"""

from course_utils.checks.core import (
    CheckFailed,
    check,
    check_choice,
    check_close,
    check_equal,
    check_raises,
    check_shape,
    check_type,
    describe,
    fail,
    report_passed,
    strictly_equal,
)

__all__ = [
    "CheckFailed", "check", "check_choice", "check_close", "check_equal", "check_raises", "check_shape",
    "check_type", "describe", "fail", "report_passed", "strictly_equal",
]
