"""Exercise 3 · mixed precision: the mistakes, the check of ``train_one_epoch_amp``, the probe and its scenario.

The check runs the learner's epoch under a real, enabled CPU gradient scaler; one batch's gradients
are made infinite, as a float16 overflow would make them. :class:`VerdictAmpModel`,
:class:`FloatCrossEntropy` and :func:`verdict_scaler` build the re-check's scenario on both sides
(the kernel's probe and the grader's reference loop).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from course_utils.checks.learner import call_learner
from course_utils.checks.lesson08.common import (
    LESSON,
    VERDICT_SCALE,
    Task,
    as_float,
    crashed,
    is_float,
    values_of,
    verdict_case,
    verdict_optimizer,
)
from course_utils.checks.lesson08.ex2 import clip_codes
from course_utils.checks.lesson08.instruments import (
    VALUE,
    InfGradient,
    ProbeCriterion,
    ProbeLoader,
    ProbeModel,
    ProbeScaler,
    ProbeSGD,
    Recorder,
    mean_per_sample,
    recording,
)
from course_utils.diagnoses import Exercise, ForbiddenCall, fail_with

EXERCISE = Exercise(LESSON, "ex3-tests", "3 · Mixed precision")
DIAGNOSES = EXERCISE.diagnoses(
    ("amp-no-autocast", "the forward pass did not run under torch.autocast",
     "wrap the forward pass and the loss: with torch.autocast(device_type=device.type, dtype=amp_dtype):", "numerics"),
    ("amp-wrong-dtype", "autocast ran with another dtype than amp_dtype",
     "pass dtype=amp_dtype to torch.autocast (bfloat16 on the CPU, float16 with a GradScaler on CUDA).", "dtypes"),
    ("amp-loss-outside-autocast", "the loss was computed outside torch.autocast: only the forward pass ran inside it",
     "compute the loss inside the same `with torch.autocast(...)` block as the forward pass: autocast then runs cross_entropy in float32 on the low-precision logits.", "numerics"),
    ("amp-loss-not-scaled", "backward ran on the unscaled loss",
     "call scaler.scale(loss).backward(): the scaler's step divides the gradients by its scale again.", "numerics"),
    ("amp-clip-scaled", "the gradients were clipped while still multiplied by the loss scale",
     "call scaler.unscale_(optimizer) before clip_grad_norm_: otherwise max_norm is compared with scale × the real norm.", "gradients"),
    ("amp-clip-missing", "the optimizer stepped with gradients larger than max_norm",
     "after scaler.unscale_(optimizer), clip: torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm).", "gradients"),
    ("amp-double-step", "optimizer.step() ran again after scaler.step(optimizer)",
     "scaler.step(optimizer) already steps (or skips a step on inf/NaN gradients): remove optimizer.step().", "optimizer"),
    ("amp-scaler-bypassed", "the optimizer was stepped directly, not through scaler.step(optimizer)",
     "call scaler.step(optimizer): it unscales the gradients and skips the step when they hold inf or NaN.", "optimizer"),
    ("amp-no-update", "scaler.update() was not called once per step",
     "call scaler.update() after every scaler.step(optimizer): it lowers the scale after inf and raises it again later.", "numerics"),
    ("amp-wrong-mean", "the returned loss is not the mean (unscaled) loss per sample",
     "accumulate loss.item() * len(yb) (the loss, not scaler.scale(loss)) and divide by the number of samples.", "metrics"),
)

FORBIDDEN_CALLS: tuple[ForbiddenCall, ...] = ()  # the exercise calls torch.autocast and GradScaler


def _autocast_codes(recorder: Recorder, amp_dtype: torch.dtype) -> list[str]:
    forwards = recorder.forwards
    if any(not f["autocast"] for f in forwards):
        return ["amp-no-autocast"]
    if any(f["dtype"] != amp_dtype for f in forwards):
        return ["amp-wrong-dtype"]
    if any(not entry["autocast"] for entry in recorder.losses):
        return ["amp-loss-outside-autocast"]
    return []


def _skipped_updates(recorder: Recorder, inf_batch: int) -> tuple[list[str], str]:
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
    task = Task(seed=seed, n_samples=n_samples, batch_size=batch_size)
    model = ProbeModel(task.network())
    optimizer = ProbeSGD(model.parameters(), lr=task.learning_rate, momentum=task.momentum)
    scaler = ProbeScaler()
    n_batches = len(task.loader())
    with recording(model) as recorder:
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
        raise crashed(subject, error, codes, where) from error
    if not codes:
        recorder.steps = [s for s in inside if all(torch.isfinite(g).all() for g in s["since_step"])]
        clip_found, where = clip_codes(recorder, max_norm, prefix="amp")
        codes += clip_found
    if recorder.scaler_updates != n_batches and "amp-scaler-bypassed" not in codes and "amp-no-update" not in codes:
        codes.append("amp-no-update")
        where = where or f"{recorder.scaler_updates} scaler.update() calls for {n_batches} batches"
    if not is_float(result) or not math.isclose(result, mean_per_sample(recorder.losses), **VALUE):
        codes.append("amp-wrong-mean")
    if codes:
        codes = list(dict.fromkeys(codes))
        loss_places = sorted({"inside" if e["autocast"] else "outside" for e in recorder.losses})
        fail_with(codes[0], also=codes[1:], subject=subject,
                  expected=f"{n_batches} batches, forward and loss under autocast({amp_dtype}); "
                           f"scaler.scale(loss).backward(), unscale_, clip to {max_norm}, scaler.step, scaler.update "
                           f"every batch; batch {inf_batch + 1} has inf gradients and its step is skipped: "
                           f"{n_batches - 1} optimizer steps",
                  found=(f"{where}; " if where else "")
                  + f"{len(inside)} optimizer steps through scaler.step, {len(outside)} directly; "
                    f"{recorder.scaler_updates} scaler.update() calls; loss computed {' and '.join(loss_places)} "
                    f"autocast; loss gradients scaled by {sorted({s for s in scales if s is not None})}; "
                    f"returned {result!r}"[:500])


# --- the re-check ---------------------------------------------------------------------------------------

class VerdictAmpModel(nn.Module):
    """Wraps a network: records the dtype of every output; batch ``inf_batch``'s gradients become infinite."""

    def __init__(self, net: nn.Module, inf_batch: int) -> None:
        super().__init__()
        self.net, self.inf_batch = net, inf_batch
        self.output_dtypes: list[str] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        output = self.net(x)
        self.output_dtypes.append(str(output.dtype))
        return InfGradient.apply(output) if len(self.output_dtypes) - 1 == self.inf_batch else output


class FloatCrossEntropy(nn.Module):
    """Cross-entropy computed in float32; records whether each loss was computed under autocast."""

    def __init__(self) -> None:
        super().__init__()
        self.under_autocast: list[bool] = []

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:  # noqa: D102
        self.under_autocast.append(torch.is_autocast_enabled("cpu"))
        return F.cross_entropy(logits.float(), targets)


def verdict_scaler() -> torch.amp.GradScaler:
    """An enabled CPU gradient scaler that does not grow its scale during one epoch."""
    return torch.amp.GradScaler("cpu", init_scale=VERDICT_SCALE, growth_interval=10_000)


# How GradScaler words a step() or unscale_() that came without update() since the last step().
_SCALER_WITHOUT_UPDATE = ("since the last update()", "is being called after step()")


def probe(namespace: dict[str, Any], seed: int) -> dict[str, Any]:
    """The re-check's values: the learner's epoch on ``seed``'s scenario, the dtypes its forward passes
    produced, whether each loss was computed under autocast, and the scaler's final scale."""
    case = verdict_case(seed)
    model = VerdictAmpModel(case.task.network(), case.inf_batch)
    scaler, criterion = verdict_scaler(), FloatCrossEntropy()
    try:
        loss = namespace["train_one_epoch_amp"](model, case.task.loader(), criterion, verdict_optimizer(model),
                                                scaler, torch.device("cpu"), case.max_norm, case.amp_dtype)
    except RuntimeError as error:
        # GradScaler refuses a second step() or unscale_() without update() in between: name the mistake.
        if any(words in str(error) for words in _SCALER_WITHOUT_UPDATE):
            raise RuntimeError("scaler.update() was not called after every scaler.step(optimizer), also after a "
                               "skipped step [amp-no-update]") from None
        raise
    return {"loss": as_float(loss), "parameters": values_of(model.parameters()), "scale": float(scaler.get_scale()),
            "output_dtypes": list(model.output_dtypes), "loss_under_autocast": list(criterion.under_autocast)}
