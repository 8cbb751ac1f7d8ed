"""Every lesson's re-check, without a kernel: the probe in the kernel's place, the judge in the grader's.

For every lesson with judges (``course_tools.grade.judges.lessonNN``): the solution passes every
graded cell on 20 seeds, each correct variant of the lesson's zoo passes on its zoo's seeds, the
release's starting code (the stub) fails, and every mistake whose effect shows in values fails, with
the words its zoo entry names. The zoos are data (``tests/zoos/lessonNN.py``); this file is the one runner.
"""

from __future__ import annotations

from functools import cache

import pytest

from course_tools.grade.verdict import Verdict, draw_seeds
from tests.helpers import graded_cells, recheck, solution_namespace, with_source
from tests.zoos import Variant, all_zoos

ZOOS = {zoo.lesson: zoo for zoo in all_zoos()}
SOLUTION_SEEDS = [10_007 + 1000 * index for index in range(20)]
VARIANT_SEEDS = [10_003 + 7919 * index for index in range(20)]
MISTAKE_SEED = 24_680
STUB_SEED = 12_345

GRADED = [pytest.param(lesson, grade_id, id=f"{lesson[:2]}-{grade_id}")
          for lesson in ZOOS for grade_id in sorted(draw_seeds(lesson))]
CORRECT = [pytest.param(lesson, variant, id=f"{lesson[:2]}-{variant.id}")
           for lesson, zoo in ZOOS.items() for variant in zoo.correct if variant.exercise in draw_seeds(lesson)]
VALUE_MISTAKES = [pytest.param(lesson, variant, id=f"{lesson[:2]}-{variant.id}")
                  for lesson, zoo in ZOOS.items() for variant in zoo.buggy
                  if variant.values_show and variant.exercise in draw_seeds(lesson)]


@cache
def solution(lesson: str) -> dict:
    return solution_namespace(lesson)


def verdict(lesson: str, namespace: dict, grade_id: str, seed: int) -> Verdict:
    return recheck(lesson, namespace, grade_id, seed)


@pytest.mark.parametrize("lesson", sorted(ZOOS))
def test_every_graded_cell_has_a_probe_and_a_judge(lesson):
    assert set(draw_seeds(lesson)) == set(graded_cells(lesson))


@pytest.mark.parametrize("lesson, grade_id", GRADED)
def test_the_solution_passes(lesson, grade_id):
    for seed in SOLUTION_SEEDS:
        result = verdict(lesson, solution(lesson), grade_id, seed)
        assert result.passed, (seed, result.reason)


@pytest.mark.parametrize("lesson, variant", CORRECT)
def test_every_correct_zoo_variant_passes(lesson, variant: Variant):
    namespace = with_source(solution(lesson), variant.source)
    for seed in VARIANT_SEEDS[:ZOOS[lesson].recheck_seeds]:
        result = verdict(lesson, namespace, variant.exercise, seed)
        assert result.passed, (seed, result.reason)


@pytest.mark.parametrize("lesson, grade_id", GRADED)
def test_the_stub_fails(lesson, grade_id):
    result = verdict(lesson, solution_namespace(lesson, release=True), grade_id, STUB_SEED)
    assert not result.passed and "NotImplementedError" in result.reason, result.reason


@pytest.mark.parametrize("lesson, variant", VALUE_MISTAKES)
def test_every_mistake_that_changes_values_fails(lesson, variant: Variant):
    result = verdict(lesson, with_source(solution(lesson), variant.source), variant.exercise, MISTAKE_SEED)
    assert not result.passed and result.reason
    assert variant.refuted_with in result.reason, result.reason
