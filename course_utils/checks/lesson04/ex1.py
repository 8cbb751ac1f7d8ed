"""Lesson 04, Exercise 1 · Cross-entropy by hand: its three grade cells' diagnoses, checks and re-check probes.

``cross_entropy`` is run on seeded logits the notebook never prints, with PyTorch's own cross-entropy
functions switched off during the call, and compared with ``F.cross_entropy``'s values and gradients,
stored as data (``checks/expected/lesson04-{values,stability,weights}.json``, computed on the grader's
side); when the values differ, the check finds which typical mistake reproduces them (sum instead of
mean, softmax before the loss, softmax over the batch, no max shift, a weighted mean taken over N, ...).
Three grade cells: the values, the numerical stability, and the class weights and label smoothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, NoReturn
from unittest import mock

import torch
from torch.nn import functional as F

from course_utils.checks import expected as stored
from course_utils.checks.learner import call_learner, error_text
from course_utils.checks.lesson04.common import (
    CROSS_ENTROPY,
    DOUBLE_SOFTMAX,
    LESSON,
    REDUCTION,
    STABILITY,
    WEIGHTS_SMOOTHING,
    plain,
    same,
)
from course_utils.diagnoses import Exercise, ForbiddenCall, fail_with

_HEADING = "Exercise 1 · Cross-entropy by hand"
VALUES_EXERCISE = Exercise(LESSON, "ex1-values-tests", _HEADING)
STABILITY_EXERCISE = Exercise(LESSON, "ex1-stability-tests", _HEADING)
WEIGHTS_EXERCISE = Exercise(LESSON, "ex1-weights-smoothing-tests", _HEADING)

DIAGNOSES = VALUES_EXERCISE.diagnoses(
    ("ce-library-call", "cross_entropy calls PyTorch's own cross-entropy (F.cross_entropy, nn.CrossEntropyLoss, "
     "F.nll_loss or log_softmax)",
     "this is not allowed: the exercise is to write cross-entropy yourself. Build log p from max, exp, sum and "
     "log (torch.logsumexp is fine), then pick -log p of the true class with indexing or gather.", "not-allowed"),
    ("ce-crashed", "cross_entropy raised an error",
     "run cross_entropy(logits, yb) in a cell of your own to see the full traceback.", "interface"),
    ("ce-hard-coded", "cross_entropy returns the same number for different logits",
     "this is not allowed: the checks use logits you never see. Compute the loss from the logits and targets.",
     "not-allowed"),
    ("ce-not-tensor", "cross_entropy did not return a tensor",
     "return the tensor itself: no .item(), float() or NumPy, so that autograd can follow it.", "interface"),
    ("ce-no-reduction", "cross_entropy returned one loss per sample, not their mean",
     "average the per-sample losses: loss_per_sample.mean() gives a 0-dim tensor.", "loss", REDUCTION),
    ("ce-shape", "cross_entropy did not return a 0-dim tensor", "the loss is one number: a tensor of shape ().",
     "shapes"),
    ("ce-dtype", "cross_entropy did not compute in the logits' dtype",
     "compute with the logits' own dtype: float64 logits give a float64 loss (no .float()).", "dtypes"),
    ("ce-sum-reduction", "cross_entropy adds up the per-sample losses instead of averaging them",
     "use .mean() (reduction='mean'): with a sum the loss and its gradients grow with the batch size.",
     "loss", REDUCTION),
    ("ce-mean-over-classes", "cross_entropy divides by N·C (a mean over every entry of an (N, C) table), not by N",
     "take -log p of the true class for each row (one number per sample), then average over the N samples.", "loss"),
    ("ce-double-softmax", "cross_entropy applies a softmax to the logits before the cross-entropy",
     "the logits go straight into the formula -z_y + log(sum_c exp(z_c)): the softmax is inside it already.",
     "loss", DOUBLE_SOFTMAX),
    ("ce-dim", "cross_entropy takes the softmax (or the max) over dim=0, across the samples",
     "the classes are dim=1: take max, sum and log-sum-exp over dim=1 with keepdim=True.", "shapes", CROSS_ENTROPY),
    ("ce-sign", "cross_entropy returns minus the loss (log p instead of -log p)",
     "the loss is -log p of the true class: it is positive, and 0 only for a perfect prediction.", "loss"),
    ("ce-missing-log", "cross_entropy uses the probability of the true class instead of its log",
     "cross-entropy is -log p_y, not -p_y: take the log (log p = shifted - log(sum(exp(shifted))))).",
     "loss", CROSS_ENTROPY),
    ("ce-index-all-rows", "cross_entropy picks log_p[:, targets], an (N, N) table, instead of one entry per row",
     "pair each row with its own target: log_p[torch.arange(N), targets] or log_p.gather(1, targets[:, None]).",
     "shapes"),
    ("ce-detached", "the loss does not let autograd reach the logits",
     "build the loss only from tensor operations on the logits: no .item(), .detach(), NumPy or torch.no_grad().",
     "gradients"),
    ("ce-gradient", "the gradient of the loss differs from F.cross_entropy's although the value is close",
     "no epsilon, clamp or other correction: log p = (z - m) - log(sum(exp(z - m))) is exact.", "gradients"),
    ("ce-epsilon", "cross_entropy is close to F.cross_entropy but not exact (a small epsilon or a clamp)",
     "no epsilon and no clamp: log p = (z - m) - log(sum(exp(z - m))) is exact and never takes log(0).",
     "numerics", STABILITY),
    ("ce-value", "cross_entropy does not match F.cross_entropy",
     "loss_i = -z[i, y_i] + log(sum_c exp(z[i, c])), averaged over the N rows.", "loss"),
) + STABILITY_EXERCISE.diagnoses(
    ("ce-no-max-shift", "cross_entropy overflows on large logits: exp(z) without subtracting the row's maximum",
     "subtract each row's maximum before exp, and add it back after the log: "
     "log sum exp(z) = m + log sum exp(z - m).", "numerics", STABILITY),
    ("ce-log-of-softmax", "cross_entropy takes the log of a softmax that underflowed to 0",
     "never compute log(softmax(z)): compute log p = (z - m) - log(sum(exp(z - m))) directly.",
     "numerics", STABILITY),
    ("ce-global-max", "cross_entropy subtracts one maximum for the whole batch, not each row's own",
     "take the maximum per row: logits.max(dim=1, keepdim=True).values; with one global maximum, rows whose "
     "logits are all far below it underflow to log(0).", "numerics", STABILITY),
    ("ce-clamped", "cross_entropy clamps probabilities (or adds a small epsilon) before the log, which changes "
     "the loss of confident mistakes",
     "no clamp and no epsilon is needed: log p = (z - m) - log(sum(exp(z - m))) is exact and finite.",
     "numerics", STABILITY),
    ("ce-clamped-logits", "cross_entropy clamps the logits to avoid overflow, which changes the loss when "
     "large logits are close to each other",
     "do not clamp: subtract each row's maximum instead, which changes nothing in the result and keeps "
     "every exp() at most 1.", "numerics", STABILITY),
    ("ce-unstable", "cross_entropy is not finite or not exact on large logits",
     "subtract each row's maximum before exp (section 7); logits of ±10 000 must give a finite, exact loss.",
     "numerics", STABILITY),
    ("ce-nan-gradient", "the gradient of the loss is not finite on large logits",
     "compute log p from the shifted logits only; avoid log(softmax) and divisions by probabilities.",
     "numerics", STABILITY),
) + WEIGHTS_EXERCISE.diagnoses(
    ("ce-weight-ignored", "cross_entropy ignores the class weights", "multiply each sample's loss by "
     "weight[y_i] and divide the sum by sum(weight[y_i]).", "loss", WEIGHTS_SMOOTHING),
    ("ce-weight-mean", "the weighted loss is divided by N, not by the sum of the weights used",
     "PyTorch's weighted mean is sum(w[y_i] * loss_i) / sum(w[y_i]), not mean(w[y_i] * loss_i).",
     "loss", WEIGHTS_SMOOTHING),
    ("ce-weight-formula", "cross_entropy with class weights does not match F.cross_entropy",
     "sum(w[y_i] * loss_i) / sum(w[y_i]), with w[y_i] the weight of each sample's true class.",
     "loss", WEIGHTS_SMOOTHING),
    ("ce-smoothing-ignored", "cross_entropy ignores label_smoothing",
     "loss_i = (1 - eps) * (-log p[y_i]) + eps / C * sum_c (-log p[c]).", "loss", WEIGHTS_SMOOTHING),
    ("ce-smoothing-classes-hard-coded", "the smoothing term divides by 3 whatever the number of classes",
     "divide eps by C = logits.shape[1], the number of classes of the logits you are given.",
     "loss", WEIGHTS_SMOOTHING),
    ("ce-smoothing-not-divided", "the smoothing term is eps * sum_c (-log p[c]), without dividing by C",
     "every class gets eps / C: the term is eps / C * sum_c (-log p[c]).", "loss", WEIGHTS_SMOOTHING),
    ("ce-smoothing-other-classes", "the smoothing term spreads eps over the other C - 1 classes only",
     "PyTorch spreads eps over all C classes, the true one included: eps / C * sum over every c of -log p[c].",
     "loss", WEIGHTS_SMOOTHING),
    ("ce-smoothing-formula", "cross_entropy with label_smoothing does not match F.cross_entropy",
     "loss_i = (1 - eps) * (-log p[y_i]) + eps / C * sum_c (-log p[c]), averaged over the rows.",
     "loss", WEIGHTS_SMOOTHING),
    ("ce-smoothing-unweighted", "with weights and label smoothing, the smoothing term is not weighted by w_c",
     "weight each class's -log p[c] by w_c in the smoothing term: eps / C * sum_i sum_c w_c * (-log p[i, c]).",
     "loss", WEIGHTS_SMOOTHING),
    ("ce-smoothing-denominator", "with weights and label smoothing, the smoothing term is divided by N, "
     "not by the sum of the weights used",
     "divide both terms by the same sum(w[y_i]) (section 6's formula for both at once).", "loss", WEIGHTS_SMOOTHING),
    ("ce-weight-smoothing-formula", "cross_entropy with weights and label smoothing together does not match "
     "F.cross_entropy",
     "((1-eps) * sum_i w[y_i] * nll_i + eps/C * sum_i sum_c w_c * (-log p[i, c])) / sum_i w[y_i].",
     "loss", WEIGHTS_SMOOTHING),
)

# PyTorch's own cross-entropy and its parts: the by-hand cross-entropy must not call them. The grader finds them
# in the submitted source (course_tools.grade); its three check cells all score 0 then.
_LIBRARY_CROSS_ENTROPY = ("torch.nn.functional.cross_entropy", "torch.nn.CrossEntropyLoss",
                          "torch.nn.functional.nll_loss", "torch.nn.NLLLoss", "torch.nn.functional.log_softmax",
                          "torch.log_softmax", "torch.special.log_softmax", "torch.nn.LogSoftmax")
FORBIDDEN_CALLS = tuple(ForbiddenCall(exercise.grade_id, "cross_entropy", _LIBRARY_CROSS_ENTROPY, "ce-library-call")
                        for exercise in (VALUES_EXERCISE, STABILITY_EXERCISE, WEIGHTS_EXERCISE))


def logits_and_targets(seed: int, n: int, n_classes: int, scale: float = 2.0,
                       dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded logits (n, n_classes) of about ``scale`` in ``dtype``, and int64 targets."""
    generator = torch.Generator().manual_seed(seed)
    logits = (torch.randn(n, n_classes, generator=generator, dtype=torch.float64) * scale).to(dtype)
    targets = torch.randint(0, n_classes, (n,), generator=generator)
    return logits, targets


# --- the checks' fixed inputs, and what PyTorch answers for them (stored data) ---------------------------
# Each check runs on cases built here from its seed; F.cross_entropy's loss, gradient and per-sample losses
# for them, and the values of the typical mistakes, are computed on the grader's side and stored in
# checks/expected/lesson04-*.json (one list entry per case), so this module holds no cross-entropy of its own.

Case = tuple[torch.Tensor, torch.Tensor, dict[str, Any]]  # logits, targets, options (weight, label_smoothing)
# The typical mistakes whose values are stored, by the index the stored files use: (code, what the value equals).
MISTAKES = (
    ("ce-sum-reduction", "the sum of the per-sample losses"),
    ("ce-mean-over-classes", "the sum of the per-sample losses divided by N·C"),
    ("ce-double-softmax", "the cross-entropy of softmax(logits)"),
    ("ce-dim", "the cross-entropy with the softmax over dim=0"),
    ("ce-dim", "the cross-entropy with each column's maximum subtracted"),
    ("ce-sign", "minus the cross-entropy"),
    ("ce-missing-log", "the mean of -p (the probability of the true class, without log)"),
    ("ce-missing-log", "the mean of 1 - p (the probability of the true class, without log)"),
    ("ce-index-all-rows", "the mean of -log_p[:, targets], an (N, N) table"),
    ("ce-index-all-rows", "the mean of -log_p[:, targets], an (N, N) table, summed per row"),
    ("ce-weight-ignored", "the loss without weights"),
    ("ce-weight-mean", "the weighted sum divided by N"),
    ("ce-smoothing-ignored", "the loss without label smoothing"),
    ("ce-smoothing-classes-hard-coded", "the formula with eps / 3 instead of eps / C"),
    ("ce-smoothing-not-divided", "the formula with eps instead of eps / C"),
    ("ce-smoothing-other-classes", "(1 - eps) * nll + eps / (C - 1) * the other classes' -log p"),
    ("ce-smoothing-unweighted", "the formula with an unweighted smoothing term"),
    ("ce-smoothing-denominator", "the formula with the smoothing term divided by N"),
)
# (what a non-finite result means, what a finite but wrong result means, description, logits, targets)
_STABILITY_ROWS = (
    ("ce-log-of-softmax", "ce-clamped", "one row whose true class has a probability below the smallest number "
     "the dtype can hold, but no logit large enough to overflow", [[0.0, -800.0, 3.0]], [1]),
    ("ce-no-max-shift", "ce-unstable", "one row with a large logit for its own class", [["big", 0.0, -5.0]], [0]),
    ("ce-global-max", "ce-unstable", "two rows at very different scales", [["big", 0.0, 0.0], [0.0, "-big", 5.0]],
     [0, 2]),
    ("ce-no-max-shift", "ce-clamped-logits", "two large logits 3 apart", [["big", "big-3", 0.0]], [1]),
    ("ce-unstable", "ce-clamped", "one row whose true class has a very negative logit", [[0.0, "-big", 3.0]], [1]),
    ("ce-unstable", "ce-clamped", "a confident mistake of moderate size", [[0.0, 60.0, 0.0]], [0]),
)


def values_cases(seed: int) -> list[Case]:
    """Exercise 1's values check: two batches of the same shape (a hard-coded answer gives one number for both),
    then one sample, and a float32 batch of 7 classes."""
    n = 9 + seed % 5
    sizes = ((seed, n, 4, 2.0, torch.float64), (seed + 100, n, 4, 2.0, torch.float64),
             (seed + 1, 1, 3, 1.0, torch.float64), (seed + 2, 20, 7, 3.0, torch.float32))
    return [(*logits_and_targets(*size), {}) for size in sizes]


def _stability_rows(seed: int) -> list[tuple[str, str, str, list[list[float]], list[int], torch.dtype]]:
    generator = torch.Generator().manual_seed(seed)
    big = float(torch.randint(5000, 10001, (1,), generator=generator))
    numbers = {"big": big, "-big": -big, "big-3": big - 3.0}
    rows = []
    for dtype in (torch.float32, torch.float64):
        for not_finite, wrong, description, logits, labels in _STABILITY_ROWS:
            values = [[numbers.get(v, v) if isinstance(v, str) else v for v in row] for row in logits]
            if values == [[0.0, -800.0, 3.0]] and dtype == torch.float32:
                values = [[0.0, -200.0, 3.0]]  # e^-200 is 0 in float32, e^-800 in float64
            rows.append((not_finite, wrong, description, values, labels, dtype))
    return rows


def stability_cases(seed: int) -> list[Case]:
    """Exercise 1's stability check: ordinary logits (8, 4) first, then rows of logits in the thousands."""
    return [(*logits_and_targets(seed, 8, 4), {})] + [(torch.tensor(values, dtype=dtype), torch.tensor(labels), {})
                                                      for *_, values, labels, dtype in _stability_rows(seed)]


def weights_cases(seed: int) -> list[Case]:
    """Exercise 1's options check: ordinary logits (12, 5) first, then weights, smoothing and both, C != 3."""
    generator = torch.Generator().manual_seed(seed + 7)
    n_classes = 5 + seed % 3
    logits, targets = logits_and_targets(seed + 3, 15, n_classes, scale=3.0)
    weight = torch.rand(n_classes, generator=generator, dtype=torch.float64) * 3 + 0.2
    eps = round(0.05 + 0.3 * float(torch.rand(1, generator=generator)), 3)
    return [(*logits_and_targets(seed, 12, 5), {})] + [
        (logits, targets, {"weight": weight if use_weight else None,
                           "label_smoothing": eps if use_smoothing else 0.0})
        for use_weight, use_smoothing in ((True, False), (False, True), (True, True))]


def _stored_cases(kind: str, seed: int) -> list[dict[str, Any]]:
    return stored.for_seed(f"lesson04-{kind}", seed)


def _stored_loss(want: dict[str, Any]) -> torch.Tensor:
    return torch.tensor(want["loss"], dtype=torch.float64)


# --- the call, with PyTorch's cross-entropy switched off ----------------------------------------

class _LibraryCall(Exception):
    """Raised when the learner's cross_entropy calls one of PyTorch's own cross-entropy functions."""


def _refuse(*args: Any, **kwargs: Any) -> NoReturn:
    raise _LibraryCall()


@contextlib.contextmanager
def _library_switched_off() -> Iterator[None]:
    """F.cross_entropy, nn.CrossEntropyLoss, F.nll_loss and every log_softmax raise _LibraryCall meanwhile.

    The low-level functions are patched too, so an alias imported before the call is caught as well.
    """
    targets = [(F, "cross_entropy"), (F, "nll_loss"), (F, "log_softmax"), (torch, "log_softmax"),
               (torch.Tensor, "log_softmax"), (torch.special, "log_softmax"), (torch._C._nn, "cross_entropy_loss"),
               (torch._C._nn, "nll_loss"), (torch._C._nn, "nll_loss_nd"), (torch._C._nn, "nll_loss2d")]
    with contextlib.ExitStack() as stack:
        for owner, name in targets:
            if hasattr(owner, name):
                stack.enter_context(mock.patch.object(owner, name, _refuse))
        yield


def _call(cross_entropy: Callable[..., Any], logits: torch.Tensor, targets: torch.Tensor, subject: str,
          **options: Any) -> Any:
    """The learner's loss, called without PyTorch's own cross-entropy; a library call is a finding."""
    with _library_switched_off():
        result, error = call_learner(cross_entropy, logits, targets, **options)
    if isinstance(error, _LibraryCall):
        fail_with("ce-library-call", expected="cross-entropy written from exp, log, sum and max",
                  found="a call to PyTorch's own cross-entropy, nll_loss or log_softmax", subject=subject)
    if error is not None:
        fail_with("ce-crashed", expected="a 0-dim loss tensor", found=error_text(error), subject=subject)
    return result


def _check_gradient(result: torch.Tensor, leaf: torch.Tensor, want: dict[str, Any], subject: str) -> None:
    """``result`` can be differentiated, and its gradient on the logits is F.cross_entropy's (stored)."""
    if not result.requires_grad:
        fail_with("ce-detached", expected="a loss that autograd can differentiate (requires_grad=True)",
                  found="requires_grad=False", subject=subject)
    try:
        result.backward()
    except RuntimeError as error:
        fail_with("ce-detached", expected="loss.backward() to reach the logits", found=error_text(error),
                  subject=subject)
    if leaf.grad is None:
        fail_with("ce-detached", expected="the gradient of F.cross_entropy on the logits", found="no gradient",
                  subject=subject)
    expected = torch.tensor(want["grad"], dtype=torch.float64)
    if not same(leaf.grad, expected, rtol=1e-5, atol=1e-6):
        fail_with("ce-gradient", expected="the gradient of F.cross_entropy on the logits",
                  found=f"largest difference {float((leaf.grad.double() - expected).abs().max()):.3g}",
                  subject=subject)


def _check_plain(cross_entropy: Callable[..., Any], case: Case, want: dict[str, Any], subject: str) -> None:
    """Value, shape, dtype and gradient of cross_entropy(logits, targets) against F.cross_entropy's (stored)."""
    logits, targets, _ = case
    leaf = logits.clone().requires_grad_(True)
    result = _call(cross_entropy, leaf, targets, subject)
    reference = _stored_loss(want)
    expected = f"{reference.item():.6f}, a 0-dim {logits.dtype} tensor (F.cross_entropy)"
    if not isinstance(result, torch.Tensor):
        fail_with("ce-not-tensor", expected=expected, found=f"{result!r} (a {type(result).__name__})",
                  subject=subject)
    per_sample = torch.tensor(want["per_sample"], dtype=torch.float64)
    if result.shape == per_sample.shape and result.ndim and same(result, per_sample):
        fail_with("ce-no-reduction", expected=expected, found=f"shape {tuple(result.shape)}: one loss per sample",
                  subject=subject)
    if result.shape != ():
        fail_with("ce-shape", expected=expected, found=f"shape {tuple(result.shape)}", subject=subject)
    tolerance = dict(rtol=1e-5, atol=1e-5) if logits.dtype == torch.float32 else dict(rtol=1e-6, atol=1e-6)
    if not same(result, reference, **tolerance):
        for index, value in want["mistakes"]:
            code, equals = MISTAKES[index]
            if same(result, torch.tensor(value, dtype=torch.float64), **tolerance):
                fail_with(code, expected=expected, found=f"{result.item():.6f}, which equals {equals}",
                          subject=subject)
        near = same(result, reference, rtol=1e-2, atol=0.0)
        fail_with("ce-epsilon" if near else "ce-value", expected=expected, found=f"{result.item():.8f}",
                  subject=subject)
    if result.dtype != logits.dtype:
        fail_with("ce-dtype", expected=expected, found=f"a {result.dtype} tensor", subject=subject)
    _check_gradient(result, leaf, want, subject)


def _as_number(value: Any) -> float | None:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value.detach())
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def _shape(case: Case) -> str:
    return f"{case[0].dtype} logits of shape {tuple(case[0].shape)}"


# --- the three visible checks --------------------------------------------------------------------

def check_cross_entropy(cross_entropy: Callable[..., Any], *, seed: int) -> None:
    """Exercise 1's values: seeded logits of ordinary size (no overflow), several N and C, float32 and float64."""
    cases, wants = values_cases(seed), _stored_cases("values", seed)
    (first, *_), (other, *_) = cases[0], cases[1]
    subject = f"cross_entropy on two different float64 batches of logits {tuple(first.shape)}"
    answers = [_as_number(_call(cross_entropy, logits, targets, subject)) for logits, targets, _ in cases[:2]]
    if answers[0] is not None and answers[0] == answers[1]:
        fail_with("ce-hard-coded", expected=f"{wants[0]['loss']:.6f} and {wants[1]['loss']:.6f}",
                  found=f"{answers[0]} for both", subject=subject)
    for index in (0, 2, 3):
        _check_plain(cross_entropy, cases[index], wants[index], f"cross_entropy on {_shape(cases[index])}")


def check_cross_entropy_stability(cross_entropy: Callable[..., Any], *, seed: int) -> None:
    """Exercise 1's stability: logits of ±10 000 in float32 and float64, finite and exact, with finite gradients."""
    cases, wants = stability_cases(seed), _stored_cases("stability", seed)
    _check_plain(cross_entropy, cases[0], wants[0],
                 "the values check above still fails, first fix cross_entropy on ordinary float64 logits (8, 4)")
    for case, want, row in zip(cases[1:], wants[1:], _stability_rows(seed)):
        not_finite, wrong, description, values, labels, dtype = row
        logits, targets, _ = case
        subject = f"cross_entropy on {dtype} logits {values}, targets {labels} ({description})"
        leaf = logits.clone().requires_grad_(True)
        result = _call(cross_entropy, leaf, targets, subject)
        reference = _stored_loss(want)
        expected = f"{reference.item():.6g} (finite)"
        if not isinstance(result, torch.Tensor) or result.shape != ():
            _check_plain(cross_entropy, case, want, subject)
        if not bool(torch.isfinite(result.detach()).all()):
            fail_with(not_finite, expected=expected, found=f"{result.item()}", subject=subject)
        # a few rounding steps of the dtype at the size of the largest logit
        tolerance = 8 * torch.finfo(dtype).eps * float(logits.abs().max()) + 1e-5
        if not same(result, reference, rtol=1e-5, atol=tolerance):
            fail_with(wrong, expected=expected, found=f"{result.item():.6g}", subject=subject)
        if result.requires_grad:
            result.backward()
            if leaf.grad is None or not bool(torch.isfinite(leaf.grad).all()):
                fail_with("ce-nan-gradient", expected="finite gradients",
                          found="no gradient" if leaf.grad is None else f"{leaf.grad.tolist()}", subject=subject)


def check_cross_entropy_weights_smoothing(cross_entropy: Callable[..., Any], *, seed: int) -> None:
    """Exercise 1's options: class weights, label smoothing, both, on seeded logits with C != 3 classes."""
    cases, wants = weights_cases(seed), _stored_cases("weights", seed)
    _check_plain(cross_entropy, cases[0], wants[0],
                 "the values check above still fails, first fix cross_entropy on ordinary float64 logits (12, 5)")
    generic = {(True, False): "ce-weight-formula", (False, True): "ce-smoothing-formula",
               (True, True): "ce-weight-smoothing-formula"}
    for (logits, targets, options), want in zip(cases[1:], wants[1:]):
        shown = ", ".join(f"{k}={v if k == 'label_smoothing' else ('None' if v is None else 'a tensor')}"
                          for k, v in options.items())
        subject = f"cross_entropy on logits {tuple(logits.shape)} with {shown}"
        leaf = logits.clone().requires_grad_(True)
        result = _call(cross_entropy, leaf, targets, subject, **options)
        reference = _stored_loss(want)
        expected = f"{reference.item():.6f} (F.cross_entropy with the same options)"
        if not isinstance(result, torch.Tensor) or result.shape != ():
            fail_with("ce-shape", expected=expected, found=f"{result!r}"[:120], subject=subject)
        if not same(result, reference, rtol=1e-5, atol=1e-5):
            for index, value in want["mistakes"]:
                code, equals = MISTAKES[index]
                if same(result, torch.tensor(value, dtype=torch.float64), rtol=1e-5, atol=1e-5):
                    fail_with(code, expected=expected, found=f"{result.item():.6f}, which equals {equals}",
                              subject=subject)
            used = (options["weight"] is not None, bool(options["label_smoothing"]))
            fail_with(generic[used], expected=expected, found=f"{result.item():.6f}", subject=subject)
        _check_gradient(result, leaf, want, subject)


# --- the grader's re-check (course_utils.verdict_probes) ---------------------------------------------
# The kernel calls the learner's code on scenarios drawn from a seed chosen at grading time and sends
# back values only; the grader rebuilds the same scenarios with these builders and judges the values.
# Whether PyTorch's own cross-entropy did the work cannot be seen in values: the in-kernel checks say.

def values_scenario(seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Exercise 1's values: (logits, targets) of several sizes, float64 and float32, one set of confident rows."""
    generator = torch.Generator().manual_seed(seed)
    n = 3 + int(torch.randint(0, 12, (1,), generator=generator))
    n_classes = 2 + int(torch.randint(0, 6, (1,), generator=generator))
    return [logits_and_targets(seed, n, n_classes, 2.0, torch.float64),
            logits_and_targets(seed + 1, 1, 3, 1.0, torch.float64),
            logits_and_targets(seed + 2, 25, n_classes + 1, 3.0, torch.float32),
            logits_and_targets(seed + 3, n, 4, 9.0, torch.float64)]  # some true classes with p far below 1e-7


def stability_scenario(seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Exercise 1's stability: rows with logits of thousands, in float32 and float64 (finite, exact losses)."""
    generator = torch.Generator().manual_seed(seed)
    big = float(torch.randint(3000, 10001, (1,), generator=generator))
    rows = [([[0.0, -800.0, 3.0]], [1]), ([[big, 0.0, -5.0]], [0]), ([[big, 0.0, 0.0], [0.0, -big, 5.0]], [0, 2]),
            ([[big, big - 3.0, 0.0]], [1]), ([[0.0, -big, 3.0]], [1]), ([[0.0, 60.0, 0.0]], [0])]
    cases = []
    for dtype in (torch.float32, torch.float64):
        for logits, labels in rows:
            if logits == [[0.0, -800.0, 3.0]] and dtype == torch.float32:
                logits = [[0.0, -200.0, 3.0]]  # e^-200 is 0 in float32, e^-800 in float64
            cases.append((torch.tensor(logits, dtype=dtype), torch.tensor(labels)))
    return cases


def weights_scenario(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """Exercise 1's options: float64 logits with C = 4 to 7 classes, positive class weights, a smoothing eps."""
    generator = torch.Generator().manual_seed(seed + 7)
    n_classes = 4 + int(torch.randint(0, 4, (1,), generator=generator))
    weight = torch.rand(n_classes, generator=generator, dtype=torch.float64) * 3 + 0.2
    eps = round(0.05 + 0.3 * float(torch.rand(1, generator=generator)), 3)
    logits, targets = logits_and_targets(seed + 3, 6 + int(torch.randint(0, 15, (1,), generator=generator)),
                                         n_classes, 3.0)
    return logits, targets, weight, eps


WEIGHT_OPTIONS = ((False, False), (True, False), (False, True), (True, True))  # (weight, label_smoothing) used


def _loss_and_grad(cross_entropy: Callable[..., Any], logits: torch.Tensor, targets: torch.Tensor,
                   **options: Any) -> dict[str, Any]:
    leaf = logits.clone().requires_grad_(True)
    result = cross_entropy(leaf, targets.clone(), **options)
    if isinstance(result, torch.Tensor) and result.shape == () and result.requires_grad:
        result.backward()
    return {"loss": plain(result), "grad": plain(leaf.grad)}


def probe_values(ns: dict[str, Any], seed: int) -> dict[str, Any]:
    """The values the grader judges for ex1-values-tests: loss and gradient on each batch of ordinary logits."""
    return {"cases": [_loss_and_grad(ns["cross_entropy"], logits, targets)
                      for logits, targets in values_scenario(seed)]}


def probe_stability(ns: dict[str, Any], seed: int) -> dict[str, Any]:
    """The values the grader judges for ex1-stability-tests: loss and gradient on each batch of large logits."""
    return {"cases": [_loss_and_grad(ns["cross_entropy"], logits, targets)
                      for logits, targets in stability_scenario(seed)]}


def probe_weights_smoothing(ns: dict[str, Any], seed: int) -> dict[str, Any]:
    """The values the grader judges for ex1-weights-smoothing-tests: loss and gradient for each set of options."""
    logits, targets, weight, eps = weights_scenario(seed)
    cases = []
    for use_weight, use_smoothing in WEIGHT_OPTIONS:
        options: dict[str, Any] = {}
        if use_weight:
            options["weight"] = weight.clone()
        if use_smoothing:
            options["label_smoothing"] = eps
        cases.append(_loss_and_grad(ns["cross_entropy"], logits, targets, **options))
    return {"cases": cases}
