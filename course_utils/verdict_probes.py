"""The student's side of the grader's re-check: run the learner's functions on inputs drawn at grading time.

``course grade`` does not take the kernel's word for a test cell. Right after each judged test
cell, it asks the kernel to evaluate :func:`probe_line` (an expression of a request of its own,
never a cell) on a seed drawn at grading time: the learner's functions run on fresh scenarios built
from it, and the answer is nothing but values (tensors, numbers, lists), serialised with
``torch.save``. The grader, in its own process, rebuilds the same scenarios from the same seed,
computes the answer with PyTorch, and judges (``course_tools.grade.verdict``). Whatever the
submission does to this process can only change the values sent back, and the values must be
right for inputs nobody saw before grading.

The scenario builders live here so that both sides build exactly the same inputs. Nothing here is
an answer to an exercise: the reference answers live only on the grader's side
(``course_tools.grade.judges``), which the grading sandbox cannot import.
Importing this module has no side effects.
"""

from __future__ import annotations

import base64
import importlib
import io
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_utils.data import RAW_MAX, make_course_data
from course_utils.recipe import DEFAULT_RECIPE, default_model

MARKER = "COURSE-VERDICT"
Values = dict[str, Any]


# --- scenarios, built the same on both sides --------------------------------------------------------

def loop_scenario(seed: int) -> tuple[nn.Module, DataLoader, DataLoader, torch.optim.Optimizer]:
    """A seeded small model, a shuffled training loader, a validation loader and an SGD optimiser."""
    generator = torch.Generator().manual_seed(seed)
    n_train = 120 + int(torch.randint(0, 160, (1,), generator=generator))
    batch = (32, 50, 64)[int(torch.randint(0, 3, (1,), generator=generator))]
    features, targets = make_course_data(n_train, seed=5000 + seed)
    val_features, val_targets = make_course_data(90, seed=6000 + seed)
    model = default_model(replace(DEFAULT_RECIPE, seed=seed, hidden=12))
    train = DataLoader(TensorDataset(features / RAW_MAX, targets), batch_size=batch, shuffle=True,
                       generator=torch.Generator().manual_seed(seed))
    val = DataLoader(TensorDataset(val_features / RAW_MAX, val_targets), batch_size=batch)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    return model, train, val, optimizer


def one_sample_scenario(seed: int) -> tuple[nn.Module, DataLoader, DataLoader, torch.optim.Optimizer]:
    """loop_scenario's smallest case: one training sample and one validation sample, a model seeded by ``seed``."""
    features, targets = make_course_data(1, seed=7000 + seed)
    val_features, val_targets = make_course_data(1, seed=8000 + seed)
    model = default_model(replace(DEFAULT_RECIPE, seed=seed + 1, hidden=12))
    train = DataLoader(TensorDataset(features / RAW_MAX, targets), batch_size=32, shuffle=True,
                       generator=torch.Generator().manual_seed(seed))
    val = DataLoader(TensorDataset(val_features / RAW_MAX, val_targets), batch_size=32)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    return model, train, val, optimizer


# --- probes: what the kernel sends back -------------------------------------------------------------

def _parameters(model: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def _number(value: Any) -> float | None:
    return float(value) if type(value) in (int, float) else None


_LOOP_CASES = (("", loop_scenario), ("one_sample_", one_sample_scenario))


def _probe_train_one_epoch(ns: dict[str, Any], seed: int) -> Values:
    values: Values = {}
    for key, build in _LOOP_CASES:
        model, train, _, optimizer = build(seed)
        loss = ns["train_one_epoch"](model, train, nn.CrossEntropyLoss(), optimizer, torch.device("cpu"))
        values.update({f"{key}loss": _number(loss), f"{key}parameters": _parameters(model)})
    return values


def _probe_evaluate(ns: dict[str, Any], seed: int) -> Values:
    values: Values = {}
    for key, build in _LOOP_CASES:
        model, _, val, _ = build(seed)
        model.train()
        result = ns["evaluate"](model, val, nn.CrossEntropyLoss(), torch.device("cpu"))
        pair = list(result) if isinstance(result, tuple) and len(result) == 2 else [None, None]
        values.update({f"{key}loss": _number(pair[0]), f"{key}accuracy": _number(pair[1]),
                       f"{key}parameters": _parameters(model)})
    return values


class FitStandIns:
    """Stand-ins for ``train_one_epoch`` and ``evaluate``, given to ``fit`` so that fit is judged on its own.

    They are not answers: they never train nor evaluate. Each call nudges the parameters by a known
    amount (training) and returns numbers made from its arguments and the call count, so the history
    that ``fit`` records shows which function it called, in which order, how often and with which
    arguments (the validation loader has 90 samples, the training loader more; the optimiser must be
    the one ``fit`` was given). The grader runs the same stand-ins under a correct ``fit``.
    """

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self.optimizer, self.calls = optimizer, 0

    def _number(self, model: nn.Module, loader: DataLoader, criterion: nn.Module, device: torch.device) -> float:
        self.calls += 1
        weights = sum(float(p.detach().double().sum()) for p in model.parameters())
        floor = float(criterion(torch.zeros(1, 3, device=device), torch.zeros(1, dtype=torch.long, device=device)))
        return weights / 100 + len(loader.dataset) / 100 + floor + self.calls / 10

    def train_one_epoch(self, model: nn.Module, loader: DataLoader, criterion: nn.Module,
                        optimizer: torch.optim.Optimizer, device: torch.device) -> float:
        """Nudge every parameter by a known amount; return a number made from the arguments."""
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.add_(0.01 * (self.calls + 1))
        return self._number(model, loader, criterion, device) + (0.0 if optimizer is self.optimizer else 1e3)

    def evaluate(self, model: nn.Module, loader: DataLoader, criterion: nn.Module,
                 device: torch.device) -> tuple[float, float]:
        """Return a (loss, accuracy) pair made from the arguments; change nothing."""
        number = self._number(model, loader, criterion, device)
        return number + 0.5, self.calls / 100


def _probe_fit(ns: dict[str, Any], seed: int) -> Values:
    fit = ns["fit"]
    model, train, val, optimizer = loop_scenario(seed)
    stand_ins = FitStandIns(optimizer)
    saved = {name: fit.__globals__.get(name) for name in ("train_one_epoch", "evaluate")}
    fit.__globals__.update(train_one_epoch=stand_ins.train_one_epoch, evaluate=stand_ins.evaluate)
    try:
        history = fit(model, train, val, nn.CrossEntropyLoss(), optimizer, torch.device("cpu"), 2)
    finally:
        fit.__globals__.update(saved)
    rows = [[_number(r.get(k)) for k in ("epoch", "loss", "val_loss", "accuracy")]
            for r in history if isinstance(r, dict)] if isinstance(history, list) else []
    return {"history": rows, "parameters": _parameters(model)}


Probe = Callable[[dict[str, Any], int], Values]

PROBES: dict[str, dict[str, Probe]] = {
    "07_epoch_loop_gpu": {"ex1-tests": _probe_train_one_epoch, "ex2-tests": _probe_evaluate, "ex3-tests": _probe_fit},
}


def encode(values: Values) -> str:
    """Values as one line of text (``torch.save``, base64) for the way back to the grader."""
    buffer = io.BytesIO()
    torch.save(values, buffer)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def probes_for(lesson: str) -> dict[str, Probe]:
    """The lesson's probes by grade id: those above, and the ``PROBES`` of the lesson's checks module."""
    from course_utils.diagnoses import checks_module, lesson_modules

    found = dict(PROBES.get(lesson, {}))
    if checks_module(lesson) in lesson_modules():
        found.update(getattr(importlib.import_module(checks_module(lesson)), "PROBES", {}))
    return found


def probe_line(lesson: str, grade_id: str, namespace: dict[str, Any], seed: int) -> str:
    """Run one probe on the functions of ``namespace``; return the line the grader reads."""
    try:
        values = probes_for(lesson)[grade_id](namespace, seed)
    except Exception as error:  # noqa: BLE001 - a failing function is an answer the grader judges
        values = {"error": f"{type(error).__name__}: {error}"[:500]}
    return f"{MARKER} {grade_id} {encode(values)}"
