"""The grader's judges, one module per lesson (``lessonNN.py`` with ``JUDGES``): see course_tools.grade.verdict.

Lessons 01 and 07 are judged in :mod:`course_tools.grade.verdict` itself; each judge rebuilds its
scenario with the builders that the lesson's checks module shares with its probes.
"""
