"""Lesson 05's re-check judges: numerical_gradient, relative_error, cross_entropy_grad and accumulated_grad.

The scenarios come from :mod:`course_utils.checks.lesson05` (``gradient_scenario``,
``relative_error_scenario``, ``ce_grad_scenario``, ``accumulate_scenario``); the references are the
central difference computed in float64, the formula of relative_error in float64, and autograd.
Tolerances are looser than the lesson's own checks, so that every correct style passes. Whether
autograd did work the exercise asks to do by hand cannot be seen in values and stays with the
in-kernel checks.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.nn import functional as F

from course_utils.checks.lesson05 import (
    accumulate_scenario,
    ce_grad_scenario,
    central_difference,
    counting_loss,
    gradient_scenario,
    relative_error_scenario,
)


def _close(found: Any, expected: torch.Tensor, rtol: float, atol: float) -> bool:
    return (type(found) is torch.Tensor and found.shape == expected.shape and found.is_floating_point()
            and bool(torch.allclose(found.double(), expected.double(), rtol=rtol, atol=atol)))


def _list(values: dict[str, Any], key: str, count: int) -> list[Any] | None:
    found = values.get(key)
    return found if isinstance(found, list) and len(found) == count else None


def judge_gradient_checker(values: dict[str, Any], seed: int) -> str:
    """Exercise 1: the central difference for given and default eps, float64 result, x untouched; relative_error."""
    weights, cases = gradient_scenario(seed)
    gradients = _list(values, "gradients", len(cases))
    if gradients is None or not all(isinstance(g, dict) for g in gradients):
        return "the re-check did not get one gradient per point"
    for found, (x, eps, _) in zip(gradients, cases):
        where = f"numerical_gradient at a {x.dtype} x of shape {tuple(x.shape)}" + \
            (" with the default eps" if eps is None else f" with eps={eps:g}")
        if not (type(found.get("x")) is torch.Tensor and found["x"].dtype == x.dtype and torch.equal(found["x"], x)):
            return f"{where} changed x"
        if found.get("nudged_x") is not False:
            return f"{where} nudged x itself in place: nudge a float64 copy (x.double() is x when x is float64)"
        result = found.get("gradient")
        if not (type(result) is torch.Tensor and result.shape == x.shape and result.dtype == torch.float64):
            return f"{where} did not return a float64 tensor of x's shape"
        expected = central_difference(weights, x, 1e-6 if eps is None else eps)
        if not _close(result, expected, 1e-5, 1e-6):
            return f"{where} differs from the central difference (f(x + eps·e_i) - f(x - eps·e_i)) / (2·eps)"
    errors = _list(values, "errors", 4)
    if errors is None:
        return "the re-check did not get one relative error per pair"
    for found, (a, b) in zip(errors[:2], relative_error_scenario(seed)[:2]):
        a64, b64 = a.double(), b.double()
        expected = ((a64 - b64).abs().max() / (a64.abs() + b64.abs()).max()).item()
        if type(found) is not float or not math.isclose(found, expected, rel_tol=1e-7, abs_tol=1e-12):
            return f"relative_error gave {found!r} where max|a - b| / max(|a| + |b|) in float64 is {expected:.6g}"
    if errors[2] != 0.0 or type(errors[2]) is not float:
        return f"relative_error of two all-zero tensors gave {errors[2]!r}, not 0.0"
    near, exact = relative_error_scenario(seed)[3]
    expected = ((near - exact).abs().max() / (near.abs() + exact.abs()).max()).item()
    if type(errors[3]) is not float or not math.isclose(errors[3], expected, rel_tol=1e-5):
        return f"relative_error of two float64 tensors a tiny step apart gave {errors[3]!r}, not {expected:.4g}"
    return ""


def _autograd_ce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    leaf = logits.detach().clone().requires_grad_(True)
    F.cross_entropy(leaf, targets).backward()
    return leaf.grad


def judge_ce_grad(values: dict[str, Any], seed: int) -> str:
    """Exercise 2: autograd's gradient of the mean cross-entropy, in the logits' dtype, logits untouched."""
    scenario = ce_grad_scenario(seed)
    cases = _list(values, "cases", len(scenario))
    if cases is None or not all(isinstance(c, dict) for c in cases):
        return "the re-check did not get one gradient per batch of logits"
    names = ("float32 logits", "float64 logits", "logits of ±900", "logits whose targets never reach the last class")
    for found, (logits, targets), name in zip(cases, scenario, names):
        where = f"cross_entropy_grad on {name} of shape {tuple(logits.shape)}"
        if not (type(found.get("logits")) is torch.Tensor and torch.equal(found["logits"], logits)):
            return f"{where} changed the logits"
        result = found.get("gradient")
        if not (type(result) is torch.Tensor and result.shape == logits.shape):
            return f"{where} did not return a tensor of the logits' shape"
        if result.dtype != logits.dtype:
            return f"{where} returned {result.dtype}, not {logits.dtype}"
        if not bool(torch.isfinite(result).all()):
            return f"{where} returned values that are not finite"
        rtol, atol = (1e-6, 1e-9) if logits.dtype == torch.float64 else (1e-4, 1e-6)
        if not _close(result, _autograd_ce(logits, targets), rtol, atol):
            return f"{where} differs from autograd's gradient, (softmax - one_hot) / N"
    return ""


def judge_accumulated_grad(values: dict[str, Any], seed: int) -> str:
    """Exercise 3: `times` × one call's gradient from `times` backward passes, in w's dtype; w and w.grad untouched."""
    scenario = accumulate_scenario(seed)
    cases = _list(values, "cases", len(scenario))
    if cases is None or not all(isinstance(c, dict) for c in cases):
        return "the re-check did not get one result per call"
    for found, (inputs, w, times) in zip(cases, scenario):
        where = f"accumulated_grad with times={times} and a {w.dtype} w"
        if not (_close(found.get("w"), w, 0.0, 0.0) and _close(found.get("w_grad"), torch.full_like(w, 0.5), 0.0, 0.0)):
            return f"{where} changed w or w.grad"
        leaf = w.clone().requires_grad_(True)
        single = torch.autograd.grad(counting_loss(inputs)(leaf), leaf)[0]
        result = found.get("gradient")
        if not _close(result, times * single, 1e-4, 1e-6):
            return f"{where} did not return {times} × the gradient of one call"
        if result.dtype != w.dtype:
            return f"{where} returned {result.dtype}, not {w.dtype}"
        if times > 1 and found.get("backwards") == 1:
            return f"{where} ran one backward pass and multiplied, instead of {times} backward passes"
    return ""


JUDGES = {"ex1-tests": judge_gradient_checker, "ex2-tests": judge_ce_grad, "ex3-tests": judge_accumulated_grad}
