"""The instructor's side of the course: the ``course`` command and everything behind it.

Authoring (``release``, ``notebooks``, ``student_cells``, ``links``), repairing submissions
(``repair``), and grading (``grading`` and its sandbox). Nothing here is imported by a lesson
notebook or by a grading kernel: that is :mod:`course_utils`, the student package.
"""
