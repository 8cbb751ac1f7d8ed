"""Lesson 05's re-check (probe in the kernel's place, judge in the grader's): fast, no kernel.

The solution and every correct variant of the bug zoo pass for many seeds; the stub and the buggy
variants whose values differ fail. Values cannot show whether autograd did work the exercise asks
to do by hand: that stays with the in-kernel checks.
"""

from __future__ import annotations

import pytest

from course_tools.grade.verdict import draw_seeds, judge
from tests.helpers import recheck, solution_namespace, with_source
from tests.zoo_lesson05 import BUGGY, CORRECT, GRADE_CELL, Variant

LESSON = "05_backward"
GRADE_IDS = ("ex1-tests", "ex2-tests", "ex3-tests")
ANSWER_CELLS = ("ex1-gradient-check", "ex2-ce-grad", "ex3-accumulate")
SEEDS = range(20)
# Values are right; only the in-kernel check can tell that autograd did the work.
SAME_VALUES = {("ex1", "autograd"), ("ex1", "autograd-functional"), ("ex2", "autograd"),
               ("ex2", "autograd-enable-grad")}




SOLUTION = solution_namespace(LESSON, ANSWER_CELLS)


def with_variant(variant: Variant) -> dict:
    return with_source(SOLUTION, variant.source)


def verdict(namespace: dict, grade_id: str, seed: int):
    return recheck(LESSON, namespace, grade_id, seed)


def test_every_graded_cell_has_a_probe_and_a_judge():
    assert set(draw_seeds(LESSON)) == set(GRADE_IDS)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("grade_id", GRADE_IDS)
def test_the_solution_passes(grade_id, seed):
    result = verdict(SOLUTION, grade_id, 1000 * seed + 10_007)
    assert result.passed, result.reason


@pytest.mark.parametrize("variant", CORRECT, ids=lambda v: f"{v.exercise}-{v.name}")
def test_every_correct_zoo_variant_passes(variant):
    namespace = with_variant(variant)
    for seed in SEEDS:
        result = verdict(namespace, GRADE_CELL[variant.exercise], 7919 * seed + 10_003)
        assert result.passed, (seed, result.reason)


@pytest.mark.parametrize("grade_id", GRADE_IDS)
def test_the_stub_fails(grade_id):
    def stub(*args, **kwargs):
        raise NotImplementedError

    namespace = dict(SOLUTION, numerical_gradient=stub, relative_error=stub, cross_entropy_grad=stub,
                     accumulated_grad=stub)
    result = verdict(namespace, grade_id, 12_345)
    assert not result.passed and "NotImplementedError" in result.reason


def test_buggy_zoo_variants_that_change_values_fail():
    passed = {(v.exercise, v.name) for v in BUGGY
              if verdict(with_variant(v), GRADE_CELL[v.exercise], 24_680).passed}
    assert passed <= SAME_VALUES, passed
    known = {(v.exercise, v.name) for v in BUGGY}
    assert SAME_VALUES <= known
    for name in ("float32-nudges", "one-sided", "divides-by-eps", "hard-coded-eps", "default-eps-too-large",
                 "returns-x-dtype", "returns-flat", "double-without-clone-and-drift",
                 "double-without-clone-put-back", "nudges-x-and-drifts", "nudges-x-itself-float32", "not-put-back", "all-at-once",
                 "hard-coded", "returns-tensor", "no-tiny", "float32", "no-abs", "mean-not-max", "elementwise",
                 "relative-to-b"):
        assert ("ex1", name) in known and ("ex1", name) not in passed
    for name in ("no-mean", "sign", "softmax-dim-0", "no-softmax", "naive-exp", "one-hot-without-classes",
                 "float32-result", "in-place-shift"):
        assert ("ex2", name) in known and ("ex2", name) not in passed
    for name in ("one-graph-twice", "works-on-w", "multiplied", "zeroed-each-time", "off-by-one", "returns-copy",
                 "float32-copy"):
        assert ("ex3", name) in known and ("ex3", name) not in passed


def test_the_reason_says_what_is_wrong():
    variant = next(v for v in BUGGY if v.name == "multiplied")
    result = verdict(with_variant(variant), "ex3-tests", 31_337)
    assert not result.passed and "backward" in result.reason
