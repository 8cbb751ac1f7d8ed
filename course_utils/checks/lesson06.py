"""Lesson 06 (optimizer step): the catalogue of typical mistakes and the checks that recognise them.

``ManualSGD`` is run on seeded parameters and losses the notebook never prints, and its trajectory
is compared with PyTorch's update rule and with the trajectories of the usual wrong rules (a
dampened or Nesterov momentum, one buffer for all parameters, weight decay outside the buffer, ...),
so that a mismatch is named by the rule the learner actually wrote. ``train_step`` is run with a
recording model, loss and optimizer that see the order of ``zero_grad``, ``backward`` and ``step``
and the gradients each step finds.

Those trajectories, and the parameters of a correct ``train_step`` loop, are stored as data for the
checks' fixed inputs (``expected/lesson06-*.json``), computed on the grader's side
(``course_tools.grade.judges.lesson06``): no update rule or training step ships here as code. The
checks run with one of :data:`CHECK_SEEDS`.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from unittest import mock

import torch
from torch import nn
from torch.nn import functional as F

from course_utils.checks import expected as stored
from course_utils.checks.learner import call_learner, error_text
from course_utils.diagnoses import Diagnosis, ForbiddenCall, by_code, raise_diagnosis

LESSON = "06_optimizer_step"
CHECK_SEEDS = (0, 3)  # the seeds whose expected results are stored; the notebook's checks use the default, 3
_SECTIONS = {"ex1-tests": "2 · `torch.optim.SGD`: the same step, and momentum",
             "ex2-tests": "4 · Where `zero_grad` goes"}


def _row(code: str, exercise: str, family: str, what: str, hint: str) -> Diagnosis:
    return Diagnosis(code, what, hint, family, lesson=LESSON, exercise=exercise, section=_SECTIONS[exercise])


CATALOGUE = (
    # Exercise 1 · ManualSGD
    _row("sgd-wraps-torch-optim", "ex1-tests", "not-allowed",
         "ManualSGD used torch.optim.SGD (or another torch.optim optimizer): not allowed here",
         "write the update yourself, with the parameters' .grad: the point of the exercise is to see that it is "
         "a few lines."),
    _row("sgd-no-torch-no-grad", "ex1-tests", "modes",
         "step() changed a parameter in place outside torch.no_grad(): PyTorch raised 'a leaf Variable that "
         "requires grad is being used in an in-place operation'",
         "put the whole update inside `with torch.no_grad():`: the update is not part of the graph."),
    _row("sgd-parameters-unchanged", "ex1-tests", "optimizer",
         "step() did not move the model's parameters: `p = p - lr * buf` (rebinding) makes a new tensor and "
         "leaves the parameter as it was",
         "update the parameter itself, in place: p -= lr * buf (or p.sub_(lr * buf)) inside torch.no_grad()."),
    _row("sgd-params-generator", "ex1-tests", "interface",
         "only the first step() moved the parameters: the params generator was used up",
         "model.parameters() can be read once: keep self.params = list(params) in __init__."),
    _row("sgd-none-grad", "ex1-tests", "interface",
         "step() failed on a parameter whose .grad is None",
         "skip such parameters (if p.grad is None: continue), as torch.optim.SGD does."),
    _row("sgd-none-grad-moved", "ex1-tests", "optimizer",
         "step() moved a parameter whose .grad is None",
         "skip parameters without a gradient entirely: no update and no change to their momentum buffer."),
    _row("sgd-ascent", "ex1-tests", "optimizer",
         "the parameters moved along the gradient (uphill): p += lr * buf",
         "subtract: p -= lr * buf; the gradient points uphill."),
    _row("sgd-momentum-ignored", "ex1-tests", "optimizer",
         "with momentum > 0 the steps are plain SGD steps: the momentum buffer was not used or not kept",
         "keep one buffer per parameter between steps (self.buffers[i]) and step by lr * buf."),
    _row("sgd-shared-buffer", "ex1-tests", "optimizer",
         "one momentum buffer was shared by all parameters",
         "keep one buffer per parameter, the same shape as it: self.buffers = [None] * len(self.params)."),
    _row("sgd-buffer-shared-between-optimizers", "ex1-tests", "optimizer",
         "two ManualSGD optimizers shared their momentum buffers",
         "create the buffers in __init__ (self.buffers = ...), never as a class attribute or a default argument."),
    _row("sgd-buffer-aliases-grad", "ex1-tests", "optimizer",
         "the momentum buffer is the .grad tensor itself, so zeroing or accumulating .grad changes the buffer",
         "start the buffer from a copy: buf = p.grad.clone() (or torch.zeros_like(p) then buf.mul_(m).add_(grad))."),
    _row("sgd-momentum-dampened", "ex1-tests", "optimizer",
         "the momentum buffer is an average, buf = momentum * buf + (1 - momentum) * grad",
         "PyTorch adds the full gradient: buf = momentum * buf + grad (and buf = grad on the first step)."),
    _row("sgd-momentum-nesterov", "ex1-tests", "optimizer",
         "the step is lr * (grad + momentum * buf) (Nesterov momentum)",
         "plain momentum steps by the buffer itself: p -= lr * buf, with buf = momentum * buf + grad."),
    _row("sgd-momentum-stale", "ex1-tests", "optimizer",
         "the step used the buffer from before this step's gradient was added (the first step did not move)",
         "update the buffer first (buf = momentum * buf + grad), then step with it: p -= lr * buf."),
    _row("sgd-weight-decay-ignored", "ex1-tests", "optimizer",
         "weight_decay had no effect",
         "add weight_decay * p to the gradient first: d_p = p.grad + weight_decay * p, then momentum and step."),
    _row("sgd-weight-decay-decoupled", "ex1-tests", "optimizer",
         "weight decay was applied outside the momentum buffer (p -= lr * weight_decay * p on its own)",
         "torch.optim.SGD adds weight_decay * p to the gradient before the momentum buffer: "
         "d_p = p.grad + weight_decay * p; buf = momentum * buf + d_p."),
    _row("sgd-weight-decay-sign", "ex1-tests", "optimizer",
         "weight decay pushed the parameters away from 0: d_p = grad - weight_decay * p",
         "decay pulls towards 0: d_p = p.grad + weight_decay * p."),
    _row("sgd-weight-decay-changed-grad", "ex1-tests", "optimizer",
         "step() changed the parameters' .grad (weight decay added to p.grad in place?)",
         "leave p.grad as backward() left it: d_p = p.grad + weight_decay * p makes a new tensor."),
    # Public bug reports (e.g. jcjohnson/pytorch-examples#4, #7): p.grad.zero_() before the first backward
    _row("sgd-zero-grad-none", "ex1-tests", "interface",
         "zero_grad() failed on a parameter whose .grad is None (as every .grad is before the first backward)",
         "clear only gradients that exist: `if p.grad is not None: p.grad.zero_()`, or simply p.grad = None."),
    _row("sgd-zero-grad", "ex1-tests", "gradients",
         "zero_grad() did not clear the gradients",
         "set p.grad = None for every parameter (or p.grad.zero_() where it is not None)."),
    _row("sgd-trajectory", "ex1-tests", "optimizer",
         "the parameters after ManualSGD's steps differ from torch.optim.SGD's",
         "d_p = grad + weight_decay * p; buf = d_p on a parameter's first step, then momentum * buf + d_p; "
         "p -= lr * buf, in place, inside torch.no_grad()."),
    _row("sgd-raised", "ex1-tests", "interface", "ManualSGD raised an exception",
         "the lines above this message show where in your code it was raised; the signature is "
         "ManualSGD(params, lr, momentum=0.0, weight_decay=0.0), and step() and zero_grad() take no arguments."),
    # Exercise 2 · train_step
    _row("trainstep-no-zero-grad", "ex2-tests", "gradients",
         "the gradients were not cleared: step() used this batch's gradient plus every earlier one",
         "call optimizer.zero_grad() once per call: first thing in train_step (the usual place), or right after "
         "optimizer.step()."),
    _row("trainstep-step-before-backward", "ex2-tests", "gradients",
         "optimizer.step() ran before loss.backward()",
         "the order is zero_grad, forward, loss, backward, step. A step before backward finds .grad cleared "
         "(None) and moves nothing; the gradients backward computes afterwards are wiped unused by the next "
         "zero_grad, so the model never learns."),
    _row("trainstep-cleared-before-step", "ex2-tests", "gradients",
         "the gradients were cleared between loss.backward() and optimizer.step(), so the step had none",
         "zero the gradients before backward() (first thing in train_step) or right after step(), never between "
         "backward and step."),
    _row("trainstep-no-backward", "ex2-tests", "gradients",
         "loss.backward() was never called",
         "call loss.backward() after computing the loss and before optimizer.step()."),
    _row("trainstep-no-grad", "ex2-tests", "modes",
         "the forward pass of the loss that backward() needs ran without gradient tracking (inside torch.no_grad())",
         "only the update needs torch.no_grad(), and the optimizer does that itself: run the forward pass normally. "
         "Setting loss.requires_grad = True silences PyTorch's error, but no gradient reaches the model."),
    _row("trainstep-backward-scaled", "ex2-tests", "gradients",
         "backward() ran on a multiple of the loss, not on the loss itself, so every gradient and step is scaled",
         "call loss.backward() on the loss itself: a loss divided by N before backward belongs to gradient "
         "accumulation over N batches (lesson 08), not to one training step."),
    _row("trainstep-optimizer-ignored", "ex2-tests", "optimizer",
         "the optimizer passed to train_step never stepped",
         "call step() on the `optimizer` argument; do not create an optimizer inside train_step."),
    _row("trainstep-steps-per-call", "ex2-tests", "optimizer",
         "optimizer.step() did not run exactly once per call",
         "one call of train_step = one optimizer.step(), after one loss.backward()."),
    _row("trainstep-model-ignored", "ex2-tests", "interface",
         "the model passed to train_step was never called",
         "compute model(xb) with the `model` argument, not a global model."),
    _row("trainstep-criterion-ignored", "ex2-tests", "interface",
         "the criterion passed to train_step was never called",
         "compute the loss with the `criterion` argument: loss = criterion(model(xb), yb)."),
    _row("trainstep-batch-ignored", "ex2-tests", "interface",
         "the loss was not computed on the batch (xb, yb) passed to train_step",
         "use the xb and yb arguments, not global tensors: criterion(model(xb), yb)."),
    _row("trainstep-not-a-float", "ex2-tests", "interface",
         "train_step did not return a Python float",
         "return loss.item(): a float, which also lets the batch's graph go."),
    _row("trainstep-loss-after-step", "ex2-tests", "metrics",
         "train_step returned the loss after the step (a second forward pass), not the loss it stepped on",
         "return loss.item() of the loss computed before optimizer.step(): no second forward pass, with or "
         "without torch.no_grad()."),
    _row("trainstep-wrong-loss", "ex2-tests", "metrics",
         "train_step returned a number that is not the batch's loss",
         "return loss.item(), with loss = criterion(model(xb), yb)."),
    _row("trainstep-trajectory", "ex2-tests", "optimizer",
         "the parameters after train_step differ from those of a correct step",
         "optimizer.zero_grad(); loss = criterion(model(xb), yb); loss.backward(); optimizer.step()."),
    _row("trainstep-raised", "ex2-tests", "interface", "train_step raised an exception",
         "the lines above this message show where in your code it was raised; "
         "train_step(model, xb, yb, criterion, optimizer) uses only its arguments."),
)
DIAGNOSES = by_code(CATALOGUE)
# The library calls an exercise forbids, found by the grader in the submitted source (course_tools.grade.source_scan):
# ManualSGD is to write the update, not to hand it to a torch.optim optimizer.
FORBIDDEN_CALLS = (
    ForbiddenCall("ex1-tests", "ManualSGD", ("torch.optim",), "sgd-wraps-torch-optim"),
)


def _fail(code: str, *, expected: Any, found: Any, subject: str) -> None:
    raise_diagnosis(DIAGNOSES[code], expected=expected, found=found, subject=subject)




# --- Exercise 1 · ManualSGD ---------------------------------------------------------------------

@contextlib.contextmanager
def _library_optimizer_use() -> Iterator[list[str]]:
    """Record every construction or step of a torch.optim optimizer (SGD, Adam, ...) made meanwhile."""
    used: list[str] = []
    original_init = torch.optim.Optimizer.__init__

    def init(self: torch.optim.Optimizer, *args: Any, **kwargs: Any) -> None:
        if type(self).__module__.startswith("torch."):  # a subclass with its own step() is the learner's code
            used.append(f"torch.optim.{type(self).__name__}(...)")
        original_init(self, *args, **kwargs)

    patches = [mock.patch.object(torch.optim.Optimizer, "__init__", init)]
    for name in ("SGD", "Adam", "AdamW", "RMSprop", "Adagrad"):
        cls = getattr(torch.optim, name)
        original_step = cls.step

        def step(self: Any, *args: Any, _name: str = name, _original: Any = original_step, **kwargs: Any) -> Any:
            used.append(f"torch.optim.{_name}.step()")
            return _original(self, *args, **kwargs)

        patches.append(mock.patch.object(cls, "step", step))
    with contextlib.ExitStack() as stack:
        for patch in patches:
            stack.enter_context(patch)
        yield used


@dataclass(frozen=True)
class _Settings:
    lr: float
    momentum: float
    weight_decay: float


def _problem(seed: int, n_params: int = 3, size: int = 4) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Seeded starting parameters (all of one shape, so a shared buffer runs without error) and per-step data."""
    generator = torch.Generator().manual_seed(seed)
    start = [torch.randn(size, generator=generator) for _ in range(n_params)]
    data = [torch.randn(n_params, size, size, generator=generator) for _ in range(8)]
    return start, data


def _loss(params: list[torch.Tensor], data: torch.Tensor) -> torch.Tensor:
    """A smooth loss whose gradient changes with the parameters and the step."""
    return sum((torch.tanh(a @ p) - 0.3).pow(2).sum() + 0.1 * p.pow(2).sum() for a, p in zip(data, params))


def sgd_check_inputs(seed: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The visible check's problem for ``seed``: starting parameters and per-step data (its second problem is seed + 1)."""
    return _problem(seed)


def _stored(name: str, seed: int) -> Any:
    """The stored expected results ``name`` for the check inputs of ``seed``."""
    if seed not in CHECK_SEEDS:
        raise ValueError(f"the lesson 06 checks run with seed in {CHECK_SEEDS}, not {seed!r}: "
                         "their expected results are stored for those inputs only")
    return stored.load(name)[str(seed)]


def _tensors(steps: list[Any]) -> list[list[torch.Tensor]]:
    """Stored parameters, step by step, as tensors."""
    return [[stored.tensor(p) for p in step] for step in steps]


# The visible check's settings (lr, momentum, weight_decay) and number of steps; the stored trajectories
# (lesson06-manual-sgd) follow them, in this order.
CHECK_SETTINGS = (_Settings(0.1, 0.9, 0.0), _Settings(0.05, 0.0, 0.0), _Settings(0.1, 0.8, 0.2))
CHECK_STEPS = 5


def _same(a: list[torch.Tensor], b: list[torch.Tensor], atol: float = 1e-5) -> bool:
    return all(x.shape == y.shape and bool(torch.allclose(x, y, rtol=1e-4, atol=atol)) for x, y in zip(a, b))


def _construct(manual_sgd: type, params: Any, s: _Settings) -> Any:
    subject = "ManualSGD"
    with _library_optimizer_use() as used:
        optimizer, error = call_learner(manual_sgd, params, lr=s.lr, momentum=s.momentum, weight_decay=s.weight_decay)
    if used or isinstance(optimizer, torch.optim.SGD):
        _fail("sgd-wraps-torch-optim", subject=subject, expected="an update written by hand",
              found=f"ManualSGD created {', '.join(used) or 'a torch.optim.SGD'}")
    if error is not None:
        _fail("sgd-raised", subject=subject,
              expected=f"ManualSGD(params, lr={s.lr}, momentum={s.momentum}, weight_decay={s.weight_decay})",
              found=error_text(error))
    return optimizer


def _step(optimizer: Any, what: str) -> None:
    subject = "ManualSGD.step()"
    with _library_optimizer_use() as used:
        _, error = call_learner(optimizer.step)
    if used:
        _fail("sgd-wraps-torch-optim", subject=subject, expected="an update written by hand",
              found=f"step() called {', '.join(used)}")
    if error is not None:
        text = error_text(error)
        if "leaf Variable that requires grad" in text:
            _fail("sgd-no-torch-no-grad", subject=subject, expected=f"a step ({what})", found=text)
        if isinstance(error, (TypeError, AttributeError)) and "NoneType" in text:
            _fail("sgd-none-grad", subject=subject, expected="parameters without a gradient skipped", found=text)
        _fail("sgd-raised", subject=subject, expected=f"a step ({what})", found=text)


def _run_trajectory(manual_sgd: type, start: list[torch.Tensor], data: list[torch.Tensor], steps: int,
                    s: _Settings, *, clear: str = "none") -> tuple[list[list[torch.Tensor]], list[torch.Tensor]]:
    """Step the learner's optimizer; gradients are cleared by us (set to None, or zeroed in place)."""
    params = [p.clone().requires_grad_(True) for p in start]
    optimizer = _construct(manual_sgd, (p for p in params), s)
    trajectory = []
    what = f"lr={s.lr}, momentum={s.momentum}, weight_decay={s.weight_decay}"
    for step in range(steps):
        for p in params:
            if clear == "none" or p.grad is None:
                p.grad = None
            else:
                p.grad.zero_()
        with torch.enable_grad():
            _loss(params, data[step]).backward()
        grads_before = [p.grad.clone() for p in params]
        _step(optimizer, what)
        if clear == "none" and any(p.grad is None or not torch.equal(p.grad, g) for p, g in zip(params, grads_before)):
            _fail("sgd-weight-decay-changed-grad", subject="ManualSGD.step()", expected=".grad unchanged by step()",
                  found=f".grad changed at step {step + 1}")
        trajectory.append([p.detach().clone() for p in params])
    return trajectory, params


def _describe_divergence(found: list[list[torch.Tensor]], expected: list[list[torch.Tensor]]) -> str:
    for step, (mine, reference) in enumerate(zip(found, expected), start=1):
        for index, (a, b) in enumerate(zip(mine, reference)):
            if not torch.allclose(a, b, rtol=1e-4, atol=1e-5):
                return (f"parameter {index} after step {step}: {[round(v, 5) for v in a.tolist()]}, "
                        f"torch.optim.SGD gives {[round(v, 5) for v in b.tolist()]}")
    return "the same values"


def _diagnose_trajectory(manual_sgd: type, start: list[torch.Tensor], data: list[torch.Tensor], s: _Settings,
                         wanted: dict[str, Any]) -> None:
    """Step the learner's optimizer; compare with torch.optim.SGD's stored trajectory, then with the
    stored final parameters of the usual wrong rules, to name the one the learner wrote."""
    subject = "ManualSGD"
    steps = CHECK_STEPS
    found, params = _run_trajectory(manual_sgd, start, data, steps, s)
    expected = _tensors(wanted["torch"])
    if all(_same(a, b) for a, b in zip(found, expected)):
        return
    settings = f"lr={s.lr}, momentum={s.momentum}, weight_decay={s.weight_decay}"
    if all(torch.equal(p, q) for p, q in zip(found[-1], start)):
        _fail("sgd-parameters-unchanged", subject=subject, expected=f"parameters that move at every step ({settings})",
              found=f"parameters exactly as they started, after {steps} steps")
    if all(torch.equal(p, q) for later in found[1:] for p, q in zip(later, found[0])):
        _fail("sgd-params-generator", subject=subject, expected="parameters that move at every step",
              found="parameters that moved at step 1 and never again")
    for code, final in wanted["mistakes"]:  # [code, final parameters of that wrong rule], in the catalogue's order
        if _same(found[-1], [stored.tensor(p) for p in final]):
            _fail(code, subject=subject, expected=f"torch.optim.SGD's trajectory ({settings})",
                  found=_describe_divergence(found, expected))
    _fail("sgd-trajectory", subject=subject, expected=f"torch.optim.SGD's trajectory ({settings})",
          found=_describe_divergence(found, expected))


def check_manual_sgd(manual_sgd: type, *, seed: int = 3) -> None:
    """Run ``ManualSGD`` on seeded problems (momentum, weight decay, two optimizers, None gradients); raise on any mistake."""
    subject = "ManualSGD"
    wanted = _stored("lesson06-manual-sgd", seed)
    start, data = _problem(seed)
    # A new optimizer must start from nothing: state kept on the class shows as a second run that differs.
    s = _Settings(0.1, 0.9, 0.0)
    first, _ = _run_trajectory(manual_sgd, start, data, 3, s)
    second, _ = _run_trajectory(manual_sgd, start, data, 3, s)
    if not all(_same(a, b, atol=0.0) for a, b in zip(first, second)):
        _fail("sgd-buffer-shared-between-optimizers", subject=subject,
              expected="two fresh ManualSGD optimizers on the same problem taking the same steps",
              found="a second optimizer that took other steps: it started from the first one's buffers")
    for s, trajectories in zip(CHECK_SETTINGS, wanted["settings"]):
        _diagnose_trajectory(manual_sgd, start, data, s, trajectories)
    s = CHECK_SETTINGS[0]
    expected = _tensors(wanted["settings"][0]["torch"][:4])
    # Gradients zeroed in place between steps, as model.zero_grad(set_to_none=False) does.
    found, _ = _run_trajectory(manual_sgd, start, data, 4, s, clear="zero")
    if not all(_same(a, b) for a, b in zip(found, expected)):
        _fail("sgd-buffer-aliases-grad", subject=subject,
              expected="the same trajectory whether .grad is set to None or zeroed in place between steps",
              found=_describe_divergence(found, expected))
    # Two optimizers stepped in turn must not share anything.
    other_start, other_data = _problem(seed + 1)
    mine = [[p.clone().requires_grad_(True) for p in begin] for begin in (start, other_start)]
    optimizers = [_construct(manual_sgd, list(params), s) for params in mine]
    for step in range(4):
        for params, optimizer, problem in zip(mine, optimizers, (data, other_data)):
            for p in params:
                p.grad = None
            with torch.enable_grad():
                _loss(params, problem[step]).backward()
            _step(optimizer, "two optimizers stepped in turn")
    for params, final in zip(mine, (expected[-1], [stored.tensor(p) for p in wanted["other"]])):
        if not _same([p.detach() for p in params], final):
            _fail("sgd-buffer-shared-between-optimizers", subject=subject,
                  expected="each optimizer following its own torch.optim.SGD trajectory",
                  found="trajectories that differ once a second ManualSGD steps in between")
    # A parameter without a gradient is skipped; zero_grad clears every gradient.
    used, unused = start[0].clone().requires_grad_(True), start[1].clone().requires_grad_(True)
    optimizer = _construct(manual_sgd, [used, unused], _Settings(0.1, 0.9, 0.1))
    _, error = call_learner(optimizer.zero_grad)  # first thing in a loop: no parameter has a gradient yet
    if error is not None:
        _fail("sgd-zero-grad-none", subject="ManualSGD.zero_grad()",
              expected="zero_grad() to run on parameters whose .grad is None", found=error_text(error))
    with torch.enable_grad():
        (used ** 2).sum().backward()
    _step(optimizer, "a parameter whose .grad is None")
    if not torch.equal(unused.detach(), start[1]):
        _fail("sgd-none-grad-moved", subject=subject, expected="the parameter without a gradient unchanged",
              found=f"it moved by up to {(unused.detach() - start[1]).abs().max().item():.3g}")
    if not (used.is_leaf and used.requires_grad):
        _fail("sgd-parameters-unchanged", subject=subject, expected="a parameter that stays a leaf requiring grad",
              found=f"is_leaf={used.is_leaf}, requires_grad={used.requires_grad}")
    unused.grad = torch.ones_like(unused)
    _, error = call_learner(optimizer.zero_grad)
    if error is not None:
        _fail("sgd-raised", subject="ManualSGD.zero_grad()", expected="the gradients cleared", found=error_text(error))
    left = [p for p in (used, unused) if p.grad is not None and bool(p.grad.any())]
    if left:
        _fail("sgd-zero-grad", subject="ManualSGD.zero_grad()", expected="every .grad None (or all zeros)",
              found=f"{len(left)} of 2 parameters still hold a gradient")


# --- Exercise 2 · train_step --------------------------------------------------------------------

class _Events:
    """What happened during one call of train_step, in order."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.forwards: list[tuple[bool, bool, int]] = []  # (grad enabled, input is the given batch, events before)
        self.losses: list[tuple[float, bool]] = []   # (value, targets are the given batch)
        self.grads_at_step: list[list[torch.Tensor | None]] = []
        self.loss_grads: list[float] = []  # d(what backward ran on) / d(loss): 1 for loss.backward()

    def backward_reached_loss(self, grad: torch.Tensor) -> None:
        """A hook on the criterion's loss: backward went through it, with this gradient."""
        self.log.append("backward")
        self.loss_grads.append(float(grad.detach().sum()))
        self.fresh: dict[int, torch.Tensor] = {}
        self.batch: tuple[torch.Tensor, torch.Tensor] | None = None


class _ProbeModel(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.events: _Events | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.events is not None:
            given = self.events.batch is not None and x.shape == self.events.batch[0].shape and bool(
                torch.equal(x, self.events.batch[0]))
            self.events.forwards.append((torch.is_grad_enabled(), given, len(self.events.log)))
        return self.net(x)

    def zero_grad(self, set_to_none: bool = True) -> None:  # noqa: D102
        if self.events is not None:
            self.events.log.append("zero_grad")
        super().zero_grad(set_to_none)


class _ProbeCriterion(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.events: _Events | None = None

    def forward(self, output: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        events = self.events
        given = events is not None and events.batch is not None and targets.shape == events.batch[1].shape and bool(
            torch.equal(targets, events.batch[1]))
        if events is not None:
            events.losses.append((math.nan, given))  # recorded before a crash of the loss itself
        loss = F.cross_entropy(output, targets)
        if events is not None:
            events.losses[-1] = (loss.item(), given)
            if loss.requires_grad:
                loss.register_hook(events.backward_reached_loss)
        return loss


class _ProbeSGD(torch.optim.SGD):
    events: _Events | None = None

    def zero_grad(self, set_to_none: bool = True) -> None:  # noqa: D102
        if self.events is not None:
            self.events.log.append("zero_grad")
        super().zero_grad(set_to_none)

    def step(self, closure: Any = None) -> Any:  # noqa: D102
        if self.events is not None:
            self.events.log.append("step")
            self.events.grads_at_step.append([None if p.grad is None else p.grad.clone()
                                              for group in self.param_groups for p in group["params"]])
        return super().step(closure)


def _net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 4))


def _order(log: list[str]) -> str:
    return ", ".join(log) or "nothing"


TRAIN_STEPS = 3  # calls of train_step in the visible check


def train_step_check_inputs(seed: int) -> tuple[nn.Module, list[tuple[torch.Tensor, torch.Tensor]]]:
    """The visible check's model (a fresh seeded net) and batches."""
    generator = torch.Generator().manual_seed(seed)
    batches = [(torch.randn(10, 6, generator=generator), torch.randint(0, 4, (10,), generator=generator))
               for _ in range(TRAIN_STEPS)]
    return _net(seed), batches


def check_train_step(train_step: Callable[..., Any], *, seed: int = 3) -> None:
    """Run ``train_step`` with a recording model, loss and SGD(momentum) on seeded batches; raise on any mistake.

    The model starts with no gradients, as a fresh training loop does, so ``zero_grad`` may come first
    (the usual place) or right after ``step``: both clear every batch's gradients before the next
    batch's ``backward``. A missing ``zero_grad`` shows from the second call on.
    """
    subject = "train_step"
    steps = TRAIN_STEPS
    wanted = [[stored.tensor(p) for p in after] for after in _stored("lesson06-train-step", seed)]
    net, batches = train_step_check_inputs(seed)
    model, criterion = _ProbeModel(net), _ProbeCriterion()
    optimizer = _ProbeSGD(model.parameters(), lr=0.1, momentum=0.9)
    parameters = list(model.parameters())

    for call, (x, y) in enumerate(batches, start=1):
        events = _Events()
        events.batch = (x, y)
        model.events = criterion.events = optimizer.events = events
        handles = [p.register_hook(lambda g, i=i: events.fresh.__setitem__(i, g.detach().clone()))
                   for i, p in enumerate(parameters)]
        before = [p.detach().clone() for p in parameters]
        with torch.no_grad():
            expected_loss = F.cross_entropy(model.net(x), y).item()
        try:
            result, error = call_learner(train_step, model, x, y, criterion, optimizer)
        finally:
            for handle in handles:
                handle.remove()
            model.events = criterion.events = optimizer.events = None
        with torch.no_grad():
            loss_after = F.cross_entropy(model.net(x), y).item()
        _diagnose_call(events, result, error, call=call, steps_before=before, model=model,
                       expected_loss=expected_loss, loss_after=loss_after)
        # The last resort, once every specific finding is ruled out: name the first call that went astray.
        for (name, mine), theirs in zip(model.net.named_parameters(), wanted[call - 1]):
            if not torch.allclose(mine, theirs, rtol=1e-5, atol=1e-6):
                _fail("trainstep-trajectory", subject=subject,
                      expected=f"the parameters of a correct step after call {call} of {steps}",
                      found=f"call {call}: {_order(events.log)}; afterwards {name} differs by up to "
                            f"{(mine - theirs).abs().max().item():.3g}")


def _diagnose_call(events: _Events, result: Any, error: BaseException | None, *, call: int,
                   steps_before: list[torch.Tensor], model: _ProbeModel, expected_loss: float,
                   loss_after: float) -> None:
    subject = "train_step"
    order = f"call {call}: {_order(events.log)}"
    if not events.forwards:
        _fail("trainstep-model-ignored", subject=subject, expected="model(xb) with the model passed in",
              found=f"{order}; the model passed in was never called")
    # The training forward pass is the one before the first backward (or step); a second one after the
    # step, with tracking off, only computes a loss to return, which the loss checks below name.
    first = next((events.log.index(e) for e in ("backward", "step") if e in events.log), len(events.log))
    training = [enabled for enabled, _, position in events.forwards if position <= first]
    if training and not any(training):
        _fail("trainstep-no-grad", subject=subject, expected="a forward pass that records the graph",
              found=f"{order}; the forward pass ran with gradient tracking off"
                    + (f" ({error_text(error)})" if error is not None else ""))
    if not any(given for _, given, _ in events.forwards) or (events.losses and not any(g for _, g in events.losses)):
        _fail("trainstep-batch-ignored", subject=subject, expected="the loss of the batch passed in",
              found=f"{order}; model or criterion received other tensors than xb, yb")
    if not events.losses:
        _fail("trainstep-criterion-ignored", subject=subject, expected="criterion(model(xb), yb) with the criterion passed in",
              found=f"{order}; the criterion passed in was never called")
    if error is not None:
        _fail("trainstep-raised", subject=subject, expected="one training step", found=f"{order}; {error_text(error)}")
    backwards, steps = events.log.count("backward"), events.log.count("step")
    if backwards == 0:
        _fail("trainstep-no-backward", subject=subject, expected="zero_grad, backward, step", found=order)
    if steps == 0:
        moved = any(not torch.equal(p.detach(), q) for p, q in zip(model.parameters(), steps_before))
        _fail("trainstep-optimizer-ignored", subject=subject, expected="optimizer.step() on the optimizer passed in",
              found=order + ("; the parameters moved all the same: another optimizer?" if moved else ""))
    if steps != 1:
        _fail("trainstep-steps-per-call", subject=subject, expected="1 step per call",
              found=f"{order}: {steps} steps")
    first_step, first_backward = events.log.index("step"), events.log.index("backward")
    grads = events.grads_at_step[0]
    if first_step < first_backward:
        seen = "None" if all(g is None for g in grads) else (
            "zeros" if all(g is None or not bool(g.any()) for g in grads) else "the previous call's gradients")
        _fail("trainstep-step-before-backward", subject=subject, expected="zero_grad, forward, backward, step",
              found=f"{order}; the step found {seen} in .grad")
    fresh = [events.fresh.get(i) for i in range(len(grads))]
    if all(g is None or not bool(g.any()) for g in grads) and any(f is not None and bool(f.any()) for f in fresh):
        _fail("trainstep-cleared-before-step", subject=subject, expected="the step to find this batch's gradients",
              found=f"{order}; the step found every .grad cleared")
    if any(g is not None and f is not None and not torch.allclose(g, f, rtol=1e-5, atol=1e-7)
           for g, f in zip(grads, fresh)):
        _fail("trainstep-no-zero-grad", subject=subject, expected="the step to use this batch's gradients only",
              found=f"{order}; .grad held this batch's gradient plus older ones")
    scaled = [g for g in events.loss_grads if not math.isclose(g, 1.0, rel_tol=1e-6)]
    if scaled:
        _fail("trainstep-backward-scaled", subject=subject, expected="loss.backward(): d(loss)/d(loss) = 1",
              found=f"{order}; backward() ran on {scaled[0]:.4g} × the loss")
    if type(result) is not float:
        _fail("trainstep-not-a-float", subject=subject, expected="a Python float (loss.item())",
              found=f"a {type(result).__name__}")
    if not math.isclose(result, expected_loss, rel_tol=1e-5, abs_tol=1e-6):
        if math.isclose(result, loss_after, rel_tol=1e-5, abs_tol=1e-6):
            _fail("trainstep-loss-after-step", subject=subject, expected=f"{expected_loss:.6f} (before the step)",
                  found=f"{result:.6f}, the loss of a second forward pass after the step")
        _fail("trainstep-wrong-loss", subject=subject, expected=f"{expected_loss:.6f}", found=f"{result!r}")


# --- PROBES: the grader's re-check (course_utils.verdict_probes) ------------------------------------
# The kernel calls the learner's code on scenarios drawn from a seed chosen at grading time and sends
# back values only; the grader rebuilds the same scenarios with these builders and judges the values.
# Whether torch.optim did the work cannot be seen in values: the in-kernel checks say.

def sgd_scenario(seed: int) -> dict[str, Any]:
    """Exercise 1: two seeded problems and three settings (momentum, no momentum, momentum and weight decay)."""
    generator = torch.Generator().manual_seed(seed)

    def uniform(low: float, high: float) -> float:
        return round(low + (high - low) * float(torch.rand(1, generator=generator)), 4)

    settings = [(uniform(0.02, 0.15), uniform(0.5, 0.95), 0.0), (uniform(0.02, 0.15), 0.0, 0.0),
                (uniform(0.02, 0.15), uniform(0.5, 0.95), uniform(0.05, 0.3))]
    return {"problem": _problem(seed), "other": _problem(seed + 1), "settings": settings, "steps": 5}


def sgd_step_loss(params: list[torch.Tensor], data: torch.Tensor) -> torch.Tensor:
    """The loss whose gradients ManualSGD steps with in the re-check."""
    return _loss(params, data)


def train_step_scenario(seed: int) -> tuple[nn.Module, list[tuple[torch.Tensor, torch.Tensor]]]:
    """Exercise 2: a seeded small model with no gradients yet (a fresh loop), and 2 to 5 batches.

    With no old gradients, ``zero_grad`` right after ``step`` is as right as ``zero_grad`` first.
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):  # the notebook's random state is left as it was
        torch.manual_seed(seed)
        net = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 4))
    steps = 2 + int(torch.randint(0, 4, (1,), generator=generator))
    batches = [(torch.randn(10, 6, generator=generator), torch.randint(0, 4, (10,), generator=generator))
               for _ in range(steps)]
    return net, batches


def _values(tensors: list[Any]) -> list[torch.Tensor | None]:
    return [t.detach().clone().as_subclass(torch.Tensor) if isinstance(t, torch.Tensor) else None for t in tensors]


def _sgd_run(manual_sgd: type, start: list[torch.Tensor], data: list[torch.Tensor], steps: int,
             settings: tuple[float, float, float], *, clear: str = "none") -> dict[str, Any]:
    lr, momentum, weight_decay = settings
    params = [p.clone().requires_grad_(True) for p in start]
    optimizer = manual_sgd((p for p in params), lr=lr, momentum=momentum, weight_decay=weight_decay)
    trajectory, grads = [], []
    for step in range(steps):
        for p in params:
            if clear == "none" or p.grad is None:
                p.grad = None
            else:
                p.grad.zero_()
        with torch.enable_grad():
            _loss(params, data[step]).backward()
        optimizer.step()
        trajectory.append(_values(params))
        grads.append(_values([p.grad for p in params]))
    return {"trajectory": trajectory, "grads": grads}


def _probe_manual_sgd(ns: dict[str, Any], seed: int) -> dict[str, Any]:
    manual_sgd = ns["ManualSGD"]
    scenario = sgd_scenario(seed)
    (start, data), (other_start, other_data), steps = scenario["problem"], scenario["other"], scenario["steps"]
    values: dict[str, Any] = {"runs": [_sgd_run(manual_sgd, start, data, steps, s) for s in scenario["settings"]],
                              "zeroed": _sgd_run(manual_sgd, start, data, steps, scenario["settings"][0],
                                                 clear="zero")["trajectory"]}
    # Two optimizers stepped in turn.
    mine = [[p.clone().requires_grad_(True) for p in begin] for begin in (start, other_start)]
    lr, momentum, weight_decay = scenario["settings"][2]
    optimizers = [manual_sgd(list(params), lr=lr, momentum=momentum, weight_decay=weight_decay) for params in mine]
    for step in range(steps):
        for params, optimizer, problem in zip(mine, optimizers, (data, other_data)):
            for p in params:
                p.grad = None
            with torch.enable_grad():
                _loss(params, problem[step]).backward()
            optimizer.step()
    values["interleaved"] = [_values(params) for params in mine]
    # A parameter without a gradient, then zero_grad.
    used, unused = start[0].clone().requires_grad_(True), start[1].clone().requires_grad_(True)
    optimizer = manual_sgd([used, unused], lr=lr, momentum=momentum, weight_decay=weight_decay)
    optimizer.zero_grad()  # no gradient yet, as first thing in a training loop
    with torch.enable_grad():
        (used ** 2).sum().backward()
    optimizer.step()
    values["none_grad"] = _values([used, unused])
    unused.grad = torch.ones_like(unused)
    optimizer.zero_grad()
    values["cleared"] = [p.grad is None or (isinstance(p.grad, torch.Tensor) and not bool(p.grad.any()))
                         for p in (used, unused)]
    return values


def _probe_train_step(ns: dict[str, Any], seed: int) -> dict[str, Any]:
    model, batches = train_step_scenario(seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for x, y in batches:
        result = ns["train_step"](model, x.clone(), y.clone(), nn.CrossEntropyLoss(), optimizer)
        losses.append(result if type(result) is float else None)
    return {"losses": losses, "parameters": _values(list(model.parameters()))}


PROBES = {"ex1-tests": _probe_manual_sgd, "ex2-tests": _probe_train_step}
