"""Lesson 07's re-check judges and reference answers: train_one_epoch, evaluate and fit, against PyTorch.

The reference loop and evaluation live here, on the grader's side only: a module the student's
kernel can import must never hold a complete answer. The scenarios come from
:func:`course_utils.checks.lesson07.common.loop_scenario` and
:func:`~course_utils.checks.lesson07.common.one_sample_scenario`, which the kernel's probes build from
the same seed. ``EXPECTED`` computes, with the same references, the stored results that the visible
checks of :mod:`course_utils.checks.lesson07` compare with.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from course_tools.grade.judges._compare import close, tensors_close
from course_utils.checks.lesson07.common import loop_scenario, one_sample_scenario
from course_utils.checks.lesson07.ex1 import TRAIN_EXPECTED, TRAIN_SCENARIOS
from course_utils.checks.lesson07.ex2 import EVALUATE_EXPECTED, EVALUATE_SCENARIOS
from course_utils.checks.lesson07.ex3 import FitStandIns


def reference_epoch(model: nn.Module, loader: DataLoader, criterion: nn.Module, optimizer: torch.optim.Optimizer,
                    device: torch.device) -> float:
    """A correct training epoch: the mean loss per sample."""
    model.train()
    total, count = 0.0, 0
    for features, targets in loader:
        features, targets = features.to(device), targets.to(device)
        optimizer.zero_grad()
        loss = criterion(model(features), targets)
        loss.backward()
        optimizer.step()
        total, count = total + loss.item() * len(targets), count + len(targets)
    return total / count


def reference_evaluate(model: nn.Module, loader: DataLoader, criterion: nn.Module,
                       device: torch.device) -> tuple[float, float]:
    """A correct evaluation: mean loss per sample and accuracy, without gradients, in eval mode."""
    model.eval()
    total, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for features, targets in loader:
            features, targets = features.to(device), targets.to(device)
            logits = model(features)
            total += criterion(logits, targets).item() * len(targets)
            correct += int((logits.argmax(dim=1) == targets).sum())
            count += len(targets)
    return total / count, correct / count


_CASES = (("", loop_scenario, ""), ("one_sample_", one_sample_scenario, "on a loader of a single sample, "))


def judge_train_one_epoch(values: dict[str, Any], seed: int) -> str:
    """Exercise 1: parameters and mean loss after one epoch, as PyTorch's reference loop gives them.

    Two scenarios from the seed: a loader with a smaller last batch, and a loader of one sample.
    """
    for key, build, where in _CASES:
        model, train, _, optimizer = build(seed)
        loss = reference_epoch(model, train, nn.CrossEntropyLoss(), optimizer, torch.device("cpu"))
        if not tensors_close(values.get(f"{key}parameters"), [p.detach() for p in model.parameters()]):
            return (f"{where}the parameters after one epoch differ from PyTorch's reference loop "
                    "on the same seeded batches")
        if not close(values.get(f"{key}loss"), loss):
            found = _shown(values.get(f"{key}loss"))
            return f"{where}the returned loss {found} is not the mean loss per sample ({loss:.6f})"
    return ""


def _shown(value: Any) -> str:
    """A received value in a reason, never longer than a number (hostile values must not be formatted)."""
    return f"{value:.6f}" if type(value) is float else f"a {type(value).__name__}"


def judge_evaluate(values: dict[str, Any], seed: int) -> str:
    """Exercise 2: (mean loss, accuracy) on the validation loader, parameters untouched; also on one sample."""
    for key, build, where in _CASES:
        model, _, val, _ = build(seed)
        before = [p.detach().clone() for p in model.parameters()]
        loss, accuracy = reference_evaluate(model, val, nn.CrossEntropyLoss(), torch.device("cpu"))
        found_loss, found_accuracy = values.get(f"{key}loss"), values.get(f"{key}accuracy")
        if not tensors_close(values.get(f"{key}parameters"), before):
            return f"{where}evaluation changed the model's parameters"
        if close(found_loss, loss) and close(found_accuracy, accuracy):
            continue
        if close(found_loss, accuracy) and close(found_accuracy, loss):
            return f"{where}evaluate returned (accuracy, loss), swapped: expected ({loss:.6f}, {accuracy:.6f})"
        return (f"{where}returned ({_shown(found_loss)}, {_shown(found_accuracy)}), "
                f"expected ({loss:.6f}, {accuracy:.6f})")
    return ""


def judge_fit(values: dict[str, Any], seed: int) -> str:
    """Exercise 3: fit on its own, with the probe's stand-ins for train_one_epoch and evaluate.

    The kernel holds no correct loop to give fit: the probe hands it
    :class:`course_utils.checks.lesson07.ex3.FitStandIns`, which are no answers, and a correct fit (here,
    on the grader's side) called with the same stand-ins gives the expected history and parameters.
    """
    model, train, val, optimizer = loop_scenario(seed)
    stand_ins = FitStandIns(optimizer)
    expected = []
    for epoch in (1, 2):
        loss = stand_ins.train_one_epoch(model, train, nn.CrossEntropyLoss(), optimizer, torch.device("cpu"))
        val_loss, accuracy = stand_ins.evaluate(model, val, nn.CrossEntropyLoss(), torch.device("cpu"))
        expected.append([float(epoch), loss, val_loss, accuracy])
    rows = values.get("history")
    if not (isinstance(rows, list) and len(rows) == 2
            and all(isinstance(r, list) and len(r) == 4 and all(close(a, b) for a, b in zip(r, e))
                    for r, e in zip(rows, expected))):
        return ("the history of fit does not match train_one_epoch then evaluate, once each per epoch, "
                "with fit's own model, loaders, criterion, optimizer and device")
    if not tensors_close(values.get("parameters"), [p.detach() for p in model.parameters()]):
        return "the model's parameters after fit are not those that its two epochs of train_one_epoch left"
    return ""


JUDGES = {"ex1-tests": judge_train_one_epoch, "ex2-tests": judge_evaluate, "ex3-tests": judge_fit}


def _expected_train_one_epoch() -> dict[str, dict[str, list]]:
    """On each visible scenario of check_train_one_epoch, a correct epoch's parameters after it, the sum of
    squares of all parameters after every step (to find the first step that differs) and the gradient the
    first step applies (to recognise a scaled loss)."""
    results = {}
    for scenario in TRAIN_SCENARIOS:
        network = scenario.network()
        optimizer = torch.optim.SGD(network.parameters(), lr=scenario.recipe.learning_rate,
                                    momentum=scenario.recipe.momentum)
        step_norms: list[float] = []
        first_gradient: list[list] = []

        def before_step(*_: Any, network: nn.Module = network, first_gradient: list = first_gradient) -> None:
            if not first_gradient:
                first_gradient.extend(p.grad.tolist() for p in network.parameters())

        def after_step(*_: Any, network: nn.Module = network, step_norms: list = step_norms) -> None:
            step_norms.append(sum(float(p.detach().double().square().sum()) for p in network.parameters()))

        optimizer.register_step_pre_hook(before_step)
        optimizer.register_step_post_hook(after_step)
        reference_epoch(network, scenario.loader(shuffle=True), nn.CrossEntropyLoss(), optimizer, torch.device("cpu"))
        results[scenario.name] = {"parameters": [p.detach().tolist() for p in network.parameters()],
                                  "step_norms": step_norms, "first_gradient": first_gradient}
    return results


def _expected_evaluate() -> dict[str, dict[str, float]]:
    """Mean loss, accuracy and correct predictions on each visible scenario of check_evaluate."""
    results = {}
    for scenario in EVALUATE_SCENARIOS:
        loss, accuracy = reference_evaluate(scenario.network(), scenario.loader(shuffle=False), nn.CrossEntropyLoss(),
                                            torch.device("cpu"))
        results[scenario.name] = {"loss": loss, "accuracy": accuracy, "correct": round(accuracy * scenario.n_samples)}
    return results


EXPECTED = {TRAIN_EXPECTED: _expected_train_one_epoch, EVALUATE_EXPECTED: _expected_evaluate}
