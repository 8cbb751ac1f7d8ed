"""Exercise 1 · gradient accumulation: the mistakes, the check of ``train_one_epoch_accumulated``, the probe.

The shared pieces (:func:`scale_codes`, :func:`step_codes`) also serve exercise 4, whose per-rank
loop accumulates the same way. Within the exercise the catch-all row (``accum-trajectory``) comes
last: the check names it only when no more precise row fits.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from course_utils.checks.learner import call_learner
from course_utils.checks.lesson08.common import (
    LESSON,
    Task,
    as_float,
    crashed,
    is_float,
    values_of,
    verdict_case,
    verdict_optimizer,
)
from course_utils.checks.lesson08.instruments import (
    GRAD,
    VALUE,
    ProbeCriterion,
    ProbeLoader,
    ProbeModel,
    ProbeSGD,
    Recorder,
    all_close,
    groups,
    mean_per_sample,
    no_gradients,
    recording,
)
from course_utils.checks.lesson08.stored import ACCUMULATION_SCENARIOS, as_tensors, lookup
from course_utils.diagnoses import Exercise, ForbiddenCall, fail_with

EXERCISE = Exercise(LESSON, "ex1-tests", "1 · Gradient accumulation")
DIAGNOSES = EXERCISE.diagnoses(
    ("accum-loss-not-divided", "each micro-batch's loss was not divided by accumulation_steps",
     "backward (loss / accumulation_steps): k micro-batches must add up to the mean gradient of one big batch, not k times it.", "gradients"),
    ("accum-wrong-scale", "micro-batch losses were scaled by the wrong factor",
     "divide each micro-batch's loss by accumulation_steps (by the number of micro-batches in the last, shorter group if you like).", "gradients"),
    ("accum-step-every-batch", "the optimizer stepped after every micro-batch",
     "step (and zero the gradients) only when a group of accumulation_steps micro-batches is complete.", "optimizer"),
    ("accum-last-group-dropped", "the last, shorter group of micro-batches never led to an optimizer step",
     "also step after the last micro-batch of the epoch: if (i + 1) % k == 0 or i + 1 == len(loader).", "data"),
    ("accum-step-positions", "the optimizer steps did not come at the end of each group of micro-batches",
     "step after micro-batches k, 2k, 3k, ... and after the last one; count micro-batches from 1.", "optimizer"),
    ("accum-zeroed-every-micro-batch", "the gradients were zeroed before every micro-batch, so only the last one of each group counted",
     "zero the gradients once per group (after optimizer.step()), not in every micro-batch.", "gradients"),
    ("accum-never-zeroed", "gradients of earlier groups were still in .grad at the next step",
     "call optimizer.zero_grad() after every optimizer.step().", "gradients"),
    ("accum-reported-scaled-loss", "the reported loss is the divided loss, not the loss itself",
     "accumulate loss.item() * len(yb) before dividing by accumulation_steps: the division is for the gradient only.", "metrics"),
    ("accum-wrong-mean", "the returned loss is not the mean loss per sample over the epoch",
     "sum loss.item() * len(yb) over the micro-batches and divide by the number of samples.", "metrics"),
    ("accum-not-a-float", "the returned loss is not a Python float",
     "return a float: accumulate loss.item() * len(yb) and divide by the number of samples.", "interface"),
    ("accum-not-moved", "a batch was not moved to the device",
     "move inputs and targets: xb, yb = xb.to(device), yb.to(device).", "device"),
    ("accum-train-mode", "the model was not in train mode",
     "call model.train() at the start of the epoch.", "modes"),
    ("accum-zeroed-before-step", "optimizer.zero_grad() ran between the last backward of a group and optimizer.step(), so the steps applied no gradients",
     "step first, then zero: optimizer.step() and then optimizer.zero_grad(). Zeroing before the step throws the accumulated gradients away.", "gradients"),
    ("accum-trajectory", "the parameters after one epoch differ from those of a correct accumulation loop",
     "per micro-batch: forward, loss / k, backward; at the end of each group (and of the epoch): step, zero_grad.", "optimizer"),
)

# Lesson 08's exercises ask for loops that call the library (clip_grad_norm_, GradScaler, DDP), never for a
# re-implementation of a library function: no call is forbidden.
FORBIDDEN_CALLS: tuple[ForbiddenCall, ...] = ()


def scale_codes(losses: list[dict[str, Any]], n_batches: int, k: int, prefix: str) -> list[str]:
    """Whether each micro-batch's loss gradient was scaled by 1/k (or 1/length of the last, shorter group)."""
    ends = groups(n_batches, k)
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
    expected = groups(n_batches, k)
    if positions == expected:
        return []
    if k > 1 and positions == list(range(1, n_batches + 1)):
        return [f"{prefix}-step-every-batch" if prefix == "accum" else f"{prefix}-step-positions"]
    if n_batches % k and positions == expected[:-1]:
        return [f"{prefix}-last-group-dropped"]
    return [f"{prefix}-step-positions"]


def returned_loss_codes(result: Any, losses: list[dict[str, Any]], prefix: str) -> list[str]:
    """Whether ``result`` is the mean (undivided) loss per sample of the recorded losses."""
    if not is_float(result):
        return [f"{prefix}-not-a-float"] if prefix == "accum" else [f"{prefix}-wrong-mean"]
    if math.isclose(result, mean_per_sample(losses), **VALUE):
        return []
    if prefix == "accum" and math.isclose(result, mean_per_sample(losses, scaled=True), **VALUE):
        return ["accum-reported-scaled-loss"]
    return [f"{prefix}-wrong-mean"]


def _grad_codes(recorder: Recorder) -> tuple[list[str], str]:
    """What the gradients of each optimizer step show, and a sentence naming the first step that went wrong."""
    for number, step in enumerate(recorder.steps, start=1):
        if all_close(step["grads"], step["since_step"], **GRAD):
            continue
        where = f"optimizer step {number} (after micro-batch {step['position']})"
        if no_gradients(step["grads"]) and not no_gradients(step["since_step"]):
            return ["accum-zeroed-before-step"], (f"{where} received no gradients (.grad was "
                                                  f"{'None' if step['grads'][0] is None else 'zero'}): they had "
                                                  f"been zeroed after the group's backward passes")
        if step["backwards"] > 1 and all_close(step["grads"], step["last_fresh"], **GRAD):
            return ["accum-zeroed-every-micro-batch"], f"{where} received the last micro-batch's gradient only"
        if number > 1 and all_close(step["grads"], step["since_start"], **GRAD):
            return ["accum-never-zeroed"], f"{where} received the gradients of every earlier group as well"
        return ["accum-trajectory"], f"{where} received other gradients than its group's backward passes produced"
    return [], ""


def _matches_stored(model: ProbeModel, scenario: dict[str, Any]) -> bool:
    variants = lookup("accumulation", "check_accumulation", scenario, ACCUMULATION_SCENARIOS)
    found = list(model.net.parameters())
    return any(all_close(found, as_tensors(parameters), **GRAD) for parameters in variants)


def check_accumulation(train_one_epoch_accumulated: Callable[..., Any], *, seed: int = 3, n_samples: int = 250,
                       batch_size: int = 25, accumulation_steps: int = 4) -> None:
    """Run ``train_one_epoch_accumulated(model, loader, criterion, optimizer, device, k)`` on probes.

    The inputs must be one of :data:`ACCUMULATION_SCENARIOS`, whose final parameters are stored.
    """
    subject = "train_one_epoch_accumulated"
    scenario = dict(seed=seed, n_samples=n_samples, batch_size=batch_size, accumulation_steps=accumulation_steps)
    task = Task(seed=seed, n_samples=n_samples, batch_size=batch_size)
    k = accumulation_steps
    model = ProbeModel(task.network())
    model.eval()  # a correct loop switches to train mode itself
    optimizer = ProbeSGD(model.parameters(), lr=task.learning_rate, momentum=task.momentum)
    n_batches = len(task.loader())
    with recording(model) as recorder:
        result, error = call_learner(train_one_epoch_accumulated, model, ProbeLoader(task.loader()), ProbeCriterion(),
                                     optimizer, torch.device("cpu"), k)
    codes = []
    codes += ["accum-train-mode"] if any(not f["training"] for f in recorder.forwards) else []
    codes += ["accum-not-moved"] if any(not f["moved"] for f in recorder.forwards) or any(
        not entry["moved"] for entry in recorder.losses) else []
    codes += scale_codes(recorder.losses, n_batches, k, "accum")
    if error is not None:
        raise crashed(subject, error, codes) from error
    positions = [step["position"] for step in recorder.steps]
    codes += step_codes(positions, n_batches, k, "accum")
    grad_codes, where = _grad_codes(recorder)
    codes += grad_codes
    codes += returned_loss_codes(result, recorder.losses, "accum")
    if not codes and not _matches_stored(model, scenario):
        codes.append("accum-trajectory")
    if codes:
        codes = list(dict.fromkeys(codes))
        scales = sorted({round(e["scale"], 4) for e in recorder.losses if e["scale"] is not None})
        fail_with(codes[0], also=codes[1:], subject=subject,
                  expected=f"{len(groups(n_batches, k))} optimizer steps, after micro-batches {groups(n_batches, k)} "
                           f"of {n_batches} (accumulation_steps={k}), each loss divided by {k}, each step applying "
                           f"the sum of its group's gradients",
                  found=(f"{where}; " if where else "") + f"{len(positions)} steps after micro-batches {positions}; "
                        f"loss gradients scaled by {scales}; returned {result!r}")


def probe(namespace: dict[str, Any], seed: int) -> dict[str, Any]:
    """The re-check's values: the learner's epoch on ``seed``'s scenario, and again with accumulation_steps=1."""
    case = verdict_case(seed)
    model = case.task.network()
    loss = namespace["train_one_epoch_accumulated"](model, case.task.loader(), nn.CrossEntropyLoss(),
                                                    verdict_optimizer(model), torch.device("cpu"),
                                                    case.accumulation_steps)
    single = case.task.network()  # accumulation_steps=1: a plain epoch, a step after every batch
    single_loss = namespace["train_one_epoch_accumulated"](single, case.task.loader(), nn.CrossEntropyLoss(),
                                                           verdict_optimizer(single), torch.device("cpu"), 1)
    return {"loss": as_float(loss), "parameters": values_of(model.parameters()),
            "single": {"loss": as_float(single_loss), "parameters": values_of(single.parameters())}}
