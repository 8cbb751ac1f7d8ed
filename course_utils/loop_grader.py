"""Behavioural grader for lesson 07: run a learner's training loop on instrumented objects.

The learner's ``train_one_epoch``, ``evaluate`` and ``fit`` are called with a probe model, loader,
loss and optimiser that record what happens (modes, gradient tracking, device moves, the order of
``backward`` and ``step``, the gradients each step applies). The results are compared with
results stored as data for the checks' fixed scenarios (``course_utils/checks/expected``, computed
on the grader's side), so this module holds no correct loop. Every bug found raises
:class:`CheckFailed` with a message that names the bug, says what happened (with counts) and gives
the fix. Nothing here depends on printed output. ``fit`` is judged by :mod:`course_utils.fit_grader`.

Moves to the device are detected even on a CPU-only machine: the loader yields tensors of a
marker subclass that turns into a plain tensor only through ``.to(device)`` or ``.cuda()``.
"""

from __future__ import annotations

import contextlib
import math
import sysconfig
import traceback
import weakref
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NoReturn

import torch
import tqdm
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from course_utils.checks import expected as stored
from course_utils.checks.core import CheckFailed
from course_utils.data import RAW_MAX, make_course_data
from course_utils.diagnoses import Diagnosis, ForbiddenCall, by_code
from course_utils.recipe import DEFAULT_RECIPE, TrainingRecipe, default_loaders, default_model, default_optimizer

# Thresholds of the convergence check, from measurement: with the default recipe the worst of
# 50 seeds ends epoch 5 at loss 0.44 and accuracy 0.84 (tests/test_reference_trace.py).
CONVERGED_LOSS = 0.6
CONVERGED_ACCURACY = 0.8
_TOLERANCE = dict(rtol=1e-5, atol=1e-6)


LESSON = "07_epoch_loop_gpu"
_EXERCISES = {"train_one_epoch": ("ex1-tests", "Exercise 1 · train_one_epoch"),
              "evaluate": ("ex2-tests", "Exercise 2 · evaluate"), "fit": ("ex3-tests", "Exercise 3 · fit")}
_FAMILIES = {
    "train-mode": "modes", "train-no-grad": "modes", "eval-mode": "modes", "eval-grad": "modes",
    "inputs-not-moved": "device", "targets-not-moved": "device",
    "softmax-before-loss": "loss", "not-raw-logits": "loss", "criterion-ignored": "loss",
    "no-backward": "gradients", "step-before-backward": "gradients", "accumulated-gradients": "gradients",
    "cleared-before-step": "gradients", "graph-kept": "gradients",
    "optimizer-ignored": "optimizer", "steps-per-batch": "optimizer", "trajectory": "optimizer",
    "skipped-batches": "data", "eval-changed-parameters": "optimizer",
    "not-a-float": "interface", "eval-return": "interface", "fit-history": "interface",
    "mean-of-batch-means": "metrics", "wrong-mean": "metrics", "eval-loss": "metrics", "eval-accuracy": "metrics",
    "fit-values": "metrics", "no-convergence": "metrics",
    "fit-calls-per-epoch": "interface", "fit-order": "interface", "fit-val-loader": "data",
    "fit-arguments": "interface", "fit-model-not-moved": "device", "fit-no-progress-bar": "interface",
    "fit-earlier-train": "earlier-exercise", "fit-earlier-evaluate": "earlier-exercise",
    "model-moved-every-batch": "device", "eval-model-moved-every-batch": "device",
    "fit-model-moved-every-epoch": "device",
    "eval-swapped": "interface", "train-crashed": "interface", "eval-crashed": "interface", "fit-crashed": "interface",
    "returned-in-loop": "data", "eval-returned-in-loop": "data", "step-after-loop": "optimizer",
    "loss-divided-twice": "metrics", "eval-loss-divided-twice": "metrics",
    "train-library-loss": "not-allowed", "eval-library-loss": "not-allowed", "eval-library-metric": "not-allowed",
    "train-own-optimizer": "not-allowed", "fit-own-optimizer": "not-allowed",
    "hard-coded-device": "device", "eval-hard-coded-device": "device", "grad-modified": "gradients",
    "scaled-loss": "gradients", "optimizer-changed": "optimizer",
}
_FUNCTION_OF = {"eval": "evaluate", "fit": "fit", "no-convergence": "fit"}


def Bug(code: str, what: str, hint: str) -> Diagnosis:  # noqa: N802 - reads as the catalogue's row type
    """One row of lesson 07's catalogue, placed in the exercise its code belongs to."""
    function = next((name for prefix, name in _FUNCTION_OF.items() if code.startswith(prefix)), "train_one_epoch")
    exercise, section = _EXERCISES[function]
    return Diagnosis(code, what, hint, _FAMILIES[code], lesson=LESSON, exercise=exercise, section=section)


CATALOGUE = (
    Bug("train-mode", "the model was not in train mode during training",
        "call model.train() at the start of train_one_epoch (evaluate() switches it to eval mode)."),
    Bug("train-no-grad", "the training forward pass ran without gradient tracking",
        "do not wrap training in torch.no_grad() or torch.inference_mode(); only evaluation is."),
    Bug("inputs-not-moved", "the inputs were not moved to the device",
        "move every batch: xb = xb.to(device) before model(xb)."),
    Bug("targets-not-moved", "the targets were not moved to the device",
        "move the targets too: yb = yb.to(device) before criterion(logits, yb)."),
    Bug("softmax-before-loss", "the loss received probabilities (softmax output), not raw logits",
        "CrossEntropyLoss applies log-softmax itself: pass model(xb) straight to the criterion."),
    Bug("not-raw-logits", "the loss did not receive the model's raw output",
        "pass the model's output to the criterion unchanged: criterion(model(xb), yb)."),
    Bug("criterion-ignored", "the criterion passed in was never called",
        "compute the loss with the `criterion` argument, criterion(logits, yb); do not build a loss of your own."),
    Bug("no-backward", "loss.backward() was never called",
        "call loss.backward() after computing the loss and before optimizer.step()."),
    Bug("step-before-backward", "optimizer.step() ran before loss.backward() in a batch",
        "the order in every batch is: zero_grad, forward, loss, backward, step."),
    Bug("accumulated-gradients", "gradients accumulated across batches (they were never zeroed)",
        "call optimizer.zero_grad() once per batch, before loss.backward() (or right after optimizer.step())."),
    Bug("cleared-before-step", "gradients were cleared between loss.backward() and optimizer.step()",
        "zero the gradients before backward() or after step(), never between them: step() needs them."),
    Bug("optimizer-ignored", "the optimizer passed to train_one_epoch never stepped",
        "call step() on the `optimizer` argument; do not create a new optimizer inside the function."),
    Bug("steps-per-batch", "optimizer.step() did not run exactly once per batch",
        "call optimizer.step() once in every batch, after loss.backward()."),
    Bug("skipped-batches", "not every batch of the loader went through the model",
        "loop over the whole loader (for xb, yb in loader), including the last, smaller batch."),
    Bug("graph-kept", "a tensor that still tracks gradients was kept from one batch to the next",
        "accumulate loss.item() (a float) or loss.detach(), never the loss tensor itself: it keeps every "
        "batch's autograd graph alive and memory grows with every batch."),
    Bug("not-a-float", "the returned loss is not a Python float",
        "return a float: accumulate loss.item() * len(yb) and divide by the number of samples."),
    Bug("mean-of-batch-means", "the returned loss is the mean of the batch losses, not the mean per sample",
        "weight each batch's loss by its size (loss.item() * len(yb)); the last batch is smaller."),
    Bug("wrong-mean", "the returned loss is not the mean loss per sample over the epoch",
        "sum loss.item() * len(yb) over the batches and divide by the number of samples."),
    Bug("trajectory", "the parameters after one epoch differ from those of a correct loop on the same batches",
        "one batch = zero_grad, forward, loss, backward, step, with the given model, criterion and optimizer."),
    Bug("eval-mode", "the model was in train mode during evaluation",
        "call model.eval() at the start of evaluate (dropout and batch norm behave differently)."),
    Bug("eval-grad", "evaluation tracked gradients",
        "wrap the evaluation loop in torch.no_grad() or torch.inference_mode()."),
    Bug("eval-changed-parameters", "evaluation changed the model's parameters",
        "evaluate must never call backward() or step(): it only measures."),
    Bug("eval-return", "evaluate must return a tuple (loss, accuracy) of two Python floats",
        "return mean_loss, accuracy, both floats (use .item())."),
    Bug("eval-loss", "the loss returned by evaluate is not the mean loss per sample",
        "sum loss.item() * len(yb) over the batches and divide by the number of samples."),
    Bug("eval-accuracy", "the accuracy returned by evaluate is not correct predictions / samples",
        "count (logits.argmax(dim=1) == yb).sum().item() over all batches and divide by the number of samples."),
    Bug("fit-history", "fit must return one record per epoch with epoch, loss, val_loss and accuracy",
        "append {'epoch': e, 'loss': train_loss, 'val_loss': val_loss, 'accuracy': accuracy} for e = 1..epochs."),
    Bug("fit-values", "the history of fit does not match train_one_epoch and evaluate run epoch by epoch",
        "in every epoch call train_one_epoch, then evaluate on the validation loader, and record both."),
    Bug("fit-calls-per-epoch", "fit did not call train_one_epoch and evaluate exactly once per epoch",
        "in every epoch call train_one_epoch once, then evaluate once: for epoch in trange(1, epochs + 1)."),
    Bug("fit-order", "fit evaluated before training in an epoch",
        "in every epoch train first, then evaluate: the record holds the accuracy after that epoch's training."),
    Bug("fit-val-loader", "fit evaluated on the training loader, not the validation loader",
        "call evaluate(model, val_loader, criterion, device): accuracy on training data flatters the model."),
    Bug("fit-arguments", "fit did not pass its own model, loaders, criterion, optimizer and device on",
        "call train_one_epoch(model, train_loader, criterion, optimizer, device) with fit's own arguments; "
        "a new optimizer inside fit loses the one you were given (and its momentum)."),
    Bug("fit-model-not-moved", "fit did not move the model to the device before training",
        "call model.to(device) once at the start of fit, before the first epoch."),
    Bug("fit-no-progress-bar", "fit showed no progress bar over the epochs",
        "loop with for epoch in trange(1, epochs + 1) (from tqdm.auto import trange): one step per epoch."),
    Bug("fit-earlier-train", "Exercise 1 (train_one_epoch) still fails, and fit's result depends on it",
        "fix train_one_epoch first (its check above names the bug); then run this check again."),
    Bug("fit-earlier-evaluate", "Exercise 2 (evaluate) still fails, and fit's result depends on it",
        "fix evaluate first (its check above names the bug); then run this check again."),
    Bug("no-convergence", "the loop did not learn the course task in five epochs",
        "with a correct loop the default recipe reaches loss < 0.6 and accuracy > 0.8 by epoch 5."),
    Bug("model-moved-every-batch", "the model was moved to the device inside the loop over batches",
        "move the model once, before training (fit does it); inside the loop move only the batch: "
        "xb, yb = xb.to(device), yb.to(device)."),
    Bug("eval-model-moved-every-batch", "the model was moved to the device inside the loop over batches",
        "the model is already on its device when evaluate runs; inside the loop move only the batch: "
        "xb, yb = xb.to(device), yb.to(device)."),
    Bug("fit-model-moved-every-epoch", "fit moved the model to the device again inside the loop over epochs",
        "call model.to(device) once, before the loop over epochs: moving it again every epoch only adds work."),
    Bug("eval-swapped", "the loss and the accuracy came back swapped, as (accuracy, loss)",
        "return the loss first and the accuracy second: return mean_loss, accuracy."),
    Bug("train-crashed", "train_one_epoch raised an error",
        "the found line shows where. To see it on the lesson's own data, run train_one_epoch(model, train_loader, "
        "nn.CrossEntropyLoss(), default_optimizer(model), device) in a new cell: section 1 defines model, "
        "train_loader and device."),
    Bug("eval-crashed", "evaluate raised an error",
        "the found line shows where. To see it on the lesson's own data, run evaluate(model, val_loader, "
        "nn.CrossEntropyLoss(), device) in a new cell: section 1 defines model, val_loader and device."),
    Bug("fit-crashed", "fit raised an error",
        "the found line shows where. To see it on the lesson's own data, run fit(model, train_loader, val_loader, "
        "nn.CrossEntropyLoss(), default_optimizer(model), device, 1) in a new cell: section 1 defines model, "
        "the loaders and device."),
    Bug("returned-in-loop", "the epoch ended after the first batch: a return or break inside the loop",
        "the return (or a break) is inside the for loop: move it after the loop, at the function's own "
        "indentation, so that every batch is visited first."),
    Bug("eval-returned-in-loop", "the evaluation ended after the first batch: a return or break inside the loop",
        "the return (or a break) is inside the for loop: move it after the loop, at the function's own "
        "indentation, so that every batch is scored first."),
    Bug("step-after-loop", "optimizer.step() ran once, after the loop over batches, not once per batch",
        "indent optimizer.step() into the for loop, right after loss.backward(): one step per batch."),
    Bug("loss-divided-twice", "the returned loss adds up batch means and divides them by the number of samples",
        "loss.item() is already the batch's mean: add loss.item() * len(yb) (the batch's sum), then divide by "
        "the number of samples."),
    Bug("eval-loss-divided-twice", "the loss returned by evaluate adds up batch means and divides them by the "
        "number of samples",
        "criterion(logits, yb).item() is already the batch's mean: add it times len(yb), then divide by the "
        "number of samples."),
    Bug("hard-coded-device", "tensors or the model went to a device written in the code, not to `device`",
        "move with .to(device), the function's own argument, never .cuda() or .to('cuda'): the caller decides "
        "where training runs, and a machine without a GPU has no 'cuda'."),
    Bug("eval-hard-coded-device", "tensors or the model went to a device written in the code, not to `device`",
        "move with .to(device), the function's own argument, never .cuda() or .to('cuda'): the caller decides "
        "where evaluation runs, and a machine without a GPU has no 'cuda'."),
    Bug("grad-modified", "the gradients were changed between loss.backward() and optimizer.step()",
        "step with the gradients as backward() left them: the loss is already a batch mean, so do not divide "
        "or clip them here (clipping comes in lesson 08)."),
    Bug("scaled-loss", "backward() ran on a multiple of the criterion's loss, not on the loss itself",
        "call loss.backward() on criterion(logits, yb) as it is: the criterion already averages over the batch, "
        "so multiplying it (by len(yb), for instance) scales every step."),
    Bug("optimizer-changed", "train_one_epoch changed the settings of the optimizer it was given",
        "leave the optimizer's learning rate and momentum as the caller set them: train_one_epoch only steps it."),
    Bug("train-library-loss", "train_one_epoch computes the loss with a loss function of its own, not the criterion "
        "it was given", "call criterion(logits, yb): the caller chooses the loss, and fit passes its own on."),
    Bug("train-own-optimizer", "train_one_epoch builds an optimizer of its own",
        "step the `optimizer` argument: a new optimizer inside the function loses the caller's settings and momentum."),
    Bug("eval-library-loss", "evaluate computes the loss with a loss function of its own, not the criterion it "
        "was given", "call criterion(logits, yb) and weight it by len(yb): the exercise asks you to compute it."),
    Bug("eval-library-metric", "evaluate computes the accuracy with a library metric",
        "count (logits.argmax(dim=1) == yb).sum().item() and divide by the number of samples yourself."),
    Bug("fit-own-optimizer", "fit builds an optimizer of its own",
        "pass fit's `optimizer` argument on to train_one_epoch; a new one loses the caller's settings and momentum."),
)
BUGS = by_code(CATALOGUE)

_LOSSES = ("torch.nn.functional.cross_entropy", "torch.nn.functional.nll_loss", "torch.nn.CrossEntropyLoss",
           "torch.nn.NLLLoss")
# What the grader's source scan forbids: the exercises ask for the loop with the criterion and optimizer
# passed in, and evaluate asks for loss and accuracy computed by hand (scikit-learn ships with the course).
FORBIDDEN_CALLS = (
    ForbiddenCall("ex1-tests", "train_one_epoch", _LOSSES, "train-library-loss"),
    ForbiddenCall("ex1-tests", "train_one_epoch", ("torch.optim",), "train-own-optimizer"),
    ForbiddenCall("ex2-tests", "evaluate", (*_LOSSES, "sklearn.metrics.log_loss"), "eval-library-loss"),
    ForbiddenCall("ex2-tests", "evaluate", ("sklearn.metrics", "torchmetrics"), "eval-library-metric"),
    ForbiddenCall("ex3-tests", "fit", ("torch.optim",), "fit-own-optimizer"),
)


@dataclass(frozen=True)
class Finding:
    """One bug seen in a run: its catalogue code and what happened, in words and counts."""

    code: str
    found: str


def fail(findings: Iterable[Finding], *, function: str, expected: str) -> NoReturn:
    """Raise :class:`CheckFailed` for the first finding, listing the others as ``also:`` lines."""
    unique: dict[str, Finding] = {}
    for finding in findings:
        unique.setdefault(finding.code, finding)
    main, *others = unique.values()
    bug = BUGS[main.code]
    also = "".join(f"\n    also:     {BUGS[o.code].what} ({o.found}) [{o.code}]" for o in others)
    raise CheckFailed(
        f"\n✗ {function}: {bug.what} [{bug.code}]{also}\n"
        f"    expected: {expected}\n"
        f"    found:    {main.found}\n"
        f"    hint:     {bug.hint}"
    )


def times(count: int) -> str:
    """'1 time', '3 times'."""
    return f"{count} time" if count == 1 else f"{count} times"


def of(part: int, whole: int, noun: str) -> str:
    """'2 of 3 batches'."""
    return f"{part} of {whole} {noun}"


# --- marker tensors -------------------------------------------------------------------------

def _plain(value: Any) -> Any:
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
        plain = _plain(result)
        if (batch := getattr(args[0], _BATCH_TAG, None)) is not None:
            setattr(plain, _BATCH_TAG, batch)
        return plain


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


class _Recorder:
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


_ACTIVE: ContextVar[_Recorder | None] = ContextVar("loop_grader_recorder", default=None)


class TrackedLoss(torch.Tensor):
    """The probe criterion's output: remembers every gradient-tracking tensor derived from it."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN206
        result = super().__torch_function__(func, types, args, kwargs or {})
        recorder = _ACTIVE.get()
        if recorder is not None and isinstance(result, torch.Tensor) and result.requires_grad:
            recorder.track(result)
        return result


# --- probes ---------------------------------------------------------------------------------

class ProbeModel(nn.Module):
    """Wraps a network; records the mode, gradient tracking and device of every forward call."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        recorder = _ACTIVE.get()
        output = self.net(_plain(x))
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


def _logits_kind(received: torch.Tensor, recorder: _Recorder) -> str:
    """'raw' if every row the loss received is a row the model produced (concatenated batches included)."""
    received = _plain(received).detach().to("cpu", torch.float64)
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
        loss = F.cross_entropy(_plain(logits), _plain(targets), reduction=self.reduction)
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

    def _inspect(self, recorder: _Recorder) -> None:
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
                elif grad is not None and not torch.allclose(grad, fresh, **_TOLERANCE):
                    # the last step's gradient still in .grad is accumulation; anything else was changed by hand
                    if previous is not None and torch.allclose(grad, fresh + previous, **_TOLERANCE):
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
def _recording(model: ProbeModel) -> Iterator[_Recorder]:
    recorder = _Recorder()
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


# --- scenarios ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Scenario:
    """A seeded model, optimiser settings and data on which a learner's function is run.

    The visible checks run the scenarios below and compare with results stored as data
    (``course_utils/checks/expected/lesson07-*.json``), which the grader's side computes with its
    reference loop (``course expected 07_epoch_loop_gpu``).
    """

    name: str  # the key of its results in the stored file
    seed: int
    n_samples: int
    batch_size: int
    recipe: TrainingRecipe = field(default_factory=lambda: replace(DEFAULT_RECIPE, hidden=16))

    def describe(self) -> str:
        if self.n_samples == 1:
            return "a loader of 1 sample"
        return f"a loader of {self.n_samples} samples in batches of {self.batch_size}"

    def data(self) -> TensorDataset:
        features, targets = make_course_data(self.n_samples, seed=1000 + self.seed)
        return TensorDataset(features / RAW_MAX, targets)

    def loader(self, shuffle: bool) -> DataLoader:
        generator = torch.Generator().manual_seed(self.seed)
        return DataLoader(self.data(), batch_size=self.batch_size, shuffle=shuffle, generator=generator)

    def network(self) -> nn.Module:
        return default_model(replace(self.recipe, seed=self.seed))

    def optimizer(self, parameters: Any) -> torch.optim.SGD:
        return ProbeSGD(parameters, lr=self.recipe.learning_rate, momentum=self.recipe.momentum)


# 250 samples in batches of 100 make batches of 100, 100 and 50: a smaller last batch exposes unweighted
# means. One sample is the smallest loader a loop must handle (the grader draws other sizes).
TRAIN_SCENARIOS = (Scenario("main", seed=0, n_samples=250, batch_size=100),
                   Scenario("one-sample", seed=11, n_samples=1, batch_size=100))
EVALUATE_SCENARIOS = (Scenario("main", seed=0, n_samples=250, batch_size=100),
                      Scenario("one-sample", seed=9, n_samples=1, batch_size=100))
TRAIN_EXPECTED, EVALUATE_EXPECTED = "lesson07-train-one-epoch", "lesson07-evaluate"


def run_learner(function: Callable[..., Any], *args: Any) -> tuple[Any, Exception | None]:
    """Call the learner's function; an exception is a finding to report, not a crash of the grader."""
    try:
        return function(*args), None
    except CheckFailed:
        raise
    except Exception as error:  # noqa: BLE001
        return None, error


_NOT_LEARNER_CODE = tuple({str(Path(module.__file__).parent) for module in (torch, tqdm)}
                          | {str(Path(__file__).parent)}
                          | {sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")})
_CRASH_CODES = {"train_one_epoch": "train-crashed", "evaluate": "eval-crashed", "fit": "fit-crashed"}


def where_it_raised(error: BaseException) -> str:
    """'at line 4 of evaluate: total += batch["x"]': the last place in the learner's own code the error passed."""
    frames = [frame for frame in traceback.extract_tb(error.__traceback__)
              if not frame.filename.startswith(_NOT_LEARNER_CODE)]
    if not frames:
        return "inside a library call"
    frame = frames[-1]
    line = (frame.line or "").strip()
    return f"at line {frame.lineno} of {frame.name}" + (f": {line[:120]}" if line else "")


def crashed(name: str, error: Exception, *,
            on: str = "a model, loader, criterion and device like the lesson's") -> CheckFailed:
    """The message for a learner's function that raised instead of returning: which error, where, how to see it."""
    bug = BUGS[_CRASH_CODES[name]]
    lines = f"{type(error).__name__}: {error}".strip().splitlines() or [type(error).__name__]
    summary = lines[0][:200]
    return CheckFailed(
        f"\n✗ {bug.what}: {summary} [{bug.code}]\n"
        f"    expected: {name} to return a result on {on}\n"
        f"    found:    {type(error).__name__} raised {where_it_raised(error)}\n"
        f"    hint:     {bug.hint}"
    )


def _stored_epoch(scenario: Scenario) -> tuple[list[torch.Tensor], list[float], list[torch.Tensor]]:
    """A correct epoch on ``scenario`` (stored data, see :class:`Scenario`): the parameters it leaves, the sum
    of squares of the parameters after every step, and the gradient its first step applies."""
    data = stored.load(TRAIN_EXPECTED)[scenario.name]
    return ([stored.tensor(values) for values in data["parameters"]], data["step_norms"],
            [stored.tensor(values) for values in data["first_gradient"]])


def _scale_of(found: list[torch.Tensor], wanted: list[torch.Tensor]) -> float | None:
    """c when ``found`` is c times ``wanted`` (the whole gradient, one common factor); None otherwise."""
    if len(found) != len(wanted) or any(f.shape != w.shape for f, w in zip(found, wanted)):
        return None
    f = torch.cat([t.flatten().double() for t in found])
    w = torch.cat([t.flatten().double() for t in wanted])
    if not bool(w.abs().sum()):
        return None
    scale = float(f @ w / (w @ w))
    return scale if torch.allclose(f, scale * w, rtol=1e-4, atol=1e-7) else None


def _settings_findings(optimizer: torch.optim.Optimizer, scenario: Scenario) -> list[Finding]:
    """The optimizer's settings after the epoch against those it was given."""
    given = {"lr": scenario.recipe.learning_rate, "momentum": scenario.recipe.momentum}
    changed = [f"{name} {value:g} -> {group[name]:g}" for group in optimizer.param_groups
               for name, value in given.items() if group[name] != value]
    return [Finding("optimizer-changed", "the optimizer's settings were changed: " + ", ".join(changed))] if changed else []


def _trajectory_finding(recorder: _Recorder, model: ProbeModel, scenario: Scenario, batches: int) -> Finding | None:
    """What differs from a correct epoch, as precisely as the records allow; None when nothing does."""
    parameters, step_norms, first_gradient = _stored_epoch(scenario)
    if _same_parameters(model.net.parameters(), parameters):
        return None
    gap = _largest_difference(model.net.parameters(), parameters)
    scale = _scale_of(recorder.first_gradient, first_gradient)
    if scale is not None and not math.isclose(scale, 1.0, rel_tol=1e-3):
        return Finding("scaled-loss", f"the first step applied {scale:.4g} times the gradient of the batch's mean "
                                      f"loss; after {batches} batches the parameters differ by up to {gap:.3g}")
    first = next((step for step, (found, wanted) in enumerate(zip(recorder.step_norms, step_norms), 1)
                  if not math.isclose(found, wanted, rel_tol=1e-6, abs_tol=1e-9)), len(step_norms))
    batch = recorder.step_batches[first - 1] if first <= len(recorder.step_batches) else first
    return Finding("trajectory", f"the parameters first differ from a correct loop's after step {first} of "
                                 f"{len(step_norms)}, which used the loader's batch {batch}; after {batches} "
                                 f"batches by up to {gap:.3g}")


def _largest_difference(found: Iterable[torch.Tensor], wanted: Iterable[torch.Tensor]) -> float:
    with torch.no_grad():
        return max(float((a - b).abs().max()) for a, b in zip(found, wanted))


def _same_parameters(found: Iterable[torch.Tensor], wanted: Iterable[torch.Tensor]) -> bool:
    with torch.no_grad():
        return all(torch.allclose(a, b, **_TOLERANCE) for a, b in zip(found, wanted))


def _mode_and_device_findings(recorder: _Recorder, *, training: bool) -> list[Finding]:
    forwards, calls = recorder.forwards, recorder.loss_calls
    passes = lambda n: of(n, len(forwards), "forward passes")  # noqa: E731
    findings = []
    if training:
        if n := sum(not f.training for f in forwards):
            findings.append(Finding("train-mode", f"the model was in eval mode in {passes(n)}"))
        if n := sum(not f.grad_enabled for f in forwards):
            findings.append(Finding("train-no-grad", f"gradient tracking was off in {passes(n)}"))
    else:
        if n := sum(f.training for f in forwards):
            findings.append(Finding("eval-mode", f"the model was in train mode in {passes(n)}"))
        if n := sum(f.grad_enabled for f in forwards):
            findings.append(Finding("eval-grad", f"gradient tracking was on in {passes(n)}"))
    if n := recorder.counts["hard-coded-device"]:
        findings.append(Finding("hard-coded-device" if training else "eval-hard-coded-device",
                                f"a batch or the model was sent to cuda {times(n)}, while the `device` argument "
                                "was the CPU"))
    if n := sum(not f.moved for f in forwards):
        findings.append(Finding("inputs-not-moved", f"{passes(n)} received inputs that never went through .to(device)"))
    if n := sum(not c.targets_moved for c in calls):
        findings.append(Finding("targets-not-moved", f"{of(n, len(calls), 'criterion calls')} received targets "
                                                     "that never went through .to(device)"))
    # once before the loop (or once at all) is harmless; a move in every batch is the mistake
    if len(moved_in := sorted({batch for batch in recorder.model_moves if batch})) >= 2:
        code = "model-moved-every-batch" if training else "eval-model-moved-every-batch"
        findings.append(Finding(code, f"model.to(device) ran {times(len(recorder.model_moves))}, during "
                                      f"{of(len(moved_in), len(recorder.batch_sizes), 'batches')}"))
    kinds = Counter(c.kind for c in calls)
    if kinds["probabilities"]:
        findings.append(Finding("softmax-before-loss", f"{of(kinds['probabilities'], len(calls), 'criterion calls')} "
                                                       "received rows that are all in [0, 1] and sum to 1"))
    elif kinds["other"]:
        findings.append(Finding("not-raw-logits", f"{of(kinds['other'], len(calls), 'criterion calls')} received "
                                                  "values that are not rows the model produced"))
    return findings


def _seen(recorder: _Recorder) -> tuple[int, int]:
    """How many distinct batches, and how many of their samples, went through the model."""
    batches = {f.batch for f in recorder.forwards if f.batch}
    return len(batches), sum(recorder.batch_sizes[b] for b in batches)


def _batches(count: int) -> str:
    return "the 1 batch" if count == 1 else f"each of the {count} batches"


def _skipped(recorder: _Recorder, loader: ProbeLoader, scenario: Scenario, *, training: bool) -> Finding | None:
    """Batches the model never saw: all after the first one (a return or break in the loop), or others.

    Training counts the distinct batches that went through the model; evaluation counts samples,
    since a correct evaluate may concatenate every batch and run one forward pass.
    """
    batches, taken = len(loader), loader.batches_served
    if training:
        seen_batches, seen_samples = _seen(recorder)
        complete = seen_batches >= batches
        saw = (f"the model saw {of(seen_batches, batches, 'batches')} "
               f"({of(seen_samples, scenario.n_samples, 'samples')})")
    else:
        seen_samples = sum(f.size for f in recorder.forwards)
        complete = seen_samples >= scenario.n_samples
        saw = f"the model saw {of(seen_samples, scenario.n_samples, 'samples')}"
    if complete and taken >= batches:
        return None
    saw += f"; {of(taken, batches, 'batches')} taken from the loader"
    if taken == 1 < batches and recorder.forwards:
        return Finding("returned-in-loop" if training else "eval-returned-in-loop", f"{saw}, then it returned")
    return Finding("skipped-batches", saw)


def _steps_per_batch(recorder: _Recorder, batches: int) -> Finding | None:
    per_batch = Counter(recorder.step_batches)
    forwarded = sorted({f.batch for f in recorder.forwards if f.batch})
    counts = [per_batch.get(b, 0) for b in forwarded]
    if counts and all(c == 1 for c in counts) and recorder.steps == len(counts):
        return None
    if recorder.steps == 1 and batches > 1 and recorder.step_batches == [max(forwarded, default=0)] \
            and recorder.backwards >= batches:
        return Finding("step-after-loop", f"optimizer.step() ran 1 time for {batches} batches, after the last "
                                          f"batch's backward; backward ran {times(recorder.backwards)}")
    shown = (f"{counts[0]} per batch" if len(set(counts)) == 1
             else "per batch: " + ", ".join(map(str, counts[:12])) + (", ..." if len(counts) > 12 else ""))
    return Finding("steps-per-batch", f"optimizer.step() ran {times(recorder.steps)} for {batches} batches ({shown})")


def _close(first: float, second: float) -> bool:
    return math.isclose(first, second, rel_tol=1e-5, abs_tol=1e-6)


def _loss_findings(result: Any, recorder: _Recorder, samples: int, *, training: bool = True) -> list[Finding]:
    """The returned loss against the mean per sample of the losses the criterion handed out."""
    if isinstance(result, torch.Tensor) or not isinstance(result, (int, float)) or isinstance(result, bool):
        shown = _plain(result.detach()) if isinstance(result, torch.Tensor) else result
        return [Finding("not-a-float", f"returned {shown!r}, of type {type(shown).__name__}")]
    calls = recorder.loss_calls
    if not calls:
        return []
    per_sample = sum(c.mean * c.size for c in calls) / sum(c.size for c in calls)
    if _close(result, per_sample):
        return []
    correct = f"the mean per sample over the {samples} samples is {per_sample:.6f}"
    prefix = "" if training else "eval-"
    if len(calls) > 1 and _close(result, sum(c.mean for c in calls) / len(calls)):
        return [Finding("mean-of-batch-means" if training else "eval-loss",
                        f"returned {result:.6f}, the plain mean of the {len(calls)} batch losses; {correct}")]
    if len(calls) > 1 and _close(result, sum(c.mean for c in calls) / samples):
        return [Finding(f"{prefix}loss-divided-twice", f"returned {result:.6f}, the sum of the {len(calls)} batch "
                                                       f"means divided by {samples} samples; {correct}")]
    return [Finding("wrong-mean" if training else "eval-loss", f"returned {result!r}; {correct}")]


def check_train_one_epoch(train_one_epoch: Callable[..., Any]) -> None:
    """Run ``train_one_epoch(model, loader, criterion, optimizer, device)`` on probes; raise on any bug.

    It runs on every scenario of :data:`TRAIN_SCENARIOS` in turn (the first bug found is reported).
    """
    for scenario in TRAIN_SCENARIOS:
        _check_train_scenario(train_one_epoch, scenario)


def _check_train_scenario(train_one_epoch: Callable[..., Any], scenario: Scenario) -> None:
    model = ProbeModel(scenario.network())
    model.eval()  # a correct loop switches to train mode itself
    loader = ProbeLoader(scenario.loader(shuffle=True))
    optimizer = scenario.optimizer(model.parameters())
    with _recording(model) as recorder:
        result, error = run_learner(train_one_epoch, model, loader, ProbeCriterion(), optimizer, torch.device("cpu"))
        recorder.batch = loader.batches_served + 1  # whatever is still alive now was kept from an earlier batch
        kept = recorder.graph_kept_alive()
    batches = len(loader)
    expected = (f"on {scenario.describe()}: for {_batches(batches)} one zero_grad, forward, loss, backward and step, "
                f"then the mean loss per sample as a float")
    findings = _mode_and_device_findings(recorder, training=True)
    if recorder.counts["step-before-backward"] and recorder.backwards:
        findings.append(Finding("step-before-backward", "optimizer.step() ran before that batch's loss.backward() "
                                f"at {of(recorder.counts['step-before-backward'], recorder.steps, 'steps')}"))
    if error is not None:  # only what was seen before the crash counts: absences are its consequence
        if findings:
            fail(findings, function="train_one_epoch", expected=expected)
        raise crashed("train_one_epoch", error, on=scenario.describe()) from error
    if not recorder.loss_calls and recorder.forwards:
        findings.append(Finding("criterion-ignored", f"the criterion was called 0 times for {batches} batches"))
    if recorder.backwards == 0:
        findings.insert(0, Finding("no-backward", f"loss.backward() ran 0 times for {batches} batches"))
    if (n := recorder.counts["graph-kept"]) or kept:
        where = f"at {of(n, recorder.steps, 'optimizer steps')}" if n else "when train_one_epoch returned"
        findings.append(Finding("graph-kept", "a tensor that tracks gradients from an earlier batch was still "
                                              f"alive {where}"))
    if (skipped := _skipped(recorder, loader, scenario, training=True)) is not None:
        findings.append(skipped)
    elif recorder.steps == 0:
        moved = "changed" if not _same_parameters(model.net.parameters(), scenario.network().parameters()) \
            else "did not change"
        findings.append(Finding("optimizer-ignored", f"the given optimizer stepped 0 times for {batches} batches "
                                                     f"(the parameters {moved})"))
    elif (wrong_steps := _steps_per_batch(recorder, batches)) is not None:
        findings.append(wrong_steps)
    if n := recorder.counts["cleared-before-step"]:
        findings.append(Finding("cleared-before-step", f"at {of(n, recorder.steps, 'optimizer steps')} every .grad was "
                                                       "zero although backward() had just computed gradients"))
    if n := recorder.counts["grad-modified"]:
        findings.append(Finding("grad-modified", f"at {of(n, recorder.steps, 'optimizer steps')} .grad was not what "
                                                 "loss.backward() had just computed (scaled, clipped or replaced)"))
    if n := recorder.counts["accumulated-gradients"]:
        findings.append(Finding("accumulated-gradients", f"at {of(n, recorder.steps, 'optimizer steps')} .grad "
                                                         "held more than that batch's gradient: earlier batches' "
                                                         "were added in"))
    findings += _loss_findings(result, recorder, scenario.n_samples)
    findings += _settings_findings(optimizer, scenario)
    if not findings and (trajectory := _trajectory_finding(recorder, model, scenario, batches)) is not None:
        findings.append(trajectory)
    if findings:
        fail(findings, function="train_one_epoch", expected=expected)


def _is_float(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, (bool, torch.Tensor))


def check_evaluate(evaluate: Callable[..., Any]) -> None:
    """Run ``evaluate(model, loader, criterion, device)`` on probes; raise on any bug.

    It runs on every scenario of :data:`EVALUATE_SCENARIOS` in turn (the first bug found is reported).
    """
    for scenario in EVALUATE_SCENARIOS:
        _check_evaluate_scenario(evaluate, scenario)


def _check_evaluate_scenario(evaluate: Callable[..., Any], scenario: Scenario) -> None:
    model = ProbeModel(scenario.network())
    model.train()  # a correct evaluate switches to eval mode itself
    before = [p.detach().clone() for p in model.parameters()]
    loader = ProbeLoader(scenario.loader(shuffle=False))
    with _recording(model) as recorder:
        result, error = run_learner(evaluate, model, loader, ProbeCriterion(), torch.device("cpu"))
    wanted = stored.load(EVALUATE_EXPECTED)[scenario.name]
    expected_loss, expected_accuracy, correct, count = (wanted["loss"], wanted["accuracy"], wanted["correct"],
                                                        scenario.n_samples)
    expected = (f"on {scenario.describe()}: ({expected_loss:.6f}, {expected_accuracy:.6f}), the mean loss per "
                f"sample and the accuracy, parameters unchanged")
    findings = []
    if recorder.backwards or not _same_parameters(model.parameters(), before):
        findings.append(Finding("eval-changed-parameters", f"backward ran {times(recorder.backwards)} and the "
                                f"parameters moved by up to {_largest_difference(model.parameters(), before):.3g}"))
    findings += _mode_and_device_findings(recorder, training=False)
    if error is not None:
        if findings:
            fail(findings, function="evaluate", expected=expected)
        raise crashed("evaluate", error, on=scenario.describe()) from error
    if not recorder.loss_calls and recorder.forwards:
        findings.append(Finding("criterion-ignored", f"the criterion was called 0 times for {len(loader)} batches"))
    if (skipped := _skipped(recorder, loader, scenario, training=False)) is not None:
        findings.append(skipped)
    if not (isinstance(result, tuple) and len(result) == 2 and all(_is_float(v) for v in result)):
        kinds = (", ".join(type(v).__name__ for v in result) if isinstance(result, (tuple, list))
                 else type(result).__name__)
        findings.append(Finding("eval-return", f"returned {result!r} ({kinds})"))
    elif (_close(result[0], expected_accuracy) and _close(result[1], expected_loss)
          and not _close(expected_loss, expected_accuracy)):
        findings.append(Finding("eval-swapped", f"returned ({result[0]:.6f}, {result[1]:.6f}): the first value is the "
                                                f"accuracy ({correct} / {count}), the second the mean loss"))
    else:
        loss, accuracy = result
        if not _close(loss, expected_loss):
            findings += _loss_findings(loss, recorder, count, training=False) or [
                Finding("eval-loss", f"returned loss {loss:.6f}; the mean loss per sample over the {count} samples "
                                     f"is {expected_loss:.6f}")]
        if not math.isclose(accuracy, expected_accuracy, abs_tol=1e-6):
            findings.append(Finding("eval-accuracy", f"returned accuracy {accuracy!r}; correct predictions / samples "
                                                     f"= {correct} / {count} = {expected_accuracy:.6f}"))
    if findings:
        fail(findings, function="evaluate", expected=expected)


# --- fit: see course_utils.fit_grader -------------------------------------------------------

def run_course_fit(fit: Callable[..., Any], recipe: TrainingRecipe = DEFAULT_RECIPE,
                   device: torch.device | str = "cpu") -> list[dict[str, float]]:
    """Run the learner's ``fit`` with the course's default model, data and optimiser; return its history."""
    device = torch.device(device)
    model = default_model(recipe).to(device)
    train_loader, val_loader = default_loaders(recipe)
    return fit(model, train_loader, val_loader, nn.CrossEntropyLoss(), default_optimizer(model, recipe),
               device, recipe.epochs)


def check_fit(fit: Callable[..., Any], train_one_epoch: Callable[..., Any] | None = None,
              evaluate: Callable[..., Any] | None = None) -> None:
    """Judge ``fit`` on its own (see :func:`course_utils.fit_grader.check_fit`); raise on any bug."""
    from course_utils import fit_grader  # imported here: fit_grader builds on this module

    fit_grader.check_fit(fit, train_one_epoch, evaluate)


def converged(history: list[dict[str, float]]) -> bool:
    """The convergence verdict: after the last epoch, loss below 0.6 and accuracy above 0.8."""
    last = history[-1]
    return last["loss"] < CONVERGED_LOSS and last["accuracy"] > CONVERGED_ACCURACY


def check_convergence(history: list[dict[str, float]]) -> None:
    """Fail unless the history ends converged (see :func:`converged`)."""
    if not converged(history):
        last = history[-1]
        found = f"epoch {last['epoch']}: loss {last['loss']:.3f}, accuracy {last['accuracy']:.3f}"
        fail([Finding("no-convergence", found)], function="fit",
             expected=f"loss < {CONVERGED_LOSS} and accuracy > {CONVERGED_ACCURACY} after the last epoch")
