"""Lesson 07's re-check (probe in the kernel's place, judge in the grader's): fast, no kernel.

The solution and every correct variant of the bug zoo pass for 20 seeds; the stub and the buggy
variants whose values differ fail. Values cannot show a missing device move on the CPU, the mode of
a model without dropout, gradient tracking, a kept graph, the criterion's origin, or fit's device
move and progress bar: those stay with the in-kernel checks (and the grader's source scan).
"""

from __future__ import annotations

import pytest

from course_tools.grade.verdict import draw_seeds
from tests.helpers import recheck, solution_namespace, with_source
from tests.loop_zoo import BUGGY, CORRECT, Variant

LESSON = "07_epoch_loop_gpu"
GRADE_CELL = {"train_one_epoch": "ex1-tests", "evaluate": "ex2-tests", "fit": "ex3-tests"}
ANSWER_CELLS = ("ex1-train-one-epoch", "ex2-evaluate", "ex3-fit")
SEEDS = range(20)
# Right values, wrong behaviour that values cannot show (see the module docstring).
SAME_VALUES = {
    "inputs-not-moved", "targets-not-moved", "nothing-moved", "no-train-mode", "keeps-the-graph",
    "builds-its-own-loss", "model-moved-every-batch", "no-eval-mode", "tracks-gradients", "evaluate-inputs-not-moved",
    "evaluate-targets-not-moved", "evaluate-builds-its-own-loss", "evaluate-model-moved-every-batch",
    "fit-never-moves-the-model", "fit-moves-the-model-after-training", "fit-plain-range", "fit-bar-never-updated",
    "fit-moves-the-model-every-epoch",
}
# Issue 17's and the real-world cases: each must fail the re-check too, with a reason that says what.
NAMED = {"evaluate-returns-accuracy-then-loss": "swapped", "return-inside-the-loop": "parameters",
         "step-after-the-loop": "parameters", "batch-means-divided-by-samples": "mean loss per sample",
         "float-targets-crash": "raised RuntimeError"}

SOLUTION = solution_namespace(LESSON, ANSWER_CELLS)


def with_variant(variant: Variant) -> dict:
    return with_source(SOLUTION, variant.source)


def verdict(namespace: dict, grade_id: str, seed: int):
    return recheck(LESSON, namespace, grade_id, seed)


def test_every_graded_cell_has_a_probe_and_a_judge():
    assert set(draw_seeds(LESSON)) == set(GRADE_CELL.values())


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("grade_id", sorted(GRADE_CELL.values()))
def test_the_solution_passes(grade_id, seed):
    result = verdict(SOLUTION, grade_id, 1000 * seed + 10_007)
    assert result.passed, result.reason


@pytest.mark.parametrize("variant", CORRECT, ids=lambda v: f"{v.function}-{v.name}")
def test_every_correct_zoo_variant_passes(variant):
    namespace = with_variant(variant)
    for seed in SEEDS:
        result = verdict(namespace, GRADE_CELL[variant.function], 7919 * seed + 10_003)
        assert result.passed, (seed, result.reason)


@pytest.mark.parametrize("grade_id", sorted(GRADE_CELL.values()))
def test_the_stub_fails(grade_id):
    def stub(*args, **kwargs):
        raise NotImplementedError

    result = verdict(dict(SOLUTION, train_one_epoch=stub, evaluate=stub, fit=stub), grade_id, 12_345)
    assert not result.passed and "NotImplementedError" in result.reason


def test_buggy_zoo_variants_that_change_values_fail():
    results = {v.name: verdict(with_variant(v), GRADE_CELL[v.function], 24_680) for v in BUGGY if v.function != "fit"}
    passed = {name for name, result in results.items() if result.passed}
    assert passed <= SAME_VALUES, passed
    for name, words in NAMED.items():
        assert not results[name].passed and words in results[name].reason, (name, results[name].reason)


def test_the_re_check_covers_a_loader_of_one_sample():
    """The hidden tests' single-sample case now lives in the re-check: a loop that needs two batches fails it."""
    needs_two = with_source(SOLUTION, """
def train_one_epoch(model, loader, criterion, optimizer, device):
    model.train()
    total_loss, total_samples = 0.0, 0
    for features, targets in loader:
        features, targets = features.to(device), targets.to(device)
        optimizer.zero_grad()
        loss = criterion(model(features), targets)
        loss.backward()
        optimizer.step()
        total_loss += loss.item() * len(targets)
        total_samples += len(targets)
    return total_loss / (total_samples - 1) * (total_samples - 1) / total_samples if total_samples > 1 else 0.0
""")
    result = verdict(needs_two, "ex1-tests", 31_337)
    assert not result.passed and "single sample" in result.reason, result.reason
