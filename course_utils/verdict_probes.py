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
from typing import Any

import torch
from torch.utils.data import TensorDataset

MARKER = "COURSE-VERDICT"
Values = dict[str, Any]


# --- scenarios, built the same on both sides --------------------------------------------------------

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
