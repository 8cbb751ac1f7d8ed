"""Lesson 05, Exercise 2 · The analytic gradient of cross-entropy: cross_entropy_grad.

The check runs cross_entropy_grad on seeded logits (float32, float64, logits of ±900, a batch in
which the last class does not occur), watching for autograd, and compares the result with autograd's
gradient and with the results of the usual wrong formulas, all stored (``expected/lesson05-ce-grad.json``),
so that a mismatch is named by the formula the learner wrote.
"""

from __future__ import annotations

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
SECTION = "5 · The gradient of softmax cross-entropy"
EXERCISE = Exercise(LESSON, "ex2-tests", "Exercise 2 · The analytic gradient of cross-entropy")
DIAGNOSES = EXERCISE.diagnoses(
    ("cegrad-autograd",
     "cross_entropy_grad used autograd (backward or torch.autograd.grad): not allowed here",
     "compute the formula directly: (torch.softmax(logits, dim=1) - F.one_hot(targets, C)) / N.",
     "not-allowed", SECTION),
    ("cegrad-one-hot-classes",
     "cross_entropy_grad fails on a batch in which the last class does not occur",
     "give one_hot the number of classes: F.one_hot(targets, num_classes=logits.shape[1]).",
     "shapes", SECTION),
    ("cegrad-overflow",
     "cross_entropy_grad gives inf or nan for large logits",
     "use torch.softmax (it subtracts the row maximum before exp) instead of exp(z) / exp(z).sum().",
     "numerics", SECTION),
    ("cegrad-shape",
     "cross_entropy_grad did not return a tensor of the logits' shape (N, C)",
     "softmax(logits, dim=1) and one_hot(targets, C) are both (N, C): subtract them, then divide by N.",
     "shapes", SECTION),
    ("cegrad-no-mean",
     "the gradient is N times too large: the division by N (mean reduction) is missing",
     "F.cross_entropy averages over the batch, so every row of the gradient is divided by N = len(targets).",
     "loss", SECTION),
    ("cegrad-sign",
     "the gradient has the wrong sign: one_hot - softmax",
     "dL/dz = (softmax - one_hot) / N: the true class's logit has a negative gradient (raising it lowers the loss).",
     "loss", SECTION),
    ("cegrad-softmax-dim",
     "the softmax was taken over the batch (dim=0), not over the classes",
     "each row is one sample: torch.softmax(logits, dim=1).",
     "shapes", SECTION),
    ("cegrad-no-softmax",
     "the raw logits were used where the softmax probabilities belong",
     "dL/dz = (softmax(z) - one_hot) / N: turn the logits into probabilities first.",
     "loss", SECTION),
    ("cegrad-log-softmax",
     "log_softmax was used where softmax belongs",
     "the derivative of log-sum-exp is softmax itself: torch.softmax(logits, dim=1), not log_softmax.",
     "loss", SECTION),
    ("cegrad-divide-by-classes",
     "the gradient was divided by the number of classes C, not by the batch size N",
     "the mean runs over the N samples of the batch: divide by N = logits.shape[0] = len(targets).",
     "loss", SECTION),
    ("cegrad-dtype",
     "cross_entropy_grad did not return the dtype of the logits",
     "convert one_hot to logits.dtype (F.one_hot(...).to(logits.dtype)) and nothing else.",
     "dtypes", SECTION),
    ("cegrad-changed-logits",
     "cross_entropy_grad changed the caller's logits",
     "do not modify logits in place (no -=, no softmax_); work on new tensors.",
     "interface", SECTION),
    ("cegrad-wrong-values",
     "cross_entropy_grad does not match autograd's gradient",
     "(torch.softmax(logits, dim=1) - F.one_hot(targets, C).to(logits.dtype)) / N.",
     "loss", SECTION),
    ("cegrad-raised",
     "cross_entropy_grad raised an exception",
     "the lines above this message show where in your code it was raised; logits is (N, C) floating point, "
     "targets (N,) integer class indices in 0 … C-1.",
     "interface", SECTION),
)
FORBIDDEN_CALLS = (ForbiddenCall("ex2-tests", "cross_entropy_grad", AUTOGRAD, "cegrad-autograd"),)


def _ce_call(cross_entropy_grad: Callable[..., Any], logits: torch.Tensor, targets: torch.Tensor,
             what: str) -> torch.Tensor:
    subject = "cross_entropy_grad"
    before = logits.clone()
    with autograd_calls() as autograd, torch.no_grad():
        result, error = call_learner(cross_entropy_grad, logits, targets)
    if autograd:
        fail_with("cegrad-autograd", subject=subject, expected="the formula, computed without autograd",
                  found=f"{len(autograd)} autograd call(s) ({', '.join(sorted(set(autograd)))}) for {what}")
    wrong_shape = not isinstance(result, torch.Tensor) or result.shape != logits.shape
    if (error is not None or wrong_shape) and int(targets.max()) < logits.shape[1] - 1:
        fail_with("cegrad-one-hot-classes", subject=subject,
                  expected=f"a gradient of shape {tuple(logits.shape)} for {what}, whose targets never reach "
                           f"class {logits.shape[1] - 1}",
                  found=error_text(error) if error is not None else f"shape {tuple(result.shape)}")
    if error is not None:
        fail_with("cegrad-raised", subject=subject, expected=f"a gradient for {what}", found=error_text(error))
    if not torch.equal(logits, before):
        fail_with("cegrad-changed-logits", subject=subject, expected="logits unchanged",
                  found=f"logits changed by up to {(logits.double() - before.double()).abs().max().item():.3g}")
    if not isinstance(result, torch.Tensor) or result.shape != logits.shape:
        found = f"shape {tuple(result.shape)}" if isinstance(result, torch.Tensor) else f"a {type(result).__name__}"
        fail_with("cegrad-shape", subject=subject, expected=f"shape {tuple(logits.shape)} for {what}", found=found)
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
    wanted = stored_results("lesson05-ce-grad", seed)
    batch = ce_check_inputs(seed)
    logits, targets = batch["logits"], batch["targets"]
    what = f"logits of shape ({n}, {classes})"
    result = _ce_call(cross_entropy_grad, logits, targets, what)
    reference = stored.tensor(wanted["float32"])
    if not close(result, reference, rtol=1e-4, atol=1e-6):
        mistakes = [("cegrad-no-mean", reference * n), ("cegrad-sign", -reference),
                    *((code, stored.tensor(values)) for code, values in wanted["mistakes"])]
        for code, value in mistakes:  # the wrong formulas' results, most specific first
            # a second slip (no mean, or the sign) on top of the first still shows the first
            if any(close(result, variant, rtol=1e-4, atol=1e-6) for variant in (value, value * n, -value, -value * n)):
                fail_with(code, subject=subject, expected=f"(softmax - one_hot) / N for {what}",
                          found=f"row 0: {[round(v, 4) for v in result[0].tolist()]}, "
                            f"expected {[round(v, 4) for v in reference[0].tolist()]}")
        fail_with("cegrad-wrong-values", subject=subject, expected=f"autograd's gradient for {what}",
                  found=worst_element(result, reference))
    if result.dtype != torch.float32:
        fail_with("cegrad-dtype", subject=subject, expected="torch.float32 for float32 logits", found=str(result.dtype))
    result64 = _ce_call(cross_entropy_grad, batch["logits64"], batch["targets64"], f"float64 {what}")
    if result64.dtype != torch.float64:
        fail_with("cegrad-dtype", subject=subject, expected="torch.float64 for float64 logits",
                  found=str(result64.dtype))
    if not close(result64, stored.tensor(wanted["float64"], torch.float64), rtol=1e-7, atol=1e-10):
        fail_with("cegrad-wrong-values", subject=subject, expected="autograd's gradient for float64 logits",
                  found="values that differ beyond float64 rounding")
    big_result = _ce_call(cross_entropy_grad, batch["big"], batch["big_targets"], "logits of ±900")
    if not bool(torch.isfinite(big_result).all()):
        fail_with("cegrad-overflow", subject=subject, expected="finite values for logits of ±900",
                  found=f"{big_result[0].tolist()}")
    if not close(big_result, stored.tensor(wanted["big"]), rtol=1e-4, atol=1e-6):
        fail_with("cegrad-wrong-values", subject=subject, expected="autograd's gradient for logits of ±900",
                  found="different values")
    # A batch in which the last class does not occur: one_hot must still have C columns.
    partial = _ce_call(cross_entropy_grad, logits, batch["missing"],
                       f"{what}, targets never reaching class {classes - 1}")
    if not close(partial, stored.tensor(wanted["missing"]), rtol=1e-4, atol=1e-6):
        fail_with("cegrad-one-hot-classes", subject=subject,
                  expected=f"the gradient of {what} whose targets never reach class {classes - 1}",
                  found="a wrong result")


# --- the grader's re-check (course_utils.verdict_probes): this exercise's scenario and probe ----------
# Whether autograd did the work cannot be seen in values: the in-kernel check says.

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


def probe(ns: dict[str, Any], seed: int) -> dict[str, Any]:
    """The kernel's half of the re-check: cross_entropy_grad on the seed's batches of logits."""
    cases = []
    for logits, targets in ce_grad_scenario(seed):
        given = logits.clone()
        with torch.no_grad():
            result = ns["cross_entropy_grad"](given, targets.clone())
        cases.append({"gradient": probe_value(result), "logits": given.clone()})
    return {"cases": cases}
