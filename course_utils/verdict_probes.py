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


def batching_cases(seed: int) -> list[tuple[int, int, bool]]:
    """(n_samples, batch_size, drop_last) triples drawn from ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    cases = []
    for _ in range(6):
        n = int(torch.randint(0, 300, (1,), generator=generator))
        size = int(torch.randint(1, 70, (1,), generator=generator))
        cases.append((n, size, bool(torch.randint(0, 2, (1,), generator=generator))))
    return cases


def batching_edge_cases(seed: int) -> list[tuple[int, int, bool]]:
    """The edge cases of Exercise 3 with sizes drawn from ``seed``: no samples, an exact fit, fewer samples
    than one batch, and batch_size=1."""
    generator = torch.Generator().manual_seed(seed + 1)
    size = 2 + int(torch.randint(0, 40, (1,), generator=generator))
    exact = size * (1 + int(torch.randint(0, 9, (1,), generator=generator)))
    return [(0, size, False), (exact, size, False), (exact, size, True), (size - 1, size, False),
            (size - 1, size, True), (size + 1, 1, True)]


# (shuffle, drop_last, batch_size) of the loaders the probe of Exercise 2 builds; each is seeded with seed + batch_size
LOADER_CONFIGS = ((True, False, 10), (False, True, 16), (True, True, 7))


def loader_scenario(seed: int) -> tuple[TensorDataset, int]:
    """Exercise 2's re-check: a dataset whose labels are the sample indices, and a global seed for seed=None."""
    return TensorDataset(torch.zeros(97, 1), torch.arange(97)), 7 * seed + 3


def dataset_variants(features: torch.Tensor, targets: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The datasets Exercise 1's re-check builds: as drawn, in float64 / int32, and a single sample."""
    return [(features, targets), (features.double(), targets.int()), (features[:1], targets[:1])]


def dataset_bad_inputs(features: torch.Tensor, targets: torch.Tensor) -> list[tuple[str, tuple[Any, Any], type]]:
    """(what is wrong, the bad arguments, the error expected) for the input checks of Exercise 1."""
    from course_utils.checks.lesson01 import bad_inputs

    return bad_inputs(features, targets)


def dataset_tensors(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Features and labels of a small dataset drawn from ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    n = 5 + int(torch.randint(0, 40, (1,), generator=generator))
    features = torch.rand(n, 1 + int(torch.randint(0, 6, (1,), generator=generator)), generator=generator)
    return features, torch.randint(0, 4, (n,), generator=generator)


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


def _label_type(label: Any) -> str:
    return str(label.dtype) if isinstance(label, torch.Tensor) else type(label).__name__


def _dataset_values(dataset: Any, n_samples: int) -> Values:
    items = [dataset[i] for i in range(n_samples)]
    return {"length": len(dataset), "features": [x.detach().clone() for x, _ in items],
            "targets": [int(y) for _, y in items], "target-types": [_label_type(y) for _, y in items]}


def _raised(build: Callable[[], Any], wanted: type) -> list[Any]:
    """[``wanted``'s name if ``build`` raised it (or a subclass), else the name of what it raised (or ""),
    whether the error had a message]."""
    try:
        build()
    except Exception as error:  # noqa: BLE001 - the error raised is the answer
        return [wanted.__name__ if isinstance(error, wanted) else type(error).__name__, bool(str(error).strip())]
    return ["", False]


def _probe_dataset(ns: dict[str, Any], seed: int) -> Values:
    features, targets = dataset_tensors(seed)
    datasets = dataset_variants(features, targets)
    found = [_dataset_values(ns["CourseDataset"](x.clone(), y.clone()), len(x)) for x, y in datasets]
    errors = [_raised(lambda args=args: ns["CourseDataset"](*args), wanted)
              for _, args, wanted in dataset_bad_inputs(features.clone(), targets.clone())]
    return {"datasets": found, "errors": errors}


def _order(loader: Any) -> list[int]:
    return [int(i) for _, labels in loader for i in labels]


def _probe_make_loader(ns: dict[str, Any], seed: int) -> Values:
    index, global_seed = loader_scenario(seed)
    orders = []
    for shuffle, drop_last, size in LOADER_CONFIGS:
        loader = ns["make_loader"](index, size, shuffle=shuffle, drop_last=drop_last, seed=seed + size)
        orders.append([[int(i) for i in labels] for _, labels in loader])
    loader = ns["make_loader"](index, LOADER_CONFIGS[0][2], shuffle=True, seed=seed + LOADER_CONFIGS[0][2])
    epochs = [_order(loader) for _ in range(2)]
    with torch.random.fork_rng(devices=[]):  # seed=None follows the global seed; the notebook's state is kept
        torch.manual_seed(global_seed)
        unseeded = _order(ns["make_loader"](index, LOADER_CONFIGS[0][2], shuffle=True))
    return {"orders": orders, "second-epoch": epochs[1], "unseeded": unseeded}


def _probe_batch_sizes(ns: dict[str, Any], seed: int) -> Values:
    answers = [ns["batch_sizes"](n, size, drop) for n, size, drop in batching_cases(seed) + batching_edge_cases(seed)]
    # anything but a list of ints goes back as the names of its types, which the judge rejects
    return {"sizes": [[s if type(s) is int else f"a {type(s).__name__}" for s in answer] if type(answer) is list
                      else f"a {type(answer).__name__}" for answer in answers]}


Probe = Callable[[dict[str, Any], int], Values]

PROBES: dict[str, dict[str, Probe]] = {
    "01_dataloader_batching": {"ex1-tests": _probe_dataset, "ex2-tests": _probe_make_loader,
                               "ex3-tests": _probe_batch_sizes},
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
