"""Lesson 05's re-check judges: numerical_gradient, relative_error, cross_entropy_grad and accumulated_grad.

The scenarios come from the exercise modules of :mod:`course_utils.checks.lesson05` (``ex1.gradient_scenario``,
``ex1.relative_error_scenario``, ``ex2.ce_grad_scenario``, ``ex3.accumulate_scenario``); the references are the
central difference computed in float64, the formula of relative_error in float64, and autograd.
Tolerances are looser than the lesson's own checks, so that every correct style passes. Whether
autograd did work the exercise asks to do by hand cannot be seen in values and stays with the
in-kernel checks.

``EXPECTED`` computes, with the same references, the results the visible checks compare with for
their fixed inputs (``course expected`` stores them in ``course_utils/checks/expected/``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch.nn import functional as F

from course_tools.grade.judges._compare import tensor_close
from course_utils.checks.lesson05.common import CHECK_SEEDS
from course_utils.checks.lesson05.ex1 import (
    TINY_PAIR,
    CoupledFunction,
    check_function,
    gradient_check_inputs,
    gradient_scenario,
    relative_error_inputs,
    relative_error_scenario,
)
from course_utils.checks.lesson05.ex2 import ce_check_inputs, ce_grad_scenario
from course_utils.checks.lesson05.ex3 import accumulate_check_inputs, accumulate_scenario, counting_loss


def central_difference(f: Callable[[torch.Tensor], Any], x: torch.Tensor, eps: float, *,
                       one_sided: bool = False) -> torch.Tensor:
    """The exact central (or forward) difference of ``f`` at ``x``, in float64, one element at a time."""
    point, grad = x.detach().double().clone(), torch.zeros(x.shape, dtype=torch.float64)
    flat_point, flat_grad = point.view(-1), grad.view(-1)
    base = float(f(point))
    for i in range(flat_point.numel()):
        original = flat_point[i].item()
        flat_point[i] = original + eps
        plus = float(f(point))
        flat_point[i] = original - eps
        minus = float(f(point))
        flat_point[i] = original
        flat_grad[i] = (plus - base) / eps if one_sided else (plus - minus) / (2 * eps)
    return grad


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
        expected = central_difference(CoupledFunction(weights.double(), as_float=True), x, 1e-6 if eps is None else eps)
        if not tensor_close(result, expected, rtol=1e-5, atol=1e-6):
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
        if not tensor_close(result, _autograd_ce(logits, targets), rtol=rtol, atol=atol):
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
        old_grad = torch.full_like(w, 0.5)
        if not (tensor_close(found.get("w"), w, rtol=0.0, atol=0.0)
                and tensor_close(found.get("w_grad"), old_grad, rtol=0.0, atol=0.0)):
            return f"{where} changed w or w.grad"
        leaf = w.clone().requires_grad_(True)
        single = torch.autograd.grad(counting_loss(inputs)(leaf), leaf)[0]
        result = found.get("gradient")
        if not tensor_close(result, times * single, rtol=1e-4, atol=1e-6):
            return f"{where} did not return {times} × the gradient of one call"
        if result.dtype != w.dtype:
            return f"{where} returned {result.dtype}, not {w.dtype}"
        if times > 1 and found.get("backwards") == 1:
            return f"{where} ran one backward pass and multiplied, instead of {times} backward passes"
    return ""


JUDGES = {"ex1-tests": judge_gradient_checker, "ex2-tests": judge_ce_grad, "ex3-tests": judge_accumulated_grad}


# --- EXPECTED: what the visible checks compare with, for their fixed inputs --------------------------

def _relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    a64, b64 = a.double(), b.double()
    return ((a64 - b64).abs().max() / (a64.abs() + b64.abs()).max().clamp(min=torch.finfo(torch.float64).tiny)).item()


def _numerical_gradient_expected(seed: int) -> list[dict[str, Any]]:
    results = []
    for weights, x, eps, _ in gradient_check_inputs(seed):
        f = lambda t, w=weights.double(): check_function(w, t)  # noqa: E731 - the check's f, in float64
        used = 1e-6 if eps is None else eps
        results.append({"central": central_difference(f, x, used).tolist(),
                        "one_sided": central_difference(f, x, used, one_sided=True).tolist()})
    return results


def _relative_error_expected(seed: int) -> dict[str, Any]:
    a, b = relative_error_inputs(seed)
    a64, b64 = a.double(), b.double()
    a32, b32 = a.float(), b.float()
    largest = (a64 - b64).abs().max().item()
    mistakes = [  # in the order the check tries them: the most specific formula first
        ["relerr-float32", [((a32 - b32).abs().max() / (a32.abs() + b32.abs()).max()).item()]],
        ["relerr-no-abs", [((a64 - b64).max() / (a64.abs() + b64.abs()).max()).item()]],
        ["relerr-not-max", [((a64 - b64).abs().mean() / (a64.abs() + b64.abs()).mean()).item(),
                            ((a64 - b64).abs().mean() / (a64.abs() + b64.abs()).max()).item(),
                            ((a64 - b64).abs().sum() / (a64.abs() + b64.abs()).sum()).item()]],
        ["relerr-elementwise", [((a64 - b64).abs() / (a64.abs() + b64.abs())).max().item()]],
        ["relerr-scale", [largest / b64.abs().max().item(), largest / a64.abs().max().item(),
                          largest / max(a64.abs().max().item(), b64.abs().max().item())]],
    ]
    near, exact = (torch.tensor(values, dtype=torch.float64) for values in TINY_PAIR)
    return {"value": _relative_error(a, b), "mistakes": mistakes, "tiny": _relative_error(near, exact)}


def _ce_expected(seed: int) -> dict[str, Any]:
    batch = ce_check_inputs(seed)
    logits, targets = batch["logits"], batch["targets"]
    n, classes = logits.shape
    one_hot = F.one_hot(targets, classes).float()
    mistakes = [  # in the order the check tries them, after no-mean and sign (which it derives from float32)
        ["cegrad-softmax-dim", ((torch.softmax(logits, dim=0) - one_hot) / n).tolist()],
        ["cegrad-no-softmax", ((logits - one_hot) / n).tolist()],
        ["cegrad-log-softmax", ((torch.log_softmax(logits, dim=1) - one_hot) / n).tolist()],
        ["cegrad-divide-by-classes", ((torch.softmax(logits, dim=1) - one_hot) / classes).tolist()],
    ]
    return {"float32": _autograd_ce(logits, targets).tolist(), "mistakes": mistakes,
            "float64": _autograd_ce(batch["logits64"], batch["targets64"]).tolist(),
            "big": _autograd_ce(batch["big"], batch["big_targets"]).tolist(),
            "missing": _autograd_ce(logits, batch["missing"]).tolist()}


def _accumulated_expected(seed: int) -> list[list[Any]]:
    singles = []
    for inputs, w, _ in accumulate_check_inputs(seed):
        leaf = w.clone().requires_grad_(True)
        singles.append(torch.autograd.grad(counting_loss(inputs)(leaf), leaf)[0].tolist())
    return singles


def _per_seed(build: Callable[[int], Any]) -> Callable[[], dict[str, Any]]:
    return lambda: {str(seed): build(seed) for seed in CHECK_SEEDS}


EXPECTED = {
    "lesson05-numerical-gradient": _per_seed(_numerical_gradient_expected),
    "lesson05-relative-error": _per_seed(_relative_error_expected),
    "lesson05-ce-grad": _per_seed(_ce_expected),
    "lesson05-accumulated-grad": _per_seed(_accumulated_expected),
}
