"""Exercise 1's check: ``train_one_epoch_accumulated`` with gradient accumulation.

The shared pieces (:func:`scale_codes`, :func:`step_codes`, :func:`returned_loss_codes`) also serve
exercise 4, whose per-rank loop accumulates the same way.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from course_utils.checks.learner import call_learner
from course_utils.checks.lesson08 import stored
from course_utils.checks.lesson08.catalogue import _crashed, _fail, _is_float
from course_utils.checks.lesson08.instruments import (
    _GRAD,
    _VALUE,
    ProbeCriterion,
    ProbeLoader,
    ProbeModel,
    ProbeSGD,
    _close,
    _groups,
    _mean_per_sample,
    _Recorder,
    _recording,
    _Task,
)


def scale_codes(losses: list[dict[str, Any]], n_batches: int, k: int, prefix: str) -> list[str]:
    """Whether each micro-batch's loss gradient was scaled by 1/k (or 1/length of the last, shorter group)."""
    ends = _groups(n_batches, k)
    allowed = []
    start = 0
    for end in ends:
        allowed += [{1.0 / k, 1.0 / (end - start)}] * (end - start)
        start = end
    scales = [entry["scale"] for entry in losses]
    if k > 1 and scales and all(s is not None and math.isclose(s, 1.0, rel_tol=1e-6) for s in scales):
        return [f"{prefix}-loss-not-divided"]
    wrong = [s for s, ok in zip(scales, allowed) if s is None or not any(math.isclose(s, a, rel_tol=1e-5) for a in ok)]
    return [f"{prefix}-wrong-scale"] if wrong else []


def step_codes(positions: list[int], n_batches: int, k: int, prefix: str) -> list[str]:
    """Whether the optimizer stepped after micro-batches k, 2k, ... and after the last one."""
    expected = _groups(n_batches, k)
    if positions == expected:
        return []
    if k > 1 and positions == list(range(1, n_batches + 1)):
        return [f"{prefix}-step-every-batch" if prefix == "accum" else f"{prefix}-step-positions"]
    if n_batches % k and positions == expected[:-1]:
        return [f"{prefix}-last-group-dropped"]
    return [f"{prefix}-step-positions"]


def returned_loss_codes(result: Any, losses: list[dict[str, Any]], prefix: str) -> list[str]:
    """Whether ``result`` is the mean (undivided) loss per sample of the recorded losses."""
    if not _is_float(result):
        return [f"{prefix}-not-a-float"] if prefix == "accum" else [f"{prefix}-wrong-mean"]
    if math.isclose(result, _mean_per_sample(losses), **_VALUE):
        return []
    if prefix == "accum" and math.isclose(result, _mean_per_sample(losses, scaled=True), **_VALUE):
        return ["accum-reported-scaled-loss"]
    return [f"{prefix}-wrong-mean"]


def _empty(gradients: list[torch.Tensor | None]) -> bool:
    return all(g is None or not bool(g.any()) for g in gradients)


def _grad_codes(recorder: _Recorder) -> tuple[list[str], str]:
    """What the gradients of each optimizer step show, and a sentence naming the first step that went wrong."""
    for number, step in enumerate(recorder.steps, start=1):
        if _close(step["grads"], step["since_step"], **_GRAD):
            continue
        where = f"optimizer step {number} (after micro-batch {step['position']})"
        if _empty(step["grads"]) and not _empty(step["since_step"]):
            return ["accum-zeroed-before-step"], (f"{where} received no gradients (.grad was "
                                                  f"{'None' if step['grads'][0] is None else 'zero'}): they had "
                                                  f"been zeroed after the group's backward passes")
        if step["backwards"] > 1 and _close(step["grads"], step["last_fresh"], **_GRAD):
            return ["accum-zeroed-every-micro-batch"], f"{where} received the last micro-batch's gradient only"
        if number > 1 and _close(step["grads"], step["since_start"], **_GRAD):
            return ["accum-never-zeroed"], f"{where} received the gradients of every earlier group as well"
        return ["accum-trajectory"], f"{where} received other gradients than its group's backward passes produced"
    return [], ""


def _matches_stored(model: ProbeModel, scenario: dict[str, Any]) -> bool:
    variants = stored.lookup("accumulation", "check_accumulation", scenario, stored.ACCUMULATION_SCENARIOS)
    found = list(model.net.parameters())
    return any(_close(found, stored.as_tensors(parameters), **_GRAD) for parameters in variants)


def check_accumulation(train_one_epoch_accumulated: Callable[..., Any], *, seed: int = 3, n_samples: int = 250,
                       batch_size: int = 25, accumulation_steps: int = 4) -> None:
    """Run ``train_one_epoch_accumulated(model, loader, criterion, optimizer, device, k)`` on probes.

    The inputs must be one of :data:`stored.ACCUMULATION_SCENARIOS`, whose final parameters are stored.
    """
    subject = "train_one_epoch_accumulated"
    scenario = dict(seed=seed, n_samples=n_samples, batch_size=batch_size, accumulation_steps=accumulation_steps)
    task = _Task(seed=seed, n_samples=n_samples, batch_size=batch_size)
    k = accumulation_steps
    model = ProbeModel(task.network())
    model.eval()  # a correct loop switches to train mode itself
    optimizer = ProbeSGD(model.parameters(), lr=task.learning_rate, momentum=task.momentum)
    n_batches = len(task.loader())
    with _recording(model) as recorder:
        result, error = call_learner(train_one_epoch_accumulated, model, ProbeLoader(task.loader()), ProbeCriterion(),
                                     optimizer, torch.device("cpu"), k)
    codes = []
    codes += ["accum-train-mode"] if any(not f["training"] for f in recorder.forwards) else []
    codes += ["accum-not-moved"] if any(not f["moved"] for f in recorder.forwards) or any(
        not entry["moved"] for entry in recorder.losses) else []
    codes += scale_codes(recorder.losses, n_batches, k, "accum")
    if error is not None:
        raise _crashed(subject, error, codes) from error
    positions = [step["position"] for step in recorder.steps]
    codes += step_codes(positions, n_batches, k, "accum")
    grad_codes, where = _grad_codes(recorder)
    codes += grad_codes
    codes += returned_loss_codes(result, recorder.losses, "accum")
    if not codes and not _matches_stored(model, scenario):
        codes.append("accum-trajectory")
    if codes:
        scales = sorted({round(e["scale"], 4) for e in recorder.losses if e["scale"] is not None})
        _fail(codes, subject=subject,
              expected=f"{len(_groups(n_batches, k))} optimizer steps, after micro-batches {_groups(n_batches, k)} "
                       f"of {n_batches} (accumulation_steps={k}), each loss divided by {k}, each step applying the "
                       f"sum of its group's gradients",
              found=(f"{where}; " if where else "") + f"{len(positions)} steps after micro-batches {positions}; "
                    f"loss gradients scaled by {scales}; returned {result!r}")
