"""Lesson 07's instruments: a model, loss, optimiser and loader that record what a learner's loop does.

The learner's ``train_one_epoch`` and ``evaluate`` are called with these probes, which record the
modes, gradient tracking, device moves, the order of ``backward`` and ``step`` and the gradients
each step applies (a :class:`Recorder`, active inside :func:`recording`). They hold no correct loop.

Moves to the device are detected even on a CPU-only machine: the loader yields tensors of a
marker subclass (:class:`Unmoved`) that turns into a plain tensor only through ``.to(device)`` or
``.cuda()``. Importing this module has no side effects.
"""

from __future__ import annotations

import contextlib
import weakref
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader

TOLERANCE = dict(rtol=1e-5, atol=1e-6)


# --- marker tensors -------------------------------------------------------------------------

def plain(value: Any) -> Any:
    """``value`` as a plain tensor when it is a tensor of a marker subclass; anything else as it is."""
    if isinstance(value, torch.Tensor) and type(value) is not torch.Tensor:
        with torch._C.DisableTorchFunctionSubclass():
            return value.as_subclass(torch.Tensor)
    return value


def _names_a_device(args: tuple, kwargs: dict) -> bool:
    if "device" in kwargs:
        return True
    return any(isinstance(a, (torch.device, str, torch.Tensor)) for a in args[1:])


_BATCH_TAG = "_course_batch"  # the number of the batch a tensor came from, kept through .to(device)


def target_device(func: Callable[..., Any], args: tuple, kwargs: dict) -> torch.device | None:
    """The device a ``.to(...)`` or ``.cuda()`` call sends a tensor to; None when it names none."""
    if func is torch.Tensor.cuda:
        return torch.device("cuda")
    if func is not torch.Tensor.to or not _names_a_device(args, kwargs):
        return None
    if args[1:] and isinstance(args[1], torch.Tensor):
        return args[1].device
    try:
        return torch._C._nn._parse_to(*args[1:], **kwargs)[0]
    except (TypeError, RuntimeError):
        return None


def _named_in_code(device: torch.device | None) -> bool:
    """The checks always pass the CPU as ``device``: any other target was written into the learner's code."""
    return device is not None and device.type != "cpu"


class Unmoved(torch.Tensor):
    """A batch tensor as the probe loader yields it; ``.to(device)`` or ``.cuda()`` makes it plain.

    A move to another device than the ``device`` argument (the CPU, in the checks) is recorded and
    not made, so ``.cuda()`` is diagnosed the same on machines with and without a GPU.
    """

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN206
        kwargs = kwargs or {}
        target = target_device(func, args, kwargs)
        if _named_in_code(target):
            if (recorder := _ACTIVE.get()) is not None:
                recorder.counts["hard-coded-device"] += 1
            result = args[0]
        else:
            result = super().__torch_function__(func, types, args, kwargs)
        if target is None:
            return result
        made_plain = plain(result)
        if (batch := getattr(args[0], _BATCH_TAG, None)) is not None:
            setattr(made_plain, _BATCH_TAG, batch)
        return made_plain


@dataclass(frozen=True)
class _Forward:
    moved: bool
    training: bool
    grad_enabled: bool
    size: int
    batch: int


@dataclass(frozen=True)
class _LossCall:
    targets_moved: bool
    kind: str  # "raw", "probabilities" or "other"
    size: int
    mean: float  # the loss per sample, whatever the criterion's reduction


class Recorder:
    """Everything the probes saw during one call of the learner's function.

    Batches are numbered 1, 2, ... in the order the probe loader hands them out, over every pass
    over the loader, so a step or a kept tensor can be placed in its batch.
    """

    def __init__(self) -> None:
        self.batch = 0
        self.batch_sizes: dict[int, int] = {}
        self.forwards: list[_Forward] = []
        self.loss_calls: list[_LossCall] = []
        self.output_rows: set[bytes] = set()
        self.backwards = 0
        self.backwards_since_step = 0
        self.batches_with_backward: set[int] = set()
        self.fresh_grads: dict[int, torch.Tensor] = {}  # each parameter's gradient from the latest backward
        self.step_grads: dict[int, torch.Tensor | None] = {}  # each parameter's .grad at the latest step
        self.first_gradient: list[torch.Tensor] = []  # every parameter's .grad when the first step ran
        self.step_norms: list[float] = []  # the sum of squares of all parameters after every step
        self.step_batches: list[int] = []
        self.counts: Counter[str] = Counter()  # steps that showed a problem, by bug code
        self.tracked: list[tuple[int, weakref.ref]] = []
        self.model_moves: list[int] = []  # the batch during which each model.to(device) ran (0: before the first)

    @property
    def steps(self) -> int:
        return len(self.step_batches)

    def track(self, tensor: torch.Tensor) -> None:
        self.tracked.append((self.batch, weakref.ref(tensor)))

    def graph_kept_alive(self) -> bool:
        """True if a gradient-tracking tensor made in an earlier batch is still alive."""
        return any(batch < self.batch and (ref := alive()) is not None and ref.requires_grad
                   for batch, alive in self.tracked)

    def remember_output(self, output: torch.Tensor) -> None:
        rows = output.detach().to("cpu", torch.float64).reshape(len(output), -1) if output.ndim else None
        if rows is not None:
            self.output_rows.update(row.tobytes() for row in rows.numpy())


_ACTIVE: ContextVar[Recorder | None] = ContextVar("lesson07_recorder", default=None)


class TrackedLoss(torch.Tensor):
    """The probe criterion's output: remembers every gradient-tracking tensor derived from it."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN206
        result = super().__torch_function__(func, types, args, kwargs or {})
        recorder = _ACTIVE.get()
        if recorder is not None and isinstance(result, torch.Tensor) and result.requires_grad:
            recorder.track(result)
        return result


# --- instrumented model, criterion, optimizer and loader ----------------------------------

class ProbeModel(nn.Module):
    """Wraps a network; records the mode, gradient tracking and device of every forward call."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        recorder = _ACTIVE.get()
        output = self.net(plain(x))
        if recorder is not None:
            # a loop may take every batch from the loader first: the batch is the one x came from
            recorder.batch = getattr(x, _BATCH_TAG, recorder.batch)
            recorder.forwards.append(_Forward(not isinstance(x, Unmoved), self.training, torch.is_grad_enabled(),
                                              len(x), recorder.batch))
            recorder.remember_output(output)
        return output

    def to(self, *args: Any, **kwargs: Any) -> ProbeModel:  # noqa: D102 - nn.Module.to, recorded
        device = torch._C._nn._parse_to(*args, **kwargs)[0]
        return self._moved(device) if device is not None else super().to(*args, **kwargs)

    def cuda(self, device: Any = None) -> ProbeModel:  # noqa: D102 - nn.Module.cuda, recorded
        return self._moved(torch.device("cuda"))

    def _moved(self, device: torch.device) -> ProbeModel:
        """Record a move; make it only to the CPU, the ``device`` the checks pass (see :class:`Unmoved`)."""
        recorder = _ACTIVE.get()
        if recorder is not None:
            recorder.model_moves.append(recorder.batch)
            recorder.counts["hard-coded-device"] += _named_in_code(device)
        return self if _named_in_code(device) else super().to(device)


def _logits_kind(received: torch.Tensor, recorder: Recorder) -> str:
    """'raw' if every row the loss received is a row the model produced (concatenated batches included)."""
    received = plain(received).detach().to("cpu", torch.float64)
    if received.ndim == 2 and len(received) and all(
            row.tobytes() in recorder.output_rows for row in received.contiguous().numpy()):
        return "raw"
    rows = received.reshape(len(received), -1) if received.ndim else received.reshape(1, 1)
    if rows.numel() and rows.min() >= 0 and rows.max() <= 1 and torch.allclose(
            rows.sum(dim=1), torch.ones(len(rows), dtype=rows.dtype), atol=1e-4):
        return "probabilities"
    return "other"


class ProbeCriterion(nn.CrossEntropyLoss):
    """Cross-entropy that records what it received and tracks the loss tensors it hands out."""

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        recorder = _ACTIVE.get()
        loss = F.cross_entropy(plain(logits), plain(targets), reduction=self.reduction)
        if recorder is None:
            return loss
        size = len(targets) if targets.ndim else 1
        mean = loss.detach().sum().item() / size if self.reduction != "mean" else loss.item()
        recorder.loss_calls.append(_LossCall(not isinstance(targets, Unmoved), _logits_kind(logits, recorder),
                                             size, mean))
        if loss.requires_grad:
            loss = loss.as_subclass(TrackedLoss)
            recorder.track(loss)
        return loss


def _zeroed(gradient: torch.Tensor | None) -> bool:
    return gradient is None or not bool(gradient.abs().sum())


class ProbeSGD(torch.optim.SGD):
    """SGD that checks, at every step, that a fresh backward happened and no stale gradient remains."""

    def step(self, closure: Callable[[], float] | None = None) -> Any:  # noqa: D102
        recorder = _ACTIVE.get()
        if recorder is not None:
            self._inspect(recorder)
        result = super().step(closure)
        if recorder is not None:
            parameters = [p for group in self.param_groups for p in group["params"]]
            recorder.step_norms.append(sum(float(p.detach().double().square().sum()) for p in parameters))
        return result

    def _inspect(self, recorder: Recorder) -> None:
        recorder.step_batches.append(recorder.batch)
        if not recorder.first_gradient:
            recorder.first_gradient = [torch.zeros_like(p) if p.grad is None else p.grad.detach().clone()
                                       for group in self.param_groups for p in group["params"]]
        if recorder.graph_kept_alive():
            recorder.counts["graph-kept"] += 1
        if recorder.batch not in recorder.batches_with_backward:
            recorder.counts["step-before-backward"] += 1
        if recorder.backwards_since_step == 0:
            return  # no gradient of its own to compare with: a second step, or a step before backward
        recorder.backwards_since_step = 0
        cleared = accumulated = modified = False
        for group in self.param_groups:
            for parameter in group["params"]:
                fresh, grad = recorder.fresh_grads.get(id(parameter)), parameter.grad
                if fresh is None:
                    continue
                previous = recorder.step_grads.get(id(parameter))
                if _zeroed(grad) and not _zeroed(fresh):
                    cleared = True
                elif grad is not None and not torch.allclose(grad, fresh, **TOLERANCE):
                    # the last step's gradient still in .grad is accumulation; anything else was changed by hand
                    if previous is not None and torch.allclose(grad, fresh + previous, **TOLERANCE):
                        accumulated = True
                    else:
                        modified = True
                recorder.step_grads[id(parameter)] = None if grad is None else grad.detach().clone()
        recorder.counts["cleared-before-step"] += cleared
        recorder.counts["accumulated-gradients"] += accumulated and not cleared
        recorder.counts["grad-modified"] += modified and not (cleared or accumulated)


class ProbeLoader:
    """Iterates a real DataLoader, handing out batches that remember whether they were moved."""

    def __init__(self, loader: DataLoader) -> None:
        self.loader = loader
        self.batches_served = 0

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for features, targets in self.loader:
            self.batches_served += 1
            number = self.batches_served
            recorder = _ACTIVE.get()
            if recorder is not None:
                recorder.batch = number
                recorder.batch_sizes[number] = len(targets)
            features, targets = features.as_subclass(Unmoved), targets.as_subclass(Unmoved)
            setattr(features, _BATCH_TAG, number)
            setattr(targets, _BATCH_TAG, number)
            yield features, targets

    def __len__(self) -> int:
        return len(self.loader)

    def __getattr__(self, name: str) -> Any:  # dataset, batch_size, ... as on a DataLoader
        return getattr(self.loader, name)


@contextlib.contextmanager
def recording(model: ProbeModel) -> Iterator[Recorder]:
    """A :class:`Recorder` that the probes and ``model``'s gradient hooks fill while the block runs."""
    recorder = Recorder()
    parameters = list(model.parameters())

    def on_gradient(parameter: torch.Tensor, gradient: torch.Tensor) -> None:
        if parameter is parameters[0]:
            recorder.backwards += 1
            recorder.backwards_since_step += 1
            recorder.batches_with_backward.add(recorder.batch)
        recorder.fresh_grads[id(parameter)] = gradient.detach().clone()

    handles = [p.register_hook(lambda g, p=p: on_gradient(p, g)) for p in parameters]
    token = _ACTIVE.set(recorder)
    try:
        yield recorder
    finally:
        _ACTIVE.reset(token)
        for handle in handles:
            handle.remove()


def largest_difference(found: Iterable[torch.Tensor], wanted: Iterable[torch.Tensor]) -> float:
    """The largest absolute difference between corresponding parameters."""
    with torch.no_grad():
        return max(float((a - b).abs().max()) for a, b in zip(found, wanted))


def same_parameters(found: Iterable[torch.Tensor], wanted: Iterable[torch.Tensor]) -> bool:
    """Whether corresponding parameters are equal within :data:`TOLERANCE`."""
    with torch.no_grad():
        return all(torch.allclose(a, b, **TOLERANCE) for a, b in zip(found, wanted))
