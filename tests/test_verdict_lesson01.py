"""Lesson 01's re-check (probe in the kernel's place, judge in the grader's): fast, no kernel.

The solution and every correct variant of the bug zoo pass for many seeds; the stub and the buggy
variants whose values differ fail. Values cannot show whether TensorDataset or a DataLoader did the
work, nor a hard-coded answer for the lesson's printed examples: those stay with the in-kernel checks.
"""

from __future__ import annotations

import pytest
import torch

from course_utils.verdict_probes import probes_for
from tests.helpers import recheck, solution_namespace, with_source
from tests.zoo_lesson01 import BUGGY, CORRECT, Variant

LESSON = "01_dataloader_batching"
GRADE_IDS = ("ex1-tests", "ex2-tests", "ex3-tests")
ANSWER_CELLS = ("ex1-dataset", "ex2-loader", "ex3-batch-sizes")
SEEDS = range(20)
# Values look right; the in-kernel check names the mistake.
SAME_VALUES = {("ex1-tests", "wraps-tensordataset"), ("ex3-tests", "uses-a-loader"),
               ("ex2-tests", "returns-batches")}

SOLUTION = solution_namespace(LESSON, ANSWER_CELLS)


def with_variant(variant: Variant) -> dict:
    return with_source(SOLUTION, variant.source)


def test_every_graded_cell_has_a_probe_and_a_judge():
    from course_tools.grade.verdict import draw_seeds

    assert set(draw_seeds(LESSON)) == set(GRADE_IDS)


@pytest.mark.parametrize("grade_id", GRADE_IDS)
def test_the_solution_passes(grade_id):
    for seed in SEEDS:
        result = recheck(LESSON, SOLUTION, grade_id, 1000 * seed + 10_007)
        assert result.passed, (seed, result.reason)


@pytest.mark.parametrize("variant", CORRECT, ids=lambda v: f"{v.exercise}-{v.name}")
def test_every_correct_zoo_variant_passes(variant):
    namespace = with_variant(variant)
    for seed in SEEDS:
        result = recheck(LESSON, namespace, variant.exercise, 7919 * seed + 10_003)
        assert result.passed, (seed, result.reason)


@pytest.mark.parametrize("grade_id", GRADE_IDS)
def test_the_stub_fails(grade_id):
    def stub(*args, **kwargs):
        raise NotImplementedError

    class StubDataset(torch.utils.data.Dataset):
        def __init__(self, features, targets):
            raise NotImplementedError

    namespace = dict(SOLUTION, CourseDataset=StubDataset, make_loader=stub, batch_sizes=stub)
    result = recheck(LESSON, namespace, grade_id, 12_345)
    assert not result.passed and "NotImplementedError" in result.reason


def test_buggy_zoo_variants_that_change_values_fail():
    passed = {(v.exercise, v.name) for v in BUGGY
              if recheck(LESSON, with_variant(v), v.exercise, 24_680).passed}
    # a hard-coded answer for the printed examples only is wrong everywhere else
    assert passed <= SAME_VALUES, passed


def test_float_labels_are_refuted_by_the_grader():
    variant = next(v for v in BUGGY if v.name == "float-label")
    result = recheck(LESSON, with_variant(variant), "ex1-tests", 31_337)
    assert not result.passed and "float" in result.reason


def test_the_one_sample_dataset_and_the_edge_cases_are_rechecked():
    values = probes_for(LESSON)["ex1-tests"](SOLUTION, 5)
    assert [d["length"] for d in values["datasets"]][-1] == 1
    assert all(error[0] in ("TypeError", "ValueError") and error[1] for error in values["errors"])
    sizes = probes_for(LESSON)["ex3-tests"](SOLUTION, 5)["sizes"]
    assert [] in sizes and any(set(s) == {1} for s in sizes if s)


def test_the_probe_sends_values_only():
    values = probes_for(LESSON)["ex2-tests"](SOLUTION, 5)
    assert all(type(i) is int for i in values["unseeded"]) and type(values["second-epoch"]) is list
