"""Lesson 05's checks without a kernel: every zoo variant through the check functions, on both stored seeds.

The kernel runner (tests/test_zoos.py) grades the zoo with the notebook's seed, 3; here each correct
variant also passes with seed 0, and each mistake is named with seed 0 too.
"""

import pytest
import torch
import torch.nn.functional as F  # noqa: N812 - the name the lesson's cells use

from course_utils.checks import CheckFailed, lesson05
from course_utils.diagnoses import codes_in
from tests.helpers import with_source
from tests.zoos.lesson05 import ZOO

CHECKS = {
    "ex1-tests": lambda ns, seed: lesson05.check_gradient_checker(ns["numerical_gradient"], ns["relative_error"],
                                                                  seed=seed),
    "ex2-tests": lambda ns, seed: lesson05.check_cross_entropy_grad(ns["cross_entropy_grad"], seed=seed),
    "ex3-tests": lambda ns, seed: lesson05.check_accumulated_grad(ns["accumulated_grad"], seed=seed),
}
CELL_GLOBALS = {"torch": torch, "F": F}  # the names the lesson's setup cell imports and the answers use


def codes(variant, seeds=lesson05.CHECK_SEEDS) -> list[str | None]:
    """The code the variant's check names first for each seed (None where it passes)."""
    namespace, found = with_source(CELL_GLOBALS, variant.source), []
    for seed in seeds:
        try:
            CHECKS[variant.exercise](namespace, seed)
            found.append(None)
        except CheckFailed as failure:
            found.append(codes_in(str(failure))[0])
    return found


@pytest.mark.parametrize("variant", ZOO.correct, ids=lambda v: v.id)
def test_correct_variants_pass_on_both_stored_seeds(variant):
    assert codes(variant) == [None, None]


@pytest.mark.parametrize("variant", ZOO.buggy, ids=lambda v: v.id)
def test_buggy_variants_are_named_on_seed_0(variant):
    assert codes(variant, seeds=(0,)) == [variant.bug]


def test_a_seed_without_stored_results_is_a_clear_error():
    with pytest.raises(ValueError, match=r"seed in \(0, 3\)"):
        lesson05.check_accumulated_grad(lambda *args: None, seed=7)
