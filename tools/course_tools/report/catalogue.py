"""The report's view of the diagnosis catalogue: every text comes from ``course_utils.diagnoses``.

A code that the catalogue no longer holds (it changed after grading) is shown by its code, never
a crash; a lesson's catalogue module that fails to import costs that lesson's texts, not the report.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from course_utils.diagnoses import Diagnosis, catalogue, lesson_modules

UNKNOWN_FAMILY = "unknown"        # codes the catalogue does not hold
UNEXPLAINED_FAMILY = "unexplained"  # points lost with no diagnosis named (a crash, an assert of the student's own)


@dataclass(frozen=True)
class Entry:
    """What the report says about one code; ``known`` is False when the catalogue lacks it."""

    code: str | None
    what: str
    hint: str
    family: str
    section: str
    known: bool


def load_catalogue() -> Mapping[str, Diagnosis]:
    """The course's catalogue; lesson modules that fail to import are left out with a warning."""
    try:
        return catalogue()
    except Exception as error:  # noqa: BLE001 - a broken lesson module must not cost the whole report
        print(f"course report: the diagnosis catalogue failed to load ({error}); loading lesson by lesson",
              file=sys.stderr)
    found: dict[str, Diagnosis] = {}
    for module_name in lesson_modules():
        try:
            module = importlib.import_module(module_name)
        except Exception as error:  # noqa: BLE001 - same reason, one lesson at a time
            print(f"course report: {module_name} left out ({error})", file=sys.stderr)
            continue
        for diagnosis in getattr(module, "CATALOGUE", ()):
            found.setdefault(diagnosis.code, diagnosis)
    return found


def entry(code: str | None, diagnoses: Mapping[str, Diagnosis]) -> Entry:
    """The catalogue's text for ``code``; ``None`` means points lost with no diagnosis named."""
    if code is None:
        return Entry(None, "no diagnosis named (see the student's feedback)", "", UNEXPLAINED_FAMILY, "", True)
    diagnosis = diagnoses.get(code)
    if diagnosis is None:
        return Entry(code, code, "", UNKNOWN_FAMILY, "", False)
    return Entry(code, diagnosis.what, diagnosis.hint, diagnosis.family, diagnosis.section, True)
