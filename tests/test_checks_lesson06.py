"""Lesson 06's checks on the bug zoo, called directly (fast, no kernel): every mistake named by its code."""

import pytest
import torch
from torch import nn

from course_utils.checks import CheckFailed
from course_utils.checks import lesson06
from course_utils.diagnoses import codes_in
from tests.zoo_lesson06 import BUGGY, CORRECT

CHECKS = {
    "ex1": lambda ns, seed: lesson06.check_manual_sgd(ns["ManualSGD"], seed=seed),
    "ex2": lambda ns, seed: lesson06.check_train_step(ns["train_step"], seed=seed),
}


def namespace(source: str) -> dict:
    """The variant's definitions, beside globals like the lesson's (a model and a batch of the running example)."""
    torch.manual_seed(0)
    ns = {"torch": torch, "nn": nn, "model": nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 3)),
          "xb": torch.randn(100, 10), "yb": torch.randint(0, 3, (100,))}
    exec(compile(source, "<zoo>", "exec"), ns)  # noqa: S102 - the zoo is the test's own code
    return ns


@pytest.mark.parametrize("variant", CORRECT, ids=lambda v: f"{v.exercise}-{v.name}")
@pytest.mark.parametrize("seed", [0, 3])
def test_correct_variants_pass(variant, seed):
    CHECKS[variant.exercise](namespace(variant.source), seed)


@pytest.mark.parametrize("variant", BUGGY, ids=lambda v: f"{v.exercise}-{v.name}")
def test_buggy_variants_are_named(variant):
    with pytest.raises(CheckFailed) as caught:
        CHECKS[variant.exercise](namespace(variant.source), 0)
    assert codes_in(str(caught.value))[:1] == [variant.bug], str(caught.value)


def test_every_code_belongs_to_a_graded_exercise_of_lesson_06():
    for diagnosis in lesson06.CATALOGUE:
        assert diagnosis.lesson == "06_optimizer_step" and diagnosis.exercise in {"ex1-tests", "ex2-tests"}


def test_a_seed_without_stored_results_is_a_clear_error():
    with pytest.raises(ValueError, match=r"seed in \(0, 3\)"):
        lesson06.check_train_step(lambda *args: 0.0, seed=7)
