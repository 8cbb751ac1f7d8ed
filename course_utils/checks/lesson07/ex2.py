"""Lesson 07, Exercise 2: ``evaluate``, run on the instrumented model, loss and loader.

The check runs the learner's evaluation on :data:`EVALUATE_SCENARIOS` and compares the returned
(loss, accuracy) with the results stored as data (``checks/expected/lesson07-evaluate.json``,
computed on the grader's side); the instruments show the mode, gradient tracking, device moves and
any change to the parameters. Mode, device, skipped batches and the mean loss are recognised as in
Exercise 1 (:mod:`course_utils.checks.lesson07.ex1`). Importing this module has no side effects.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from course_utils.checks import expected as stored
from course_utils.checks.learner import call_learner
from course_utils.checks.lesson07.common import (
    LESSON, LOOP_CASES, Finding, Scenario, crashed, fail, number, parameters, times,
)
from course_utils.checks.lesson07.ex1 import (
    LIBRARY_LOSSES, close, loss_findings, mode_and_device_findings, skipped_batches,
)
from course_utils.checks.lesson07.instruments import (
    ProbeCriterion, ProbeLoader, ProbeModel, largest_difference, recording, same_parameters,
)
from course_utils.diagnoses import Exercise, ForbiddenCall

EXERCISE = Exercise(LESSON, "ex2-tests", "Exercise 2 · evaluate")
DIAGNOSES = EXERCISE.diagnoses(
    ("eval-mode", "the model was in train mode during evaluation",
     "call model.eval() at the start of evaluate (dropout and batch norm behave differently).", "modes"),
    ("eval-grad", "evaluation tracked gradients",
     "wrap the evaluation loop in torch.no_grad() or torch.inference_mode().", "modes"),
    ("eval-changed-parameters", "evaluation changed the model's parameters",
     "evaluate must never call backward() or step(): it only measures.", "optimizer"),
    ("eval-return", "evaluate must return a tuple (loss, accuracy) of two Python floats",
     "return mean_loss, accuracy, both floats (use .item()).", "interface"),
    ("eval-loss", "the loss returned by evaluate is not the mean loss per sample",
     "sum loss.item() * len(yb) over the batches and divide by the number of samples.", "metrics"),
    ("eval-accuracy", "the accuracy returned by evaluate is not correct predictions / samples",
     "count (logits.argmax(dim=1) == yb).sum().item() over all batches and divide by the number of samples.",
     "metrics"),
    ("eval-model-moved-every-batch", "the model was moved to the device inside the loop over batches",
     "the model is already on its device when evaluate runs; inside the loop move only the batch: xb, yb = "
     "xb.to(device), yb.to(device).", "device"),
    ("eval-swapped", "the loss and the accuracy came back swapped, as (accuracy, loss)",
     "return the loss first and the accuracy second: return mean_loss, accuracy.", "interface"),
    ("eval-crashed", "evaluate raised an error",
     "the found line shows where. To see it on the lesson's own data, run evaluate(model, val_loader, "
     "nn.CrossEntropyLoss(), device) in a new cell: section 1 defines model, val_loader and device.", "interface"),
    ("eval-returned-in-loop", "the evaluation ended after the first batch: a return or break inside the loop",
     "the return (or a break) is inside the for loop: move it after the loop, at the function's own "
     "indentation, so that every batch is scored first.", "data"),
    ("eval-loss-divided-twice", "the loss returned by evaluate adds up batch means and divides them by the "
     "number of samples",
     "criterion(logits, yb).item() is already the batch's mean: add it times len(yb), then divide by the "
     "number of samples.", "metrics"),
    ("eval-hard-coded-device", "tensors or the model went to a device written in the code, not to `device`",
     "move with .to(device), the function's own argument, never .cuda() or .to('cuda'): the caller decides "
     "where evaluation runs, and a machine without a GPU has no 'cuda'.", "device"),
    ("eval-library-loss", "evaluate computes the loss with a loss function of its own, not the criterion it "
     "was given",
     "call criterion(logits, yb) and weight it by len(yb): the exercise asks you to compute it.", "not-allowed"),
    ("eval-library-metric", "evaluate computes the accuracy with a library metric",
     "count (logits.argmax(dim=1) == yb).sum().item() and divide by the number of samples yourself.", "not-allowed"),
)

# What the grader's source scan forbids: evaluate asks for loss and accuracy computed by hand
# (scikit-learn ships with the course).
FORBIDDEN_CALLS = (
    ForbiddenCall("ex2-tests", "evaluate", (*LIBRARY_LOSSES, "sklearn.metrics.log_loss"), "eval-library-loss"),
    ForbiddenCall("ex2-tests", "evaluate", ("sklearn.metrics", "torchmetrics"), "eval-library-metric"),
)

EVALUATE_SCENARIOS = (Scenario("main", seed=0, n_samples=250, batch_size=100),
                      Scenario("one-sample", seed=9, n_samples=1, batch_size=100))
EVALUATE_EXPECTED = "lesson07-evaluate"


def _is_float(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, (bool, torch.Tensor))


def check_evaluate(evaluate: Callable[..., Any]) -> None:
    """Run ``evaluate(model, loader, criterion, device)`` on probes; raise on any bug.

    It runs on every scenario of :data:`EVALUATE_SCENARIOS` in turn (the first bug found is reported).
    """
    for scenario in EVALUATE_SCENARIOS:
        _check_evaluate_scenario(evaluate, scenario)


def _check_evaluate_scenario(evaluate: Callable[..., Any], scenario: Scenario) -> None:
    model = ProbeModel(scenario.network())
    model.train()  # a correct evaluate switches to eval mode itself
    before = [p.detach().clone() for p in model.parameters()]
    loader = ProbeLoader(scenario.loader(shuffle=False))
    with recording(model) as recorder:
        result, error = call_learner(evaluate, model, loader, ProbeCriterion(), torch.device("cpu"))
    wanted = stored.load(EVALUATE_EXPECTED)[scenario.name]
    expected_loss, expected_accuracy, correct, count = (wanted["loss"], wanted["accuracy"], wanted["correct"],
                                                        scenario.n_samples)
    expected = (f"on {scenario.describe()}: ({expected_loss:.6f}, {expected_accuracy:.6f}), the mean loss per "
                f"sample and the accuracy, parameters unchanged")
    findings = []
    if recorder.backwards or not same_parameters(model.parameters(), before):
        findings.append(Finding("eval-changed-parameters", f"backward ran {times(recorder.backwards)} and the "
                                f"parameters moved by up to {largest_difference(model.parameters(), before):.3g}"))
    findings += mode_and_device_findings(recorder, training=False)
    if error is not None:
        if findings:
            fail(findings, function="evaluate", expected=expected)
        raise crashed("evaluate", error, on=scenario.describe()) from error
    if not recorder.loss_calls and recorder.forwards:
        findings.append(Finding("criterion-ignored", f"the criterion was called 0 times for {len(loader)} batches"))
    if (skipped := skipped_batches(recorder, loader, scenario, training=False)) is not None:
        findings.append(skipped)
    if not (isinstance(result, tuple) and len(result) == 2 and all(_is_float(v) for v in result)):
        kinds = (", ".join(type(v).__name__ for v in result) if isinstance(result, (tuple, list))
                 else type(result).__name__)
        findings.append(Finding("eval-return", f"returned {result!r} ({kinds})"))
    elif (close(result[0], expected_accuracy) and close(result[1], expected_loss)
          and not close(expected_loss, expected_accuracy)):
        findings.append(Finding("eval-swapped", f"returned ({result[0]:.6f}, {result[1]:.6f}): the first value is the "
                                                f"accuracy ({correct} / {count}), the second the mean loss"))
    else:
        loss, accuracy = result
        if not close(loss, expected_loss):
            findings += loss_findings(loss, recorder, count, training=False) or [
                Finding("eval-loss", f"returned loss {loss:.6f}; the mean loss per sample over the {count} samples "
                                     f"is {expected_loss:.6f}")]
        if not math.isclose(accuracy, expected_accuracy, abs_tol=1e-6):
            findings.append(Finding("eval-accuracy", f"returned accuracy {accuracy!r}; correct predictions / samples "
                                                     f"= {correct} / {count} = {expected_accuracy:.6f}"))
    if findings:
        fail(findings, function="evaluate", expected=expected)


def probe(namespace: dict[str, Any], seed: int) -> dict[str, Any]:
    """The re-check: the learner's evaluate, on a model left in train mode, on each of the seed's loop scenarios."""
    values: dict[str, Any] = {}
    for key, build in LOOP_CASES:
        model, _, val, _ = build(seed)
        model.train()
        result = namespace["evaluate"](model, val, nn.CrossEntropyLoss(), torch.device("cpu"))
        pair = list(result) if isinstance(result, tuple) and len(result) == 2 else [None, None]
        values.update({f"{key}loss": number(pair[0]), f"{key}accuracy": number(pair[1]),
                       f"{key}parameters": parameters(model)})
    return values
