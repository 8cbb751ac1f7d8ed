"""Lesson 05's checks on the bug zoo, called directly (fast, no kernel): every mistake named by its code."""

import pytest
import torch
import torch.nn.functional as F  # noqa: N812 - the name the lesson's cells use

from course_utils.checks import CheckFailed
from course_utils.checks import lesson05
from course_utils.diagnoses import codes_in
from tests.zoo_lesson05 import BUGGY, CORRECT

CHECKS = {
    "ex1": lambda ns, seed: lesson05.check_gradient_checker(ns["numerical_gradient"], ns["relative_error"], seed=seed),
    "ex2": lambda ns, seed: lesson05.check_cross_entropy_grad(ns["cross_entropy_grad"], seed=seed),
    "ex3": lambda ns, seed: lesson05.check_accumulated_grad(ns["accumulated_grad"], seed=seed),
}


def namespace(source: str) -> dict:
    ns = {"torch": torch, "F": F}
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


def test_every_code_belongs_to_a_graded_exercise_of_lesson_05():
    for diagnosis in lesson05.CATALOGUE:
        assert diagnosis.lesson == "05_backward" and diagnosis.exercise in {"ex1-tests", "ex2-tests", "ex3-tests"}


def test_a_seed_without_stored_results_is_a_clear_error():
    with pytest.raises(ValueError, match=r"seed in \(0, 3\)"):
        lesson05.check_accumulated_grad(lambda *args: None, seed=7)
