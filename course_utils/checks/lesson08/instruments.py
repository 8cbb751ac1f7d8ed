"""Instruments of lesson 08's single-process checks: a probe model, loss, optimizer, scheduler and scaler.

They record what the learner's function did (each forward's mode and autocast state, each loss and
the factor its gradient was scaled by, each backward's own gradients, when the optimizer, the
scheduler and the scaler were stepped) and change nothing of what it computes, except that one
chosen batch can be given infinite gradients (a float16 overflow on demand). They observe; they hold
no answer.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from course_utils.data import RAW_MAX, make_course_data
from course_utils.recipe import DEFAULT_RECIPE, default_model

_GRAD = dict(rtol=1e-4, atol=1e-7)  # gradients: the same float32 sums in another order
_VALUE = dict(rel_tol=1e-5, abs_tol=1e-6)
# DDP averages two half-batch gradients where the reference takes one full-batch mean: float32 rounding
# differs. Measured: largest parameter difference about 2e-7 after 2-3 epochs (tests/test_lesson08.py, the notebook).
_DDP_TOLERANCE = dict(rtol=1e-4, atol=2e-5)


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
        self.scaler_step_batches: list[int] = []  # the batch (1, 2, ...) of every scaler.step that returned
        self.update_batches: list[int] = []  # the batch of every scaler.update()
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
            entry = {"value": loss.item(), "size": len(targets), "scale": None, "moved": not isinstance(targets, Unmoved),
                     "autocast": torch.is_autocast_enabled("cpu")}
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
            result = super().step(optimizer, *args, **kwargs)
        finally:
            if recorder is not None:
                recorder.in_scaler_step = False
        if recorder is not None:
            recorder.scaler_step_batches.append(len(recorder.forwards))
        return result

    def update(self, new_scale: Any = None) -> None:  # noqa: D102
        recorder = _ACTIVE.get()
        if recorder is not None:
            recorder.scaler_updates += 1
            recorder.update_batches.append(len(recorder.forwards))
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

