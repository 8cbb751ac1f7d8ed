"""Lesson 06's re-check (probe in the kernel's place, judge in the grader's): fast, no kernel.

The solution and every correct variant of the bug zoo pass for many seeds; the stub and the buggy
variants whose values differ fail. Values cannot show whether torch.optim did the work, or which loss
function train_step called: that stays with the in-kernel checks.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_tools.grade.verdict import draw_seeds, judge
from tests.helpers import recheck, solution_namespace, with_source
from tests.zoo_lesson06 import BUGGY, CORRECT, GRADE_CELL, Variant

LESSON = "06_optimizer_step"
GRADE_IDS = ("ex1-tests", "ex2-tests")
ANSWER_CELLS = ("ex1-manual-sgd", "ex2-train-step")
SEEDS = range(20)
# Values are right; only the in-kernel check can tell that torch.optim or another loss function did the work.
SAME_VALUES = {("ex1", "wraps-torch-sgd"), ("ex1", "subclasses-torch-sgd"), ("ex1", "wraps-inside-step"),
               ("ex2", "own-criterion"), ("ex2", "own-optimizer")}




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

    class StubSGD:
        __init__ = step = zero_grad = stub

    result = verdict(dict(SOLUTION, ManualSGD=StubSGD, train_step=stub), grade_id, 12_345)
    assert not result.passed and "NotImplementedError" in result.reason


def test_buggy_zoo_variants_that_change_values_fail():
    passed = {(v.exercise, v.name) for v in BUGGY
              if verdict(with_variant(v), GRADE_CELL[v.exercise], 24_680).passed}
    assert passed <= SAME_VALUES, passed
    known = {(v.exercise, v.name) for v in BUGGY}
    assert SAME_VALUES <= known
    for name in ("rebinds-parameter", "no-torch-no-grad", "keeps-generator", "none-grad-not-skipped", "ascent",
                 "momentum-buffer-unused", "one-buffer-for-all", "buffers-on-the-class", "buffer-aliases-grad",
                 "dampened", "nesterov", "stale-buffer", "weight-decay-ignored", "weight-decay-decoupled",
                 "weight-decay-sign", "weight-decay-into-grad", "zero-grad-does-nothing", "half-step"):
        assert ("ex1", name) in known and ("ex1", name) not in passed
    for name in ("no-zero-grad", "step-before-backward", "no-backward", "two-steps", "global-model", "global-batch",
                 "returns-tensor", "loss-after-step", "sum-reduction-returned"):
        assert ("ex2", name) in known and ("ex2", name) not in passed


def test_the_reason_says_what_is_wrong():
    variant = next(v for v in BUGGY if v.name == "loss-after-step")
    result = verdict(with_variant(variant), "ex2-tests", 31_337)
    assert not result.passed and "before the step" in result.reason
