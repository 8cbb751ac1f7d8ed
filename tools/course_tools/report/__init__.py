"""``course report``: what a class got wrong, as one self-contained HTML page and a JSON file of the same numbers.

results (``course grade``) + diagnosis catalogue -> :mod:`.summary` (numbers) -> :mod:`.figures`
(PNG data URIs) -> :mod:`.html` (the page) -> :mod:`.write` (``reports/LESSON.html`` and ``.json``).
:mod:`.command` registers the ``report`` verb of the ``course`` command.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from course_utils.diagnoses import Diagnosis


def write_report(root: Path, lesson: str, diagnoses: Mapping[str, Diagnosis] | None = None) -> Path:
    """Write ``reports/LESSON.html`` (and ``.json``) for a graded lesson; return the HTML file's path.

    ``diagnoses`` defaults to the course's catalogue. The work is imported here, so that
    ``import course_tools.report`` costs nothing: matplotlib loads only when a report is written.
    """
    from course_tools.report.write import write_report as write

    return write(root, lesson, diagnoses)
