"""The behavioural grader of lesson 07, through the library: every bug named, every style accepted."""

from dataclasses import replace

import pytest
import torch
from tqdm.auto import trange

from course_utils import loop_grader
from course_utils.checks import CheckFailed
from course_utils.loop_grader import BUGS, Unmoved, converged, run_course_fit
from course_utils.recipe import DEFAULT_RECIPE
from tests.loop_zoo import BUGGY, CANONICAL_EVALUATE, CANONICAL_TRAIN, CORRECT

CHECKS = {"train_one_epoch": loop_grader.check_train_one_epoch, "evaluate": loop_grader.check_evaluate}


def define(source: str) -> dict:
    namespace = {"torch": torch}
    exec(source, namespace)  # noqa: S102 - the zoo's own code
    return namespace


def test_the_zoo_is_big_enough():
    assert len({v.bug for v in BUGGY}) >= 15, "at least 15 distinct bugs"
    assert len(CORRECT) >= 6, "at least 6 correct variants"
    assert {v.bug for v in BUGGY} <= set(BUGS)


@pytest.mark.parametrize("variant", CORRECT, ids=lambda v: f"{v.function}-{v.name}")
def test_correct_variants_pass(variant):
    CHECKS[variant.function](define(variant.source)[variant.function])


@pytest.mark.parametrize("variant", BUGGY, ids=lambda v: f"{v.function}-{v.name}")
def test_each_bug_fails_with_its_own_message(variant):
    with pytest.raises(CheckFailed) as info:
        CHECKS[variant.function](define(variant.source)[variant.function])
    headline = str(info.value).strip().splitlines()[0]
    assert f"[{variant.bug}]" in headline, str(info.value)
    bug = BUGS[variant.bug]
    assert bug.what in headline and f"hint:     {bug.hint}" in str(info.value)


def test_a_crashing_loop_is_reported_not_raised():
    def broken(model, loader, criterion, optimizer, device):
        raise KeyError("oops")

    with pytest.raises(CheckFailed, match="train_one_epoch raised KeyError"):
        loop_grader.check_train_one_epoch(broken)


def test_unmoved_tensors_become_plain_only_when_moved_to_a_device():
    batch = torch.ones(2, 3).as_subclass(Unmoved)
    assert type(batch.to("cpu")) is torch.Tensor
    assert type(batch.to(torch.device("cpu"), non_blocking=True)) is torch.Tensor
    assert type(batch.float()) is Unmoved and type(batch.to(torch.float64)) is Unmoved
    assert type(batch[0]) is Unmoved and len(batch) == 2


def fit_from(train_source: str, evaluate_source: str):
    namespace = define(train_source + "\n" + evaluate_source)

    def fit(model, train_loader, val_loader, criterion, optimizer, device, epochs):
        model.to(device)
        history = []
        for epoch in trange(1, epochs + 1, disable=True):
            loss = namespace["train_one_epoch"](model, train_loader, criterion, optimizer, device)
            val_loss, accuracy = namespace["evaluate"](model, val_loader, criterion, device)
            history.append({"epoch": epoch, "loss": loss, "val_loss": val_loss, "accuracy": accuracy})
        return history

    return fit, namespace


def test_check_fit_accepts_a_correct_fit():
    fit, namespace = fit_from(CANONICAL_TRAIN, CANONICAL_EVALUATE)
    history = loop_grader.check_fit(fit, namespace["train_one_epoch"], namespace["evaluate"])
    assert len(history) == 5 and converged(history)


def test_check_fit_rejects_a_malformed_history():
    fit, namespace = fit_from(CANONICAL_TRAIN, CANONICAL_EVALUATE)
    with pytest.raises(CheckFailed, match=r"\[fit-history\]"):
        loop_grader.check_fit(lambda *args: fit(*args)[:-1], namespace["train_one_epoch"], namespace["evaluate"])


DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA GPU on this machine; the CUDA verdict runs where there is one"))]


@pytest.mark.parametrize("device", DEVICES)
def test_convergence_verdict_is_the_same_for_50_seeds(device):
    good, _ = fit_from(CANONICAL_TRAIN, CANONICAL_EVALUATE)
    frozen, _ = fit_from(CANONICAL_TRAIN.replace("        optimizer.step()\n", ""), CANONICAL_EVALUATE)
    seeds = range(50)
    assert all(converged(run_course_fit(good, replace(DEFAULT_RECIPE, seed=s), device)) for s in seeds)
    assert not any(converged(run_course_fit(frozen, replace(DEFAULT_RECIPE, seed=s), device)) for s in seeds)
