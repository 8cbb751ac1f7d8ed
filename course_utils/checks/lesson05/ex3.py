"""Lesson 05, Exercise 3 · See accumulation happen: accumulated_grad.

The check gives accumulated_grad a loss function that counts its calls and the backward passes
through its results, and a ``w`` whose old ``.grad`` is to be left alone, so that a result of the
wrong size is named by what happened: one backward pass multiplied, a gradient cleared between
passes, a different number of passes. The gradient of one call is stored
(``expected/lesson05-accumulated-grad.json``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from course_utils.checks import expected as stored
from course_utils.checks.learner import call_learner, error_text
from course_utils.checks.lesson05.common import LESSON, close, probe_value, stored_results
from course_utils.diagnoses import Exercise, fail_with

# The section a student who made these mistakes revisits.
SECTION = "2 · Gradients accumulate: why `zero_grad` exists"
EXERCISE = Exercise(LESSON, "ex3-tests", "Exercise 3 · See accumulation happen")
DIAGNOSES = EXERCISE.diagnoses(
    ("accgrad-graph-freed",
     "backward() ran twice through one graph, which the first call freed",
     "run loss_fn(copy) again before each backward() (a fresh graph), or pass retain_graph=True.",
     "gradients", SECTION),
    # "element 0 of tensors does not require grad": one of the errors beginners report most (public bug reports)
    ("accgrad-no-requires-grad",
     "backward() found nothing to differentiate: the copy of w does not require grad",
     "w.detach().clone() gives a tensor without gradient tracking; make it a leaf that requires grad: "
     "w.detach().clone().requires_grad_(True). Setting loss.requires_grad = True silences the error but "
     "leaves the copy without a gradient.",
     "gradients", SECTION),
    ("accgrad-not-a-leaf",
     "the copy's .grad was None: the copy was not a leaf tensor",
     "make the copy a leaf: w.detach().clone().requires_grad_(True) (w.clone() alone stays in w's graph).",
     "gradients", SECTION),
    ("accgrad-touched-w",
     "accumulated_grad changed the caller's w or its .grad",
     "work on a fresh leaf copy, w.detach().clone().requires_grad_(True), never on w itself.",
     "gradients", SECTION),
    ("accgrad-multiplied",
     "accumulated_grad ran backward() once and multiplied the gradient by times: not allowed here",
     "the exercise is to watch .grad add up: call backward() on loss_fn(copy) `times` times, never zeroing.",
     "not-allowed", SECTION),
    ("accgrad-zeroed",
     "the gradient was cleared between the backward() calls, so it did not accumulate",
     "do not zero .grad (no copy.grad = None, no zero_()) between the calls: the point is to see it add up.",
     "gradients", SECTION),
    ("accgrad-wrong-count",
     "backward() ran a different number of times than `times`",
     "loop exactly `times` times: for _ in range(times): loss_fn(copy).backward().",
     "gradients", SECTION),
    ("accgrad-returned-weights",
     "accumulated_grad returned the copy of w itself, not its gradient",
     "return copy.grad, the accumulated gradient, not copy.",
     "interface", SECTION),
    ("accgrad-dtype",
     "accumulated_grad did not return w's dtype",
     "copy w without changing its dtype: w.detach().clone().requires_grad_(True).",
     "dtypes", SECTION),
    ("accgrad-wrong-values",
     "accumulated_grad is not `times` × the gradient of one call",
     "times backward calls on loss_fn(copy), no zeroing between them, then return copy.grad.",
     "gradients", SECTION),
    ("accgrad-raised",
     "accumulated_grad raised an exception",
     "the lines above this message show where in your code it was raised; make a fresh leaf copy, run "
     "loss_fn(copy).backward() `times` times, return copy.grad.",
     "interface", SECTION),
)
FORBIDDEN_CALLS = ()


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
    wanted = stored_results("lesson05-accumulated-grad", seed)
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
            fail_with("accgrad-graph-freed", subject=subject, expected=f"{times} backward passes ({where})", found=text)
        if "does not require grad" in text:
            fail_with("accgrad-no-requires-grad", subject=subject, expected="a copy of w that requires grad",
                      found=text)
        if "leaf" in text:
            fail_with("accgrad-not-a-leaf", subject=subject, expected="a leaf copy of w that requires grad", found=text)
        fail_with("accgrad-raised", subject=subject, expected=f"the accumulated gradient ({where})", found=text)
    if result is None:
        fail_with("accgrad-not-a-leaf", subject=subject, expected=f"a tensor of shape (4, 3) ({where})", found="None")
    if not torch.equal(w.detach(), w_before) or w.grad is None or not torch.equal(w.grad, grad_before):
        fail_with("accgrad-touched-w", subject=subject, expected="w and w.grad unchanged",
                  found="w.grad changed" if torch.equal(w.detach(), w_before) else "w changed")
    if not isinstance(result, torch.Tensor) or result.shape != w.shape:
        found = f"shape {tuple(result.shape)}" if isinstance(result, torch.Tensor) else f"a {type(result).__name__}"
        fail_with("accgrad-wrong-values", subject=subject, expected="a tensor of w's shape (4, 3)", found=found)
    if close(result, w_before, rtol=1e-6, atol=1e-7):
        fail_with("accgrad-returned-weights", subject=subject, expected=f"{times} × the gradient", found="w's values")
    counted = f"{loss_fn.calls} call(s) of loss_fn and {loss_fn.backwards} backward pass(es) for times={times}"
    expected_value = times * single
    if close(result, expected_value, rtol=1e-5, atol=1e-7):
        if loss_fn.backwards == 1 and times > 1:
            fail_with("accgrad-multiplied", subject=subject, expected=f"{times} backward passes", found=counted)
        if result.dtype != dtype:
            fail_with("accgrad-dtype", subject=subject, expected=str(dtype), found=str(result.dtype))
        return
    if loss_fn.backwards == times and close(result, single, rtol=1e-5, atol=1e-7):
        fail_with("accgrad-zeroed", subject=subject, expected=f"{times} × the gradient of one call",
                  found=f"the gradient of one call ({counted})")
    if loss_fn.backwards != times:
        fail_with("accgrad-wrong-count", subject=subject, expected=f"{times} backward passes", found=counted)
    fail_with("accgrad-wrong-values", subject=subject, expected=f"{times} × the gradient of one call ({where})",
              found=f"largest difference {(result.double() - expected_value.double()).abs().max().item():.3g}")


# --- the grader's re-check (course_utils.verdict_probes): this exercise's scenario and probe ----------

def accumulate_scenario(seed: int) -> list[tuple[torch.Tensor, torch.Tensor, int]]:
    """Exercise 3: (inputs of the counting loss, w, times) in float32 and float64; w.grad holds an old 0.5."""
    generator = torch.Generator().manual_seed(seed)
    cases = []
    for dtype, times in ((torch.float32, 2 + int(torch.randint(0, 4, (1,), generator=generator))),
                         (torch.float64, 1 + int(torch.randint(0, 4, (1,), generator=generator)))):
        inputs = torch.randn(6, 4, generator=generator, dtype=torch.float64)
        cases.append((inputs, torch.randn(4, 3, generator=generator, dtype=dtype), times))
    return cases


def counting_loss(inputs: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """The loss function given to accumulated_grad: it counts the backward passes through its results."""
    return _CountingLoss(inputs)


def probe(ns: dict[str, Any], seed: int) -> dict[str, Any]:
    """The kernel's half of the re-check: accumulated_grad with a counting loss on the seed's w."""
    cases = []
    for inputs, w, times in accumulate_scenario(seed):
        given = w.clone().requires_grad_(True)
        given.grad = torch.full_like(given, 0.5)  # an old gradient of the caller's, to be left alone
        loss_fn = _CountingLoss(inputs.clone())
        result = ns["accumulated_grad"](loss_fn, given, times)
        cases.append({"gradient": probe_value(result), "backwards": int(loss_fn.backwards), "w": probe_value(given),
                      "w_grad": probe_value(given.grad)})
    return {"cases": cases}
