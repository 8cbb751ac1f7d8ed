"""Lesson 02's re-check (probe in the kernel's place, judge in the grader's): fast, no kernel.

The solution and every correct variant of the bug zoo pass for many seeds; the stub and the buggy
variants whose values differ fail. Values cannot show whether scikit-learn did the work: that stays
with the in-kernel checks.
"""

from __future__ import annotations

import pytest
import torch

from course_tools.grade.verdict import judge
from course_utils.verdict_probes import probes_for
from tests.helpers import recheck, solution_namespace, with_source
from tests.zoo_lesson02 import BUGGY, CORRECT, Variant

LESSON = "02_normalization"
GRADE_IDS = ("ex1-tests", "ex2-tests")
ANSWER_CELLS = ("ex1-scaler", "ex2-normalize-splits")
SEEDS = range(20)
# Values look right; the in-kernel check names the mistake (scikit-learn doing the work).
SAME_VALUES = {("ex1-tests", "wraps-sklearn"), ("ex2-tests", "uses-sklearn")}




SOLUTION = solution_namespace(LESSON, ANSWER_CELLS)


def with_variant(variant: Variant) -> dict:
    return with_source(SOLUTION, variant.source)


def verdict(namespace: dict, grade_id: str, seed: int):
    return recheck(LESSON, namespace, grade_id, seed)


def test_every_graded_cell_has_a_probe_and_a_judge():
    from course_tools.grade.verdict import draw_seeds

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
        result = verdict(namespace, variant.exercise, 7919 * seed + 10_003)
        assert result.passed, (seed, result.reason)


@pytest.mark.parametrize("grade_id", GRADE_IDS)
def test_the_stub_fails(grade_id):
    def stub(*args, **kwargs):
        raise NotImplementedError

    class StubScaler:
        def __init__(self, method="minmax"):
            pass

        fit = transform = inverse_transform = stub

    namespace = dict(SOLUTION, Scaler=StubScaler, normalize_splits=stub)
    result = verdict(namespace, grade_id, 12_345)
    assert not result.passed and "NotImplementedError" in result.reason


def test_buggy_zoo_variants_that_change_values_fail():
    passed = {(v.exercise, v.name) for v in BUGGY if verdict(with_variant(v), v.exercise, 24_680).passed}
    assert passed <= SAME_VALUES, passed
    for name in ("inplace-transform", "dim1", "global-min-max", "unbiased-std", "refits-in-transform", "epsilon",
                 "no-constant-handling", "inverse-raw-spread", "refit-ignored", "float32-result"):
        assert ("ex1-tests", name) not in passed
    for name in ("fit-on-valid", "fit-each-split", "fit-on-all", "default-minmax", "returns-a-fresh-scaler",
                 "scales-in-place"):
        assert ("ex2-tests", name) not in passed


def test_the_reason_says_what_is_wrong():
    variant = next(v for v in BUGGY if v.name == "fit-on-valid")
    result = verdict(with_variant(variant), "ex2-tests", 31_337)
    assert not result.passed and "fitted on train only" in result.reason


def test_the_probe_sends_values_only():
    values = probes_for(LESSON)["ex2-tests"](SOLUTION, 5)
    assert type(values["minmax"]["valid"]) is torch.Tensor and type(values["minmax"]["unchanged"]) is bool
