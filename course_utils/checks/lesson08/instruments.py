"""Instruments of lesson 08's checks: probe models, losses, optimizer, scheduler, scaler, and the two-rank hooks.

They record what the learner's function did (each forward's mode and autocast state, each loss and
the factor its gradient was scaled by, each backward's own gradients, when the optimizer, the
scheduler and the scaler were stepped; inside each rank of the distributed check, the samples
loaded, DDP's all-reduces, the optimizer's steps and the checkpoint writes) and change nothing of
what it computes, except that one chosen batch can be given infinite gradients (a float16 overflow
on demand). They observe; they hold no answer.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.optim.optimizer import register_optimizer_step_pre_hook
from torch.utils.data import DataLoader, Dataset

GRAD = dict(rtol=1e-4, atol=1e-7)  # gradients: the same float32 sums in another order
VALUE = dict(rel_tol=1e-5, abs_tol=1e-6)
# DDP averages two half-batch gradients where the reference takes one full-batch mean: float32 rounding
# differs. Measured: largest parameter difference about 2e-7 after 2-3 epochs (tests/test_lesson08_checks.py).
DDP_TOLERANCE = dict(rtol=1e-4, atol=2e-5)


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


class Recorder:
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


_ACTIVE: ContextVar[Recorder | None] = ContextVar("lesson08_recorder", default=None)


class InfGradient(torch.autograd.Function):
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
                output = InfGradient.apply(output)
        return output


class ProbeCriterion(nn.Module):
    """Cross-entropy that records each loss, its batch size, and the factor its gradient was scaled by."""

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:  # noqa: D102
        recorder = _ACTIVE.get()
        loss = F.cross_entropy(_plain(logits).float(), _plain(targets))
        if recorder is not None:
            record_loss(loss, len(targets), recorder.losses, moved=not isinstance(targets, Unmoved),
                        autocast=torch.is_autocast_enabled("cpu"))
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
def recording(model: ProbeModel) -> Iterator[Recorder]:
    """Record, while inside, what is done with ``model`` and the probes (see :class:`Recorder`)."""
    parameters = list(model.parameters())
    recorder = Recorder(parameters)
    handles = [p.register_hook(lambda g, i=i: recorder.on_grad(i, g)) for i, p in enumerate(parameters)]
    token = _ACTIVE.set(recorder)
    try:
        yield recorder
    finally:
        _ACTIVE.reset(token)
        for handle in handles:
            handle.remove()


def record_loss(loss: torch.Tensor, size: int, entries: list[dict[str, Any]], **details: Any) -> dict[str, Any]:
    """Append ``loss``'s entry to ``entries``: its value, batch size, ``details``, and (once backward has run
    through it) ``scale``, the factor its gradient was scaled by (``loss / k`` gives ``1 / k``)."""
    entry = {"value": loss.item(), "size": size, "scale": None, **details}
    entries.append(entry)
    if loss.requires_grad:
        loss.register_hook(lambda gradient: entry.__setitem__("scale", float(gradient)))
    return entry


def all_close(first: list[torch.Tensor | None], second: list[torch.Tensor], **tolerance: float) -> bool:
    """Every tensor of ``first`` is there and close to its partner in ``second``."""
    return all(a is not None and a.shape == b.shape and torch.allclose(a.float(), b.float(), **tolerance)
               for a, b in zip(first, second))


def no_gradients(gradients: list[torch.Tensor | None]) -> bool:
    """Every gradient is None or zero."""
    return all(g is None or not bool(g.any()) for g in gradients)


def norm(tensors: list[torch.Tensor | None]) -> float:
    """The total 2-norm of the tensors (those that are None left out)."""
    return math.sqrt(sum(float((t.float() ** 2).sum()) for t in tensors if t is not None))


def groups(n_batches: int, k: int) -> list[int]:
    """Where the optimizer steps: after micro-batches k, 2k, ... and after the last one."""
    return [min(k * (j + 1), n_batches) for j in range(math.ceil(n_batches / k))]


def mean_per_sample(losses: list[dict[str, Any]], *, scaled: bool = False) -> float:
    """The mean loss per sample of the recorded losses (each times the factor it was scaled by, if ``scaled``)."""
    total = sum(entry["value"] * entry["size"] * ((entry["scale"] or 0.0) if scaled else 1.0) for entry in losses)
    return total / max(1, sum(entry["size"] for entry in losses))


# --- inside each rank of the distributed check ---------------------------------------------------------

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
        record_loss(loss, len(targets), self.entries, correct=int((logits.detach().argmax(dim=1) == targets).sum()))
        return loss


@contextlib.contextmanager
def instrumented(model: DDPProbeModel, log: dict[str, Any]) -> Iterator[None]:
    """Inside one rank: count DDP's all-reduces, optimizer steps and checkpoint writes into ``log``.

    ``log["criterion"]`` must be the rank's :class:`DDPCriterion`: each event is counted by the
    number of micro-batches seen before it.
    """
    from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
    from torch.nn.parallel import DistributedDataParallel

    original_init, original_save = DistributedDataParallel.__init__, torch.save
    log.update(syncs=[], steps=[], saves=[], optimizers=[], wrapped_probe=0)

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
        group = optimizer.param_groups[0]
        log["optimizers"].append((type(optimizer).__name__, group.get("lr"), group.get("momentum")))

    handle = register_optimizer_step_pre_hook(on_step)
    DistributedDataParallel.__init__, torch.save = init, save
    try:
        yield
    finally:
        DistributedDataParallel.__init__, torch.save = original_init, original_save
        handle.remove()
