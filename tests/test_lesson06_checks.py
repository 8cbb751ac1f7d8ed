"""Lesson 06's checks without a kernel: every zoo variant through the check functions, on both stored seeds.

The kernel runner (tests/test_zoos.py) grades the zoo with the notebook's seed, 3; here each correct
variant also passes with seed 0, and each mistake is named with seed 0 too.
"""

import pytest
import torch
from torch import nn

from course_utils.checks import CheckFailed, lesson06
from course_utils.diagnoses import codes_in
from tests.helpers import with_source
from tests.zoos.lesson06 import ZOO

CHECKED = {"ex1-tests": ("ManualSGD", lesson06.check_manual_sgd),
           "ex2-tests": ("train_step", lesson06.check_train_step)}


def defined(source: str):
    """The variant's definitions, beside globals like the lesson's (a model and a batch of the running example)."""
    torch.manual_seed(0)
    lesson_globals = {"torch": torch, "nn": nn, "model": nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 3)),
                      "xb": torch.randn(100, 10), "yb": torch.randint(0, 3, (100,))}
    return with_source(lesson_globals, source)


def first_code(variant, seed: int) -> str | None:
    name, check = CHECKED[variant.exercise]
    try:
        check(defined(variant.source)[name], seed=seed)
    except CheckFailed as failure:
        return codes_in(str(failure))[0]
    return None


@pytest.mark.parametrize("seed", lesson06.CHECK_SEEDS)
@pytest.mark.parametrize("variant", ZOO.correct, ids=lambda v: v.id)
def test_correct_variants_pass(variant, seed):
    assert first_code(variant, seed) is None


@pytest.mark.parametrize("variant", ZOO.buggy, ids=lambda v: v.id)
def test_buggy_variants_are_named(variant):
    assert first_code(variant, 0) == variant.bug


def test_a_seed_without_stored_results_is_a_clear_error():
    with pytest.raises(ValueError, match=r"seed in \(0, 3\)"):
        lesson06.check_train_step(lambda *args: 0.0, seed=7)
