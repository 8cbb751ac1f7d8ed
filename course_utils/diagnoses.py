"""The course's catalogue of typical mistakes: one :class:`Diagnosis` per mistake, defined once.

A diagnosis is data: a code, what went wrong, how to fix it, a family (``device``, ``gradients``,
...), and where it belongs (lesson, exercise grade cell, section to revisit). The checks raise it
with :func:`raise_diagnosis`; the feedback table, the end-of-grading summary and the class report
read the code back from the message with :func:`codes_in` and look up the same text here, so no
explanation is ever written twice.

Every failure message has the same shape, and its first line ends with the code in brackets::

    ✗ train_one_epoch: gradients accumulated across batches [accumulated-gradients]
        expected: ...
        found:    ...
        hint:     ...

Codes are unique across the course (a test checks it). Importing this module has no side effects:
the lesson catalogues are imported when :func:`catalogue` is first called.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, NoReturn

from course_utils.checks.core import CheckFailed, describe

# Families group diagnoses across lessons, so the class report can follow e.g. "device" mistakes
# from lesson 07 to lesson 08.
FAMILIES = (
    "data",          # batching, datasets, loaders, splits
    "leakage",       # statistics or information from data the model must not see
    "shapes",        # shapes, dims, broadcasting
    "dtypes",        # dtypes and number types
    "numerics",      # precision, stability, tolerances
    "modes",         # train/eval mode, gradient tracking
    "device",        # where tensors and models live
    "loss",          # what the loss receives and computes
    "gradients",     # backward, zeroing, accumulation, clipping
    "optimizer",     # the update rule and its state
    "schedule",      # learning-rate schedules
    "metrics",       # what is measured and reported
    "distributed",   # ranks, samplers, reductions, checkpoints
    "not-allowed",   # hard-coded results or the very library function the exercise asks to write
    "interface",     # wrong return types, arguments ignored, crashes
    "earlier-exercise",  # this check fails because an earlier exercise still does
    "not-attempted",     # the answer cell still holds the starting code: no mistake to teach about
)

# Every lesson's visible checks and catalogue live in one place, found by name: the package (or
# module) ``course_utils.checks.lessonNN``, whose ``CATALOGUE`` holds its diagnoses. A new lesson is
# found without being registered anywhere.
CHECKS_PACKAGE = "course_utils.checks"
_LESSON_MODULE = re.compile(r"^lesson\d\d$")


def checks_module(lesson: str) -> str:
    """The module that holds ``lesson``'s checks and catalogue, e.g. ``course_utils.checks.lesson03``."""
    return f"{CHECKS_PACKAGE}.lesson{lesson[:2]}"


def lesson_modules() -> tuple[str, ...]:
    """The name of every lesson's checks module, in lesson order (found on disk, none imported)."""
    package = importlib.import_module(CHECKS_PACKAGE)
    names = sorted(info.name for info in pkgutil.iter_modules(package.__path__) if _LESSON_MODULE.match(info.name))
    return tuple(f"{CHECKS_PACKAGE}.{name}" for name in names)


_CODE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_TAG = re.compile(r"\[([a-z0-9][a-z0-9-]*)\]\s*$")


@dataclass(frozen=True)
class Diagnosis:
    """One diagnosable mistake: its code, what went wrong, the fix, and where it belongs."""

    code: str
    what: str
    hint: str
    family: str
    lesson: str = ""
    exercise: str = ""  # the grade id of the test cell that diagnoses it, e.g. "ex1-tests"
    section: str = ""   # the lesson section a student should revisit, e.g. "2 · Dataset"

    def __post_init__(self) -> None:
        if not _CODE.match(self.code):
            raise ValueError(f"a diagnosis code is lowercase words joined by '-', got {self.code!r}")
        if self.family not in FAMILIES:
            raise ValueError(f"{self.code}: unknown family {self.family!r}; use one of {', '.join(FAMILIES)}")
        if not self.what or not self.hint:
            raise ValueError(f"{self.code}: a diagnosis needs both what went wrong and the fix")


@dataclass(frozen=True)
class Exercise:
    """One graded exercise of a lesson: where its diagnoses belong.

    A lesson's exercise module declares its mistakes as data beside the code that recognises them::

        EXERCISE = Exercise("03_forward_pass", "ex2-tests", "Exercise 2 · Predict classes")
        DIAGNOSES = EXERCISE.diagnoses(
            ("predict-not-eval", "the forward pass inside predict ran in training mode",
             "call model.eval() before the forward pass", "modes", "Predicting: `eval()` and `no_grad()`"),
        )

    Each entry is ``(code, what, hint, family)`` with an optional fifth item, the lesson section a
    student should revisit (the exercise's heading when left out).
    """

    lesson: str
    grade_id: str   # the exercise's test cell, e.g. "ex2-tests"
    heading: str    # the exercise's heading in the notebook, e.g. "Exercise 2 · Predict classes"

    def diagnoses(self, *entries: tuple[str, ...]) -> tuple[Diagnosis, ...]:
        """The entries ``(code, what, hint, family[, section])`` as this exercise's diagnoses."""
        made = []
        for entry in entries:
            if len(entry) not in (4, 5):
                raise ValueError(f"a catalogue entry is (code, what, hint, family[, section]), got {entry!r}")
            code, what, hint, family, *section = entry
            made.append(Diagnosis(code, what, hint, family, lesson=self.lesson, exercise=self.grade_id,
                                  section=section[0] if section and section[0] else self.heading))
        return tuple(made)


NOT_ATTEMPTED_CODE = "not-attempted"


@dataclass(frozen=True)
class ForbiddenCall:
    """A library call an exercise's answer must not make: the exercise asks the student to write it.

    A lesson's catalogue module declares them beside its ``CATALOGUE`` as ``FORBIDDEN_CALLS``. The
    grader finds them by reading the submitted source (``course_tools.grade.source_scan``), so a
    kernel cannot hide them; the exercise then scores 0 with ``code``'s diagnosis.
    """

    grade_id: str            # the exercise's test cell, e.g. "ex2-tests"
    inside: str              # the learner's function or class whose body must not make the call
    calls: tuple[str, ...]   # fully qualified names; any of them, or any name under one, is forbidden
    code: str                # the diagnosis code named when a call is found


def format_failure(diagnosis: Diagnosis, *, expected: Any, found: Any, subject: str = "",
                   also: Iterable[Diagnosis] = ()) -> str:
    """The course's failure message for ``diagnosis``: what, expected, found, the fix (and other findings)."""
    head = f"{subject}: {diagnosis.what}" if subject else diagnosis.what
    others = "".join(f"\n    also:     {other.what} [{other.code}]" for other in also)
    return (f"\n✗ {head} [{diagnosis.code}]{others}\n"
            f"    expected: {describe(expected)}\n"
            f"    found:    {describe(found)}\n"
            f"    hint:     {diagnosis.hint}")


def raise_diagnosis(diagnosis: Diagnosis, *, expected: Any, found: Any, subject: str = "",
                    also: Iterable[Diagnosis] = ()) -> NoReturn:
    """Raise :class:`CheckFailed` naming ``diagnosis`` (see :func:`format_failure`)."""
    raise CheckFailed(format_failure(diagnosis, expected=expected, found=found, subject=subject, also=also))


def fail_with(code: str, *, expected: Any, found: Any, subject: str = "", also: Iterable[str] = ()) -> NoReturn:
    """Raise :class:`CheckFailed` naming the diagnosis ``code`` (and the codes ``also``) of the course's catalogue."""
    diagnoses = catalogue()
    if code not in diagnoses:
        raise KeyError(f"no diagnosis has the code {code!r}: declare it in its exercise's DIAGNOSES")
    raise_diagnosis(diagnoses[code], expected=expected, found=found, subject=subject,
                    also=[diagnoses[other] for other in also])


def codes_in(message: str) -> list[str]:
    """The diagnosis codes a failure message names: the main one first, then any ``also:`` lines."""
    codes = []
    for line in message.strip().splitlines():
        stripped = line.strip()
        if stripped.startswith("✗") or stripped.startswith("also:"):
            match = _TAG.search(stripped)
            if match:
                codes.append(match.group(1))
    return codes


def by_code(diagnoses: Iterable[Diagnosis]) -> dict[str, Diagnosis]:
    """Index a catalogue by code; a code defined twice is an error."""
    index: dict[str, Diagnosis] = {}
    for diagnosis in diagnoses:
        if diagnosis.code in index:
            raise ValueError(f"diagnosis code {diagnosis.code!r} is defined twice")
        index[diagnosis.code] = diagnosis
    return index


# Diagnoses of no one lesson: the grader names them for any exercise (course_tools.grade.score).
COURSE_WIDE: tuple[Diagnosis, ...] = (
    Diagnosis(NOT_ATTEMPTED_CODE, "the exercise was not attempted: its answer cell still holds the starting code",
              "write your answer where it says # YOUR CODE HERE, run it, then run the check below it",
              "not-attempted"),
)


@cache
def catalogue() -> Mapping[str, Diagnosis]:
    """Every diagnosis of every lesson whose catalogue module exists, and the course-wide ones, by code."""
    found: list[Diagnosis] = list(COURSE_WIDE)
    for module_name in lesson_modules():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name != module_name:
                raise
            continue
        found.extend(getattr(module, "CATALOGUE", ()))
    return by_code(found)


def forbidden_calls(lesson: str) -> tuple[ForbiddenCall, ...]:
    """The library calls ``lesson``'s exercises forbid (``FORBIDDEN_CALLS`` of its catalogue module)."""
    module_name = checks_module(lesson)
    if module_name not in lesson_modules():
        return ()
    return tuple(getattr(importlib.import_module(module_name), "FORBIDDEN_CALLS", ()))
