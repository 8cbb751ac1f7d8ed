"""Lesson 05 (backward): the catalogue of typical mistakes and the checks that recognise them.

Each check runs the learner's function on seeded inputs the notebook never prints, records what the
function does (the points at which it evaluates ``f``, their dtype, the autograd calls it makes,
how often ``backward`` runs) and compares the result with PyTorch. A mistake is named by what it
does, not by a mismatch alone: a float32 nudge is seen in the dtype ``f`` receives, a one-sided
difference in the points it is evaluated at, autograd in the calls made to it.

The correct results for the checks' fixed inputs are stored as data (``expected/lesson05-*.json``),
computed on the grader's side (``course_tools.grade.judges.lesson05``): no reference answer ships
here as code. The checks run with one of :data:`CHECK_SEEDS`.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import torch

from course_utils.checks import expected as stored
from course_utils.checks.learner import call_learner, error_text
from course_utils.diagnoses import Diagnosis, ForbiddenCall, by_code, raise_diagnosis

LESSON = "05_backward"
CHECK_SEEDS = (0, 3)  # the seeds whose expected results are stored; the notebook's checks use the default, 3
_SECTIONS = {
    "ex1-tests": "4 · Is the gradient right? Finite differences",
    "ex2-tests": "5 · The gradient of softmax cross-entropy",
    "ex3-tests": "2 · Gradients accumulate: why `zero_grad` exists",
}


def _row(code: str, exercise: str, family: str, what: str, hint: str) -> Diagnosis:
    return Diagnosis(code, what, hint, family, lesson=LESSON, exercise=exercise, section=_SECTIONS[exercise])


CATALOGUE = (
    # Exercise 1 · numerical_gradient
    _row("numgrad-autograd", "ex1-tests", "not-allowed",
         "numerical_gradient used autograd (backward / torch.autograd.grad / requires_grad): not allowed here",
         "the exercise is to estimate the gradient from values of f alone: evaluate f at x ± eps·e_i, "
         "inside torch.no_grad() if you like, and never call backward()."),
    _row("numgrad-f-never-called", "ex1-tests", "not-allowed",
         "numerical_gradient never called f, so its result cannot be the gradient of f (a hard-coded result?)",
         "evaluate f at x + eps·e_i and x - eps·e_i for every element i; the gradient comes from those values."),
    _row("numgrad-float32", "ex1-tests", "numerics",
         "f was evaluated at float32 points: the nudges were made in float32",
         "copy x to float64 before nudging (point = x.detach().double().clone()): in float32, "
         "1 + 1e-6 is already rounded and f(x+eps) - f(x-eps) keeps only two or three correct digits."),
    _row("numgrad-all-at-once", "ex1-tests", "numerics",
         "several elements of x were nudged in the same call of f (all at once, or one not put back)",
         "nudge one element at a time and put it back before the next: only element i moves by ±eps."),
    _row("numgrad-one-sided", "ex1-tests", "numerics",
         "a one-sided difference: f was evaluated at x + eps·e_i (or x - eps·e_i) only",
         "use the central difference (f(x + eps·e_i) - f(x - eps·e_i)) / (2·eps): its error is about eps², "
         "the one-sided one's about eps."),
    _row("numgrad-eps-ignored", "ex1-tests", "interface",
         "the nudges did not have the size eps that was passed in",
         "nudge by the eps argument itself, not by a number of your own."),
    _row("numgrad-default-eps", "ex1-tests", "numerics",
         "called without eps, the nudges did not have the default size 1e-6",
         "keep the signature numerical_gradient(f, x, eps=1e-6): a larger eps adds truncation error (about eps²), "
         "a much smaller one rounding error (about 1e-16 / eps)."),
    _row("numgrad-divide-by-eps", "ex1-tests", "numerics",
         "the gradient is twice the central difference: divided by eps instead of 2·eps",
         "the two points x + eps and x - eps are 2·eps apart: divide f(x+eps) - f(x-eps) by 2·eps."),
    _row("numgrad-shape", "ex1-tests", "shapes",
         "numerical_gradient did not return a tensor of x's shape",
         "build the gradient with torch.zeros_like(point) and fill it element by element (view(-1) helps)."),
    _row("numgrad-dtype", "ex1-tests", "dtypes",
         "numerical_gradient did not return a float64 tensor",
         "return the float64 gradient as it is; do not convert it back to x's dtype."),
    _row("numgrad-changed-x", "ex1-tests", "interface",
         "numerical_gradient changed the caller's x",
         "nudge a float64 copy, never x: x.double() is x itself when x is already float64, so clone it."),
    _row("numgrad-nudged-x", "ex1-tests", "interface",
         "numerical_gradient nudged the caller's float64 x itself, in place (and put it back)",
         "nudge a float64 copy, never x: x.double() and x.to(torch.float64) are x itself when x is already "
         "float64, so clone it (point = x.detach().double().clone()). While f runs, x must hold its own values."),
    _row("numgrad-wrong-values", "ex1-tests", "numerics",
         "numerical_gradient does not match the central difference",
         "grad[i] = (f(x + eps·e_i) - f(x - eps·e_i)) / (2·eps), with e_i one element set to 1."),
    _row("numgrad-raised", "ex1-tests", "interface",
         "numerical_gradient raised an exception",
         "the lines above this message show where in your code it was raised; note that f may return a one-element "
         "tensor or a Python float, and float(f(point)) takes both."),
    # Exercise 1 · relative_error
    _row("relerr-not-a-float", "ex1-tests", "interface",
         "relative_error did not return a Python float",
         "return a float: call .item() on the one-element result."),
    _row("relerr-zero-division", "ex1-tests", "numerics",
         "relative_error of two all-zero tensors is not 0 (0 / 0)",
         "divide by max(max(|a| + |b|), tiny), with tiny = torch.finfo(torch.float64).tiny."),
    _row("relerr-float32", "ex1-tests", "numerics",
         "relative_error was computed in float32, which cannot see a difference of 1e-9",
         "convert both tensors to float64 (a.double(), b.double()) before subtracting."),
    _row("relerr-no-abs", "ex1-tests", "numerics",
         "relative_error used max(a - b) instead of max|a - b|",
         "take the absolute value: (a - b).abs().max()."),
    _row("relerr-not-max", "ex1-tests", "numerics",
         "relative_error averaged (or summed) over the elements instead of taking the maximum",
         "use max_i |a_i - b_i| / max_i (|a_i| + |b_i|): one wrong element must be enough to fail."),
    _row("relerr-elementwise", "ex1-tests", "numerics",
         "relative_error divided element by element (the largest |a_i - b_i| / (|a_i| + |b_i|))",
         "divide the largest difference by the largest |a_i| + |b_i|: an element near 0 must not blow it up."),
    _row("relerr-scale", "ex1-tests", "numerics",
         "relative_error is not divided by max(|a| + |b|)",
         "the scale is max_i (|a_i| + |b_i|), symmetric in a and b, not |b| alone."),
    _row("relerr-wrong-value", "ex1-tests", "numerics",
         "relative_error does not follow the formula",
         "max_i |a_i - b_i| / max(max_i (|a_i| + |b_i|), tiny), in float64, returned as a float."),
    _row("relerr-raised", "ex1-tests", "interface", "relative_error raised an exception",
         "the lines above this message show where in your code it was raised; a and b may have different float dtypes: "
         "convert both to float64."),
    # Exercise 2 · cross_entropy_grad
    _row("cegrad-autograd", "ex2-tests", "not-allowed",
         "cross_entropy_grad used autograd (backward or torch.autograd.grad): not allowed here",
         "compute the formula directly: (torch.softmax(logits, dim=1) - F.one_hot(targets, C)) / N."),
    _row("cegrad-one-hot-classes", "ex2-tests", "shapes",
         "cross_entropy_grad fails on a batch in which the last class does not occur",
         "give one_hot the number of classes: F.one_hot(targets, num_classes=logits.shape[1])."),
    _row("cegrad-overflow", "ex2-tests", "numerics",
         "cross_entropy_grad gives inf or nan for large logits",
         "use torch.softmax (it subtracts the row maximum before exp) instead of exp(z) / exp(z).sum()."),
    _row("cegrad-shape", "ex2-tests", "shapes",
         "cross_entropy_grad did not return a tensor of the logits' shape (N, C)",
         "softmax(logits, dim=1) and one_hot(targets, C) are both (N, C): subtract them, then divide by N."),
    _row("cegrad-no-mean", "ex2-tests", "loss",
         "the gradient is N times too large: the division by N (mean reduction) is missing",
         "F.cross_entropy averages over the batch, so every row of the gradient is divided by N = len(targets)."),
    _row("cegrad-sign", "ex2-tests", "loss",
         "the gradient has the wrong sign: one_hot - softmax",
         "dL/dz = (softmax - one_hot) / N: the true class's logit has a negative gradient (raising it lowers the loss)."),
    _row("cegrad-softmax-dim", "ex2-tests", "shapes",
         "the softmax was taken over the batch (dim=0), not over the classes",
         "each row is one sample: torch.softmax(logits, dim=1)."),
    _row("cegrad-no-softmax", "ex2-tests", "loss",
         "the raw logits were used where the softmax probabilities belong",
         "dL/dz = (softmax(z) - one_hot) / N: turn the logits into probabilities first."),
    _row("cegrad-log-softmax", "ex2-tests", "loss",
         "log_softmax was used where softmax belongs",
         "the derivative of log-sum-exp is softmax itself: torch.softmax(logits, dim=1), not log_softmax."),
    _row("cegrad-divide-by-classes", "ex2-tests", "loss",
         "the gradient was divided by the number of classes C, not by the batch size N",
         "the mean runs over the N samples of the batch: divide by N = logits.shape[0] = len(targets)."),
    _row("cegrad-dtype", "ex2-tests", "dtypes",
         "cross_entropy_grad did not return the dtype of the logits",
         "convert one_hot to logits.dtype (F.one_hot(...).to(logits.dtype)) and nothing else."),
    _row("cegrad-changed-logits", "ex2-tests", "interface",
         "cross_entropy_grad changed the caller's logits",
         "do not modify logits in place (no -=, no softmax_); work on new tensors."),
    _row("cegrad-wrong-values", "ex2-tests", "loss",
         "cross_entropy_grad does not match autograd's gradient",
         "(torch.softmax(logits, dim=1) - F.one_hot(targets, C).to(logits.dtype)) / N."),
    _row("cegrad-raised", "ex2-tests", "interface", "cross_entropy_grad raised an exception",
         "the lines above this message show where in your code it was raised; logits is (N, C) floating point, "
         "targets (N,) integer class indices in 0 … C-1."),
    # Exercise 3 · accumulated_grad
    _row("accgrad-graph-freed", "ex3-tests", "gradients",
         "backward() ran twice through one graph, which the first call freed",
         "run loss_fn(copy) again before each backward() (a fresh graph), or pass retain_graph=True."),
    # "element 0 of tensors does not require grad": one of the errors beginners report most (public bug reports)
    _row("accgrad-no-requires-grad", "ex3-tests", "gradients",
         "backward() found nothing to differentiate: the copy of w does not require grad",
         "w.detach().clone() gives a tensor without gradient tracking; make it a leaf that requires grad: "
         "w.detach().clone().requires_grad_(True). Setting loss.requires_grad = True silences the error but "
         "leaves the copy without a gradient."),
    _row("accgrad-not-a-leaf", "ex3-tests", "gradients",
         "the copy's .grad was None: the copy was not a leaf tensor",
         "make the copy a leaf: w.detach().clone().requires_grad_(True) (w.clone() alone stays in w's graph)."),
    _row("accgrad-touched-w", "ex3-tests", "gradients",
         "accumulated_grad changed the caller's w or its .grad",
         "work on a fresh leaf copy, w.detach().clone().requires_grad_(True), never on w itself."),
    _row("accgrad-multiplied", "ex3-tests", "not-allowed",
         "accumulated_grad ran backward() once and multiplied the gradient by times: not allowed here",
         "the exercise is to watch .grad add up: call backward() on loss_fn(copy) `times` times, never zeroing."),
    _row("accgrad-zeroed", "ex3-tests", "gradients",
         "the gradient was cleared between the backward() calls, so it did not accumulate",
         "do not zero .grad (no copy.grad = None, no zero_()) between the calls: the point is to see it add up."),
    _row("accgrad-wrong-count", "ex3-tests", "gradients",
         "backward() ran a different number of times than `times`",
         "loop exactly `times` times: for _ in range(times): loss_fn(copy).backward()."),
    _row("accgrad-returned-weights", "ex3-tests", "interface",
         "accumulated_grad returned the copy of w itself, not its gradient",
         "return copy.grad, the accumulated gradient, not copy."),
    _row("accgrad-dtype", "ex3-tests", "dtypes",
         "accumulated_grad did not return w's dtype",
         "copy w without changing its dtype: w.detach().clone().requires_grad_(True)."),
    _row("accgrad-wrong-values", "ex3-tests", "gradients",
         "accumulated_grad is not `times` × the gradient of one call",
         "times backward calls on loss_fn(copy), no zeroing between them, then return copy.grad."),
    _row("accgrad-raised", "ex3-tests", "interface", "accumulated_grad raised an exception",
         "the lines above this message show where in your code it was raised; make a fresh leaf copy, run "
         "loss_fn(copy).backward() `times` times, return copy.grad."),
)
DIAGNOSES = by_code(CATALOGUE)
# The library calls an exercise forbids, found by the grader in the submitted source (course_tools.grade.source_scan):
# the gradient is to come from values of f, or from the formula, not from autograd. The names are autograd's
# entry points, not all of torch.autograd: torch.no_grad (torch.autograd.grad_mode) stays allowed.
_AUTOGRAD = ("torch.autograd.grad", "torch.autograd.backward", "torch.autograd.functional", "torch.func",
             "torch.Tensor.backward")
FORBIDDEN_CALLS = (
    ForbiddenCall("ex1-tests", "numerical_gradient", _AUTOGRAD, "numgrad-autograd"),
    ForbiddenCall("ex2-tests", "cross_entropy_grad", _AUTOGRAD, "cegrad-autograd"),
)


def _fail(code: str, *, expected: Any, found: Any, subject: str) -> None:
    raise_diagnosis(DIAGNOSES[code], expected=expected, found=found, subject=subject)




@contextlib.contextmanager
def _autograd_calls() -> Iterator[list[str]]:
    """Count calls of torch.autograd.backward (which Tensor.backward uses) and torch.autograd.grad.

    torch.autograd.functional and torch.func end in these two as well. The originals still run,
    so code under test behaves as usual.
    """
    calls: list[str] = []
    original_backward, original_grad = torch.autograd.backward, torch.autograd.grad

    def backward(*args: Any, **kwargs: Any) -> Any:
        calls.append("backward")
        return original_backward(*args, **kwargs)

    def grad(*args: Any, **kwargs: Any) -> Any:
        calls.append("grad")
        return original_grad(*args, **kwargs)

    with mock.patch.object(torch.autograd, "backward", backward), mock.patch.object(torch.autograd, "grad", grad):
        yield calls


def shares_memory(t: Any, x: torch.Tensor | None) -> bool:
    """``t`` is a tensor whose memory is ``x``'s own (x itself, a view of it, or x.double() of a float64 x)."""
    if x is None or not isinstance(t, torch.Tensor) or t.device != x.device:
        return False
    return t.untyped_storage().data_ptr() == x.untyped_storage().data_ptr()


def _worst_element(result: torch.Tensor, reference: torch.Tensor) -> str:
    """Where a result is furthest from the stored one, as a failure's ``found:`` line says it."""
    difference = (result.detach().double() - reference.double()).abs()
    index = tuple(int(i) for i in torch.unravel_index(difference.argmax(), difference.shape))
    return (f"at index {list(index)}: {result[index].item():.6g}, expected {reference[index].item():.6g} "
            f"(largest difference {difference.max().item():.3g})")


def _close(a: torch.Tensor, b: torch.Tensor, rtol: float, atol: float) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a.double(), b.double(), rtol=rtol, atol=atol))


# --- Exercise 1 · numerical_gradient ------------------------------------------------------------

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


def _stored(name: str, seed: int) -> dict[str, Any]:
    """The stored expected results ``name`` for the check inputs of ``seed``."""
    if seed not in CHECK_SEEDS:
        raise ValueError(f"the lesson 05 checks run with seed in {CHECK_SEEDS}, not {seed!r}: "
                         "their expected results are stored for those inputs only")
    return stored.load(name)[str(seed)]


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
    with _autograd_calls() as autograd:
        result, error = call_learner(numerical_gradient, *args)
    where = f"x of shape {tuple(x.shape)} and dtype {x.dtype}" + ("" if eps is None else f", eps={eps:g}")
    if autograd or f.tracked:
        _fail("numgrad-autograd", subject=subject, expected="f evaluated at nudged copies of x, no autograd",
              found=f"autograd calls: {', '.join(autograd) or 'none'}; f received a tensor that requires grad: "
                    f"{f.tracked}")
    if error is not None and not f.points:
        _fail("numgrad-raised", subject=subject, expected=f"a gradient for {where}", found=error_text(error))
    if not f.points:
        _fail("numgrad-f-never-called", subject=subject, expected=f"2 calls of f per element of x ({2 * x.numel()})",
              found=f"no call of f; returned {result!r}"[:200])
    if any(dtype != torch.float64 for dtype in f.dtypes):
        _fail("numgrad-float32", subject=subject, expected="f called with float64 tensors",
              found=f"f called with {sorted({str(d) for d in f.dtypes})} tensors for {where}")
    several, by_element = _nudges(f.points, x64)
    if several:
        _fail("numgrad-all-at-once", subject=subject, expected="one element nudged per call of f",
              found=f"calls of f in which several elements of x differed from x ({where})")
    sizes = sorted({round(abs(d), 15) for nudges in by_element.values() for d in nudges})
    if sizes and not all(math.isclose(size, used_eps, rel_tol=1e-4) for size in sizes):
        code = "numgrad-default-eps" if eps is None else "numgrad-eps-ignored"
        _fail(code, subject=subject, expected=f"nudges of ±{used_eps:g}",
              found=f"nudges of size {', '.join(f'{s:.3g}' for s in sizes[:3])}")
    if error is not None:
        _fail("numgrad-raised", subject=subject, expected=f"a gradient for {where}" +
              (" (f returns a Python float here)" if as_float else ""), found=error_text(error))
    if by_element and any(not (any(d > 0 for d in nudges) and any(d < 0 for d in nudges))
                          for nudges in by_element.values()):
        _fail("numgrad-one-sided", subject=subject, expected="f at x + eps·e_i and at x - eps·e_i for every i",
              found="f evaluated on one side of x only" + (" (and at x itself)" if len(f.points) > len(by_element)
                                                           else ""))
    if not isinstance(result, torch.Tensor) or result.shape != x.shape:
        found = f"shape {tuple(result.shape)}" if isinstance(result, torch.Tensor) else f"a {type(result).__name__}"
        _fail("numgrad-shape", subject=subject, expected=f"a tensor of shape {tuple(x.shape)}", found=found)
    if not torch.equal(x, x_before) or x.dtype != x_before.dtype:
        _fail("numgrad-changed-x", subject=subject, expected="x bit-for-bit unchanged",
              found=f"x changed by up to {(x.detach().double() - x_before.double()).abs().max().item():.3g}")
    if f.nudged_caller_x:
        _fail("numgrad-nudged-x", subject=subject, expected=f"f evaluated at a nudged float64 copy of x ({where})",
              found="f evaluated at x itself, whose elements were moved in place by ±eps")
    if result.dtype != torch.float64:
        _fail("numgrad-dtype", subject=subject, expected="torch.float64", found=str(result.dtype))
    reference = stored.tensor(wanted["central"], torch.float64)
    if not _close(result, reference, rtol=1e-6, atol=1e-6):
        if _close(result, 2 * reference, rtol=1e-5, atol=1e-6):
            _fail("numgrad-divide-by-eps", subject=subject, expected="the central difference",
                  found="twice the central difference")
        if _close(result, stored.tensor(wanted["one_sided"], torch.float64), rtol=1e-6, atol=1e-7):
            _fail("numgrad-one-sided", subject=subject, expected="the central difference",
                  found="the one-sided difference (f(x + eps·e_i) - f(x)) / eps")
        _fail("numgrad-wrong-values", subject=subject, expected=f"the central difference for {where}",
              found=_worst_element(result, reference))
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
    wanted = _stored("lesson05-numerical-gradient", seed)
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
    wanted = _stored("lesson05-relative-error", seed)
    a, b = relative_error_inputs(seed)
    expected = wanted["value"]
    result, error = call_learner(relative_error, a, b)
    if error is not None:
        _fail("relerr-raised", subject=subject, expected="a float for a float32 and a float64 tensor of shape (4, 5)",
              found=error_text(error))
    if type(result) is not float:
        _fail("relerr-not-a-float", subject=subject, expected="a Python float", found=f"a {type(result).__name__}")
    if not math.isclose(result, expected, rel_tol=1e-9, abs_tol=1e-12):
        for code, values in wanted["mistakes"]:  # [code, values of its wrong formulas], most specific first
            if any(math.isclose(result, value, rel_tol=1e-6) for value in values):
                _fail(code, subject=subject, expected=f"{expected:.6g}", found=f"{result:.6g}")
        _fail("relerr-wrong-value", subject=subject, expected=f"{expected:.6g}", found=f"{result:.6g}")
    zeros, error = call_learner(relative_error, torch.zeros(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64))
    if error is not None or type(zeros) is not float or zeros != 0.0:
        _fail("relerr-zero-division", subject=subject, expected="0.0 for two all-zero tensors",
              found=error_text(error) if error is not None else repr(zeros))
    near, exact = (torch.tensor(values, dtype=torch.float64) for values in TINY_PAIR)
    tiny, error = call_learner(relative_error, near, exact)
    expected_tiny = wanted["tiny"]
    if error is not None or type(tiny) is not float or not math.isclose(tiny, expected_tiny, rel_tol=1e-5):
        _fail("relerr-float32", subject=subject, expected=f"{expected_tiny:.4g} for [1 + 1e-9, 2] against [1, 2]",
              found=error_text(error) if error is not None else repr(tiny))


def check_gradient_checker(numerical_gradient: Callable[..., Any], relative_error: Callable[..., Any],
                           *, seed: int = 3) -> None:
    """Exercise 1: both functions, each against its own reference."""
    check_numerical_gradient(numerical_gradient, seed=seed)
    check_relative_error(relative_error, seed=seed)


# --- Exercise 2 · cross_entropy_grad ------------------------------------------------------------

def _ce_call(cross_entropy_grad: Callable[..., Any], logits: torch.Tensor, targets: torch.Tensor,
             what: str) -> torch.Tensor:
    subject = "cross_entropy_grad"
    before = logits.clone()
    with _autograd_calls() as autograd, torch.no_grad():
        result, error = call_learner(cross_entropy_grad, logits, targets)
    if autograd:
        _fail("cegrad-autograd", subject=subject, expected="the formula, computed without autograd",
              found=f"{len(autograd)} autograd call(s) ({', '.join(sorted(set(autograd)))}) for {what}")
    wrong_shape = not isinstance(result, torch.Tensor) or result.shape != logits.shape
    if (error is not None or wrong_shape) and int(targets.max()) < logits.shape[1] - 1:
        _fail("cegrad-one-hot-classes", subject=subject,
              expected=f"a gradient of shape {tuple(logits.shape)} for {what}, whose targets never reach "
                       f"class {logits.shape[1] - 1}",
              found=error_text(error) if error is not None else f"shape {tuple(result.shape)}")
    if error is not None:
        _fail("cegrad-raised", subject=subject, expected=f"a gradient for {what}", found=error_text(error))
    if not torch.equal(logits, before):
        _fail("cegrad-changed-logits", subject=subject, expected="logits unchanged",
              found=f"logits changed by up to {(logits.double() - before.double()).abs().max().item():.3g}")
    if not isinstance(result, torch.Tensor) or result.shape != logits.shape:
        found = f"shape {tuple(result.shape)}" if isinstance(result, torch.Tensor) else f"a {type(result).__name__}"
        _fail("cegrad-shape", subject=subject, expected=f"shape {tuple(logits.shape)} for {what}", found=found)
    return result


CE_ROWS, CE_CLASSES = 12, 5  # the visible check's batch: 12 rows, 5 classes


def ce_check_inputs(seed: int) -> dict[str, torch.Tensor]:
    """The visible check's batches: float32 logits, float64 logits, logits of ±900, a batch missing the last class."""
    n, classes = CE_ROWS, CE_CLASSES
    generator = torch.Generator().manual_seed(seed)
    logits = 2 * torch.randn(n, classes, generator=generator)
    targets = torch.randint(0, classes, (n,), generator=generator)
    targets[0], targets[-1] = 0, classes - 1  # every check batch but one has the last class
    logits64 = (3 * torch.randn(n - 2, classes, generator=generator)).double()
    targets64 = torch.randint(0, classes, (n - 2,), generator=generator)
    targets64[0] = classes - 1
    big = logits[-3:].clone()  # exp overflows unless the row maximum is subtracted first
    big[:, 0], big[:, 1] = 900.0, -900.0
    return {"logits": logits, "targets": targets, "logits64": logits64, "targets64": targets64,
            "big": big, "big_targets": targets[-3:].clone(), "missing": targets.clamp(max=classes - 2)}


def check_cross_entropy_grad(cross_entropy_grad: Callable[..., Any], *, seed: int = 3) -> None:
    """Run ``cross_entropy_grad`` on seeded logits (float32, float64, huge, a missing class); raise on any mistake.

    The stored results hold autograd's gradient of each batch and, for the first, the usual wrong formulas.
    """
    subject = "cross_entropy_grad"
    n, classes = CE_ROWS, CE_CLASSES
    wanted = _stored("lesson05-ce-grad", seed)
    batch = ce_check_inputs(seed)
    logits, targets = batch["logits"], batch["targets"]
    what = f"logits of shape ({n}, {classes})"
    result = _ce_call(cross_entropy_grad, logits, targets, what)
    reference = stored.tensor(wanted["float32"])
    if not _close(result, reference, rtol=1e-4, atol=1e-6):
        mistakes = [("cegrad-no-mean", reference * n), ("cegrad-sign", -reference),
                    *((code, stored.tensor(values)) for code, values in wanted["mistakes"])]
        for code, value in mistakes:  # the wrong formulas' results, most specific first
            # a second slip (no mean, or the sign) on top of the first still shows the first
            if any(_close(result, variant, rtol=1e-4, atol=1e-6) for variant in (value, value * n, -value, -value * n)):
                _fail(code, subject=subject, expected=f"(softmax - one_hot) / N for {what}",
                      found=f"row 0: {[round(v, 4) for v in result[0].tolist()]}, "
                            f"expected {[round(v, 4) for v in reference[0].tolist()]}")
        _fail("cegrad-wrong-values", subject=subject, expected=f"autograd's gradient for {what}",
              found=_worst_element(result, reference))
    if result.dtype != torch.float32:
        _fail("cegrad-dtype", subject=subject, expected="torch.float32 for float32 logits", found=str(result.dtype))
    result64 = _ce_call(cross_entropy_grad, batch["logits64"], batch["targets64"], f"float64 {what}")
    if result64.dtype != torch.float64:
        _fail("cegrad-dtype", subject=subject, expected="torch.float64 for float64 logits", found=str(result64.dtype))
    if not _close(result64, stored.tensor(wanted["float64"], torch.float64), rtol=1e-7, atol=1e-10):
        _fail("cegrad-wrong-values", subject=subject, expected="autograd's gradient for float64 logits",
              found="values that differ beyond float64 rounding")
    big_result = _ce_call(cross_entropy_grad, batch["big"], batch["big_targets"], "logits of ±900")
    if not bool(torch.isfinite(big_result).all()):
        _fail("cegrad-overflow", subject=subject, expected="finite values for logits of ±900",
              found=f"{big_result[0].tolist()}")
    if not _close(big_result, stored.tensor(wanted["big"]), rtol=1e-4, atol=1e-6):
        _fail("cegrad-wrong-values", subject=subject, expected="autograd's gradient for logits of ±900",
              found="different values")
    # A batch in which the last class does not occur: one_hot must still have C columns.
    partial = _ce_call(cross_entropy_grad, logits, batch["missing"],
                       f"{what}, targets never reaching class {classes - 1}")
    if not _close(partial, stored.tensor(wanted["missing"]), rtol=1e-4, atol=1e-6):
        _fail("cegrad-one-hot-classes", subject=subject,
              expected=f"the gradient of {what} whose targets never reach class {classes - 1}",
              found="a wrong result")


# --- Exercise 3 · accumulated_grad --------------------------------------------------------------

class _CountingLoss:
    """A loss function that counts its calls and the backward passes through its results."""

    def __init__(self, inputs: torch.Tensor) -> None:
        self.inputs = inputs
        self.calls = 0
        self.backwards = 0

    def __call__(self, weight: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        loss = (torch.tanh(self.inputs.to(weight.dtype) @ weight) ** 2).mean()  # saves tensors: one graph, one walk
        if loss.requires_grad:
            loss.register_hook(self._count)
        return loss

    def _count(self, grad: torch.Tensor) -> None:
        self.backwards += 1


def accumulate_check_inputs(seed: int) -> list[tuple[torch.Tensor, torch.Tensor, int]]:
    """The visible check's calls: (inputs of the counting loss, w, times), float32 w with times=3, float64 with 4."""
    cases = []
    for offset, dtype, times in ((0, torch.float32, 3), (1, torch.float64, 4)):
        generator = torch.Generator().manual_seed(seed + offset)
        inputs = torch.randn(6, 4, generator=generator, dtype=torch.float64)
        cases.append((inputs, torch.randn(4, 3, generator=generator, dtype=dtype), times))
    return cases


def check_accumulated_grad(accumulated_grad: Callable[..., Any], *, seed: int = 3) -> None:
    """Run ``accumulated_grad`` with a counting loss on seeded float32 and float64 ``w``; raise on any mistake.

    The stored results hold the gradient of one call of the loss for each ``w``.
    """
    wanted = _stored("lesson05-accumulated-grad", seed)
    for (inputs, w, times), single in zip(accumulate_check_inputs(seed), wanted):
        _accumulated_grad_findings(accumulated_grad, inputs=inputs, w=w, times=times,
                                   single=stored.tensor(single, w.dtype))


def _accumulated_grad_findings(accumulated_grad: Callable[..., Any], *, inputs: torch.Tensor, w: torch.Tensor,
                               times: int, single: torch.Tensor) -> None:
    subject = "accumulated_grad"
    dtype = w.dtype
    w = w.clone().requires_grad_(True)
    w.grad = torch.full_like(w, 0.5)  # an old gradient of the caller's, to be left alone
    w_before, grad_before = w.detach().clone(), w.grad.clone()
    loss_fn = _CountingLoss(inputs)
    result, error = call_learner(accumulated_grad, loss_fn, w, times)
    where = f"times={times}, w of shape (4, 3) and dtype {dtype}"
    if error is not None:
        text = error_text(error)
        if "second time" in text or "freed" in text:
            _fail("accgrad-graph-freed", subject=subject, expected=f"{times} backward passes ({where})", found=text)
        if "does not require grad" in text:
            _fail("accgrad-no-requires-grad", subject=subject, expected="a copy of w that requires grad", found=text)
        if "leaf" in text:
            _fail("accgrad-not-a-leaf", subject=subject, expected="a leaf copy of w that requires grad", found=text)
        _fail("accgrad-raised", subject=subject, expected=f"the accumulated gradient ({where})", found=text)
    if result is None:
        _fail("accgrad-not-a-leaf", subject=subject, expected=f"a tensor of shape (4, 3) ({where})", found="None")
    if not torch.equal(w.detach(), w_before) or w.grad is None or not torch.equal(w.grad, grad_before):
        _fail("accgrad-touched-w", subject=subject, expected="w and w.grad unchanged",
              found="w.grad changed" if torch.equal(w.detach(), w_before) else "w changed")
    if not isinstance(result, torch.Tensor) or result.shape != w.shape:
        found = f"shape {tuple(result.shape)}" if isinstance(result, torch.Tensor) else f"a {type(result).__name__}"
        _fail("accgrad-wrong-values", subject=subject, expected="a tensor of w's shape (4, 3)", found=found)
    if _close(result, w_before, rtol=1e-6, atol=1e-7):
        _fail("accgrad-returned-weights", subject=subject, expected=f"{times} × the gradient", found="w's values")
    counted = f"{loss_fn.calls} call(s) of loss_fn and {loss_fn.backwards} backward pass(es) for times={times}"
    expected_value = times * single
    if _close(result, expected_value, rtol=1e-5, atol=1e-7):
        if loss_fn.backwards == 1 and times > 1:
            _fail("accgrad-multiplied", subject=subject, expected=f"{times} backward passes", found=counted)
        if result.dtype != dtype:
            _fail("accgrad-dtype", subject=subject, expected=str(dtype), found=str(result.dtype))
        return
    if loss_fn.backwards == times and _close(result, single, rtol=1e-5, atol=1e-7):
        _fail("accgrad-zeroed", subject=subject, expected=f"{times} × the gradient of one call",
              found=f"the gradient of one call ({counted})")
    if loss_fn.backwards != times:
        _fail("accgrad-wrong-count", subject=subject, expected=f"{times} backward passes", found=counted)
    _fail("accgrad-wrong-values", subject=subject, expected=f"{times} × the gradient of one call ({where})",
          found=f"largest difference {(result.double() - expected_value.double()).abs().max().item():.3g}")


# --- PROBES: the grader's re-check (course_utils.verdict_probes) ------------------------------------
# The kernel calls the learner's code on scenarios drawn from a seed chosen at grading time and sends
# back values only; the grader rebuilds the same scenarios with these builders and judges the values.
# Whether autograd did the work cannot be seen in values: the in-kernel checks say.

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


def ce_grad_scenario(seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Exercise 2: float32 and float64 logits, logits of ±900, and targets that never reach the last class."""
    generator = torch.Generator().manual_seed(seed)
    n, classes = 4 + int(torch.randint(0, 17, (1,), generator=generator)), 2 + int(torch.randint(0, 5, (1,),
                                                                                                 generator=generator))
    logits = 2 * torch.randn(n, classes, generator=generator)
    targets = torch.randint(0, classes, (n,), generator=generator)
    targets[0], targets[-1] = 0, classes - 1
    logits64 = (3 * torch.randn(n, classes, generator=generator)).double()
    big = logits[-3:].clone()
    big[:, 0], big[:, -1] = 900.0, -900.0
    return [(logits, targets), (logits64, targets.flip(0)), (big, targets[-3:].clone()),
            (logits, targets.clamp(max=classes - 2))]


def accumulate_scenario(seed: int) -> list[tuple[torch.Tensor, torch.Tensor, int]]:
    """Exercise 3: (inputs of the counting loss, w, times) in float32 and float64; w.grad holds an old 0.5."""
    generator = torch.Generator().manual_seed(seed)
    cases = []
    for dtype, times in ((torch.float32, 2 + int(torch.randint(0, 4, (1,), generator=generator))),
                         (torch.float64, 1 + int(torch.randint(0, 4, (1,), generator=generator)))):
        inputs = torch.randn(6, 4, generator=generator, dtype=torch.float64)
        cases.append((inputs, torch.randn(4, 3, generator=generator, dtype=dtype), times))
    return cases


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


def counting_loss(inputs: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """The loss function given to accumulated_grad: it counts the backward passes through its results."""
    return _CountingLoss(inputs)


def _value(result: Any) -> torch.Tensor | None:
    """A plain tensor copy of ``result``, or None when it is no tensor (a value the judge rejects)."""
    return result.detach().clone().as_subclass(torch.Tensor) if isinstance(result, torch.Tensor) else None


def _probe_gradient_checker(ns: dict[str, Any], seed: int) -> dict[str, Any]:
    numerical_gradient, relative_error = ns["numerical_gradient"], ns["relative_error"]
    weights, cases = gradient_scenario(seed)
    gradients = []
    for x, eps, as_float in cases:
        given = x.clone()
        f = CoupledFunction(weights.clone(), as_float=as_float, caller_x=given)
        result = numerical_gradient(f, given) if eps is None else numerical_gradient(f, given, eps)
        gradients.append({"gradient": _value(result), "x": given.clone(), "nudged_x": bool(f.nudged_caller_x)})
    errors = []
    for a, b in relative_error_scenario(seed):
        result = relative_error(a.clone(), b.clone())
        errors.append(result if type(result) is float else None)
    return {"gradients": gradients, "errors": errors}


def _probe_ce_grad(ns: dict[str, Any], seed: int) -> dict[str, Any]:
    cases = []
    for logits, targets in ce_grad_scenario(seed):
        given = logits.clone()
        with torch.no_grad():
            result = ns["cross_entropy_grad"](given, targets.clone())
        cases.append({"gradient": _value(result), "logits": given.clone()})
    return {"cases": cases}


def _probe_accumulated_grad(ns: dict[str, Any], seed: int) -> dict[str, Any]:
    cases = []
    for inputs, w, times in accumulate_scenario(seed):
        given = w.clone().requires_grad_(True)
        given.grad = torch.full_like(given, 0.5)  # an old gradient of the caller's, to be left alone
        loss_fn = _CountingLoss(inputs.clone())
        result = ns["accumulated_grad"](loss_fn, given, times)
        cases.append({"gradient": _value(result), "backwards": int(loss_fn.backwards), "w": _value(given),
                      "w_grad": _value(given.grad)})
    return {"cases": cases}


PROBES = {"ex1-tests": _probe_gradient_checker, "ex2-tests": _probe_ce_grad, "ex3-tests": _probe_accumulated_grad}
