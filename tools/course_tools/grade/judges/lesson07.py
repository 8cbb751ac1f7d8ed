"""Lesson 07's re-check judges and reference answers: train_one_epoch, evaluate and fit, against PyTorch.

The reference loop and evaluation live here, on the grader's side only: a module the student's
kernel can import must never hold a complete answer. The scenario comes from
:func:`course_utils.verdict_probes.loop_scenario`, which the kernel's probes build from the same seed.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from course_tools.grade.judges._compare import close, tensors_close
from course_utils.verdict_probes import FitStandIns, loop_scenario


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


def judge_train_one_epoch(values: dict[str, Any], seed: int) -> str:
    """Exercise 1: parameters and mean loss after one epoch, as PyTorch's reference loop gives them."""
    model, train, _, optimizer = loop_scenario(seed)
    loss = reference_epoch(model, train, nn.CrossEntropyLoss(), optimizer, torch.device("cpu"))
    if not tensors_close(values.get("parameters"), [p.detach() for p in model.parameters()]):
        return "the parameters after one epoch differ from PyTorch's reference loop on the same seeded batches"
    if not close(values.get("loss"), loss):
        return f"the returned loss {values.get('loss')!r} is not the mean loss per sample ({loss:.6f})"
    return ""


def judge_evaluate(values: dict[str, Any], seed: int) -> str:
    """Exercise 2: (mean loss, accuracy) on the validation loader, parameters untouched."""
    model, _, val, _ = loop_scenario(seed)
    before = [p.detach().clone() for p in model.parameters()]
    loss, accuracy = reference_evaluate(model, val, nn.CrossEntropyLoss(), torch.device("cpu"))
    if not tensors_close(values.get("parameters"), before):
        return "evaluation changed the model's parameters"
    if not (close(values.get("loss"), loss) and close(values.get("accuracy"), accuracy)):
        return f"returned ({values.get('loss')!r}, {values.get('accuracy')!r}), expected ({loss:.6f}, {accuracy:.6f})"
    return ""


def judge_fit(values: dict[str, Any], seed: int) -> str:
    """Exercise 3: fit on its own, with the probe's stand-ins for train_one_epoch and evaluate.

    The kernel holds no correct loop to give fit: the probe hands it
    :class:`course_utils.verdict_probes.FitStandIns`, which are no answers, and a correct fit (here,
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
