"""Lesson 05, Exercise 1 · A gradient checker: numerical_gradient and relative_error.

The check runs numerical_gradient on a function that records every point it is evaluated at, their
dtype and whether they track gradients, so that a mistake is named by what it does: a float32 nudge
is seen in the dtype ``f`` receives, a one-sided difference in the points it is evaluated at,
autograd in the calls made to it. relative_error runs on pairs chosen to tell the usual wrong
formulas apart, whose values are stored (``expected/lesson05-relative-error.json``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from course_utils.checks import expected as stored
from course_utils.checks.learner import call_learner, error_text
from course_utils.checks.lesson05.common import (
    AUTOGRAD,
    LESSON,
    autograd_calls,
    close,
    probe_value,
    stored_results,
    worst_element,
)
from course_utils.diagnoses import Exercise, ForbiddenCall, fail_with

# The section a student who made these mistakes revisits.
SECTION = "4 · Is the gradient right? Finite differences"
EXERCISE = Exercise(LESSON, "ex1-tests", "Exercise 1 · A gradient checker")
DIAGNOSES = EXERCISE.diagnoses(
    # numerical_gradient
    ("numgrad-autograd",
     "numerical_gradient used autograd (backward / torch.autograd.grad / requires_grad): not allowed here",
     "the exercise is to estimate the gradient from values of f alone: evaluate f at x ± eps·e_i, "
     "inside torch.no_grad() if you like, and never call backward().",
     "not-allowed", SECTION),
    ("numgrad-f-never-called",
     "numerical_gradient never called f, so its result cannot be the gradient of f (a hard-coded result?)",
     "evaluate f at x + eps·e_i and x - eps·e_i for every element i; the gradient comes from those values.",
     "not-allowed", SECTION),
    ("numgrad-float32",
     "f was evaluated at float32 points: the nudges were made in float32",
     "copy x to float64 before nudging (point = x.detach().double().clone()): in float32, "
     "1 + 1e-6 is already rounded and f(x+eps) - f(x-eps) keeps only two or three correct digits.",
     "numerics", SECTION),
    ("numgrad-all-at-once",
     "several elements of x were nudged in the same call of f (all at once, or one not put back)",
     "nudge one element at a time and put it back before the next: only element i moves by ±eps.",
     "numerics", SECTION),
    ("numgrad-one-sided",
     "a one-sided difference: f was evaluated at x + eps·e_i (or x - eps·e_i) only",
     "use the central difference (f(x + eps·e_i) - f(x - eps·e_i)) / (2·eps): its error is about eps², "
     "the one-sided one's about eps.",
     "numerics", SECTION),
    ("numgrad-eps-ignored",
     "the nudges did not have the size eps that was passed in",
     "nudge by the eps argument itself, not by a number of your own.",
     "interface", SECTION),
    ("numgrad-default-eps",
     "called without eps, the nudges did not have the default size 1e-6",
     "keep the signature numerical_gradient(f, x, eps=1e-6): a larger eps adds truncation error (about eps²), "
     "a much smaller one rounding error (about 1e-16 / eps).",
     "numerics", SECTION),
    ("numgrad-divide-by-eps",
     "the gradient is twice the central difference: divided by eps instead of 2·eps",
     "the two points x + eps and x - eps are 2·eps apart: divide f(x+eps) - f(x-eps) by 2·eps.",
     "numerics", SECTION),
    ("numgrad-shape",
     "numerical_gradient did not return a tensor of x's shape",
     "build the gradient with torch.zeros_like(point) and fill it element by element (view(-1) helps).",
     "shapes", SECTION),
    ("numgrad-dtype",
     "numerical_gradient did not return a float64 tensor",
     "return the float64 gradient as it is; do not convert it back to x's dtype.",
     "dtypes", SECTION),
    ("numgrad-changed-x",
     "numerical_gradient changed the caller's x",
     "nudge a float64 copy, never x: x.double() is x itself when x is already float64, so clone it.",
     "interface", SECTION),
    ("numgrad-nudged-x",
     "numerical_gradient nudged the caller's float64 x itself, in place (and put it back)",
     "nudge a float64 copy, never x: x.double() and x.to(torch.float64) are x itself when x is already "
     "float64, so clone it (point = x.detach().double().clone()). While f runs, x must hold its own values.",
     "interface", SECTION),
    ("numgrad-wrong-values",
     "numerical_gradient does not match the central difference",
     "grad[i] = (f(x + eps·e_i) - f(x - eps·e_i)) / (2·eps), with e_i one element set to 1.",
     "numerics", SECTION),
    ("numgrad-raised",
     "numerical_gradient raised an exception",
     "the lines above this message show where in your code it was raised; note that f may return a one-element "
     "tensor or a Python float, and float(f(point)) takes both.",
     "interface", SECTION),
    # relative_error
    ("relerr-not-a-float",
     "relative_error did not return a Python float",
     "return a float: call .item() on the one-element result.",
     "interface", SECTION),
    ("relerr-zero-division",
     "relative_error of two all-zero tensors is not 0 (0 / 0)",
     "divide by max(max(|a| + |b|), tiny), with tiny = torch.finfo(torch.float64).tiny.",
     "numerics", SECTION),
    ("relerr-float32",
     "relative_error was computed in float32, which cannot see a difference of 1e-9",
     "convert both tensors to float64 (a.double(), b.double()) before subtracting.",
     "numerics", SECTION),
    ("relerr-no-abs",
     "relative_error used max(a - b) instead of max|a - b|",
     "take the absolute value: (a - b).abs().max().",
     "numerics", SECTION),
    ("relerr-not-max",
     "relative_error averaged (or summed) over the elements instead of taking the maximum",
     "use max_i |a_i - b_i| / max_i (|a_i| + |b_i|): one wrong element must be enough to fail.",
     "numerics", SECTION),
    ("relerr-elementwise",
     "relative_error divided element by element (the largest |a_i - b_i| / (|a_i| + |b_i|))",
     "divide the largest difference by the largest |a_i| + |b_i|: an element near 0 must not blow it up.",
     "numerics", SECTION),
    ("relerr-scale",
     "relative_error is not divided by max(|a| + |b|)",
     "the scale is max_i (|a_i| + |b_i|), symmetric in a and b, not |b| alone.",
     "numerics", SECTION),
    ("relerr-wrong-value",
     "relative_error does not follow the formula",
     "max_i |a_i - b_i| / max(max_i (|a_i| + |b_i|), tiny), in float64, returned as a float.",
     "numerics", SECTION),
    ("relerr-raised",
     "relative_error raised an exception",
     "the lines above this message show where in your code it was raised; a and b may have different float dtypes: "
     "convert both to float64.",
     "interface", SECTION),
)
FORBIDDEN_CALLS = (ForbiddenCall("ex1-tests", "numerical_gradient", AUTOGRAD, "numgrad-autograd"),)


def shares_memory(t: Any, x: torch.Tensor | None) -> bool:
    """``t`` is a tensor whose memory is ``x``'s own (x itself, a view of it, or x.double() of a float64 x)."""
    if x is None or not isinstance(t, torch.Tensor) or t.device != x.device:
        return False
    return t.untyped_storage().data_ptr() == x.untyped_storage().data_ptr()


class _RecordedFunction:
    """A scalar function of a tensor that records every point it is evaluated at."""

    def __init__(self, weights: torch.Tensor, *, as_float: bool = False, caller_x: torch.Tensor | None = None) -> None:
        self.weights = weights
        self.as_float = as_float
        self.points: list[torch.Tensor] = []
        self.dtypes: list[torch.dtype] = []
        self.tracked = False
        self.caller_x = caller_x
        self.nudged_caller_x = False  # f was evaluated at the caller's x itself, moved in place

    def __call__(self, t: torch.Tensor) -> Any:
        self.points.append(t.detach().double().clone())
        self.dtypes.append(t.dtype)
        self.tracked = self.tracked or t.requires_grad
        self.nudged_caller_x = self.nudged_caller_x or shares_memory(t, self.caller_x)
        value = check_function(self.weights, t)
        return float(value.detach()) if self.as_float else value


def check_function(weights: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The function the visible check gives numerical_gradient: sin(t)·weights + t³/3, summed."""
    return (torch.sin(t) * weights.to(t.dtype)).sum() + (t ** 3).sum() / 3


def _nudges(points: list[torch.Tensor], x64: torch.Tensor) -> tuple[bool, dict[int, list[float]]]:
    """For every evaluation point: did more than one element move, and which signed nudge each element got.

    A change far below the point's largest is rounding drift (an element not put back exactly), reported as a changed x.
    """
    several, by_element = False, {}
    for point in points:
        if point.shape != x64.shape:
            continue
        delta = (point - x64).reshape(-1)
        moved = torch.nonzero(delta.abs() > 1e-3 * delta.abs().max()).reshape(-1).tolist()
        if len(moved) > 1:
            several = True
        elif len(moved) == 1:
            by_element.setdefault(moved[0], []).append(delta[moved[0]].item())
    return several, by_element


def _numerical_gradient_findings(numerical_gradient: Callable[..., Any], x: torch.Tensor, eps: float | None,
                                 weights: torch.Tensor, *, as_float: bool = False,
                                 wanted: dict[str, Any]) -> torch.Tensor:
    """Run numerical_gradient once on a recorded function; raise the first mistake it shows.

    ``wanted`` holds the stored central and one-sided differences for this x and eps.
    """
    subject = "numerical_gradient"
    f = _RecordedFunction(weights, as_float=as_float, caller_x=x)
    x_before = x.clone()
    x64 = x.detach().double().clone()
    args = (f, x) if eps is None else (f, x, eps)
    used_eps = 1e-6 if eps is None else eps
    with autograd_calls() as autograd:
        result, error = call_learner(numerical_gradient, *args)
    where = f"x of shape {tuple(x.shape)} and dtype {x.dtype}" + ("" if eps is None else f", eps={eps:g}")
    if autograd or f.tracked:
        fail_with("numgrad-autograd", subject=subject, expected="f evaluated at nudged copies of x, no autograd",
                  found=f"autograd calls: {', '.join(autograd) or 'none'}; f received a tensor that requires grad: "
                    f"{f.tracked}")
    if error is not None and not f.points:
        fail_with("numgrad-raised", subject=subject, expected=f"a gradient for {where}", found=error_text(error))
    if not f.points:
        fail_with("numgrad-f-never-called", subject=subject,
                  expected=f"2 calls of f per element of x ({2 * x.numel()})",
                  found=f"no call of f; returned {result!r}"[:200])
    if any(dtype != torch.float64 for dtype in f.dtypes):
        fail_with("numgrad-float32", subject=subject, expected="f called with float64 tensors",
                  found=f"f called with {sorted({str(d) for d in f.dtypes})} tensors for {where}")
    several, by_element = _nudges(f.points, x64)
    if several:
        fail_with("numgrad-all-at-once", subject=subject, expected="one element nudged per call of f",
                  found=f"calls of f in which several elements of x differed from x ({where})")
    sizes = sorted({round(abs(d), 15) for nudges in by_element.values() for d in nudges})
    if sizes and not all(math.isclose(size, used_eps, rel_tol=1e-4) for size in sizes):
        code = "numgrad-default-eps" if eps is None else "numgrad-eps-ignored"
        fail_with(code, subject=subject, expected=f"nudges of ±{used_eps:g}",
                  found=f"nudges of size {', '.join(f'{s:.3g}' for s in sizes[:3])}")
    if error is not None:
        fail_with("numgrad-raised", subject=subject, expected=f"a gradient for {where}" +
                  (" (f returns a Python float here)" if as_float else ""), found=error_text(error))
    if by_element and any(not (any(d > 0 for d in nudges) and any(d < 0 for d in nudges))
                          for nudges in by_element.values()):
        fail_with("numgrad-one-sided", subject=subject, expected="f at x + eps·e_i and at x - eps·e_i for every i",
                  found="f evaluated on one side of x only" + (" (and at x itself)" if len(f.points) > len(by_element)
                                                               else ""))
    if not isinstance(result, torch.Tensor) or result.shape != x.shape:
        found = f"shape {tuple(result.shape)}" if isinstance(result, torch.Tensor) else f"a {type(result).__name__}"
        fail_with("numgrad-shape", subject=subject, expected=f"a tensor of shape {tuple(x.shape)}", found=found)
    if not torch.equal(x, x_before) or x.dtype != x_before.dtype:
        fail_with("numgrad-changed-x", subject=subject, expected="x bit-for-bit unchanged",
                  found=f"x changed by up to {(x.detach().double() - x_before.double()).abs().max().item():.3g}")
    if f.nudged_caller_x:
        fail_with("numgrad-nudged-x", subject=subject, expected=f"f evaluated at a nudged float64 copy of x ({where})",
                  found="f evaluated at x itself, whose elements were moved in place by ±eps")
    if result.dtype != torch.float64:
        fail_with("numgrad-dtype", subject=subject, expected="torch.float64", found=str(result.dtype))
    reference = stored.tensor(wanted["central"], torch.float64)
    if not close(result, reference, rtol=1e-6, atol=1e-6):
        if close(result, 2 * reference, rtol=1e-5, atol=1e-6):
            fail_with("numgrad-divide-by-eps", subject=subject, expected="the central difference",
                      found="twice the central difference")
        if close(result, stored.tensor(wanted["one_sided"], torch.float64), rtol=1e-6, atol=1e-7):
            fail_with("numgrad-one-sided", subject=subject, expected="the central difference",
                      found="the one-sided difference (f(x + eps·e_i) - f(x)) / eps")
        fail_with("numgrad-wrong-values", subject=subject, expected=f"the central difference for {where}",
                  found=worst_element(result, reference))
    return result


def gradient_check_inputs(seed: int) -> list[tuple[torch.Tensor, torch.Tensor, float | None, bool]]:
    """The visible check's calls of numerical_gradient: (weights of f, x, eps or None, f returns a float).

    An eps large enough that a one-sided difference or a wrong divisor stands out (with f returning a
    Python float), then the default eps, then a float32 x (nudged in float64, or not), then a slice.
    """
    generator = torch.Generator().manual_seed(seed)
    shape = (2, 3) if seed % 2 else (3, 2, 2)
    weights = torch.randn(shape, generator=generator, dtype=torch.float64)
    x64 = torch.randn(shape, generator=generator, dtype=torch.float64)
    x32 = (3 * torch.randn(shape, generator=generator)).float()
    return [(weights, x64, 1e-2, True), (weights, x64, None, False), (weights, x32, None, False),
            (weights[:1].clone(), x64[:1].clone(), 3e-4, False)]


def check_numerical_gradient(numerical_gradient: Callable[..., Any], *, seed: int = 3) -> None:
    """Run ``numerical_gradient`` on seeded inputs (float32 and float64, several eps); raise on any mistake."""
    wanted = stored_results("lesson05-numerical-gradient", seed)
    for (weights, x, eps, as_float), results in zip(gradient_check_inputs(seed), wanted):
        _numerical_gradient_findings(numerical_gradient, x.clone(), eps, weights, as_float=as_float, wanted=results)


def relative_error_inputs(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The visible check's pair: float32 a and float64 b, chosen to tell the usual formulas apart."""
    generator = torch.Generator().manual_seed(seed)
    a = torch.randn(4, 5, generator=generator)
    b = torch.randn(4, 5, generator=generator, dtype=torch.float64)
    a[0, 0], b[0, 0] = 1e-3, -2e-3         # a tiny pair: an element-by-element ratio would make it 1
    a[1, 1], b[1, 1] = 0.5, 9.5           # b exceeds a there: max(a - b) misses it, max|a - b| does not
    return a, b


# The tiny pair of the check: [1 + 1e-9, 2] against [1, 2], whose relative error float32 cannot see.
TINY_PAIR = ([1.0 + 1e-9, 2.0], [1.0, 2.0])


def check_relative_error(relative_error: Callable[..., Any], *, seed: int = 3) -> None:
    """Run ``relative_error`` on seeded pairs chosen to tell the usual formulas apart; raise on any mistake.

    The stored results hold the formula's value and those of the usual wrong formulas (by code).
    """
    subject = "relative_error"
    wanted = stored_results("lesson05-relative-error", seed)
    a, b = relative_error_inputs(seed)
    expected = wanted["value"]
    result, error = call_learner(relative_error, a, b)
    if error is not None:
        fail_with("relerr-raised", subject=subject,
                  expected="a float for a float32 and a float64 tensor of shape (4, 5)", found=error_text(error))
    if type(result) is not float:
        fail_with("relerr-not-a-float", subject=subject, expected="a Python float", found=f"a {type(result).__name__}")
    if not math.isclose(result, expected, rel_tol=1e-9, abs_tol=1e-12):
        for code, values in wanted["mistakes"]:  # [code, values of its wrong formulas], most specific first
            if any(math.isclose(result, value, rel_tol=1e-6) for value in values):
                fail_with(code, subject=subject, expected=f"{expected:.6g}", found=f"{result:.6g}")
        fail_with("relerr-wrong-value", subject=subject, expected=f"{expected:.6g}", found=f"{result:.6g}")
    zero = torch.zeros(3, dtype=torch.float64)
    zeros, error = call_learner(relative_error, zero, zero.clone())
    if error is not None or type(zeros) is not float or zeros != 0.0:
        fail_with("relerr-zero-division", subject=subject, expected="0.0 for two all-zero tensors",
                  found=error_text(error) if error is not None else repr(zeros))
    near, exact = (torch.tensor(values, dtype=torch.float64) for values in TINY_PAIR)
    tiny, error = call_learner(relative_error, near, exact)
    expected_tiny = wanted["tiny"]
    if error is not None or type(tiny) is not float or not math.isclose(tiny, expected_tiny, rel_tol=1e-5):
        fail_with("relerr-float32", subject=subject, expected=f"{expected_tiny:.4g} for [1 + 1e-9, 2] against [1, 2]",
                  found=error_text(error) if error is not None else repr(tiny))


def check_gradient_checker(numerical_gradient: Callable[..., Any], relative_error: Callable[..., Any],
                           *, seed: int = 3) -> None:
    """Exercise 1: both functions, each against its own reference."""
    check_numerical_gradient(numerical_gradient, seed=seed)
    check_relative_error(relative_error, seed=seed)


# --- the grader's re-check (course_utils.verdict_probes): this exercise's scenarios and probe ----------
# Whether autograd did the work cannot be seen in values: the in-kernel check says.

def gradient_scenario(seed: int) -> tuple[torch.Tensor, list[tuple[torch.Tensor, float | None, bool]]]:
    """Exercise 1's numerical_gradient: the weights of the function, and (x, eps or None, f returns a float)."""
    generator = torch.Generator().manual_seed(seed)
    shape = ((2, 3), (3, 2, 2), (1, 5), (2, 2))[int(torch.randint(0, 4, (1,), generator=generator))]
    weights = torch.randn(shape, generator=generator, dtype=torch.float64)
    x64 = torch.randn(shape, generator=generator, dtype=torch.float64)
    x32 = (3 * torch.randn(shape, generator=generator)).float()
    eps = (1e-2, 2e-2, 4e-2)[int(torch.randint(0, 3, (1,), generator=generator))]  # truncation errors show
    return weights, [(x64, eps, True), (x64, None, False), (x32, None, False)]


def relative_error_scenario(seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Exercise 1's relative_error: pairs that tell the usual formulas apart, two zero tensors, a tiny difference."""
    generator = torch.Generator().manual_seed(seed)
    a = torch.randn(4, 5, generator=generator)
    b = torch.randn(4, 5, generator=generator, dtype=torch.float64)
    a[0, 0], b[0, 0] = 1e-3, -2e-3         # a tiny pair: an element-by-element ratio would make it 1
    a[1, 1], b[1, 1] = 0.5, 9.5           # b exceeds a there: max(a - b) misses it, max|a - b| does not
    small = 1e-9 * (1 + float(torch.rand(1, generator=generator)))
    return [(a, b), (b.float(), a.double()), (torch.zeros(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64)),
            (torch.tensor([1.0 + small, 2.0], dtype=torch.float64), torch.tensor([1.0, 2.0], dtype=torch.float64))]


class CoupledFunction:
    """The function numerical_gradient is given in the re-check, sin·w + t³/3 plus a squared sum.

    The squared sum makes the elements of x interact, so that an element not put back after its nudge
    changes the other elements' estimates.
    """

    def __init__(self, weights: torch.Tensor, *, as_float: bool = False, caller_x: torch.Tensor | None = None) -> None:
        self.weights = weights
        self.as_float = as_float
        self.caller_x = caller_x
        self.nudged_caller_x = False  # evaluated at the caller's x itself, moved in place

    def __call__(self, t: torch.Tensor) -> Any:
        self.nudged_caller_x = self.nudged_caller_x or shares_memory(t, self.caller_x)
        value = (torch.sin(t) * self.weights.to(t.dtype)).sum() + (t ** 3).sum() / 3 + 0.5 * t.sum() ** 2
        return float(value.detach()) if self.as_float else value


def probe(ns: dict[str, Any], seed: int) -> dict[str, Any]:
    """The kernel's half of the re-check: numerical_gradient and relative_error on the seed's scenarios."""
    numerical_gradient, relative_error = ns["numerical_gradient"], ns["relative_error"]
    weights, cases = gradient_scenario(seed)
    gradients = []
    for x, eps, as_float in cases:
        given = x.clone()
        f = CoupledFunction(weights.clone(), as_float=as_float, caller_x=given)
        result = numerical_gradient(f, given) if eps is None else numerical_gradient(f, given, eps)
        gradients.append({"gradient": probe_value(result), "x": given.clone(), "nudged_x": bool(f.nudged_caller_x)})
    errors = []
    for a, b in relative_error_scenario(seed):
        result = relative_error(a.clone(), b.clone())
        errors.append(result if type(result) is float else None)
    return {"gradients": gradients, "errors": errors}
