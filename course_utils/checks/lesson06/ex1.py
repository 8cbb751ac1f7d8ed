"""Lesson 06, Exercise 1 · SGD with momentum and weight decay, by hand: ManualSGD.

``ManualSGD`` is run on seeded parameters and losses the notebook never prints, and its trajectory
is compared with PyTorch's update rule and with the trajectories of the usual wrong rules (a
dampened or Nesterov momentum, one buffer for all parameters, weight decay outside the buffer, ...),
so that a mismatch is named by the rule the learner actually wrote. Those trajectories are stored
(``expected/lesson06-manual-sgd.json``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from unittest import mock

import torch

from course_utils.checks import expected as stored
from course_utils.checks.learner import call_learner, error_text
from course_utils.checks.lesson06.common import LESSON, probe_values, stored_results, stored_tensors
from course_utils.diagnoses import Exercise, ForbiddenCall, fail_with

# The section a student who made these mistakes revisits.
SECTION = "2 · `torch.optim.SGD`: the same step, and momentum"
EXERCISE = Exercise(LESSON, "ex1-tests", "Exercise 1 · SGD with momentum and weight decay, by hand")
DIAGNOSES = EXERCISE.diagnoses(
    ("sgd-wraps-torch-optim",
     "ManualSGD used torch.optim.SGD (or another torch.optim optimizer): not allowed here",
     "write the update yourself, with the parameters' .grad: the point of the exercise is to see that it is "
     "a few lines.",
     "not-allowed", SECTION),
    ("sgd-no-torch-no-grad",
     "step() changed a parameter in place outside torch.no_grad(): PyTorch raised 'a leaf Variable that "
     "requires grad is being used in an in-place operation'",
     "put the whole update inside `with torch.no_grad():`: the update is not part of the graph.",
     "modes", SECTION),
    ("sgd-parameters-unchanged",
     "step() did not move the model's parameters: `p = p - lr * buf` (rebinding) makes a new tensor and "
     "leaves the parameter as it was",
     "update the parameter itself, in place: p -= lr * buf (or p.sub_(lr * buf)) inside torch.no_grad().",
     "optimizer", SECTION),
    ("sgd-params-generator",
     "only the first step() moved the parameters: the params generator was used up",
     "model.parameters() can be read once: keep self.params = list(params) in __init__.",
     "interface", SECTION),
    ("sgd-none-grad",
     "step() failed on a parameter whose .grad is None",
     "skip such parameters (if p.grad is None: continue), as torch.optim.SGD does.",
     "interface", SECTION),
    ("sgd-none-grad-moved",
     "step() moved a parameter whose .grad is None",
     "skip parameters without a gradient entirely: no update and no change to their momentum buffer.",
     "optimizer", SECTION),
    ("sgd-ascent",
     "the parameters moved along the gradient (uphill): p += lr * buf",
     "subtract: p -= lr * buf; the gradient points uphill.",
     "optimizer", SECTION),
    ("sgd-momentum-ignored",
     "with momentum > 0 the steps are plain SGD steps: the momentum buffer was not used or not kept",
     "keep one buffer per parameter between steps (self.buffers[i]) and step by lr * buf.",
     "optimizer", SECTION),
    ("sgd-shared-buffer",
     "one momentum buffer was shared by all parameters",
     "keep one buffer per parameter, the same shape as it: self.buffers = [None] * len(self.params).",
     "optimizer", SECTION),
    ("sgd-buffer-shared-between-optimizers",
     "two ManualSGD optimizers shared their momentum buffers",
     "create the buffers in __init__ (self.buffers = ...), never as a class attribute or a default argument.",
     "optimizer", SECTION),
    ("sgd-buffer-aliases-grad",
     "the momentum buffer is the .grad tensor itself, so zeroing or accumulating .grad changes the buffer",
     "start the buffer from a copy: buf = p.grad.clone() (or torch.zeros_like(p) then buf.mul_(m).add_(grad)).",
     "optimizer", SECTION),
    ("sgd-momentum-dampened",
     "the momentum buffer is an average, buf = momentum * buf + (1 - momentum) * grad",
     "PyTorch adds the full gradient: buf = momentum * buf + grad (and buf = grad on the first step).",
     "optimizer", SECTION),
    ("sgd-momentum-nesterov",
     "the step is lr * (grad + momentum * buf) (Nesterov momentum)",
     "plain momentum steps by the buffer itself: p -= lr * buf, with buf = momentum * buf + grad.",
     "optimizer", SECTION),
    ("sgd-momentum-stale",
     "the step used the buffer from before this step's gradient was added (the first step did not move)",
     "update the buffer first (buf = momentum * buf + grad), then step with it: p -= lr * buf.",
     "optimizer", SECTION),
    ("sgd-weight-decay-ignored",
     "weight_decay had no effect",
     "add weight_decay * p to the gradient first: d_p = p.grad + weight_decay * p, then momentum and step.",
     "optimizer", SECTION),
    ("sgd-weight-decay-decoupled",
     "weight decay was applied outside the momentum buffer (p -= lr * weight_decay * p on its own)",
     "torch.optim.SGD adds weight_decay * p to the gradient before the momentum buffer: "
     "d_p = p.grad + weight_decay * p; buf = momentum * buf + d_p.",
     "optimizer", SECTION),
    ("sgd-weight-decay-sign",
     "weight decay pushed the parameters away from 0: d_p = grad - weight_decay * p",
     "decay pulls towards 0: d_p = p.grad + weight_decay * p.",
     "optimizer", SECTION),
    ("sgd-weight-decay-changed-grad",
     "step() changed the parameters' .grad (weight decay added to p.grad in place?)",
     "leave p.grad as backward() left it: d_p = p.grad + weight_decay * p makes a new tensor.",
     "optimizer", SECTION),
    # Public bug reports (e.g. jcjohnson/pytorch-examples#4, #7): p.grad.zero_() before the first backward
    ("sgd-zero-grad-none",
     "zero_grad() failed on a parameter whose .grad is None (as every .grad is before the first backward)",
     "clear only gradients that exist: `if p.grad is not None: p.grad.zero_()`, or simply p.grad = None.",
     "interface", SECTION),
    ("sgd-zero-grad",
     "zero_grad() did not clear the gradients",
     "set p.grad = None for every parameter (or p.grad.zero_() where it is not None).",
     "gradients", SECTION),
    ("sgd-trajectory",
     "the parameters after ManualSGD's steps differ from torch.optim.SGD's",
     "d_p = grad + weight_decay * p; buf = d_p on a parameter's first step, then momentum * buf + d_p; "
     "p -= lr * buf, in place, inside torch.no_grad().",
     "optimizer", SECTION),
    ("sgd-raised",
     "ManualSGD raised an exception",
     "the lines above this message show where in your code it was raised; the signature is "
     "ManualSGD(params, lr, momentum=0.0, weight_decay=0.0), and step() and zero_grad() take no arguments.",
     "interface", SECTION),
)
# The library calls an exercise forbids, found by the grader in the submitted source (course_tools.grade.source_scan):
# ManualSGD is to write the update, not to hand it to a torch.optim optimizer.
FORBIDDEN_CALLS = (ForbiddenCall("ex1-tests", "ManualSGD", ("torch.optim",), "sgd-wraps-torch-optim"),)


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


def _fresh_gradients(params: list[torch.Tensor], data: torch.Tensor, clear: str = "none") -> None:
    """This step's gradients in ``.grad``: the old ones cleared (set to None, or zeroed in place), then backward."""
    for p in params:
        if clear == "none" or p.grad is None:
            p.grad = None
        else:
            p.grad.zero_()
    with torch.enable_grad():
        _loss(params, data).backward()


def sgd_check_inputs(seed: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The visible check's problem for ``seed``: starting parameters and per-step data.

    Its second problem, for two optimizers stepped in turn, is ``seed + 1``'s.
    """
    return _problem(seed)


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
        fail_with("sgd-wraps-torch-optim", subject=subject, expected="an update written by hand",
                  found=f"ManualSGD created {', '.join(used) or 'a torch.optim.SGD'}")
    if error is not None:
        fail_with("sgd-raised", subject=subject,
                  expected=f"ManualSGD(params, lr={s.lr}, momentum={s.momentum}, weight_decay={s.weight_decay})",
                  found=error_text(error))
    return optimizer


def _step(optimizer: Any, what: str) -> None:
    subject = "ManualSGD.step()"
    with _library_optimizer_use() as used:
        _, error = call_learner(optimizer.step)
    if used:
        fail_with("sgd-wraps-torch-optim", subject=subject, expected="an update written by hand",
                  found=f"step() called {', '.join(used)}")
    if error is not None:
        text = error_text(error)
        if "leaf Variable that requires grad" in text:
            fail_with("sgd-no-torch-no-grad", subject=subject, expected=f"a step ({what})", found=text)
        if isinstance(error, (TypeError, AttributeError)) and "NoneType" in text:
            fail_with("sgd-none-grad", subject=subject, expected="parameters without a gradient skipped", found=text)
        fail_with("sgd-raised", subject=subject, expected=f"a step ({what})", found=text)


def _run_trajectory(manual_sgd: type, start: list[torch.Tensor], data: list[torch.Tensor], steps: int,
                    s: _Settings, *, clear: str = "none") -> tuple[list[list[torch.Tensor]], list[torch.Tensor]]:
    """Step the learner's optimizer; gradients are cleared by us (set to None, or zeroed in place)."""
    params = [p.clone().requires_grad_(True) for p in start]
    optimizer = _construct(manual_sgd, (p for p in params), s)
    trajectory = []
    what = f"lr={s.lr}, momentum={s.momentum}, weight_decay={s.weight_decay}"
    for step in range(steps):
        _fresh_gradients(params, data[step], clear)
        grads_before = [p.grad.clone() for p in params]
        _step(optimizer, what)
        if clear == "none" and any(p.grad is None or not torch.equal(p.grad, g) for p, g in zip(params, grads_before)):
            fail_with("sgd-weight-decay-changed-grad", subject="ManualSGD.step()", expected=".grad unchanged by step()",
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
    expected = stored_tensors(wanted["torch"])
    if all(_same(a, b) for a, b in zip(found, expected)):
        return
    settings = f"lr={s.lr}, momentum={s.momentum}, weight_decay={s.weight_decay}"
    if all(torch.equal(p, q) for p, q in zip(found[-1], start)):
        fail_with("sgd-parameters-unchanged", subject=subject,
                  expected=f"parameters that move at every step ({settings})",
                  found=f"parameters exactly as they started, after {steps} steps")
    if all(torch.equal(p, q) for later in found[1:] for p, q in zip(later, found[0])):
        fail_with("sgd-params-generator", subject=subject, expected="parameters that move at every step",
                  found="parameters that moved at step 1 and never again")
    for code, final in wanted["mistakes"]:  # [code, final parameters of that wrong rule], in the catalogue's order
        if _same(found[-1], [stored.tensor(p) for p in final]):
            fail_with(code, subject=subject, expected=f"torch.optim.SGD's trajectory ({settings})",
                      found=_describe_divergence(found, expected))
    fail_with("sgd-trajectory", subject=subject, expected=f"torch.optim.SGD's trajectory ({settings})",
              found=_describe_divergence(found, expected))


def check_manual_sgd(manual_sgd: type, *, seed: int = 3) -> None:
    """Run ``ManualSGD`` on seeded problems; raise on any mistake.

    The problems try momentum, weight decay, two optimizers and parameters whose gradient is None.
    """
    subject = "ManualSGD"
    wanted = stored_results("lesson06-manual-sgd", seed)
    start, data = _problem(seed)
    # A new optimizer must start from nothing: state kept on the class shows as a second run that differs.
    s = _Settings(0.1, 0.9, 0.0)
    first, _ = _run_trajectory(manual_sgd, start, data, 3, s)
    second, _ = _run_trajectory(manual_sgd, start, data, 3, s)
    if not all(_same(a, b, atol=0.0) for a, b in zip(first, second)):
        fail_with("sgd-buffer-shared-between-optimizers", subject=subject,
                  expected="two fresh ManualSGD optimizers on the same problem taking the same steps",
                  found="a second optimizer that took other steps: it started from the first one's buffers")
    for s, trajectories in zip(CHECK_SETTINGS, wanted["settings"]):
        _diagnose_trajectory(manual_sgd, start, data, s, trajectories)
    s = CHECK_SETTINGS[0]
    expected = stored_tensors(wanted["settings"][0]["torch"][:4])
    # Gradients zeroed in place between steps, as model.zero_grad(set_to_none=False) does.
    found, _ = _run_trajectory(manual_sgd, start, data, 4, s, clear="zero")
    if not all(_same(a, b) for a, b in zip(found, expected)):
        fail_with("sgd-buffer-aliases-grad", subject=subject,
                  expected="the same trajectory whether .grad is set to None or zeroed in place between steps",
                  found=_describe_divergence(found, expected))
    # Two optimizers stepped in turn must not share anything.
    other_start, other_data = _problem(seed + 1)
    mine = [[p.clone().requires_grad_(True) for p in begin] for begin in (start, other_start)]
    optimizers = [_construct(manual_sgd, list(params), s) for params in mine]
    for step in range(4):
        for params, optimizer, problem in zip(mine, optimizers, (data, other_data)):
            _fresh_gradients(params, problem[step])
            _step(optimizer, "two optimizers stepped in turn")
    for params, final in zip(mine, (expected[-1], [stored.tensor(p) for p in wanted["other"]])):
        if not _same([p.detach() for p in params], final):
            fail_with("sgd-buffer-shared-between-optimizers", subject=subject,
                      expected="each optimizer following its own torch.optim.SGD trajectory",
                      found="trajectories that differ once a second ManualSGD steps in between")
    # A parameter without a gradient is skipped; zero_grad clears every gradient.
    used, unused = start[0].clone().requires_grad_(True), start[1].clone().requires_grad_(True)
    optimizer = _construct(manual_sgd, [used, unused], _Settings(0.1, 0.9, 0.1))
    _, error = call_learner(optimizer.zero_grad)  # first thing in a loop: no parameter has a gradient yet
    if error is not None:
        fail_with("sgd-zero-grad-none", subject="ManualSGD.zero_grad()",
                  expected="zero_grad() to run on parameters whose .grad is None", found=error_text(error))
    with torch.enable_grad():
        (used ** 2).sum().backward()
    _step(optimizer, "a parameter whose .grad is None")
    if not torch.equal(unused.detach(), start[1]):
        fail_with("sgd-none-grad-moved", subject=subject, expected="the parameter without a gradient unchanged",
                  found=f"it moved by up to {(unused.detach() - start[1]).abs().max().item():.3g}")
    if not (used.is_leaf and used.requires_grad):
        fail_with("sgd-parameters-unchanged", subject=subject, expected="a parameter that stays a leaf requiring grad",
                  found=f"is_leaf={used.is_leaf}, requires_grad={used.requires_grad}")
    unused.grad = torch.ones_like(unused)
    _, error = call_learner(optimizer.zero_grad)
    if error is not None:
        fail_with("sgd-raised", subject="ManualSGD.zero_grad()", expected="the gradients cleared",
                  found=error_text(error))
    left = [p for p in (used, unused) if p.grad is not None and bool(p.grad.any())]
    if left:
        fail_with("sgd-zero-grad", subject="ManualSGD.zero_grad()", expected="every .grad None (or all zeros)",
                  found=f"{len(left)} of 2 parameters still hold a gradient")


# --- the grader's re-check (course_utils.verdict_probes): this exercise's scenario and probe ----------
# Whether torch.optim did the work cannot be seen in values: the in-kernel check says.

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


def _sgd_run(manual_sgd: type, start: list[torch.Tensor], data: list[torch.Tensor], steps: int,
             settings: tuple[float, float, float], *, clear: str = "none") -> dict[str, Any]:
    lr, momentum, weight_decay = settings
    params = [p.clone().requires_grad_(True) for p in start]
    optimizer = manual_sgd((p for p in params), lr=lr, momentum=momentum, weight_decay=weight_decay)
    trajectory, grads = [], []
    for step in range(steps):
        _fresh_gradients(params, data[step], clear)
        optimizer.step()
        trajectory.append(probe_values(params))
        grads.append(probe_values([p.grad for p in params]))
    return {"trajectory": trajectory, "grads": grads}


def probe(ns: dict[str, Any], seed: int) -> dict[str, Any]:
    """The kernel's half of the re-check: ManualSGD on the seed's problems and settings."""
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
            _fresh_gradients(params, problem[step])
            optimizer.step()
    values["interleaved"] = [probe_values(params) for params in mine]
    # A parameter without a gradient, then zero_grad.
    used, unused = start[0].clone().requires_grad_(True), start[1].clone().requires_grad_(True)
    optimizer = manual_sgd([used, unused], lr=lr, momentum=momentum, weight_decay=weight_decay)
    optimizer.zero_grad()  # no gradient yet, as first thing in a training loop
    with torch.enable_grad():
        (used ** 2).sum().backward()
    optimizer.step()
    values["none_grad"] = probe_values([used, unused])
    unused.grad = torch.ones_like(unused)
    optimizer.zero_grad()
    values["cleared"] = [p.grad is None or (isinstance(p.grad, torch.Tensor) and not bool(p.grad.any()))
                         for p in (used, unused)]
    return values
