"""``course grade``, one way through: collect -> prepare -> execute -> score -> report.

Each stage is one module and takes and returns typed values (:mod:`course_tools.grade.results`).
"""
