"""Lesson 06, Exercise 2 · One training step: train_step.

``train_step`` is run with a recording model, loss and optimizer that see the order of
``zero_grad``, ``backward`` and ``step`` and the gradients each step finds, so that a mistake is
named by what happened. The parameters after each call of a correct step are stored
(``expected/lesson06-train-step.json``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from course_utils.checks.learner import call_learner, error_text
from course_utils.checks.lesson06.common import LESSON, probe_values, stored_results, stored_tensors
from course_utils.diagnoses import Exercise, fail_with

# The section a student who made these mistakes revisits.
SECTION = "4 · Where `zero_grad` goes"
EXERCISE = Exercise(LESSON, "ex2-tests", "Exercise 2 · One training step")
DIAGNOSES = EXERCISE.diagnoses(
    ("trainstep-no-zero-grad",
     "the gradients were not cleared: step() used this batch's gradient plus every earlier one",
     "call optimizer.zero_grad() once per call: first thing in train_step (the usual place), or right after "
     "optimizer.step().",
     "gradients", SECTION),
    ("trainstep-step-before-backward",
     "optimizer.step() ran before loss.backward()",
     "the order is zero_grad, forward, loss, backward, step. A step before backward finds .grad cleared "
     "(None) and moves nothing; the gradients backward computes afterwards are wiped unused by the next "
     "zero_grad, so the model never learns.",
     "gradients", SECTION),
    ("trainstep-cleared-before-step",
     "the gradients were cleared between loss.backward() and optimizer.step(), so the step had none",
     "zero the gradients before backward() (first thing in train_step) or right after step(), never between "
     "backward and step.",
     "gradients", SECTION),
    ("trainstep-no-backward",
     "loss.backward() was never called",
     "call loss.backward() after computing the loss and before optimizer.step().",
     "gradients", SECTION),
    ("trainstep-no-grad",
     "the forward pass of the loss that backward() needs ran without gradient tracking (inside torch.no_grad())",
     "only the update needs torch.no_grad(), and the optimizer does that itself: run the forward pass normally. "
     "Setting loss.requires_grad = True silences PyTorch's error, but no gradient reaches the model.",
     "modes", SECTION),
    ("trainstep-backward-scaled",
     "backward() ran on a multiple of the loss, not on the loss itself, so every gradient and step is scaled",
     "call loss.backward() on the loss itself: a loss divided by N before backward belongs to gradient "
     "accumulation over N batches (lesson 08), not to one training step.",
     "gradients", SECTION),
    ("trainstep-optimizer-ignored",
     "the optimizer passed to train_step never stepped",
     "call step() on the `optimizer` argument; do not create an optimizer inside train_step.",
     "optimizer", SECTION),
    ("trainstep-steps-per-call",
     "optimizer.step() did not run exactly once per call",
     "one call of train_step = one optimizer.step(), after one loss.backward().",
     "optimizer", SECTION),
    ("trainstep-model-ignored",
     "the model passed to train_step was never called",
     "compute model(xb) with the `model` argument, not a global model.",
     "interface", SECTION),
    ("trainstep-criterion-ignored",
     "the criterion passed to train_step was never called",
     "compute the loss with the `criterion` argument: loss = criterion(model(xb), yb).",
     "interface", SECTION),
    ("trainstep-batch-ignored",
     "the loss was not computed on the batch (xb, yb) passed to train_step",
     "use the xb and yb arguments, not global tensors: criterion(model(xb), yb).",
     "interface", SECTION),
    ("trainstep-not-a-float",
     "train_step did not return a Python float",
     "return loss.item(): a float, which also lets the batch's graph go.",
     "interface", SECTION),
    ("trainstep-loss-after-step",
     "train_step returned the loss after the step (a second forward pass), not the loss it stepped on",
     "return loss.item() of the loss computed before optimizer.step(): no second forward pass, with or "
     "without torch.no_grad().",
     "metrics", SECTION),
    ("trainstep-wrong-loss",
     "train_step returned a number that is not the batch's loss",
     "return loss.item(), with loss = criterion(model(xb), yb).",
     "metrics", SECTION),
    ("trainstep-trajectory",
     "the parameters after train_step differ from those of a correct step",
     "optimizer.zero_grad(); loss = criterion(model(xb), yb); loss.backward(); optimizer.step().",
     "optimizer", SECTION),
    ("trainstep-raised",
     "train_step raised an exception",
     "the lines above this message show where in your code it was raised; "
     "train_step(model, xb, yb, criterion, optimizer) uses only its arguments.",
     "interface", SECTION),
)
FORBIDDEN_CALLS = ()


class _Events:
    """What happened during one call of train_step, in order."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.forwards: list[tuple[bool, bool, int]] = []  # (grad enabled, input is the given batch, events before)
        self.losses: list[tuple[float, bool]] = []   # (value, targets are the given batch)
        self.grads_at_step: list[list[torch.Tensor | None]] = []
        self.loss_grads: list[float] = []  # d(what backward ran on) / d(loss): 1 for loss.backward()
        self.fresh: dict[int, torch.Tensor] = {}  # this call's gradient of each parameter, as backward computed it
        self.batch: tuple[torch.Tensor, torch.Tensor] | None = None  # the (xb, yb) given to train_step

    def backward_reached_loss(self, grad: torch.Tensor) -> None:
        """A hook on the criterion's loss: backward went through it, with this gradient."""
        self.log.append("backward")
        self.loss_grads.append(float(grad.detach().sum()))


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
    wanted = stored_tensors(stored_results("lesson06-train-step", seed))
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
                fail_with("trainstep-trajectory", subject=subject,
                          expected=f"the parameters of a correct step after call {call} of {steps}",
                          found=f"call {call}: {_order(events.log)}; afterwards {name} differs by up to "
                            f"{(mine - theirs).abs().max().item():.3g}")


def _diagnose_call(events: _Events, result: Any, error: BaseException | None, *, call: int,
                   steps_before: list[torch.Tensor], model: _ProbeModel, expected_loss: float,
                   loss_after: float) -> None:
    subject = "train_step"
    order = f"call {call}: {_order(events.log)}"
    if not events.forwards:
        fail_with("trainstep-model-ignored", subject=subject, expected="model(xb) with the model passed in",
                  found=f"{order}; the model passed in was never called")
    # The training forward pass is the one before the first backward (or step); a second one after the
    # step, with tracking off, only computes a loss to return, which the loss checks below name.
    first = next((events.log.index(e) for e in ("backward", "step") if e in events.log), len(events.log))
    training = [enabled for enabled, _, position in events.forwards if position <= first]
    if training and not any(training):
        fail_with("trainstep-no-grad", subject=subject, expected="a forward pass that records the graph",
                  found=f"{order}; the forward pass ran with gradient tracking off"
                    + (f" ({error_text(error)})" if error is not None else ""))
    if not any(given for _, given, _ in events.forwards) or (events.losses and not any(g for _, g in events.losses)):
        fail_with("trainstep-batch-ignored", subject=subject, expected="the loss of the batch passed in",
                  found=f"{order}; model or criterion received other tensors than xb, yb")
    if not events.losses:
        fail_with("trainstep-criterion-ignored", subject=subject,
                  expected="criterion(model(xb), yb) with the criterion passed in",
                  found=f"{order}; the criterion passed in was never called")
    if error is not None:
        fail_with("trainstep-raised", subject=subject, expected="one training step",
                  found=f"{order}; {error_text(error)}")
    backwards, steps = events.log.count("backward"), events.log.count("step")
    if backwards == 0:
        fail_with("trainstep-no-backward", subject=subject, expected="zero_grad, backward, step", found=order)
    if steps == 0:
        moved = any(not torch.equal(p.detach(), q) for p, q in zip(model.parameters(), steps_before))
        fail_with("trainstep-optimizer-ignored", subject=subject,
                  expected="optimizer.step() on the optimizer passed in",
                  found=order + ("; the parameters moved all the same: another optimizer?" if moved else ""))
    if steps != 1:
        fail_with("trainstep-steps-per-call", subject=subject, expected="1 step per call",
                  found=f"{order}: {steps} steps")
    first_step, first_backward = events.log.index("step"), events.log.index("backward")
    grads = events.grads_at_step[0]
    if first_step < first_backward:
        seen = "None" if all(g is None for g in grads) else (
            "zeros" if all(g is None or not bool(g.any()) for g in grads) else "the previous call's gradients")
        fail_with("trainstep-step-before-backward", subject=subject, expected="zero_grad, forward, backward, step",
                  found=f"{order}; the step found {seen} in .grad")
    fresh = [events.fresh.get(i) for i in range(len(grads))]
    if all(g is None or not bool(g.any()) for g in grads) and any(f is not None and bool(f.any()) for f in fresh):
        fail_with("trainstep-cleared-before-step", subject=subject, expected="the step to find this batch's gradients",
                  found=f"{order}; the step found every .grad cleared")
    if any(g is not None and f is not None and not torch.allclose(g, f, rtol=1e-5, atol=1e-7)
           for g, f in zip(grads, fresh)):
        fail_with("trainstep-no-zero-grad", subject=subject, expected="the step to use this batch's gradients only",
                  found=f"{order}; .grad held this batch's gradient plus older ones")
    scaled = [g for g in events.loss_grads if not math.isclose(g, 1.0, rel_tol=1e-6)]
    if scaled:
        fail_with("trainstep-backward-scaled", subject=subject, expected="loss.backward(): d(loss)/d(loss) = 1",
                  found=f"{order}; backward() ran on {scaled[0]:.4g} × the loss")
    if type(result) is not float:
        fail_with("trainstep-not-a-float", subject=subject, expected="a Python float (loss.item())",
                  found=f"a {type(result).__name__}")
    if not math.isclose(result, expected_loss, rel_tol=1e-5, abs_tol=1e-6):
        if math.isclose(result, loss_after, rel_tol=1e-5, abs_tol=1e-6):
            fail_with("trainstep-loss-after-step", subject=subject, expected=f"{expected_loss:.6f} (before the step)",
                      found=f"{result:.6f}, the loss of a second forward pass after the step")
        fail_with("trainstep-wrong-loss", subject=subject, expected=f"{expected_loss:.6f}", found=f"{result!r}")


# --- the grader's re-check (course_utils.verdict_probes): this exercise's scenario and probe ----------

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


def probe(ns: dict[str, Any], seed: int) -> dict[str, Any]:
    """The kernel's half of the re-check: train_step on the seed's model and batches."""
    model, batches = train_step_scenario(seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for x, y in batches:
        result = ns["train_step"](model, x.clone(), y.clone(), nn.CrossEntropyLoss(), optimizer)
        losses.append(result if type(result) is float else None)
    return {"losses": losses, "parameters": probe_values(list(model.parameters()))}
