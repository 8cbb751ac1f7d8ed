"""Exercise 2 · clipping and learning-rate schedules: the mistakes, the check of ``fit_scheduled``, the probe.

:func:`clip_codes` also serves exercise 3, which clips after unscaling. Within the exercise the
catch-all row (``sched-trajectory``) comes last: the check names it only when no more precise row fits.
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
    ProbeScheduler,
    ProbeSGD,
    Recorder,
    all_close,
    mean_per_sample,
    no_gradients,
    norm,
    recording,
)
from course_utils.checks.lesson08.stored import FIT_SCENARIOS, as_tensors, lookup
from course_utils.diagnoses import Exercise, ForbiddenCall, fail_with

EXERCISE = Exercise(LESSON, "ex2-tests", "2 · Clipping and learning-rate schedules")
DIAGNOSES = EXERCISE.diagnoses(
    ("clip-after-step", "the gradients were clipped after optimizer.step(), so the step used unclipped gradients",
     "clip between loss.backward() and optimizer.step(): clipping afterwards changes gradients nobody uses.", "gradients"),
    ("clip-missing", "optimizer.step() received gradients larger than max_norm: they were not clipped",
     "call torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm) between backward and step.", "gradients"),
    ("clip-wrong-norm", "the gradients were clipped, but not to the max_norm given",
     "pass the function's max_norm argument to clip_grad_norm_ (and clip by the total norm, not by value).", "gradients"),
    ("clip-params-used-up", "only the first optimizer step received clipped gradients: clip_grad_norm_ was given a generator that its first call used up",
     "pass model.parameters() afresh in every call (or keep a list: params = list(model.parameters())): a generator is empty after one pass.", "gradients"),
    ("clip-zeroed-before-step", "the gradients were zeroed between backward and optimizer.step(), so the steps applied none",
     "zero the gradients before the forward pass (or right after optimizer.step()), never between backward and step.", "gradients"),
    ("sched-per-epoch", "a per-batch schedule was stepped once per epoch",
     "with interval='batch', call scheduler.step() right after every optimizer.step().", "schedule"),
    ("sched-per-batch", "a per-epoch schedule was stepped after every batch",
     "with interval='epoch', call scheduler.step() once, at the end of each epoch.", "schedule"),
    ("sched-before-step", "scheduler.step() ran before optimizer.step()",
     "step the optimizer first, then the scheduler: otherwise the first learning rate of the schedule is skipped.", "schedule"),
    ("sched-not-stepped", "the scheduler was never stepped",
     "call scheduler.step(): after every optimizer.step() for interval='batch', once per epoch for 'epoch'.", "schedule"),
    ("sched-wrong-count", "the scheduler was stepped the wrong number of times",
     "one scheduler.step() per optimizer step (interval='batch') or per epoch (interval='epoch').", "schedule"),
    ("sched-history", "the returned list is not the mean training loss per sample of each epoch",
     "return one float per epoch: the sum of loss.item() * len(yb) divided by the number of samples.", "metrics"),
    ("sched-trajectory", "the parameters differ from those of a correct clipped, scheduled loop",
     "per batch: zero_grad, forward, loss, backward, clip, optimizer.step(), then the scheduler as its interval says.", "optimizer"),
)

FORBIDDEN_CALLS: tuple[ForbiddenCall, ...] = ()  # the exercise calls clip_grad_norm_ and the scheduler


def clip_codes(recorder: Recorder, max_norm: float, *, prefix: str) -> tuple[list[str], str]:
    """Compare each step's gradients with the clipped sum of what backward produced since the last step.

    Returns the codes and a sentence naming the first optimizer step whose gradients were wrong.
    """
    clipped_before = False
    for number, step in enumerate(recorder.steps, start=1):
        unscale = step["scale"]
        fresh = [g / unscale for g in step["since_step"]]
        fresh_norm = norm(fresh)
        clipped = [g * min(1.0, max_norm / (fresh_norm + 1e-6)) for g in fresh]
        if all_close(step["grads"], clipped, **GRAD):
            clipped_before = clipped_before or fresh_norm > max_norm
            continue
        applied = norm(step["grads"])
        where = (f"optimizer step {number} received gradients of total norm {applied:.3g}, from backward passes "
                 f"whose gradients had norm {fresh_norm:.3g}")
        if prefix == "clip" and no_gradients(step["grads"]) and not no_gradients(fresh):
            return ["clip-zeroed-before-step"], (f"optimizer step {number} received no gradients (.grad was "
                                                 f"{'None' if step['grads'][0] is None else 'zero'})")
        if prefix == "amp" and unscale > 1 and math.isclose(applied, max_norm / unscale, rel_tol=1e-3):
            return ["amp-clip-scaled"], where + f" while multiplied by the scale {unscale:g}"
        by_value = [g.clamp(-max_norm, max_norm) for g in fresh]
        if not all_close(by_value, fresh, **GRAD) and all_close(step["grads"], by_value, **GRAD):
            code = "amp-clip-missing" if prefix == "amp" else "clip-wrong-norm"
            return [code], where + f": every element was clamped to ±{max_norm:g} (clip_grad_value_), not the total norm"
        if all_close(step["grads"], fresh, **GRAD):
            if prefix == "clip" and _clipped_later(recorder, number - 1, step, max_norm):
                return ["clip-after-step"], where + ", clipped only after the step"
            if prefix == "clip" and clipped_before:
                return ["clip-params-used-up"], where + ", unclipped, although earlier steps were clipped"
            return ["amp-clip-missing" if prefix == "amp" else "clip-missing"], where + ", unclipped"
        if prefix == "amp":
            return ["amp-clip-missing"], where
        if _parallel(step["grads"], fresh):
            return ["clip-wrong-norm"], where + f", clipped to norm {applied:.3g} instead of {max_norm:g}"
        return ["sched-trajectory"], where
    return [], ""


def _parallel(first: list[torch.Tensor | None], second: list[torch.Tensor]) -> bool:
    if any(g is None for g in first):
        return False
    a = torch.cat([g.flatten().double() for g in first])
    b = torch.cat([g.flatten().double() for g in second])
    return bool(torch.nn.functional.cosine_similarity(a, b, dim=0) > 1 - 1e-5)


def _clipped_later(recorder: Recorder, number: int, step: dict[str, Any], max_norm: float) -> bool:
    """True if the gradients a step used were clipped right after it (seen at the next zero_grad, or at the end)."""
    if step["zeroings"] < len(recorder.zeroings):
        following = recorder.zeroings[step["zeroings"]]
    else:  # no optimizer.zero_grad() after this step: what is left at the end belongs to the last step
        following, step = recorder.grads(), recorder.steps[-1]
    if any(g is None for g in following) or norm(step["grads"]) <= max_norm * 1.01:
        return False
    return _parallel(following, step["grads"]) and math.isclose(norm(following), max_norm, rel_tol=1e-3)


def schedule_codes(positions: list[int], n_batches: int, epochs: int, interval: str) -> list[str]:
    """Whether the scheduler stepped after the optimizer steps its interval asks for (``positions``: the number
    of optimizer steps before each scheduler step)."""
    per_batch = list(range(1, n_batches * epochs + 1))
    per_epoch = [n_batches * (e + 1) for e in range(epochs)]
    expected = per_batch if interval == "batch" else per_epoch
    if positions == expected:
        return []
    if not positions:
        return ["sched-not-stepped"]
    if interval == "batch" and positions == per_epoch:
        return ["sched-per-epoch"]
    if interval == "epoch" and positions == per_batch:
        return ["sched-per-batch"]
    if positions == [p - 1 for p in expected] or positions == [p - n_batches for p in per_epoch] and interval == "epoch":
        return ["sched-before-step"]
    return ["sched-wrong-count"]


def check_fit_scheduled(fit_scheduled: Callable[..., Any], *, seed: int = 2, interval: str = "batch", epochs: int = 2,
                        n_samples: int = 250, batch_size: int = 50, max_norm: float = 0.1) -> None:
    """Run ``fit_scheduled(model, loader, criterion, optimizer, scheduler, device, epochs, max_norm, interval)``.

    The inputs must be one of :data:`FIT_SCENARIOS`, whose final parameters are stored.
    """
    subject = f"fit_scheduled (interval={interval!r})"
    scenario = dict(seed=seed, interval=interval, epochs=epochs, n_samples=n_samples, batch_size=batch_size,
                    max_norm=max_norm)
    task = Task(seed=seed, n_samples=n_samples, batch_size=batch_size)
    model = ProbeModel(task.network())
    optimizer = ProbeSGD(model.parameters(), lr=task.learning_rate, momentum=task.momentum)
    scheduler = ProbeScheduler(optimizer)
    n_batches = len(task.loader())
    with recording(model) as recorder:
        result, error = call_learner(fit_scheduled, model, ProbeLoader(task.loader()), ProbeCriterion(), optimizer,
                                     scheduler, torch.device("cpu"), epochs, max_norm, interval)
    codes, where = clip_codes(recorder, max_norm, prefix="clip")
    if error is not None:
        raise crashed(subject, error, codes) from error
    codes += schedule_codes(recorder.scheduler_steps, n_batches, epochs, interval)
    per_epoch = [recorder.losses[e * n_batches:(e + 1) * n_batches] for e in range(epochs)]
    expected_history = [mean_per_sample(chunk) for chunk in per_epoch]
    if not (isinstance(result, list) and len(result) == epochs and all(is_float(v) for v in result)
            and all(math.isclose(a, b, **VALUE) for a, b in zip(result, expected_history))):
        codes.append("sched-history")
    if not codes:
        parameters = lookup("fit", "check_fit_scheduled", scenario, FIT_SCENARIOS)
        if not all_close(list(model.net.parameters()), as_tensors(parameters), **GRAD):
            codes.append("sched-trajectory")
    if codes:
        codes = list(dict.fromkeys(codes))
        steps = recorder.steps
        fail_with(codes[0], also=codes[1:], subject=subject,
                  expected=f"{n_batches * epochs} optimizer steps with gradient norm at most {max_norm}; scheduler "
                           f"steps after optimizer steps "
                           + ("1, 2, 3, ... (every batch)" if interval == "batch"
                              else f"{n_batches}, {2 * n_batches}, ... (every epoch)"),
                  found=(f"{where}; " if where else "") + f"{len(steps)} optimizer steps, the first with gradient "
                        f"norm {norm(steps[0]['grads']) if steps else float('nan'):.3g}; scheduler stepped "
                        f"{len(recorder.scheduler_steps)} times, after optimizer steps {recorder.scheduler_steps[:6]}"
                        f"{'...' if len(recorder.scheduler_steps) > 6 else ''}; returned {result!r}"[:400])


def probe(namespace: dict[str, Any], seed: int) -> dict[str, Any]:
    """The re-check's values: the learner's fit on ``seed``'s scenario, once per interval, with the learning
    rate of every optimizer step."""
    case = verdict_case(seed)
    runs = {}
    for interval in ("batch", "epoch"):
        model = case.task.network()
        optimizer = verdict_optimizer(model)
        scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, case.gamma)
        rates: list[float] = []
        optimizer.register_step_pre_hook(lambda opt, args, kwargs: rates.append(float(opt.param_groups[0]["lr"])))
        history = namespace["fit_scheduled"](model, case.task.loader(), nn.CrossEntropyLoss(), optimizer, scheduler,
                                             torch.device("cpu"), case.epochs, case.max_norm, interval)
        runs[interval] = {"history": [as_float(v) for v in history] if isinstance(history, list) else None,
                          "rates": rates, "final_rate": float(optimizer.param_groups[0]["lr"]),
                          "parameters": values_of(model.parameters())}
    return runs

