"""The lessons' bug zoos, as data: one module per lesson (``tests/zoos/lessonNN.py``) defining ``ZOO``.

A zoo is a list of student cells for the lesson's exercises: correct ones in several styles, and one
per typical mistake, each naming the diagnosis code its grade cell's failure must carry first. Two
runners read every zoo, so adding a lesson adds data, not a runner:

- ``tests/test_zoos.py`` runs each variant through the lesson's real grade cells, in one live kernel
  per lesson (the solution's answer cells first, so that every other function is the solution's);
- ``tests/test_rechecks.py`` runs the grader's re-check (probe in the kernel's place, judge in the
  grader's) on the solution, the release's stub and every variant, on many seeds.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from dataclasses import dataclass
from textwrap import dedent


@dataclass(frozen=True)
class Variant:
    """One student cell of a zoo: correct (``bug`` is None) or with one typical mistake."""

    name: str
    exercise: str                 # the grade id of the test cell it is graded by, e.g. "ex2-tests"
    source: str                   # the cell, as a student would type it
    bug: str | None = None        # the diagnosis code the grade cell's failure names first
    says: tuple[str, ...] = ()    # words the grade cell's failure message must also contain
    values_show: bool = True      # False: the mistake leaves every value right, only the kernel's check sees it
    refuted_with: str = ""        # words the grader's re-check reason must contain

    @property
    def id(self) -> str:
        return f"{self.exercise}-{self.name}"


@dataclass(frozen=True)
class Zoo:
    """A lesson's zoo and what the issues ask of it."""

    lesson: str                                # the lesson folder, e.g. "03_forward_pass"
    variants: tuple[Variant, ...]
    must_name: frozenset[str] = frozenset()    # codes the zoo must include (from the issues that asked for them)
    min_bugs: int = 5                          # distinct mistakes per graded exercise, at least
    min_correct: int = 2                       # correct variants per graded exercise, at least
    recheck_seeds: int = 20                    # seeds each correct variant's re-check must pass on
    setup_cells: tuple[str, ...] = ("setup",)  # cells the kernel runs before the solution's answers
    timeout: int = 300                         # seconds a kernel cell may take

    @property
    def correct(self) -> tuple[Variant, ...]:
        return tuple(variant for variant in self.variants if variant.bug is None)

    @property
    def buggy(self) -> tuple[Variant, ...]:
        return tuple(variant for variant in self.variants if variant.bug is not None)


def variant(exercise: str, name: str, body: str, bug: str | None = None, **details: object) -> Variant:
    """A zoo entry from an indented cell body (dedented and stripped)."""
    return Variant(name, exercise, dedent(body).strip(), bug, **details)  # type: ignore[arg-type]


def mutate(source: str, old: str, new: str, count: int = 1) -> str:
    """``source`` with ``old`` replaced by ``new``; ``old`` must be there (a typo must not pass silently)."""
    if old not in source:
        raise ValueError(f"mutation target not found: {old!r}")
    return source.replace(old, new, count)


def mutants(exercise: str, source: str, rows: tuple[tuple, ...]) -> tuple[Variant, ...]:
    """Buggy variants of one correct ``source``, from rows ``(name, bug, old, new[, details])``.

    Each row replaces ``old`` by ``new`` in ``source``; ``details`` (a dict) sets the variant's other
    fields (``says``, ``values_show``, ``refuted_with``).
    """
    made = []
    for name, bug, old, new, *details in rows:
        made.append(Variant(name, exercise, mutate(dedent(source).strip(), old, new), bug,
                            **(details[0] if details else {})))
    return tuple(made)


_LESSON_MODULE = re.compile(r"^lesson\d\d$")


def all_zoos() -> tuple[Zoo, ...]:
    """Every lesson's ``ZOO``, in lesson order."""
    names = sorted(info.name for info in pkgutil.iter_modules(__path__) if _LESSON_MODULE.match(info.name))
    return tuple(importlib.import_module(f"{__name__}.{name}").ZOO for name in names)


__all__ = ["Variant", "Zoo", "all_zoos", "mutants", "mutate", "variant"]
