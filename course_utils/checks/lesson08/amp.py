"""Exercise 3's check: ``train_one_epoch_amp`` under autocast, with a gradient scaler and clipping."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from course_utils.checks.learner import call_learner
from course_utils.checks.lesson08.catalogue import _crashed, _fail, _is_float
from course_utils.checks.lesson08.clipping import clip_codes
from course_utils.checks.lesson08.instruments import (
    _VALUE,
    ProbeCriterion,
    ProbeLoader,
    ProbeModel,
    ProbeScaler,
    ProbeSGD,
    _mean_per_sample,
    _Recorder,
    _recording,
    _Task,
)


def _autocast_codes(recorder: _Recorder, amp_dtype: torch.dtype) -> list[str]:
    forwards = recorder.forwards
    if any(not f["autocast"] for f in forwards):
        return ["amp-no-autocast"]
    if any(f["dtype"] != amp_dtype for f in forwards):
        return ["amp-wrong-dtype"]
    if any(not entry["autocast"] for entry in recorder.losses):
        return ["amp-loss-outside-autocast"]
    return []


def _skipped_updates(recorder: _Recorder, inf_batch: int) -> tuple[list[str], str]:
    """Which scaler.step() had no scaler.update() after it, in the same batch."""
    missing = [batch for batch in recorder.scaler_step_batches if batch not in recorder.update_batches]
    if not missing:
        return [], ""
    first = missing[0]
    why = " (the batch with infinite gradients, whose step the scaler skipped)" if first == inf_batch + 1 else ""
    more = f" and after {len(missing) - 1} more" if len(missing) > 1 else ""
    return ["amp-no-update"], f"no scaler.update() after the scaler.step() of batch {first}{why}{more}"


def check_amp(train_one_epoch_amp: Callable[..., Any], *, seed: int = 1, n_samples: int = 250, batch_size: int = 50,
              max_norm: float = 0.3, amp_dtype: torch.dtype = torch.bfloat16, inf_batch: int = 2) -> None:
    """Run ``train_one_epoch_amp(model, loader, criterion, optimizer, scaler, device, max_norm, amp_dtype)``.

    The scaler is a real, enabled CPU GradScaler (scale 1024); batch ``inf_batch`` (counted from 0)
    produces infinite gradients, whose step a correct loop lets the scaler skip.
    """
    subject = "train_one_epoch_amp"
    task = _Task(seed=seed, n_samples=n_samples, batch_size=batch_size)
    model = ProbeModel(task.network())
    optimizer = ProbeSGD(model.parameters(), lr=task.learning_rate, momentum=task.momentum)
    scaler = ProbeScaler()
    n_batches = len(task.loader())
    with _recording(model) as recorder:
        recorder.inject_inf_at = inf_batch
        result, error = call_learner(train_one_epoch_amp, model, ProbeLoader(task.loader()), ProbeCriterion(),
                                     optimizer, scaler, torch.device("cpu"), max_norm, amp_dtype)
    codes = _autocast_codes(recorder, amp_dtype)
    scales = [entry["scale"] for entry in recorder.losses]
    if scales and all(s is not None and math.isclose(s, 1.0) for s in scales):
        codes.append("amp-loss-not-scaled")
    inside = [s for s in recorder.steps if s["in_scaler"]]
    outside = [s for s in recorder.steps if not s["in_scaler"]]
    if inside and outside:
        codes.append("amp-double-step")
    elif outside:
        codes.append("amp-scaler-bypassed")
    # A scaler.step() or unscale_() after a step without update() raises inside PyTorch: named, never shown raw.
    update_codes, where = _skipped_updates(recorder, inf_batch)
    codes += update_codes
    if error is not None:
        raise _crashed(subject, error, codes, where) from error
    if not codes:
        recorder.steps = [s for s in inside if all(torch.isfinite(g).all() for g in s["since_step"])]
        clip_found, where = clip_codes(recorder, max_norm, prefix="amp")
        codes += clip_found
    if recorder.scaler_updates != n_batches and "amp-scaler-bypassed" not in codes and "amp-no-update" not in codes:
        codes.append("amp-no-update")
        where = where or f"{recorder.scaler_updates} scaler.update() calls for {n_batches} batches"
    if not _is_float(result) or not math.isclose(result, _mean_per_sample(recorder.losses), **_VALUE):
        codes.append("amp-wrong-mean")
    if codes:
        loss_places = sorted({"inside" if e["autocast"] else "outside" for e in recorder.losses})
        _fail(codes, subject=subject,
              expected=f"{n_batches} batches, forward and loss under autocast({amp_dtype}); "
                       f"scaler.scale(loss).backward(), unscale_, clip to {max_norm}, scaler.step, scaler.update every "
                       f"batch; batch {inf_batch + 1} has inf gradients and its step is skipped: {n_batches - 1} "
                       f"optimizer steps",
              found=(f"{where}; " if where else "")
              + f"{len(inside)} optimizer steps through scaler.step, {len(outside)} directly; "
                f"{recorder.scaler_updates} scaler.update() calls; loss computed {' and '.join(loss_places)} autocast; "
                f"loss gradients scaled by {sorted({s for s in scales if s is not None})}; returned {result!r}"[:500])
