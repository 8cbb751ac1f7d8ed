"""Exercise 2's check: ``fit_scheduled`` with gradient clipping and a learning-rate schedule.

:func:`clip_codes` also serves exercise 3, which clips after unscaling.
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
    ProbeScheduler,
    ProbeSGD,
    _close,
    _mean_per_sample,
    _norm,
    _Recorder,
    _recording,
    _Task,
)


def clip_codes(recorder: _Recorder, max_norm: float, *, prefix: str) -> tuple[list[str], str]:
    """Compare each step's gradients with the clipped sum of what backward produced since the last step.

    Returns the codes and a sentence naming the first optimizer step whose gradients were wrong.
    """
    clipped_before = False
    for number, step in enumerate(recorder.steps, start=1):
        unscale = step["scale"]
        fresh = [g / unscale for g in step["since_step"]]
        norm = _norm(fresh)
        clipped = [g * min(1.0, max_norm / (norm + 1e-6)) for g in fresh]
        if _close(step["grads"], clipped, **_GRAD):
            clipped_before = clipped_before or norm > max_norm
            continue
        applied = _norm(step["grads"])
        where = (f"optimizer step {number} received gradients of total norm {applied:.3g}, from backward passes "
                 f"whose gradients had norm {norm:.3g}")
        if prefix == "clip" and _empty(step["grads"]) and not _empty(fresh):
            return ["clip-zeroed-before-step"], (f"optimizer step {number} received no gradients (.grad was "
                                                 f"{'None' if step['grads'][0] is None else 'zero'})")
        if prefix == "amp" and unscale > 1 and math.isclose(applied, max_norm / unscale, rel_tol=1e-3):
            return ["amp-clip-scaled"], where + f" while multiplied by the scale {unscale:g}"
        by_value = [g.clamp(-max_norm, max_norm) for g in fresh]
        if not _close(by_value, fresh, **_GRAD) and _close(step["grads"], by_value, **_GRAD):
            code = "amp-clip-missing" if prefix == "amp" else "clip-wrong-norm"
            return [code], where + f": every element was clamped to ±{max_norm:g} (clip_grad_value_), not the total norm"
        if _close(step["grads"], fresh, **_GRAD):
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


def _empty(gradients: list[torch.Tensor | None]) -> bool:
    return all(g is None or not bool(g.any()) for g in gradients)


def _parallel(first: list[torch.Tensor | None], second: list[torch.Tensor]) -> bool:
    if any(g is None for g in first):
        return False
    a = torch.cat([g.flatten().double() for g in first])
    b = torch.cat([g.flatten().double() for g in second])
    return bool(torch.nn.functional.cosine_similarity(a, b, dim=0) > 1 - 1e-5)


def _clipped_later(recorder: _Recorder, number: int, step: dict[str, Any], max_norm: float) -> bool:
    """True if the gradients a step used were clipped right after it (seen at the next zero_grad, or at the end)."""
    if step["zeroings"] < len(recorder.zeroings):
        following = recorder.zeroings[step["zeroings"]]
    else:  # no optimizer.zero_grad() after this step: what is left at the end belongs to the last step
        following, step = recorder.grads(), recorder.steps[-1]
    if any(g is None for g in following) or _norm(step["grads"]) <= max_norm * 1.01:
        return False
    return _parallel(following, step["grads"]) and math.isclose(_norm(following), max_norm, rel_tol=1e-3)


def schedule_codes(positions: list[int], n_batches: int, epochs: int, interval: str) -> list[str]:
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

    The inputs must be one of :data:`stored.FIT_SCENARIOS`, whose final parameters are stored.
    """
    subject = f"fit_scheduled (interval={interval!r})"
    scenario = dict(seed=seed, interval=interval, epochs=epochs, n_samples=n_samples, batch_size=batch_size,
                    max_norm=max_norm)
    task = _Task(seed=seed, n_samples=n_samples, batch_size=batch_size)
    model = ProbeModel(task.network())
    optimizer = ProbeSGD(model.parameters(), lr=task.learning_rate, momentum=task.momentum)
    scheduler = ProbeScheduler(optimizer)
    n_batches = len(task.loader())
    with _recording(model) as recorder:
        result, error = call_learner(fit_scheduled, model, ProbeLoader(task.loader()), ProbeCriterion(), optimizer,
                                     scheduler, torch.device("cpu"), epochs, max_norm, interval)
    codes, where = clip_codes(recorder, max_norm, prefix="clip")
    if error is not None:
        raise _crashed(subject, error, codes) from error
    codes += schedule_codes(recorder.scheduler_steps, n_batches, epochs, interval)
    per_epoch = [recorder.losses[e * n_batches:(e + 1) * n_batches] for e in range(epochs)]
    expected_history = [_mean_per_sample(chunk) for chunk in per_epoch]
    if not (isinstance(result, list) and len(result) == epochs and all(_is_float(v) for v in result)
            and all(math.isclose(a, b, **_VALUE) for a, b in zip(result, expected_history))):
        codes.append("sched-history")
    if not codes:
        parameters = stored.lookup("fit", "check_fit_scheduled", scenario, stored.FIT_SCENARIOS)
        if not _close(list(model.net.parameters()), stored.as_tensors(parameters), **_GRAD):
            codes.append("sched-trajectory")
    if codes:
        steps = recorder.steps
        _fail(codes, subject=subject,
              expected=f"{n_batches * epochs} optimizer steps with gradient norm at most {max_norm}; scheduler steps "
                       f"after optimizer steps "
                       + ("1, 2, 3, ... (every batch)" if interval == "batch" else f"{n_batches}, {2 * n_batches}, ... (every epoch)"),
              found=(f"{where}; " if where else "") + f"{len(steps)} optimizer steps, the first with gradient norm "
                    f"{_norm(steps[0]['grads']) if steps else float('nan'):.3g}; scheduler stepped "
                    f"{len(recorder.scheduler_steps)} times, after optimizer steps {recorder.scheduler_steps[:6]}"
                    f"{'...' if len(recorder.scheduler_steps) > 6 else ''}; returned {result!r}"[:400])

