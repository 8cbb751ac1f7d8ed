"""Lesson 04's re-check judges: the learner's cross_entropy and choose_loss, against PyTorch.

The scenarios come from the lesson's exercise modules, ``course_utils.checks.lesson04.ex1`` and ``ex2``
(``values_scenario``, ``stability_scenario``, ``weights_scenario``, ``task_scenario``); the reference is ``F.cross_entropy`` and PyTorch's loss
modules. Tolerances are looser than the lesson's own checks, so that every correct style passes.
Whether PyTorch's own cross-entropy did the work cannot be seen in values and stays with the
in-kernel checks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from course_tools.grade.judges._compare import tensor_close
from course_utils.checks.lesson04.common import CHECK_SEEDS
from course_utils.checks.lesson04.ex1 import (
    MISTAKES,
    WEIGHT_OPTIONS,
    Case,
    stability_cases,
    stability_scenario,
    values_cases,
    values_scenario,
    weights_cases,
    weights_scenario,
)
from course_utils.checks.lesson04.ex2 import TASKS, task_outputs, task_scenario

_LOSSES = {"multiclass": (nn.CrossEntropyLoss, torch.int64), "regression": (nn.MSELoss, torch.float32),
           "binary": (nn.BCEWithLogitsLoss, torch.float32)}


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
    if not tensor_close(found, loss, rtol=rtol, atol=atol):
        return f"{what} gave {found.item():.6g}, F.cross_entropy gives {loss.item():.6g}"
    if found.dtype != logits.dtype:
        return f"{what} returned a {found.dtype} loss"
    if not tensor_close(case.get("grad"), grad, rtol=1e-4, atol=1e-6):
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
        if not tensor_close(found, reference, rtol=1e-5, atol=atol):
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
        if not tensor_close(found.get("loss"), expected):
            return f"the loss module of {name} does not compute what nn.{loss_class.__name__}() computes"
        if found.get("fresh") is not True:
            return f"{name} returns the same loss object at every call"
    return ""


JUDGES = {"ex1-values-tests": judge_values, "ex1-stability-tests": judge_stability,
          "ex1-weights-smoothing-tests": judge_weights, "ex2-tests": judge_choose_loss}


# --- the visible checks' expected results (course_utils/checks/expected/lesson04-*.json) -----------------
# For each case of a check: F.cross_entropy's loss, its gradient on the logits, the per-sample losses, and the
# values of the typical mistakes ([index in MISTAKES, value]), most specific first.

def _value_mistakes(logits: torch.Tensor, targets: torch.Tensor) -> list[tuple[str, str, torch.Tensor]]:
    """(code, what the result equals, value) for each typical mistake in the plain cross-entropy."""
    n, n_classes = logits.shape
    z = logits.detach().double()
    log_p = torch.log_softmax(z, dim=1)
    nll = -log_p[torch.arange(n), targets]
    column_max = z.max(dim=0, keepdim=True).values
    shifted = z - column_max
    wrong_shift = -(shifted - shifted.exp().sum(dim=1, keepdim=True).log())[torch.arange(n), targets]
    return [
        ("ce-sum-reduction", "the sum of the per-sample losses", nll.sum()),
        ("ce-mean-over-classes", "the sum of the per-sample losses divided by N·C", nll.sum() / (n * n_classes)),
        ("ce-double-softmax", "the cross-entropy of softmax(logits)",
         F.cross_entropy(torch.softmax(z, dim=1), targets)),
        ("ce-dim", "the cross-entropy with the softmax over dim=0",
         -torch.log_softmax(z, dim=0)[torch.arange(n), targets].mean()),
        ("ce-dim", "the cross-entropy with each column's maximum subtracted", wrong_shift.mean()),
        ("ce-sign", "minus the cross-entropy", -nll.mean()),
        ("ce-missing-log", "the mean of -p (the probability of the true class, without log)",
         -torch.softmax(z, dim=1)[torch.arange(n), targets].mean()),
        ("ce-missing-log", "the mean of 1 - p (the probability of the true class, without log)",
         1 - torch.softmax(z, dim=1)[torch.arange(n), targets].mean()),
        ("ce-index-all-rows", "the mean of -log_p[:, targets], an (N, N) table", -log_p[:, targets].mean()),
        ("ce-index-all-rows", "the mean of -log_p[:, targets], an (N, N) table, summed per row",
         -log_p[:, targets].sum(dim=1).mean()),
    ]


def _weighted_mistakes(logits: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor | None,
                       eps: float) -> list[tuple[str, str, torch.Tensor]]:
    n, n_classes = logits.shape
    z = logits.detach().double()
    log_p = torch.log_softmax(z, dim=1)
    nll = -log_p[torch.arange(n), targets]
    w = torch.ones(n_classes, dtype=torch.float64) if weight is None else weight.double()
    w_y = w[targets]
    spread = -(log_p * w).sum(dim=1)
    unweighted_spread = -log_p.sum(dim=1)
    others = unweighted_spread - nll
    mistakes = []
    if weight is not None:
        mistakes += [
            ("ce-weight-ignored", "the loss without weights",
             ((1 - eps) * nll + eps / n_classes * unweighted_spread).mean()),
            ("ce-weight-mean", "the weighted sum divided by N",
             ((1 - eps) * (w_y * nll).sum() + eps / n_classes * spread.sum()) / n),
        ]
    if eps:
        mistakes += [
            ("ce-smoothing-ignored", "the loss without label smoothing", (w_y * nll).sum() / w_y.sum()),
            ("ce-smoothing-classes-hard-coded", "the formula with eps / 3 instead of eps / C",
             ((1 - eps) * (w_y * nll).sum() + eps / 3 * spread.sum()) / w_y.sum()),
            ("ce-smoothing-not-divided", "the formula with eps instead of eps / C",
             ((1 - eps) * (w_y * nll).sum() + eps * spread.sum()) / w_y.sum()),
            ("ce-smoothing-other-classes", "(1 - eps) * nll + eps / (C - 1) * the other classes' -log p",
             ((1 - eps) * nll + eps / (n_classes - 1) * others).mean()),
        ]
    if weight is not None and eps:
        mistakes += [
            ("ce-smoothing-unweighted", "the formula with an unweighted smoothing term",
             ((1 - eps) * (w_y * nll).sum() + eps / n_classes * unweighted_spread.sum()) / w_y.sum()),
            ("ce-smoothing-denominator", "the formula with the smoothing term divided by N",
             (1 - eps) * (w_y * nll).sum() / w_y.sum() + eps / n_classes * spread.sum() / n),
        ]
    return mistakes


# What a returned module computes, recognised by its value on a probe (the first that matches wins).
_LOOKALIKES: dict[str, tuple[tuple[str, str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]], ...]] = {
    "multiclass": (
        ("loss-reduction-sum", "nn.CrossEntropyLoss(reduction='sum')",
         lambda o, t: F.cross_entropy(o, t, reduction="sum")),
        ("loss-nll-on-logits", "nn.NLLLoss on raw logits", lambda o, t: F.nll_loss(o, t)),
    ),
    "regression": (
        ("loss-reduction-sum", "nn.MSELoss(reduction='sum')", lambda o, t: F.mse_loss(o, t, reduction="sum")),
        ("loss-wrong-for-task", "nn.L1Loss", lambda o, t: F.l1_loss(o, t)),
        ("loss-wrong-for-task", "nn.SmoothL1Loss / nn.HuberLoss", lambda o, t: F.smooth_l1_loss(o, t)),
        ("loss-wrong-for-task", "nn.BCEWithLogitsLoss", lambda o, t: F.binary_cross_entropy_with_logits(o, t)),
    ),
    "binary": (
        ("loss-ce-on-one-logit", "nn.CrossEntropyLoss on one logit (always 0)", lambda o, t: F.cross_entropy(o, t)),
        ("loss-reduction-sum", "nn.BCEWithLogitsLoss(reduction='sum')",
         lambda o, t: F.binary_cross_entropy_with_logits(o, t, reduction="sum")),
        ("loss-bce-on-logits", "nn.BCELoss", lambda o, t: F.binary_cross_entropy(o.clamp(0, 1), t)),
        ("loss-wrong-for-task", "nn.MSELoss", lambda o, t: F.mse_loss(o, t)),
        ("loss-wrong-for-task", "nn.L1Loss", lambda o, t: F.l1_loss(o, t)),
    ),
}


def _case_results(case: Case) -> dict[str, Any]:
    logits, targets, options = case
    options = {k: v for k, v in options.items() if v is not None and (k != "label_smoothing" or v)}
    loss, grad = _reference(logits, targets, **options)
    if options:
        mistakes = _weighted_mistakes(logits, targets, options.get("weight"), options.get("label_smoothing", 0.0))
    else:
        mistakes = _value_mistakes(logits, targets)
    return {"loss": loss.item(), "grad": _short(grad), "per_sample": _short(F.cross_entropy(
                logits, targets, reduction="none", **options)),
            "mistakes": [[MISTAKES.index((code, equals)), float(f"{float(value):.10g}")]
                         for code, equals, value in mistakes]}


def _short(values: torch.Tensor) -> list[Any]:
    """Values to 10 significant digits (the checks compare to 1e-6 at best): the stored files stay small."""
    return [float(f"{v:.10g}") for v in values.double().flatten().tolist()] if values.ndim <= 1 else \
        [_short(row) for row in values]


def _loss_only(case: Case) -> dict[str, Any]:
    """A stability row: the check compares the loss (and per-sample losses, for a result of the wrong shape)."""
    logits, targets, _ = case
    return {"loss": F.cross_entropy(logits, targets).item(),
            "per_sample": _short(F.cross_entropy(logits, targets, reduction="none"))}


def _cases_expected(kind: str, build: Callable[[int], list[Case]],
                    loss_only: Callable[[int], bool] = lambda index: False) -> Any:
    """The builder of a check's stored results: each case in full, or its loss only where the check needs no more."""
    def expected() -> dict[str, Any]:
        return {str(seed): [_loss_only(case) if loss_only(index) else _case_results(case)
                            for index, case in enumerate(build(seed))] for seed in CHECK_SEEDS[kind]}
    return expected


def _choose_loss_expected() -> dict[str, Any]:
    results = {}
    for seed in CHECK_SEEDS["choose"]:
        per_task = {}
        for index, task in enumerate(TASKS):
            loss_class, dtype = _LOSSES[task]
            outputs, targets = task_outputs(task, seed + index)
            per_task[task] = {"loss": loss_class.__name__, "dtype": str(dtype).removeprefix("torch."),
                              "value": loss_class()(outputs, targets.to(dtype)).item(),
                              "lookalikes": [[code, name, float(rule(outputs, targets))]
                                             for code, name, rule in _LOOKALIKES[task]]}
        results[str(seed)] = per_task
    return results


EXPECTED = {"lesson04-values": _cases_expected("values", values_cases, lambda index: index == 1),
            "lesson04-stability": _cases_expected("stability", stability_cases, lambda index: index > 0),
            "lesson04-weights": _cases_expected("weights", weights_cases),
            "lesson04-choose-loss": _choose_loss_expected}
