"""Lesson 03's re-check (probe in the kernel's place, judge in the grader's): fast, no kernel.

The solution and every correct variant of the bug zoo pass for many seeds; the stub and the buggy
variants fail.
"""

from __future__ import annotations

import pytest
import torch

from course_tools.grade.verdict import draw_seeds, judge
from course_utils.verdict_probes import probes_for
from tests.helpers import recheck, solution_namespace, with_source
from tests.zoo_lesson03 import BUGGY, CORRECT, Variant

LESSON = "03_forward_pass"
GRADE_IDS = ("ex1-tests", "ex2-tests", "ex3-tests")
ANSWER_CELLS = ("ex1-mlp", "ex2-predict", "ex3-count")
SEEDS = range(20)




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
        result = verdict(namespace, variant.exercise, 7919 * seed + 10_003)
        assert result.passed, (seed, result.reason)


@pytest.mark.parametrize("grade_id", GRADE_IDS)
def test_the_stub_fails(grade_id):
    def stub(*args, **kwargs):
        raise NotImplementedError

    class StubMLP(torch.nn.Module):
        def __init__(self, in_features, hidden, out_features):
            raise NotImplementedError

    namespace = dict(SOLUTION, MLP=StubMLP, predict=stub, count_parameters=stub)
    result = verdict(namespace, grade_id, 12_345)
    assert not result.passed and "NotImplementedError" in result.reason


@pytest.mark.parametrize("variant", BUGGY, ids=lambda v: f"{v.exercise}-{v.name}")
def test_every_buggy_zoo_variant_fails(variant):
    result = verdict(with_variant(variant), variant.exercise, 24_680)
    assert not result.passed and result.reason


def test_named_mistakes_are_refuted_with_a_reason():
    by_name = {(v.exercise, v.name): v for v in BUGGY}
    for key, words in ((("ex1-tests", "no-relu"), "out(relu(hidden(x)))"),
                       (("ex1-tests", "hard-coded-sizes"), "nn.Linear"),
                       (("ex2-tests", "no-no-grad"), "no_grad"),
                       (("ex2-tests", "mode-not-restored"), "training mode"),
                       (("ex2-tests", "argmax-dim0"), "argmax(dim=1)"),
                       (("ex3-tests", "frozen-counted"), "trainable"),
                       (("ex3-tests", "returns-a-tensor"), "not a Python int")):
        result = verdict(with_variant(by_name[key]), key[0], 55_555)
        assert not result.passed and words in result.reason, (key, result.reason)


def test_the_probe_sends_values_only():
    values = probes_for(LESSON)["ex2-tests"](SOLUTION, 5)
    assert type(values["train"]["classes"]) is torch.Tensor and values["train"]["training"] is True
