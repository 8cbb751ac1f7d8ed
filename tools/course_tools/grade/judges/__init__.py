"""The grader's judges, one module per lesson (``lessonNN.py`` with ``JUDGES``): see course_tools.grade.verdict.

Each judge rebuilds its scenario with the builders that the kernel's probes share, and computes the
answer in the grader's process; reference answers live here and nowhere the student's kernel can import.
"""
