"""Lesson 06's re-check judges: the learner's ManualSGD and train_step, against torch.optim.SGD.

The scenarios come from the exercise modules of :mod:`course_utils.checks.lesson06` (``ex1.sgd_scenario``,
``ex2.train_step_scenario``); the reference is ``torch.optim.SGD`` run on the same problems.
Tolerances are looser than the lesson's own checks, so that every correct style passes. Whether
torch.optim did the work, and in which order train_step called zero_grad, backward and step when
the values do not show it, stays with the in-kernel checks.

``EXPECTED`` computes what the visible checks compare with for their fixed inputs: torch.optim.SGD's
trajectories, the final parameters of the usual wrong update rules (so the check can name the one a
learner wrote), and the parameters after a correct train_step loop (``course expected`` stores them).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from course_tools.grade.judges._compare import tensors_close
from course_utils.checks.lesson06.common import CHECK_SEEDS
from course_utils.checks.lesson06.ex1 import CHECK_SETTINGS, CHECK_STEPS, sgd_check_inputs, sgd_scenario, sgd_step_loss
from course_utils.checks.lesson06.ex2 import TRAIN_STEPS, train_step_check_inputs, train_step_scenario


def _torch_run(start: list[torch.Tensor], data: list[torch.Tensor], steps: int,
               settings: tuple[float, float, float]) -> tuple[list[list[torch.Tensor]], list[list[torch.Tensor]]]:
    lr, momentum, weight_decay = settings
    params = [p.clone().requires_grad_(True) for p in start]
    optimizer = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    trajectory, grads = [], []
    for step in range(steps):
        optimizer.zero_grad()
        sgd_step_loss(params, data[step]).backward()
        optimizer.step()
        trajectory.append([p.detach().clone() for p in params])
        grads.append([p.grad.clone() for p in params])
    return trajectory, grads


def _trajectory_matches(found: Any, expected: list[list[torch.Tensor]]) -> bool:
    return isinstance(found, list) and len(found) == len(expected) and all(
        tensors_close(f, e) for f, e in zip(found, expected))


def judge_manual_sgd(values: dict[str, Any], seed: int) -> str:
    """Exercise 1: torch.optim.SGD's trajectory for each setting, .grad left alone, fresh state per optimizer."""
    scenario = sgd_scenario(seed)
    (start, data), (other_start, other_data), steps = scenario["problem"], scenario["other"], scenario["steps"]
    runs = values.get("runs")
    if not (isinstance(runs, list) and len(runs) == len(scenario["settings"])):
        return "the re-check did not get one run per setting"
    for run, settings in zip(runs, scenario["settings"]):
        lr, momentum, weight_decay = settings
        what = f"lr={lr}, momentum={momentum}, weight_decay={weight_decay}"
        trajectory, grads = _torch_run(start, data, steps, settings)
        if not isinstance(run, dict) or not _trajectory_matches(run.get("trajectory"), trajectory):
            return f"ManualSGD's parameters differ from torch.optim.SGD's over {steps} steps ({what})"
        if not _trajectory_matches(run.get("grads"), grads):
            return f"ManualSGD.step() changed the parameters' .grad ({what})"
    first, _ = _torch_run(start, data, steps, scenario["settings"][0])
    if not _trajectory_matches(values.get("zeroed"), first):
        return "ManualSGD takes other steps when .grad is zeroed in place between steps instead of set to None"
    settings = scenario["settings"][2]
    interleaved = values.get("interleaved")
    expected = [_torch_run(begin, problem, steps, settings)[0][-1]
                for begin, problem in ((start, data), (other_start, other_data))]
    if not (isinstance(interleaved, list) and len(interleaved) == 2
            and all(tensors_close(f, e) for f, e in zip(interleaved, expected))):
        return "two ManualSGD optimizers stepped in turn do not each follow their own torch.optim.SGD trajectory"
    lr, momentum, weight_decay = settings
    used = start[0] - lr * (2 * start[0] + weight_decay * start[0])
    if not tensors_close(values.get("none_grad"), [used, start[1]]):
        return "ManualSGD.step() moved a parameter whose .grad is None (or took a wrong first step)"
    if values.get("cleared") != [True, True]:
        return "ManualSGD.zero_grad() left a gradient behind"
    return ""


def judge_train_step(values: dict[str, Any], seed: int) -> str:
    """Exercise 2: each call returns its batch's loss before the step; the parameters follow a correct loop."""
    net, batches = train_step_scenario(seed)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    criterion = nn.CrossEntropyLoss()
    expected = []
    for x, y in batches:
        optimizer.zero_grad()
        loss = criterion(net(x), y)
        loss.backward()
        optimizer.step()
        expected.append(loss.item())
    losses = values.get("losses")
    if not (isinstance(losses, list) and len(losses) == len(expected)):
        return "the re-check did not get one loss per call"
    for call, (found, loss) in enumerate(zip(losses, expected), start=1):
        if type(found) is not float:
            return f"call {call} of train_step returned {found!r}, not a Python float"
        if not math.isclose(found, loss, rel_tol=1e-4, abs_tol=1e-6):
            return f"call {call} of train_step returned {found:.6f}, the batch's loss before the step is {loss:.6f}"
    if not tensors_close(values.get("parameters"), [p.detach() for p in net.parameters()]):
        return f"the parameters after {len(batches)} calls of train_step differ from a correct loop's"
    return ""


JUDGES = {"ex1-tests": judge_manual_sgd, "ex2-tests": judge_train_step}


# --- EXPECTED: what the visible checks compare with, for their fixed inputs --------------------------

def _gradients(params: list[torch.Tensor], data: torch.Tensor) -> list[torch.Tensor]:
    leaves = [p.detach().clone().requires_grad_(True) for p in params]
    with torch.enable_grad():
        return list(torch.autograd.grad(sgd_step_loss(leaves, data), leaves))


def _simulate(rule: str, start: list[torch.Tensor], data: list[torch.Tensor], steps: int,
              s: Any) -> list[list[torch.Tensor]]:
    """The trajectory of a typical wrong update rule (``_RULE_CODES``), for the check to name it."""
    params = [p.clone() for p in start]
    buffers: list[torch.Tensor | None] = [None] * len(params)
    shared: torch.Tensor | None = None
    trajectory = []
    for step in range(steps):
        grads = _gradients(params, data[step])
        for i, (p, g) in enumerate(zip(params, grads)):
            wd = 0.0 if rule == "wd-ignored" else -s.weight_decay if rule == "wd-sign" else s.weight_decay
            d_p = g if rule == "wd-decoupled" else g + wd * p
            if rule == "no-momentum" or s.momentum == 0:
                update = d_p
            elif rule == "shared":
                shared = d_p.clone() if shared is None else s.momentum * shared + d_p
                update = shared
            elif rule == "dampened":
                buffers[i] = d_p.clone() if buffers[i] is None else s.momentum * buffers[i] + (1 - s.momentum) * d_p
                update = buffers[i]
            elif rule == "dampened-from-zero":
                previous = torch.zeros_like(p) if buffers[i] is None else buffers[i]
                buffers[i] = s.momentum * previous + (1 - s.momentum) * d_p
                update = buffers[i]
            elif rule == "stale":
                update = torch.zeros_like(p) if buffers[i] is None else buffers[i]
                buffers[i] = s.momentum * update + d_p
            else:
                buffers[i] = d_p.clone() if buffers[i] is None else s.momentum * buffers[i] + d_p
                update = d_p + s.momentum * buffers[i] if rule == "nesterov" else buffers[i]
            if rule == "wd-decoupled":
                update = update + s.weight_decay * p
            params[i] = p + s.lr * update if rule == "ascent" else p - s.lr * update
        trajectory.append([p.clone() for p in params])
    return trajectory


_RULE_CODES = {
    "ascent": "sgd-ascent", "no-momentum": "sgd-momentum-ignored", "shared": "sgd-shared-buffer",
    "dampened": "sgd-momentum-dampened", "dampened-from-zero": "sgd-momentum-dampened",
    "nesterov": "sgd-momentum-nesterov", "stale": "sgd-momentum-stale", "wd-ignored": "sgd-weight-decay-ignored",
    "wd-decoupled": "sgd-weight-decay-decoupled", "wd-sign": "sgd-weight-decay-sign",
}


def _rounded(tensors: list[torch.Tensor]) -> list[list[float]]:
    """Parameters as stored: 8 significant digits, far below the check's tolerance (1e-4), for small files."""
    return [[float(f"{v:.8g}") for v in t.reshape(-1).tolist()] for t in tensors]


def _manual_sgd_expected(seed: int) -> dict[str, Any]:
    start, data = sgd_check_inputs(seed)
    settings = []
    for s in CHECK_SETTINGS:
        torch_run = _torch_run(start, data, CHECK_STEPS, (s.lr, s.momentum, s.weight_decay))[0]
        mistakes = []
        for rule, code in _RULE_CODES.items():  # the rules that differ from PyTorch's under these settings
            if rule.startswith("wd") and s.weight_decay == 0:
                continue
            if rule in ("no-momentum", "shared", "dampened", "dampened-from-zero", "nesterov", "stale") and s.momentum == 0:
                continue
            mistakes.append([code, _rounded(_simulate(rule, start, data, CHECK_STEPS, s)[-1])])
        settings.append({"torch": [_rounded(step) for step in torch_run], "mistakes": mistakes})
    other_start, other_data = sgd_check_inputs(seed + 1)
    first = CHECK_SETTINGS[0]
    other = _torch_run(other_start, other_data, 4, (first.lr, first.momentum, first.weight_decay))[0][-1]
    return {"settings": settings, "other": _rounded(other)}


def _train_step_expected(seed: int) -> list[list[Any]]:
    """The parameters after each call of a correct train_step (zero_grad, forward, loss, backward, step)."""
    net, batches = train_step_check_inputs(seed)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    after = []
    for x, y in batches[:TRAIN_STEPS]:
        optimizer.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        optimizer.step()
        after.append([_significant(p.detach().tolist()) for p in net.parameters()])
    return after


def _significant(values: Any) -> Any:
    """Nested lists of floats with 8 significant digits (far below the check's tolerance), for small files."""
    return [_significant(v) for v in values] if isinstance(values, list) else float(f"{values:.8g}")


def _per_seed(build: Callable[[int], Any]) -> Callable[[], dict[str, Any]]:
    return lambda: {str(seed): build(seed) for seed in CHECK_SEEDS}


EXPECTED = {
    "lesson06-manual-sgd": _per_seed(_manual_sgd_expected),
    "lesson06-train-step": _per_seed(_train_step_expected),
}
