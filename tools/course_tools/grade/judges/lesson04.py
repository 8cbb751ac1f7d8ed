"""Lesson 04's re-check judges: the learner's cross_entropy and choose_loss, against PyTorch.

The scenarios come from :mod:`course_utils.checks.lesson04` (``values_scenario``, ``stability_scenario``,
``weights_scenario``, ``task_scenario``); the reference is ``F.cross_entropy`` and PyTorch's loss
modules. Tolerances are looser than the lesson's own checks, so that every correct style passes.
Whether PyTorch's own cross-entropy did the work cannot be seen in values and stays with the
in-kernel checks.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from course_utils.checks.lesson04 import (
    WEIGHT_OPTIONS,
    stability_scenario,
    task_scenario,
    values_scenario,
    weights_scenario,
)

_LOSSES = {"multiclass": (nn.CrossEntropyLoss, torch.int64), "regression": (nn.MSELoss, torch.float32),
           "binary": (nn.BCEWithLogitsLoss, torch.float32)}


def _close(found: Any, expected: torch.Tensor, rtol: float, atol: float) -> bool:
    return (type(found) is torch.Tensor and found.shape == expected.shape and found.is_floating_point()
            and bool(torch.allclose(found.double(), expected.double(), rtol=rtol, atol=atol)))


def _reference(logits: torch.Tensor, targets: torch.Tensor, **options: Any) -> tuple[torch.Tensor, torch.Tensor]:
    leaf = logits.clone().requires_grad_(True)
    loss = F.cross_entropy(leaf, targets, **options)
    loss.backward()
    return loss.detach(), leaf.grad


def _cases(values: dict[str, Any], count: int) -> list[dict[str, Any]] | None:
    cases = values.get("cases")
    ok = isinstance(cases, list) and len(cases) == count and all(isinstance(c, dict) for c in cases)
    return cases if ok else None


def _plain(case: dict[str, Any], logits: torch.Tensor, targets: torch.Tensor, **options: Any) -> str:
    what = f"cross_entropy on {logits.dtype} logits of shape {tuple(logits.shape)}"
    loss, grad = _reference(logits, targets, **options)
    rtol, atol = (1e-5, 1e-5) if logits.dtype == torch.float64 else (1e-4, 1e-5)
    found = case.get("loss")
    if not (type(found) is torch.Tensor and found.shape == ()):
        return f"{what} did not return a 0-dim tensor"
    if not _close(found, loss, rtol, atol):
        return f"{what} gave {found.item():.6g}, F.cross_entropy gives {loss.item():.6g}"
    if found.dtype != logits.dtype:
        return f"{what} returned a {found.dtype} loss"
    if not _close(case.get("grad"), grad, 1e-4, 1e-6):
        return f"the gradient of {what} differs from F.cross_entropy's (or autograd cannot reach the logits)"
    return ""


def judge_values(values: dict[str, Any], seed: int) -> str:
    """Exercise 1's values: value, dtype and gradient on ordinary logits."""
    scenario = values_scenario(seed)
    cases = _cases(values, len(scenario))
    if cases is None:
        return "the re-check did not get one result per batch of logits"
    for case, (logits, targets) in zip(cases, scenario):
        problem = _plain(case, logits, targets)
        if problem:
            return problem
    return ""


def judge_stability(values: dict[str, Any], seed: int) -> str:
    """Exercise 1's stability: a finite, exact loss and finite gradients on logits in the thousands."""
    scenario = stability_scenario(seed)
    cases = _cases(values, len(scenario))
    if cases is None:
        return "the re-check did not get one result per batch of logits"
    for case, (logits, targets) in zip(cases, scenario):
        what = f"cross_entropy on {logits.dtype} logits {logits.tolist()}"
        reference = F.cross_entropy(logits, targets)
        found = case.get("loss")
        if not (type(found) is torch.Tensor and found.shape == () and found.is_floating_point()):
            return f"{what} did not return a 0-dim tensor"
        if not bool(torch.isfinite(found)):
            return f"{what} is not finite ({found.item()}), F.cross_entropy gives {reference.item():.6g}"
        # a few rounding steps of the dtype at the size of the largest logit
        atol = 16 * torch.finfo(logits.dtype).eps * float(logits.abs().max()) + 1e-5
        if not _close(found, reference, 1e-5, atol):
            return f"{what} gave {found.item():.6g}, F.cross_entropy gives {reference.item():.6g}"
        grad = case.get("grad")
        if grad is not None and not (type(grad) is torch.Tensor and bool(torch.isfinite(grad).all())):
            return f"the gradient of {what} is not finite"
    return ""


def judge_weights(values: dict[str, Any], seed: int) -> str:
    """Exercise 1's options: class weights, label smoothing and both, value and gradient."""
    logits, targets, weight, eps = weights_scenario(seed)
    cases = _cases(values, len(WEIGHT_OPTIONS))
    if cases is None:
        return "the re-check did not get one result per set of options"
    for case, (use_weight, use_smoothing) in zip(cases, WEIGHT_OPTIONS):
        options: dict[str, Any] = {}
        if use_weight:
            options["weight"] = weight
        if use_smoothing:
            options["label_smoothing"] = eps
        problem = _plain(case, logits, targets, **options)
        if problem:
            shown = " and ".join(["class weights"] * use_weight + [f"label_smoothing={eps}"] * use_smoothing)
            return f"{problem}{' (with ' + shown + ')' if shown else ''}"
    return ""


def judge_choose_loss(values: dict[str, Any], seed: int) -> str:
    """Exercise 2: a new loss module and the target dtype of each task, recognised by what the module computes."""
    for task, (outputs, targets) in task_scenario(seed).items():
        loss_class, dtype = _LOSSES[task]
        found = values.get(task)
        name = f'choose_loss("{task}")'
        if not isinstance(found, dict) or found.get("pair") is not True:
            return f"{name} did not return a pair (loss module, target dtype)"
        if found.get("module") is not True:
            return f"{name} did not return a loss module object"
        if found.get("dtype") != str(dtype):
            return f"{name} asks for targets of dtype {found.get('dtype')}, not {dtype}"
        expected = loss_class()(outputs, targets.to(dtype))
        if not _close(found.get("loss"), expected, 1e-4, 1e-5):
            return f"the loss module of {name} does not compute what nn.{loss_class.__name__}() computes"
        if found.get("fresh") is not True:
            return f"{name} returns the same loss object at every call"
    return ""


JUDGES = {"ex1-values-tests": judge_values, "ex1-stability-tests": judge_stability,
          "ex1-weights-smoothing-tests": judge_weights, "ex2-tests": judge_choose_loss}
