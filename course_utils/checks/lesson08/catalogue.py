"""Lesson 08's catalogue of mistakes: one :class:`Diagnosis` per mistake the checks can name.

Within each exercise the catch-all row (``*-trajectory``) comes last: the checks name it only when no
more precise row fits.
"""

from __future__ import annotations

import re
from typing import Any

import torch

from course_utils.checks.core import CheckFailed
from course_utils.diagnoses import Diagnosis, ForbiddenCall, by_code, raise_diagnosis

LESSON = "08_loop_at_scale"
_SECTIONS = {
    "ex1-tests": "1 · Gradient accumulation",
    "ex2-tests": "2 · Clipping and learning-rate schedules",
    "ex3-tests": "3 · Mixed precision",
    "ex4-tests": "4 · Distributed data parallel",
}

def _row(code: str, exercise: str, family: str, what: str, hint: str) -> Diagnosis:
    return Diagnosis(code, what, hint, family, lesson=LESSON, exercise=exercise, section=_SECTIONS[exercise])


CATALOGUE = (
    # --- exercise 1: gradient accumulation -----------------------------------------------------------
    _row("accum-loss-not-divided", "ex1-tests", "gradients", "each micro-batch's loss was not divided by accumulation_steps",
         "backward (loss / accumulation_steps): k micro-batches must add up to the mean gradient of one big batch, not k times it."),
    _row("accum-wrong-scale", "ex1-tests", "gradients", "micro-batch losses were scaled by the wrong factor",
         "divide each micro-batch's loss by accumulation_steps (by the number of micro-batches in the last, shorter group if you like)."),
    _row("accum-step-every-batch", "ex1-tests", "optimizer", "the optimizer stepped after every micro-batch",
         "step (and zero the gradients) only when a group of accumulation_steps micro-batches is complete."),
    _row("accum-last-group-dropped", "ex1-tests", "data", "the last, shorter group of micro-batches never led to an optimizer step",
         "also step after the last micro-batch of the epoch: if (i + 1) % k == 0 or i + 1 == len(loader)."),
    _row("accum-step-positions", "ex1-tests", "optimizer", "the optimizer steps did not come at the end of each group of micro-batches",
         "step after micro-batches k, 2k, 3k, ... and after the last one; count micro-batches from 1."),
    _row("accum-zeroed-every-micro-batch", "ex1-tests", "gradients", "the gradients were zeroed before every micro-batch, so only the last one of each group counted",
         "zero the gradients once per group (after optimizer.step()), not in every micro-batch."),
    _row("accum-never-zeroed", "ex1-tests", "gradients", "gradients of earlier groups were still in .grad at the next step",
         "call optimizer.zero_grad() after every optimizer.step()."),
    _row("accum-reported-scaled-loss", "ex1-tests", "metrics", "the reported loss is the divided loss, not the loss itself",
         "accumulate loss.item() * len(yb) before dividing by accumulation_steps: the division is for the gradient only."),
    _row("accum-wrong-mean", "ex1-tests", "metrics", "the returned loss is not the mean loss per sample over the epoch",
         "sum loss.item() * len(yb) over the micro-batches and divide by the number of samples."),
    _row("accum-not-a-float", "ex1-tests", "interface", "the returned loss is not a Python float",
         "return a float: accumulate loss.item() * len(yb) and divide by the number of samples."),
    _row("accum-not-moved", "ex1-tests", "device", "a batch was not moved to the device",
         "move inputs and targets: xb, yb = xb.to(device), yb.to(device)."),
    _row("accum-train-mode", "ex1-tests", "modes", "the model was not in train mode",
         "call model.train() at the start of the epoch."),
    _row("accum-zeroed-before-step", "ex1-tests", "gradients", "optimizer.zero_grad() ran between the last backward of a group and optimizer.step(), so the steps applied no gradients",
         "step first, then zero: optimizer.step() and then optimizer.zero_grad(). Zeroing before the step throws the accumulated gradients away."),
    _row("accum-trajectory", "ex1-tests", "optimizer", "the parameters after one epoch differ from those of a correct accumulation loop",
         "per micro-batch: forward, loss / k, backward; at the end of each group (and of the epoch): step, zero_grad."),
    # --- exercise 2: clipping and schedules ----------------------------------------------------------
    _row("clip-after-step", "ex2-tests", "gradients", "the gradients were clipped after optimizer.step(), so the step used unclipped gradients",
         "clip between loss.backward() and optimizer.step(): clipping afterwards changes gradients nobody uses."),
    _row("clip-missing", "ex2-tests", "gradients", "optimizer.step() received gradients larger than max_norm: they were not clipped",
         "call torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm) between backward and step."),
    _row("clip-wrong-norm", "ex2-tests", "gradients", "the gradients were clipped, but not to the max_norm given",
         "pass the function's max_norm argument to clip_grad_norm_ (and clip by the total norm, not by value)."),
    _row("clip-params-used-up", "ex2-tests", "gradients", "only the first optimizer step received clipped gradients: clip_grad_norm_ was given a generator that its first call used up",
         "pass model.parameters() afresh in every call (or keep a list: params = list(model.parameters())): a generator is empty after one pass."),
    _row("clip-zeroed-before-step", "ex2-tests", "gradients", "the gradients were zeroed between backward and optimizer.step(), so the steps applied none",
         "zero the gradients before the forward pass (or right after optimizer.step()), never between backward and step."),
    _row("sched-per-epoch", "ex2-tests", "schedule", "a per-batch schedule was stepped once per epoch",
         "with interval='batch', call scheduler.step() right after every optimizer.step()."),
    _row("sched-per-batch", "ex2-tests", "schedule", "a per-epoch schedule was stepped after every batch",
         "with interval='epoch', call scheduler.step() once, at the end of each epoch."),
    _row("sched-before-step", "ex2-tests", "schedule", "scheduler.step() ran before optimizer.step()",
         "step the optimizer first, then the scheduler: otherwise the first learning rate of the schedule is skipped."),
    _row("sched-not-stepped", "ex2-tests", "schedule", "the scheduler was never stepped",
         "call scheduler.step(): after every optimizer.step() for interval='batch', once per epoch for 'epoch'."),
    _row("sched-wrong-count", "ex2-tests", "schedule", "the scheduler was stepped the wrong number of times",
         "one scheduler.step() per optimizer step (interval='batch') or per epoch (interval='epoch')."),
    _row("sched-history", "ex2-tests", "metrics", "the returned list is not the mean training loss per sample of each epoch",
         "return one float per epoch: the sum of loss.item() * len(yb) divided by the number of samples."),
    _row("sched-trajectory", "ex2-tests", "optimizer", "the parameters differ from those of a correct clipped, scheduled loop",
         "per batch: zero_grad, forward, loss, backward, clip, optimizer.step(), then the scheduler as its interval says."),
    # --- exercise 3: mixed precision -----------------------------------------------------------------
    _row("amp-no-autocast", "ex3-tests", "numerics", "the forward pass did not run under torch.autocast",
         "wrap the forward pass and the loss: with torch.autocast(device_type=device.type, dtype=amp_dtype):"),
    _row("amp-wrong-dtype", "ex3-tests", "dtypes", "autocast ran with another dtype than amp_dtype",
         "pass dtype=amp_dtype to torch.autocast (bfloat16 on the CPU, float16 with a GradScaler on CUDA)."),
    _row("amp-loss-outside-autocast", "ex3-tests", "numerics", "the loss was computed outside torch.autocast: only the forward pass ran inside it",
         "compute the loss inside the same `with torch.autocast(...)` block as the forward pass: autocast then runs cross_entropy in float32 on the low-precision logits."),
    _row("amp-loss-not-scaled", "ex3-tests", "numerics", "backward ran on the unscaled loss",
         "call scaler.scale(loss).backward(): the scaler's step divides the gradients by its scale again."),
    _row("amp-clip-scaled", "ex3-tests", "gradients", "the gradients were clipped while still multiplied by the loss scale",
         "call scaler.unscale_(optimizer) before clip_grad_norm_: otherwise max_norm is compared with scale × the real norm."),
    _row("amp-clip-missing", "ex3-tests", "gradients", "the optimizer stepped with gradients larger than max_norm",
         "after scaler.unscale_(optimizer), clip: torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)."),
    _row("amp-double-step", "ex3-tests", "optimizer", "optimizer.step() ran again after scaler.step(optimizer)",
         "scaler.step(optimizer) already steps (or skips a step on inf/NaN gradients): remove optimizer.step()."),
    _row("amp-scaler-bypassed", "ex3-tests", "optimizer", "the optimizer was stepped directly, not through scaler.step(optimizer)",
         "call scaler.step(optimizer): it unscales the gradients and skips the step when they hold inf or NaN."),
    _row("amp-no-update", "ex3-tests", "numerics", "scaler.update() was not called once per step",
         "call scaler.update() after every scaler.step(optimizer): it lowers the scale after inf and raises it again later."),
    _row("amp-wrong-mean", "ex3-tests", "metrics", "the returned loss is not the mean (unscaled) loss per sample",
         "accumulate loss.item() * len(yb) (the loss, not scaler.scale(loss)) and divide by the number of samples."),
    # --- exercise 4: distributed data parallel -------------------------------------------------------
    _row("ddp-not-wrapped", "ex4-tests", "distributed", "the model was not wrapped in DistributedDataParallel",
         "model = model.to(device); ddp_model = DDP(model, device_ids=...); train ddp_model, so gradients are averaged across ranks."),
    _row("ddp-wrapped-before-move", "ex4-tests", "device", "the model was wrapped in DDP before it was moved to the device",
         "move first, then wrap: DDP(model.to(device), ...). DDP registers the parameters it finds when it is built."),
    _row("ddp-model-not-moved", "ex4-tests", "device", "the model was never moved to the device",
         "call model.to(device) before wrapping it in DDP."),
    _row("ddp-no-sampler", "ex4-tests", "distributed", "every rank trained on all the data",
         "give the DataLoader sampler=DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=config.seed)."),
    _row("ddp-no-shuffle", "ex4-tests", "distributed", "the DistributedSampler did not shuffle (shuffle=False): every epoch visited the samples in index order",
         "create it with shuffle=True, seed=config.seed, and call sampler.set_epoch(epoch) at the start of every epoch."),
    _row("ddp-loader-shuffle", "ex4-tests", "distributed", "the DataLoader was given shuffle=True as well as the DistributedSampler",
         "shuffle in the sampler only: DistributedSampler(..., shuffle=True, seed=config.seed) and DataLoader(dataset, batch_size=..., sampler=sampler)."),
    _row("ddp-no-set-epoch", "ex4-tests", "distributed", "every epoch visited the samples in the same order",
         "call sampler.set_epoch(epoch) at the start of every epoch: the sampler's shuffle is seeded by seed + epoch."),
    _row("ddp-no-no-sync", "ex4-tests", "distributed", "gradients were all-reduced after every micro-batch, not once per accumulation group",
         "run the backward of every micro-batch except the last of a group inside `with ddp_model.no_sync():`."),
    _row("ddp-never-synced", "ex4-tests", "distributed", "the gradients were never all-reduced: every backward ran inside no_sync(), so each rank trained on its own gradients",
         "leave the backward of the micro-batch that ends a group (and of the epoch's last one) outside no_sync(): that backward all-reduces the accumulated gradients."),
    _row("ddp-sync-positions", "ex4-tests", "distributed", "the gradients were all-reduced on other micro-batches than the one that ends each accumulation group",
         "run every backward inside ddp_model.no_sync() except the one right before optimizer.step(): the step needs the synchronised gradients of the whole group."),
    _row("ddp-loss-not-divided", "ex4-tests", "gradients", "the micro-batch losses were not divided by config.accumulation_steps",
         "backward (loss / config.accumulation_steps), as in exercise 1."),
    _row("ddp-wrong-scale", "ex4-tests", "gradients", "micro-batch losses were scaled by the wrong factor",
         "divide each micro-batch's loss by config.accumulation_steps, as in exercise 1."),
    _row("ddp-last-group-dropped", "ex4-tests", "data", "the last, shorter accumulation group never led to an optimizer step",
         "step after the last micro-batch of the epoch too, and let it synchronise (no no_sync there)."),
    _row("ddp-step-positions", "ex4-tests", "optimizer", "the optimizer did not step once per accumulation group",
         "step after micro-batches k, 2k, ... and after the last one of the epoch, as in exercise 1."),
    _row("ddp-optimizer-settings", "ex4-tests", "optimizer", "the optimizer is not SGD with config.learning_rate and config.momentum",
         "torch.optim.SGD(ddp_model.parameters(), lr=config.learning_rate, momentum=config.momentum): take the numbers from config."),
    _row("ddp-metrics-not-reduced", "ex4-tests", "metrics", "the reported loss and accuracy are one rank's own, not the whole data's",
         "sum loss × samples, correct predictions and samples in one tensor, dist.all_reduce it, then divide."),
    _row("ddp-metrics-wrong", "ex4-tests", "metrics", "the reported loss or accuracy is not the mean over all samples of all ranks",
         "all_reduce the sums (loss × samples, correct, samples) with the default SUM, then divide: not the mean of means."),
    _row("ddp-history", "ex4-tests", "interface", "train_ddp must return one record per epoch with epoch, loss and accuracy on every rank",
         "return [{'epoch': 1, 'loss': ..., 'accuracy': ...}, ...] with Python floats, on every rank."),
    _row("ddp-every-rank-saves", "ex4-tests", "distributed", "more than one rank wrote the checkpoint",
         "save only on rank 0: if rank == 0: torch.save(...). The ranks hold identical models."),
    _row("ddp-no-checkpoint", "ex4-tests", "distributed", "rank 0 did not save a checkpoint to config.checkpoint_path every epoch",
         "at the end of every epoch, on rank 0: torch.save({'epoch': epoch, 'model': ..., 'optimizer': ...}, config.checkpoint_path)."),
    _row("ddp-checkpoint-wrapper-keys", "ex4-tests", "distributed", "the checkpoint holds the DDP wrapper's state_dict (keys start with 'module.')",
         "save ddp_model.module.state_dict() (or the unwrapped model's): it loads into a plain model for resuming and inference."),
    _row("ddp-checkpoint-contents", "ex4-tests", "interface", "the checkpoint lacks 'epoch', 'model' or 'optimizer'",
         "save {'epoch': epoch, 'model': model.state_dict(), 'optimizer': optimizer.state_dict()}."),
    _row("ddp-every-rank-logs", "ex4-tests", "distributed", "a rank other than 0 printed",
         "print only on rank 0: every rank prints the same reduced numbers, so the log would repeat."),
    _row("ddp-trajectory", "ex4-tests", "distributed", "the parameters after training differ from one process training on the same batches",
         "per micro-batch: forward, loss / k, backward; step and zero_grad at the end of each group; SGD with config's lr and momentum."),
    _row("ddp-hang", "ex4-tests", "distributed", "the ranks did not finish: one waited for a collective the other never called",
         "every rank must call the same collectives (all_reduce, DDP's backward) the same number of times; only printing and saving are rank-0 only."),
)
DIAGNOSES = by_code(CATALOGUE)

# Lesson 08's exercises ask for loops that call the library (clip_grad_norm_, GradScaler, DDP), never for a
# re-implementation of a library function: no call is forbidden.
FORBIDDEN_CALLS: tuple[ForbiddenCall, ...] = ()


def _fail(codes: list[str], *, expected: Any, found: Any, subject: str) -> None:
    unique = list(dict.fromkeys(codes))
    raise_diagnosis(DIAGNOSES[unique[0]], expected=expected, found=found, subject=subject,
                    also=[DIAGNOSES[c] for c in unique[1:]])


def _crashed(name: str, error: BaseException | str, codes: list[str] = (), where: str = "") -> CheckFailed:
    """The failure for a learner's function that raised: named by ``codes`` when what was seen before explains it."""
    if codes:
        found = f"{where}; then {_short_error(error)}" if where else _short_error(error)
        try:
            _fail(list(codes), expected=f"{name} to run to the end", found=found, subject=name)
        except CheckFailed as failure:
            return failure
    return CheckFailed(
        f"\n✗ {name} raised {_short_error(error)}\n"
        f"    expected: {name} to run on a model, loader and optimizer like those of the lesson\n"
        f"    found:    an exception (its traceback is shown above this message)\n"
        f"    hint:     the traceback above ends at the line of your function that raised: fix that line.")


def _short_error(error: BaseException | str) -> str:
    if isinstance(error, BaseException):
        return f"{type(error).__name__}: {error}"
    lines = [line.strip() for line in error.strip().splitlines() if line.strip()]
    named = [line for line in lines if re.match(r"^[\w.]*(Error|Exception|Interrupt)\b", line)]
    return (named or lines or [error])[-1]


def _is_float(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, (bool, torch.Tensor))

