"""Lesson 04's re-check (probe in the kernel's place, judge in the grader's): fast, no kernel.

The solution and every correct variant of the bug zoo pass for many seeds; the stub and the buggy
variants whose values differ fail. Values cannot show whether PyTorch's own cross-entropy did the
work: that stays with the in-kernel checks.
"""

from __future__ import annotations

import pytest

from course_tools.grade.verdict import draw_seeds, judge
from tests.helpers import recheck, solution_namespace, with_source
from tests.zoo_lesson04 import BUGGY, CORRECT, Variant

LESSON = "04_loss"
GRADE_IDS = ("ex1-values-tests", "ex1-stability-tests", "ex1-weights-smoothing-tests", "ex2-tests")
CELLS_OF = {"ex1-values-tests": GRADE_IDS[:3], "ex2-tests": GRADE_IDS[3:]}
ANSWER_CELLS = ("ex1-cross-entropy", "ex2-choose-loss")
SEEDS = range(20)
# Values are right; only the in-kernel check can tell that the library did the work.
SAME_VALUES = {"calls-F-cross-entropy", "alias-of-the-library", "module-inside", "log-softmax-and-nll"}




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
        for grade_id in CELLS_OF[variant.exercise]:
            result = verdict(namespace, grade_id, 7919 * seed + 10_003)
            assert result.passed, (seed, grade_id, result.reason)


@pytest.mark.parametrize("grade_id", GRADE_IDS)
def test_the_stub_fails(grade_id):
    def stub(*args, **kwargs):
        raise NotImplementedError

    result = verdict(dict(SOLUTION, cross_entropy=stub, choose_loss=stub), grade_id, 12_345)
    assert not result.passed and "NotImplementedError" in result.reason


def test_buggy_zoo_variants_that_change_values_fail():
    passed = {v.name for v in BUGGY if verdict(with_variant(v), v.exercise, 24_680).passed}
    assert passed <= SAME_VALUES, passed
    assert SAME_VALUES <= {v.name for v in BUGGY}
    for name in ("hard-coded", "sum-reduction", "double-softmax", "softmax-over-dim0", "sign", "returns-a-float",
                 "float32-always", "detached", "epsilon-inside-the-log", "no-max-shift", "log-of-softmax",
                 "global-max", "clamped-logits", "weight-ignored", "smoothing-over-3", "smoothing-unweighted",
                 "float-class-targets", "bce-on-logits", "l1-for-regression", "shared-instances"):
        assert name in {v.name for v in BUGGY} and name not in passed


def test_the_reason_says_what_is_wrong():
    variant = next(v for v in BUGGY if v.name == "shared-instances")
    result = verdict(with_variant(variant), "ex2-tests", 31_337)
    assert not result.passed and "same loss object" in result.reason
