"""Behavioural grader for lesson 08, the loop at scale: accumulation, clipping, schedules, mixed precision, DDP.

Like lesson 07's grader (:mod:`course_utils.loop_grader`), every check runs the learner's function
on instrumented objects and a seeded task the notebook never prints, and names each mistake it
recognises by what the function *did*:

- a hook on every loss tensor records the factor its gradient was scaled by (``loss / k`` gives
  ``1 / k``, ``scaler.scale(loss)`` gives the scaler's scale);
- hooks on the parameters record each backward's own gradient, so the gradient an optimizer step
  applies can be compared with what it should have been (accumulated, clipped, unscaled);
- a probe optimizer, scheduler and gradient scaler record when they were stepped;
- the distributed check runs the learner's per-rank function on two real gloo ranks
  (:func:`course_utils.distributed.run_distributed`), counts the all-reduces DDP performs through a
  communication hook, records which samples each rank loaded, what each rank printed and saved.

Each finding raises :class:`CheckFailed` through :func:`course_utils.diagnoses.raise_diagnosis`.
"""

from __future__ import annotations

import contextlib
import copy
import math
import re
import tempfile
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.optim.optimizer import register_optimizer_step_pre_hook
from torch.utils.data import DataLoader, Dataset, TensorDataset

from course_utils.checks.core import CheckFailed
from course_utils.checks.learner import call_learner
from course_utils.data import RAW_MAX, make_course_data
from course_utils.diagnoses import Diagnosis, by_code, raise_diagnosis
from course_utils.distributed import DDPConfig, run_distributed
from course_utils.recipe import DEFAULT_RECIPE, default_model

LESSON = "08_loop_at_scale"
_SECTIONS = {
    "ex1-tests": "1 · Gradient accumulation",
    "ex2-tests": "2 · Clipping and learning-rate schedules",
    "ex3-tests": "3 · Mixed precision",
    "ex4-tests": "4 · Distributed data parallel",
}
_GRAD = dict(rtol=1e-4, atol=1e-7)  # gradients: the same float32 sums in another order
_VALUE = dict(rel_tol=1e-5, abs_tol=1e-6)
# DDP averages two half-batch gradients where the reference takes one full-batch mean: float32 rounding
# differs. Measured: largest parameter difference about 2e-7 after 2-3 epochs (tests/test_lesson08.py, the notebook).
_DDP_TOLERANCE = dict(rtol=1e-4, atol=2e-5)


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
    _row("accum-trajectory", "ex1-tests", "optimizer", "the parameters after one epoch differ from those of a correct accumulation loop",
         "per micro-batch: forward, loss / k, backward; at the end of each group (and of the epoch): step, zero_grad."),
    # --- exercise 2: clipping and schedules ----------------------------------------------------------
    _row("clip-after-step", "ex2-tests", "gradients", "the gradients were clipped after optimizer.step(), so the step used unclipped gradients",
         "clip between loss.backward() and optimizer.step(): clipping afterwards changes gradients nobody uses."),
    _row("clip-missing", "ex2-tests", "gradients", "optimizer.step() received gradients larger than max_norm: they were not clipped",
         "call torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm) between backward and step."),
    _row("clip-wrong-norm", "ex2-tests", "gradients", "the gradients were clipped, but not to the max_norm given",
         "pass the function's max_norm argument to clip_grad_norm_ (and clip by the total norm, not by value)."),
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
    _row("ddp-no-set-epoch", "ex4-tests", "distributed", "every epoch visited the samples in the same order",
         "call sampler.set_epoch(epoch) at the start of every epoch: the sampler's shuffle is seeded by seed + epoch."),
    _row("ddp-no-no-sync", "ex4-tests", "distributed", "gradients were all-reduced after every micro-batch, not once per accumulation group",
         "run the backward of every micro-batch except the last of a group inside `with ddp_model.no_sync():`."),
    _row("ddp-loss-not-divided", "ex4-tests", "gradients", "the micro-batch losses were not divided by config.accumulation_steps",
         "backward (loss / config.accumulation_steps), as in exercise 1."),
    _row("ddp-wrong-scale", "ex4-tests", "gradients", "micro-batch losses were scaled by the wrong factor",
         "divide each micro-batch's loss by config.accumulation_steps, as in exercise 1."),
    _row("ddp-last-group-dropped", "ex4-tests", "data", "the last, shorter accumulation group never led to an optimizer step",
         "step after the last micro-batch of the epoch too, and let it synchronise (no no_sync there)."),
    _row("ddp-step-positions", "ex4-tests", "optimizer", "the optimizer did not step once per accumulation group",
         "step after micro-batches k, 2k, ... and after the last one of the epoch, as in exercise 1."),
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


def _fail(codes: list[str], *, expected: Any, found: Any, subject: str) -> None:
    unique = list(dict.fromkeys(codes))
    raise_diagnosis(DIAGNOSES[unique[0]], expected=expected, found=found, subject=subject,
                    also=[DIAGNOSES[c] for c in unique[1:]])


def _crashed(name: str, error: BaseException | str, codes: list[str] = ()) -> CheckFailed:
    if codes:
        try:
            _fail(list(codes), expected=f"{name} to run to the end", found=_short_error(error), subject=name)
        except CheckFailed as failure:
            return failure
    return CheckFailed(
        f"\n✗ {name} raised {_short_error(error)}\n"
        f"    expected: {name} to run on a model, loader and optimizer like those of the lesson\n"
        f"    found:    an exception (its traceback is shown above this message)\n"
        f"    hint:     run the lesson's example cell to see the error with your own data first.")


def _short_error(error: BaseException | str) -> str:
    if isinstance(error, BaseException):
        return f"{type(error).__name__}: {error}"
    lines = [line.strip() for line in error.strip().splitlines() if line.strip()]
    named = [line for line in lines if re.match(r"^[\w.]*(Error|Exception|Interrupt)\b", line)]
    return (named or lines or [error])[-1]


def _is_float(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, (bool, torch.Tensor))


# --- probes for the single-process exercises ---------------------------------------------------

def _plain(value: Any) -> Any:
    if isinstance(value, torch.Tensor) and type(value) is not torch.Tensor:
        with torch._C.DisableTorchFunctionSubclass():
            return value.as_subclass(torch.Tensor)
    return value


def _names_a_device(args: tuple, kwargs: dict) -> bool:
    return "device" in kwargs or any(isinstance(a, (torch.device, str, torch.Tensor)) for a in args[1:])


class Unmoved(torch.Tensor):
    """A batch tensor as the probe loader yields it; ``.to(device)`` or ``.cuda()`` makes it plain.

    Moves are detected even on a CPU-only machine, as in lesson 07's grader.
    """

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN206
        kwargs = kwargs or {}
        result = super().__torch_function__(func, types, args, kwargs)
        moved = func is torch.Tensor.cuda or (func is torch.Tensor.to and _names_a_device(args, kwargs))
        return _plain(result) if moved else result


class _Recorder:
    """What the probes saw during one call of the learner's function."""

    def __init__(self, parameters: list[nn.Parameter]) -> None:
        self.parameters = parameters
        self.forwards: list[dict[str, Any]] = []
        self.losses: list[dict[str, Any]] = []  # value, size, scale (filled by the loss hook)
        self.backwards = 0
        self.since_step = [torch.zeros_like(p) for p in parameters]
        self.since_start = [torch.zeros_like(p) for p in parameters]
        self.last_fresh = [torch.zeros_like(p) for p in parameters]
        self.backwards_since_step = 0
        self.steps: list[dict[str, Any]] = []
        self.zeroings: list[list[torch.Tensor | None]] = []
        self.scheduler_steps: list[int] = []
        self.scaler_updates = 0
        self.in_scaler_step = False
        self.scale_at_step = 1.0
        self.inject_inf_at: int | None = None

    def on_grad(self, index: int, gradient: torch.Tensor) -> None:
        if index == 0:
            self.backwards += 1
            self.backwards_since_step += 1
        fresh = gradient.detach().float()
        self.since_step[index] += fresh
        self.since_start[index] += fresh
        self.last_fresh[index] = fresh.clone()

    def grads(self) -> list[torch.Tensor | None]:
        return [None if p.grad is None else p.grad.detach().clone() for p in self.parameters]


_ACTIVE: ContextVar[_Recorder | None] = ContextVar("lesson08_recorder", default=None)


class _InfGradient(torch.autograd.Function):
    """Identity forward; backward makes every gradient infinite (a float16 overflow, on demand)."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return tensor.clone()

    @staticmethod
    def backward(ctx: Any, gradient: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return gradient * float("inf")


class ProbeModel(nn.Module):
    """Wraps a network; records mode, device moves and autocast state of every forward."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        recorder = _ACTIVE.get()
        output = self.net(_plain(x))
        if recorder is not None:
            autocast = torch.is_autocast_enabled("cpu")
            recorder.forwards.append({"moved": not isinstance(x, Unmoved), "training": self.training,
                                      "autocast": autocast, "dtype": torch.get_autocast_dtype("cpu") if autocast else None})
            if recorder.inject_inf_at == len(recorder.forwards) - 1:
                output = _InfGradient.apply(output)
        return output


class ProbeCriterion(nn.Module):
    """Cross-entropy that records each loss, its batch size, and the factor its gradient was scaled by."""

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:  # noqa: D102
        recorder = _ACTIVE.get()
        loss = F.cross_entropy(_plain(logits).float(), _plain(targets))
        if recorder is not None:
            entry = {"value": loss.item(), "size": len(targets), "scale": None, "moved": not isinstance(targets, Unmoved)}
            recorder.losses.append(entry)
            if loss.requires_grad:
                loss.register_hook(lambda gradient: entry.__setitem__("scale", float(gradient)))
        return loss


class ProbeSGD(torch.optim.SGD):
    """SGD that records, at every step, the gradients it applies and what the backward passes produced."""

    def step(self, closure: Callable[[], float] | None = None) -> Any:  # noqa: D102
        recorder = _ACTIVE.get()
        if recorder is not None:
            recorder.steps.append({"position": len(recorder.forwards), "grads": recorder.grads(),
                                   "since_step": [g.clone() for g in recorder.since_step],
                                   "since_start": [g.clone() for g in recorder.since_start],
                                   "last_fresh": [g.clone() for g in recorder.last_fresh],
                                   "backwards": recorder.backwards_since_step, "in_scaler": recorder.in_scaler_step,
                                   "scale": recorder.scale_at_step if recorder.in_scaler_step else 1.0,
                                   "zeroings": len(recorder.zeroings)})
            recorder.since_step = [torch.zeros_like(g) for g in recorder.since_step]
            recorder.backwards_since_step = 0
        return super().step(closure)

    def zero_grad(self, set_to_none: bool = True) -> None:  # noqa: D102
        recorder = _ACTIVE.get()
        if recorder is not None:
            recorder.zeroings.append(recorder.grads())
        super().zero_grad(set_to_none)


class ProbeScheduler(torch.optim.lr_scheduler.LambdaLR):
    """A decaying schedule that records how many optimizer steps had happened at each of its steps."""

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self._ready = False
        super().__init__(optimizer, lambda step: 0.8 ** step)
        self._ready = True

    def step(self, epoch: int | None = None) -> None:  # noqa: D102
        recorder = _ACTIVE.get()
        if recorder is not None and self._ready:
            recorder.scheduler_steps.append(len(recorder.steps))
        super().step()


class ProbeScaler(torch.amp.GradScaler):
    """A CPU gradient scaler (scale 1024) that records its steps and updates."""

    def __init__(self) -> None:
        super().__init__("cpu", init_scale=2.0 ** 10, growth_interval=1000)

    def step(self, optimizer: torch.optim.Optimizer, *args: Any, **kwargs: Any) -> Any:  # noqa: D102
        recorder = _ACTIVE.get()
        if recorder is not None:
            recorder.in_scaler_step = True
            recorder.scale_at_step = self.get_scale()
        try:
            return super().step(optimizer, *args, **kwargs)
        finally:
            if recorder is not None:
                recorder.in_scaler_step = False

    def update(self, new_scale: Any = None) -> None:  # noqa: D102
        recorder = _ACTIVE.get()
        if recorder is not None:
            recorder.scaler_updates += 1
        super().update(new_scale)


class ProbeLoader:
    """Iterates a DataLoader, handing out batches that remember whether they were moved to the device."""

    def __init__(self, loader: DataLoader) -> None:
        self.loader = loader

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for features, targets in self.loader:
            yield features.as_subclass(Unmoved), targets.as_subclass(Unmoved)

    def __len__(self) -> int:
        return len(self.loader)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)


@contextlib.contextmanager
def _recording(model: ProbeModel) -> Iterator[_Recorder]:
    parameters = list(model.parameters())
    recorder = _Recorder(parameters)
    handles = [p.register_hook(lambda g, i=i: recorder.on_grad(i, g)) for i, p in enumerate(parameters)]
    token = _ACTIVE.set(recorder)
    try:
        yield recorder
    finally:
        _ACTIVE.reset(token)
        for handle in handles:
            handle.remove()


@dataclass
class _Task:
    """A seeded network and data set on which a learner's function runs."""

    seed: int = 0
    n_samples: int = 250
    batch_size: int = 25
    hidden: int = 16
    learning_rate: float = 0.1
    momentum: float = 0.9

    def dataset(self) -> TensorDataset:
        features, targets = make_course_data(self.n_samples, seed=1000 + self.seed)
        return TensorDataset(features / RAW_MAX, targets)

    def loader(self) -> DataLoader:
        return DataLoader(self.dataset(), batch_size=self.batch_size, shuffle=True,
                          generator=torch.Generator().manual_seed(self.seed))

    def network(self) -> nn.Module:
        return default_model(replace(DEFAULT_RECIPE, hidden=self.hidden, seed=self.seed))



def _close(first: list[torch.Tensor | None], second: list[torch.Tensor], **tolerance: float) -> bool:
    return all(a is not None and a.shape == b.shape and torch.allclose(a.float(), b.float(), **tolerance)
               for a, b in zip(first, second))


def _norm(tensors: list[torch.Tensor | None]) -> float:
    return math.sqrt(sum(float((t.float() ** 2).sum()) for t in tensors if t is not None))


def _groups(n_batches: int, k: int) -> list[int]:
    """Where the optimizer steps: after micro-batches k, 2k, ... and after the last one."""
    return [min(k * (j + 1), n_batches) for j in range(math.ceil(n_batches / k))]


def _mean_per_sample(losses: list[dict[str, Any]], *, scaled: bool = False) -> float:
    total = sum(entry["value"] * entry["size"] * ((entry["scale"] or 0.0) if scaled else 1.0) for entry in losses)
    return total / max(1, sum(entry["size"] for entry in losses))


# --- exercise 1: gradient accumulation ---------------------------------------------------------

def _reference_accumulation(network: nn.Module, task: _Task, k: int, *, partial_by_group: bool) -> nn.Module:
    network = copy.deepcopy(network)
    optimizer = torch.optim.SGD(network.parameters(), lr=task.learning_rate, momentum=task.momentum)
    batches = list(task.loader())
    ends = _groups(len(batches), k)
    optimizer.zero_grad()
    start = 0
    for end in ends:
        divisor = (end - start) if partial_by_group else k
        for features, targets in batches[start:end]:
            (F.cross_entropy(network(features), targets) / divisor).backward()
        optimizer.step()
        optimizer.zero_grad()
        start = end
    return network


def _scale_codes(losses: list[dict[str, Any]], n_batches: int, k: int, prefix: str) -> list[str]:
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


def _step_codes(positions: list[int], n_batches: int, k: int, prefix: str) -> list[str]:
    expected = _groups(n_batches, k)
    if positions == expected:
        return []
    if k > 1 and positions == list(range(1, n_batches + 1)):
        return [f"{prefix}-step-every-batch" if prefix == "accum" else f"{prefix}-step-positions"]
    if n_batches % k and positions == expected[:-1]:
        return [f"{prefix}-last-group-dropped"]
    return [f"{prefix}-step-positions"]


def check_accumulation(train_one_epoch_accumulated: Callable[..., Any], *, seed: int = 0, n_samples: int = 250,
                       batch_size: int = 25, accumulation_steps: int = 4) -> None:
    """Run ``train_one_epoch_accumulated(model, loader, criterion, optimizer, device, k)`` on probes."""
    subject = "train_one_epoch_accumulated"
    task = _Task(seed=seed, n_samples=n_samples, batch_size=batch_size)
    k = accumulation_steps
    model = ProbeModel(task.network())
    start = copy.deepcopy(model.net)
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
    codes += _scale_codes(recorder.losses, n_batches, k, "accum")
    if error is not None:
        raise _crashed(subject, error, codes) from error
    positions = [step["position"] for step in recorder.steps]
    codes += _step_codes(positions, n_batches, k, "accum")
    codes += _accumulation_grad_codes(recorder)
    codes += _returned_loss_codes(result, recorder.losses, "accum")
    if not codes:
        variants = [_reference_accumulation(start, task, k, partial_by_group=flag) for flag in (False, True)]
        if not any(_close(list(model.net.parameters()), list(v.parameters()), **_GRAD) for v in variants):
            codes.append("accum-trajectory")
    if codes:
        _fail(codes, subject=subject,
              expected=f"{len(_groups(n_batches, k))} optimizer steps, after micro-batches {_groups(n_batches, k)} "
                       f"of {n_batches} (accumulation_steps={k}), each loss divided by {k}",
              found=f"{len(positions)} steps after micro-batches {positions}; loss gradients scaled by "
                    f"{sorted({round(e['scale'], 4) for e in recorder.losses if e['scale'] is not None})}; returned {result!r}")


def _accumulation_grad_codes(recorder: _Recorder) -> list[str]:
    for number, step in enumerate(recorder.steps):
        if _close(step["grads"], step["since_step"], **_GRAD):
            continue
        if step["backwards"] > 1 and _close(step["grads"], step["last_fresh"], **_GRAD):
            return ["accum-zeroed-every-micro-batch"]
        if number > 0 and _close(step["grads"], step["since_start"], **_GRAD):
            return ["accum-never-zeroed"]
        return ["accum-trajectory"]
    return []


def _returned_loss_codes(result: Any, losses: list[dict[str, Any]], prefix: str) -> list[str]:
    if not _is_float(result):
        return [f"{prefix}-not-a-float"] if prefix == "accum" else [f"{prefix}-wrong-mean"]
    if math.isclose(result, _mean_per_sample(losses), **_VALUE):
        return []
    if prefix == "accum" and math.isclose(result, _mean_per_sample(losses, scaled=True), **_VALUE):
        return ["accum-reported-scaled-loss"]
    return [f"{prefix}-wrong-mean"]


# --- exercise 2: clipping and schedules --------------------------------------------------------

def _clip_codes(recorder: _Recorder, max_norm: float, *, prefix: str) -> list[str]:
    """Compare each step's gradients with the clipped sum of what backward produced since the last step."""
    for number, step in enumerate(recorder.steps):
        unscale = step["scale"]
        fresh = [g / unscale for g in step["since_step"]]
        norm = _norm(fresh)
        clipped = [g * min(1.0, max_norm / (norm + 1e-6)) for g in fresh]
        if _close(step["grads"], clipped, **_GRAD):
            continue
        applied = _norm(step["grads"])
        if prefix == "amp" and unscale > 1 and math.isclose(applied, max_norm / unscale, rel_tol=1e-3):
            return ["amp-clip-scaled"]
        if _close(step["grads"], fresh, **_GRAD):
            if prefix == "clip" and _clipped_later(recorder, number, step, max_norm):
                return ["clip-after-step"]
            return ["amp-clip-missing" if prefix == "amp" else "clip-missing"]
        if prefix == "amp":
            return ["amp-clip-missing"]
        return ["clip-wrong-norm" if _parallel(step["grads"], fresh) else "sched-trajectory"]
    return []


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


def _reference_fit(network: nn.Module, task: _Task, epochs: int, max_norm: float, interval: str) -> tuple[nn.Module, list[float]]:
    network = copy.deepcopy(network)
    optimizer = torch.optim.SGD(network.parameters(), lr=task.learning_rate, momentum=task.momentum)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.8 ** step)
    loader = task.loader()
    losses = []
    for _ in range(epochs):
        total, count = 0.0, 0
        for features, targets in loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(network(features), targets)
            loss.backward()
            nn.utils.clip_grad_norm_(network.parameters(), max_norm)
            optimizer.step()
            if interval == "batch":
                scheduler.step()
            total, count = total + loss.item() * len(targets), count + len(targets)
        if interval == "epoch":
            scheduler.step()
        losses.append(total / count)
    return network, losses


def _schedule_codes(positions: list[int], n_batches: int, epochs: int, interval: str) -> list[str]:
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


def check_fit_scheduled(fit_scheduled: Callable[..., Any], *, seed: int = 0, interval: str = "batch", epochs: int = 2,
                        n_samples: int = 250, batch_size: int = 50, max_norm: float = 0.3) -> None:
    """Run ``fit_scheduled(model, loader, criterion, optimizer, scheduler, device, epochs, max_norm, interval)``."""
    subject = f"fit_scheduled (interval={interval!r})"
    task = _Task(seed=seed, n_samples=n_samples, batch_size=batch_size)
    model = ProbeModel(task.network())
    start = copy.deepcopy(model.net)
    optimizer = ProbeSGD(model.parameters(), lr=task.learning_rate, momentum=task.momentum)
    scheduler = ProbeScheduler(optimizer)
    n_batches = len(task.loader())
    with _recording(model) as recorder:
        result, error = call_learner(fit_scheduled, model, ProbeLoader(task.loader()), ProbeCriterion(), optimizer, scheduler,
                             torch.device("cpu"), epochs, max_norm, interval)
    codes = _clip_codes(recorder, max_norm, prefix="clip")
    if error is not None:
        raise _crashed(subject, error, codes) from error
    codes += _schedule_codes(recorder.scheduler_steps, n_batches, epochs, interval)
    per_epoch = [recorder.losses[e * n_batches:(e + 1) * n_batches] for e in range(epochs)]
    expected_history = [_mean_per_sample(chunk) for chunk in per_epoch]
    if not (isinstance(result, list) and len(result) == epochs and all(_is_float(v) for v in result)
            and all(math.isclose(a, b, **_VALUE) for a, b in zip(result, expected_history))):
        codes.append("sched-history")
    if not codes:
        reference, _ = _reference_fit(start, task, epochs, max_norm, interval)
        if not _close(list(model.net.parameters()), list(reference.parameters()), **_GRAD):
            codes.append("sched-trajectory")
    if codes:
        steps = recorder.steps
        _fail(codes, subject=subject,
              expected=f"{n_batches * epochs} optimizer steps with gradient norm at most {max_norm}; scheduler steps "
                       f"after optimizer steps "
                       + ("1, 2, 3, ... (every batch)" if interval == "batch" else f"{n_batches}, {2 * n_batches}, ... (every epoch)"),
              found=f"{len(steps)} optimizer steps, the first with gradient norm "
                    f"{_norm(steps[0]['grads']) if steps else float('nan'):.3g}; scheduler stepped "
                    f"{len(recorder.scheduler_steps)} times, after optimizer steps {recorder.scheduler_steps[:6]}"
                    f"{'...' if len(recorder.scheduler_steps) > 6 else ''}; returned {result!r}"[:400])


# --- exercise 3: mixed precision ---------------------------------------------------------------

def check_amp(train_one_epoch_amp: Callable[..., Any], *, seed: int = 0, n_samples: int = 250, batch_size: int = 50,
              max_norm: float = 0.3, amp_dtype: torch.dtype = torch.bfloat16, inf_batch: int = 2) -> None:
    """Run ``train_one_epoch_amp(model, loader, criterion, optimizer, scaler, device, max_norm, amp_dtype)``.

    The scaler is a real, enabled CPU GradScaler (scale 1024); batch ``inf_batch`` produces infinite
    gradients, whose step a correct loop lets the scaler skip.
    """
    subject = "train_one_epoch_amp"
    task = _Task(seed=seed, n_samples=n_samples, batch_size=batch_size)
    model = ProbeModel(task.network())
    optimizer = ProbeSGD(model.parameters(), lr=task.learning_rate, momentum=task.momentum)
    scaler = ProbeScaler()
    n_batches = len(task.loader())
    with _recording(model) as recorder:
        recorder.inject_inf_at = inf_batch
        result, error = call_learner(train_one_epoch_amp, model, ProbeLoader(task.loader()), ProbeCriterion(), optimizer, scaler,
                             torch.device("cpu"), max_norm, amp_dtype)
    codes = []
    forwards = recorder.forwards
    if any(not f["autocast"] for f in forwards):
        codes.append("amp-no-autocast")
    elif any(f["dtype"] != amp_dtype for f in forwards):
        codes.append("amp-wrong-dtype")
    scales = [entry["scale"] for entry in recorder.losses]
    if scales and all(s is not None and math.isclose(s, 1.0) for s in scales):
        codes.append("amp-loss-not-scaled")
    inside = [s for s in recorder.steps if s["in_scaler"]]
    outside = [s for s in recorder.steps if not s["in_scaler"]]
    if inside and outside:
        codes.append("amp-double-step")
    elif outside:
        codes.append("amp-scaler-bypassed")
    if error is not None:
        if recorder.scaler_updates < len(inside) and "unscale_" in str(error):
            codes.append("amp-no-update")  # GradScaler refuses a second unscale_ before update()
        raise _crashed(subject, error, codes) from error
    if not codes:
        finite = [s for s in inside if all(torch.isfinite(g).all() for g in s["since_step"])]
        recorder.steps = finite
        codes += _clip_codes(recorder, max_norm, prefix="amp")
    if recorder.scaler_updates != n_batches and "amp-scaler-bypassed" not in codes:
        codes.append("amp-no-update")
    if not _is_float(result) or not math.isclose(result, _mean_per_sample(recorder.losses), **_VALUE):
        codes.append("amp-wrong-mean")
    if codes:
        _fail(codes, subject=subject,
              expected=f"{n_batches} batches under autocast({amp_dtype}); scaler.scale(loss).backward(), unscale_, clip to "
                       f"{max_norm}, scaler.step, scaler.update every batch; batch {inf_batch + 1} has inf gradients "
                       f"and its step is skipped: {n_batches - 1} optimizer steps",
              found=f"{len(inside)} optimizer steps through scaler.step, {len(outside)} directly; "
                    f"{recorder.scaler_updates} scaler.update() calls; loss gradients scaled by "
                    f"{sorted({s for s in scales if s is not None})}; returned {result!r}"[:400])


# --- exercise 4: distributed data parallel ------------------------------------------------------

class IndexedDataset(Dataset):
    """The running example's samples; records which indices this process loaded, in order."""

    def __init__(self, features: torch.Tensor, targets: torch.Tensor) -> None:
        self.features, self.targets = features, targets
        self.loaded: list[int] = []

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        self.loaded.append(int(index))
        return self.features[index], self.targets[index]


class DDPProbeModel(nn.Module):
    """Wraps a network; records moves to a device and whether they came before the DDP wrapper."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.log: dict[str, Any] = {"moves_before_wrap": 0, "moves_after_wrap": 0, "wrapped": 0}

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.net(x)

    def _apply(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> nn.Module:
        key = "moves_after_wrap" if self.log["wrapped"] else "moves_before_wrap"
        self.log[key] += 1
        return super()._apply(fn, *args, **kwargs)


class DDPCriterion(nn.Module):
    """Cross-entropy recording each micro-batch's loss, size, correct predictions and gradient scale."""

    def __init__(self) -> None:
        super().__init__()
        self.entries: list[dict[str, Any]] = []

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:  # noqa: D102
        loss = F.cross_entropy(logits, targets)
        entry = {"value": loss.item(), "size": len(targets), "scale": None,
                 "correct": int((logits.detach().argmax(dim=1) == targets).sum())}
        self.entries.append(entry)
        if loss.requires_grad:
            loss.register_hook(lambda gradient: entry.__setitem__("scale", float(gradient)))
        return loss


@dataclass
class _DDPTask:
    seed: int = 0
    n_samples: int = 400
    batch_size: int = 50
    accumulation_steps: int = 3
    epochs: int = 2
    world_size: int = 2
    hidden: int = 16
    sampler_seed: int = 5
    folder: str = field(default="")

    def config(self) -> DDPConfig:
        return DDPConfig(epochs=self.epochs, batch_size=self.batch_size, accumulation_steps=self.accumulation_steps,
                         learning_rate=0.1, momentum=0.9, seed=self.sampler_seed,
                         checkpoint_path=str(Path(self.folder) / "checkpoint.pt"))

    def data(self) -> tuple[torch.Tensor, torch.Tensor]:
        features, targets = make_course_data(self.n_samples, seed=2000 + self.seed)
        return features / RAW_MAX, targets

    def network(self) -> nn.Module:
        return default_model(replace(DEFAULT_RECIPE, hidden=self.hidden, seed=self.seed))


@contextlib.contextmanager
def _instrumented(rank: int, model: DDPProbeModel, log: dict[str, Any]) -> Iterator[None]:
    """Inside one rank: count DDP's all-reduces, optimizer steps and checkpoint writes."""
    from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
    from torch.nn.parallel import DistributedDataParallel

    original_init, original_save = DistributedDataParallel.__init__, torch.save
    log.update(syncs=[], steps=[], saves=[], wrapped_probe=0)

    def counting_hook(state, bucket):  # noqa: ANN001, ANN202 - DDP rejects a bucket annotation other than GradBucket
        if bucket.index() == 0:
            log["syncs"].append(len(log["criterion"].entries))
        return default_hooks.allreduce_hook(state, bucket)

    def init(self: DistributedDataParallel, module: nn.Module, *args: Any, **kwargs: Any) -> None:
        if module is model:
            model.log["wrapped"] += 1
        original_init(self, module, *args, **kwargs)
        if module is model:
            self.register_comm_hook(None, counting_hook)

    def save(obj: Any, path: Any, *args: Any, **kwargs: Any) -> None:
        keys = sorted(obj) if isinstance(obj, dict) else []
        model_keys = sorted(obj["model"]) if isinstance(obj, dict) and isinstance(obj.get("model"), dict) else []
        log["saves"].append({"path": str(path), "keys": keys, "model_keys": model_keys})
        return original_save(obj, path, *args, **kwargs)

    def on_step(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        log["steps"].append(len(log["criterion"].entries))

    handle = register_optimizer_step_pre_hook(on_step)
    DistributedDataParallel.__init__, torch.save = init, save
    try:
        yield
    finally:
        DistributedDataParallel.__init__, torch.save = original_init, original_save
        handle.remove()


def _ddp_rank(rank: int, world_size: int, train_ddp: Callable[..., Any], task: _DDPTask) -> dict[str, Any]:
    features, targets = task.data()
    dataset = IndexedDataset(features, targets)
    model = DDPProbeModel(task.network())
    criterion = DDPCriterion()
    log: dict[str, Any] = {"criterion": criterion}
    error = None
    with _instrumented(rank, model, log):
        try:
            history = train_ddp(rank, world_size, model, dataset, criterion, torch.device("cpu"), task.config())
        except Exception as caught:  # noqa: BLE001 - reported with what was seen before
            history, error = None, f"{type(caught).__name__}: {caught}"
    log.pop("criterion")
    return {"history": history, "error": error, "loaded": dataset.loaded, "entries": criterion.entries,
            "model": model.log, "state": {k: v.detach().clone() for k, v in model.net.state_dict().items()}, **log}


def _reference_ddp(task: _DDPTask, ranks: list[dict[str, Any]], *, partial_by_group: bool) -> nn.Module:
    """One process, batches of world_size × batch_size: the union of the ranks' micro-batches, in order."""
    features, targets = task.data()
    network = task.network()
    optimizer = torch.optim.SGD(network.parameters(), lr=0.1, momentum=0.9)
    per_rank = len(ranks[0]["loaded"]) // task.epochs
    n_batches = math.ceil(per_rank / task.batch_size)
    k = task.accumulation_steps
    for epoch in range(task.epochs):
        orders = [r["loaded"][epoch * per_rank:(epoch + 1) * per_rank] for r in ranks]
        start = 0
        for end in _groups(n_batches, k):
            divisor = (end - start) if partial_by_group else k
            for j in range(start, end):
                index = torch.tensor([i for order in orders for i in order[j * task.batch_size:(j + 1) * task.batch_size]])
                (F.cross_entropy(network(features[index]), targets[index]) / divisor).backward()
            optimizer.step()
            optimizer.zero_grad()
            start = end
    return network


# How a collective that the other rank never joined fails under gloo: its peer closed the connection or time ran out.
_COLLECTIVE_ERRORS = ("Connection closed", "Connection reset", "timed out", "Timed out", "Timeout", "gloo")


def check_ddp(train_ddp: Callable[..., Any], *, seed: int = 0, n_samples: int = 400, batch_size: int = 50,
              accumulation_steps: int = 3, epochs: int = 2, timeout: float = 90.0) -> None:
    """Run ``train_ddp(rank, world_size, model, dataset, criterion, device, config)`` on two gloo ranks."""
    subject = "train_ddp"
    with tempfile.TemporaryDirectory() as folder:
        task = _DDPTask(seed=seed, n_samples=n_samples, batch_size=batch_size, accumulation_steps=accumulation_steps,
                        epochs=epochs, sampler_seed=seed + 5, folder=folder)
        results = run_distributed(_ddp_rank, task.world_size, (train_ddp, task), backend="gloo", timeout=timeout,
                                  collective_timeout=min(30.0, timeout / 3), check=False)
    broken = [r for r in results if r.error and r.value is None]
    hung = [r for r in broken if "did not finish" in r.error or "without a result" in r.error]
    if len(hung) < len(broken):  # the grader itself failed on a rank: show it, never blame the learner
        raise RuntimeError(next(r.error for r in broken if r not in hung))
    ranks = [r.value for r in results]
    errors = [r.value["error"] for r in results if r.value and r.value["error"]]
    collective = [e for e in errors if any(word in e for word in _COLLECTIVE_ERRORS)]
    if hung or collective:
        _fail(["ddp-hang"], subject=subject, expected="both ranks to finish",
              found=_short_error(collective[0] if collective else hung[0].error))
    codes = _ddp_structure_codes(ranks, results, task)
    if errors:  # only what was seen before the crash counts: a missing wrapper may just not have come yet
        seen = [code for code in codes if code not in ("ddp-not-wrapped", "ddp-model-not-moved")]
        raise _crashed(subject, errors[0], seen)
    codes += _ddp_training_codes(ranks, task)
    codes += _ddp_report_codes(ranks, results, task)
    if not codes:
        variants = [_reference_ddp(task, ranks, partial_by_group=flag) for flag in (False, True)]
        finals = [r["state"] for r in ranks]
        same = [all(torch.allclose(final[name], dict(v.state_dict())[name], **_DDP_TOLERANCE) for name in final)
                for final in finals for v in variants]
        if not any(same[:2]) or not any(same[2:]):
            codes.append("ddp-trajectory")
    if codes:
        _fail(codes, subject=subject, expected=_ddp_expected(task), found=_ddp_found(ranks, results))


def _ddp_structure_codes(ranks: list[dict[str, Any]], results: list[Any], task: _DDPTask) -> list[str]:
    codes = []
    logs = [r["model"] for r in ranks]
    if any(log["wrapped"] == 0 for log in logs):
        codes.append("ddp-not-wrapped")
    elif any(log["moves_before_wrap"] == 0 and log["moves_after_wrap"] > 0 for log in logs):
        codes.append("ddp-wrapped-before-move")
    elif any(log["moves_before_wrap"] == 0 for log in logs):
        codes.append("ddp-model-not-moved")
    first, second = (set(r["loaded"]) for r in ranks[:2])
    if first and first == second:
        codes.append("ddp-no-sampler")
    return codes


def _ddp_training_codes(ranks: list[dict[str, Any]], task: _DDPTask) -> list[str]:
    codes = []
    loaded = ranks[0]["loaded"]
    per_epoch = len(loaded) // task.epochs
    if task.epochs > 1 and per_epoch and loaded[:per_epoch] == loaded[per_epoch:2 * per_epoch]:
        codes.append("ddp-no-set-epoch")
    k = task.accumulation_steps
    for rank in ranks:
        entries = rank["entries"]
        n_batches = len(entries) // task.epochs
        codes += _scale_codes(entries[:n_batches], n_batches, k, "ddp")
        first_epoch = [s for s in rank["steps"] if s <= n_batches]
        expected_steps = [g + epoch * n_batches for epoch in range(task.epochs) for g in _groups(n_batches, k)]
        if rank["steps"] != expected_steps:
            codes += _step_codes(first_epoch, n_batches, k, "ddp") or ["ddp-step-positions"]
        if k > 1 and rank["syncs"] and len(rank["syncs"]) >= len(entries) and "ddp-not-wrapped" not in codes:
            codes.append("ddp-no-no-sync")
    return list(dict.fromkeys(codes))


def _ddp_report_codes(ranks: list[dict[str, Any]], results: list[Any], task: _DDPTask) -> list[str]:
    codes = []
    per_epoch = [len(r["entries"]) // task.epochs for r in ranks]

    def totals(entries: list[dict[str, Any]]) -> tuple[float, float]:
        count = sum(e["size"] for e in entries)
        return sum(e["value"] * e["size"] for e in entries) / count, sum(e["correct"] for e in entries) / count

    for number, rank in enumerate(ranks):
        history = rank["history"]
        well_formed = isinstance(history, list) and len(history) == task.epochs and all(
            isinstance(r, dict) and {"epoch", "loss", "accuracy"} <= set(r) and _is_float(r["loss"]) and _is_float(r["accuracy"])
            for r in history)
        if not well_formed:
            codes.append("ddp-history")
            break
        for epoch, record in enumerate(history):
            chunks = [r["entries"][epoch * n:(epoch + 1) * n] for r, n in zip(ranks, per_epoch)]
            global_loss, global_accuracy = totals([e for chunk in chunks for e in chunk])
            own_loss, own_accuracy = totals(chunks[number])
            found = (record["loss"], record["accuracy"])
            if all(math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-6) for a, b in zip(found, (global_loss, global_accuracy))):
                continue
            if all(math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-6) for a, b in zip(found, (own_loss, own_accuracy))):
                codes.append("ddp-metrics-not-reduced")
            else:
                codes.append("ddp-metrics-wrong")
            break
    saves = [rank["saves"] for rank in ranks]
    checkpoint = str(Path(task.folder) / "checkpoint.pt")
    if any(s for s in saves[1:]):
        codes.append("ddp-every-rank-saves")
    elif len([s for s in saves[0] if s["path"] == checkpoint]) < task.epochs:
        codes.append("ddp-no-checkpoint")
    else:
        last = [s for s in saves[0] if s["path"] == checkpoint][-1]
        if not {"epoch", "model", "optimizer"} <= set(last["keys"]):
            codes.append("ddp-checkpoint-contents")
        elif any(key.startswith("module.") for key in last["model_keys"]):
            codes.append("ddp-checkpoint-wrapper-keys")
    if any(result.output.strip() for result in results[1:]):
        codes.append("ddp-every-rank-logs")
    return list(dict.fromkeys(codes))


def _ddp_expected(task: _DDPTask) -> str:
    per_rank = math.ceil(task.n_samples / task.world_size)
    n_batches = math.ceil(per_rank / task.batch_size)
    groups = _groups(n_batches, task.accumulation_steps)
    return (f"2 ranks, each loading {per_rank} different samples per epoch ({task.epochs} epochs) in a new order "
            f"every epoch; per epoch "
            f"{n_batches} micro-batches, {len(groups)} optimizer steps and {len(groups)} all-reduces per rank "
            f"(accumulation_steps={task.accumulation_steps}); the same reduced history on both ranks; one checkpoint "
            f"write per epoch, by rank 0")


def _ddp_found(ranks: list[dict[str, Any]], results: list[Any]) -> str:
    parts = []
    for rank, result in zip(ranks, results):
        parts.append(f"rank {result.rank}: loaded {len(rank['loaded'])} samples in all epochs "
                     f"({len(set(rank['loaded']))} distinct), {len(rank['entries'])} micro-batches, "
                     f"{len(rank['steps'])} optimizer steps, {len(rank['syncs'])} all-reduces, "
                     f"{len(rank['saves'])} checkpoint writes, printed {len(result.output.splitlines())} lines, "
                     f"DDP wrappers: {rank['model']['wrapped']}")
    return "; ".join(parts)


# --- PROBES: values for the grader's re-check (course_utils.verdict_probes, `course grade`) -------
#
# After each test cell, `course grade` asks the kernel to run the learner's function on a scenario
# built from a seed drawn at grading time and to send back values only; the grader rebuilds the same
# scenario from the seed (the builders below) and recomputes the answer with PyTorch
# (course_tools.grade.judges.lesson08). The objects given to the learner here are plain PyTorch ones.

VERDICT_LR, VERDICT_MOMENTUM, VERDICT_SCALE = 0.1, 0.9, 2.0 ** 10


@dataclass(frozen=True)
class VerdictCase:
    """One seeded scenario of the re-check: a task, and the settings the learner's function receives.

    The number of micro-batches always leaves a shorter last accumulation group, and the last batch
    is shorter than the others.
    """

    task: _Task
    accumulation_steps: int
    epochs: int
    max_norm: float
    gamma: float  # ExponentialLR's factor
    inf_batch: int  # exercise 3: the batch whose gradients are made infinite


def _picker(seed: int) -> Callable[[tuple | range], Any]:
    """Draws one of the options given, from a generator seeded by ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    return lambda options: options[int(torch.randint(0, len(options), (1,), generator=generator))]


def verdict_case(seed: int) -> VerdictCase:
    """The scenario of ``seed`` (the same on the kernel's side and the grader's)."""
    pick = _picker(seed)
    k, batch = pick((2, 3, 4)), pick((16, 20, 25, 32))
    n_batches = k * pick((1, 2, 3)) + pick(range(1, k))
    n_samples = (n_batches - 1) * batch + pick(range(1, batch))
    task = _Task(seed=seed % 2**31, n_samples=n_samples, batch_size=batch, hidden=12,
                 learning_rate=VERDICT_LR, momentum=VERDICT_MOMENTUM)
    return VerdictCase(task, k, epochs=2, max_norm=pick((0.15, 0.2, 0.25, 0.3)), gamma=pick((0.7, 0.8, 0.9)),
                       inf_batch=pick(range(n_batches)))


def verdict_ddp_task(seed: int) -> _DDPTask:
    """Exercise 4's scenario of ``seed``: two ranks, an odd or even number of samples, a shorter last group."""
    pick = _picker(seed)
    k, batch = pick((2, 3)), pick((16, 20, 25))
    n_batches = k * pick((1, 2, 3)) + pick(range(1, k))  # per rank, leaving a shorter last group
    per_rank = (n_batches - 1) * batch + pick(range(1, batch + 1))
    return _DDPTask(seed=seed % 2**31, n_samples=2 * per_rank - pick((0, 1)), batch_size=batch, accumulation_steps=k,
                    epochs=2, hidden=12, sampler_seed=pick(range(100)))


class VerdictAmpModel(nn.Module):
    """Wraps a network: records the dtype of every output; batch ``inf_batch``'s gradients become infinite."""

    def __init__(self, net: nn.Module, inf_batch: int) -> None:
        super().__init__()
        self.net, self.inf_batch = net, inf_batch
        self.output_dtypes: list[str] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        output = self.net(x)
        self.output_dtypes.append(str(output.dtype))
        return _InfGradient.apply(output) if len(self.output_dtypes) - 1 == self.inf_batch else output


class FloatCrossEntropy(nn.Module):
    """Cross-entropy computed in float32, so a loss taken inside or outside autocast is the same number."""

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return F.cross_entropy(logits.float(), targets)


def verdict_optimizer(model: nn.Module) -> torch.optim.SGD:
    """The optimizer every re-check scenario hands to the learner."""
    return torch.optim.SGD(model.parameters(), lr=VERDICT_LR, momentum=VERDICT_MOMENTUM)


def verdict_scaler() -> torch.amp.GradScaler:
    """An enabled CPU gradient scaler that does not grow its scale during one epoch."""
    return torch.amp.GradScaler("cpu", init_scale=VERDICT_SCALE, growth_interval=10_000)


def _as_float(value: Any) -> float | None:
    return float(value) if _is_float(value) else None


def _values_of(parameters: Iterator[torch.Tensor]) -> list[torch.Tensor]:
    return [p.detach().clone() for p in parameters]


def _probe_accumulation(ns: dict[str, Any], seed: int) -> dict[str, Any]:
    case = verdict_case(seed)
    model = case.task.network()
    loss = ns["train_one_epoch_accumulated"](model, case.task.loader(), nn.CrossEntropyLoss(), verdict_optimizer(model),
                                             torch.device("cpu"), case.accumulation_steps)
    return {"loss": _as_float(loss), "parameters": _values_of(model.parameters())}


def _probe_fit_scheduled(ns: dict[str, Any], seed: int) -> dict[str, Any]:
    case = verdict_case(seed)
    runs = {}
    for interval in ("batch", "epoch"):
        model = case.task.network()
        optimizer = verdict_optimizer(model)
        scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, case.gamma)
        rates: list[float] = []
        optimizer.register_step_pre_hook(lambda opt, args, kwargs: rates.append(float(opt.param_groups[0]["lr"])))
        history = ns["fit_scheduled"](model, case.task.loader(), nn.CrossEntropyLoss(), optimizer, scheduler,
                                      torch.device("cpu"), case.epochs, case.max_norm, interval)
        runs[interval] = {"history": [_as_float(v) for v in history] if isinstance(history, list) else None,
                          "rates": rates, "final_rate": float(optimizer.param_groups[0]["lr"]),
                          "parameters": _values_of(model.parameters())}
    return runs


def _probe_amp(ns: dict[str, Any], seed: int) -> dict[str, Any]:
    case = verdict_case(seed)
    model = VerdictAmpModel(case.task.network(), case.inf_batch)
    scaler = verdict_scaler()
    loss = ns["train_one_epoch_amp"](model, case.task.loader(), FloatCrossEntropy(), verdict_optimizer(model), scaler,
                                     torch.device("cpu"), case.max_norm, torch.bfloat16)
    return {"loss": _as_float(loss), "parameters": _values_of(model.parameters()), "scale": float(scaler.get_scale()),
            "output_dtypes": list(model.output_dtypes)}


def _verdict_ddp_rank(rank: int, world_size: int, train_ddp: Callable[..., Any], task: _DDPTask) -> dict[str, Any]:
    features, targets = task.data()
    dataset = IndexedDataset(features, targets)
    network = task.network()
    history = train_ddp(rank, world_size, network, dataset, nn.CrossEntropyLoss(), torch.device("cpu"), task.config())
    rows = [[_as_float(r.get("loss")), _as_float(r.get("accuracy"))] if isinstance(r, dict) else None
            for r in history] if isinstance(history, list) else None
    return {"history": rows, "loaded": list(dataset.loaded), "parameters": _values_of(network.parameters())}


def _probe_ddp(ns: dict[str, Any], seed: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        task = replace(verdict_ddp_task(seed), folder=folder)
        results = run_distributed(_verdict_ddp_rank, task.world_size, (ns["train_ddp"], task), backend="gloo",
                                  timeout=45.0, collective_timeout=15.0)
    first, second = (r.value for r in results)
    return {"parameters": first["parameters"], "histories": [first["history"], second["history"]],
            "loaded": [first["loaded"], second["loaded"]]}


PROBES = {"ex1-tests": _probe_accumulation, "ex2-tests": _probe_fit_scheduled, "ex3-tests": _probe_amp,
          "ex4-tests": _probe_ddp}
