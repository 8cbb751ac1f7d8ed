"""Lesson 01's re-check judges: CourseDataset, make_loader and batch_sizes, against PyTorch's DataLoader.

The scenarios come from the student package's exercise modules (``course_utils.checks.lesson01.ex1``:
``dataset_tensors``, ``dataset_variants``, ``bad_inputs``; ``.ex2``: ``loader_scenario``, ``LOADER_CONFIGS``;
``.ex3``: ``batching_cases``, ``batching_edge_cases``), which the kernel's probes build from the same seed. The
visible checks' expected results (``EXPECTED``) are computed here too, with PyTorch's own DataLoader.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader, TensorDataset

from course_tools.grade.judges._compare import tensors_close
from course_utils.checks.lesson01.common import CHECK_SEEDS
from course_utils.checks.lesson01.ex1 import bad_inputs, dataset_tensors, dataset_variants
from course_utils.checks.lesson01.ex2 import LOADER_CONFIGS, loader_case, loader_scenario, order_of
from course_utils.checks.lesson01.ex3 import (
    PRINTED_BATCH_CASES,
    batching_cases,
    batching_edge_cases,
    seeded_batch_cases,
)

_FLOAT_DTYPES = {str(dtype) for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64)} | {"float"}


def expected_sizes(n_samples: int, batch_size: int, drop_last: bool) -> list[int]:
    """The batch sizes of one epoch of a real DataLoader."""
    loader = DataLoader(TensorDataset(torch.arange(n_samples)), batch_size=batch_size, drop_last=drop_last)
    return [len(batch[0]) for batch in loader]


def judge_dataset(values: dict[str, Any], seed: int) -> str:
    """Exercise 1: len(), ds[i] == (features[i], targets[i]) with integer labels, on a 1-sample dataset too;
    bad inputs raise TypeError or ValueError with a message."""
    datasets = dataset_variants(*dataset_tensors(seed))
    found = values.get("datasets")
    if not isinstance(found, list) or len(found) != len(datasets):
        return "the re-check got no result for each dataset"
    for got, (features, targets) in zip(found, datasets):
        if not isinstance(got, dict):
            return "the re-check got no result for a dataset"
        if got.get("length") != len(features):
            return f"len() gave {str(got.get('length'))[:40]} for {len(features)} samples"
        rows = got.get("features")
        if not tensors_close(rows, list(features)) or got.get("targets") != targets.tolist():
            return f"ds[i] does not return (features[i], targets[i]) for a dataset of {len(features)} samples"
        if any(row.dtype != features.dtype for row in rows):
            return f"ds[i] does not return the {features.dtype} features as they were given"
        label_types = got.get("target-types")
        if not isinstance(label_types, list) or any(kind in _FLOAT_DTYPES for kind in label_types):
            return "ds[i] returns the class label as a float, not as an integer"
    errors = values.get("errors")
    bad = bad_inputs(*datasets[0])
    if not isinstance(errors, list) or len(errors) != len(bad):
        return "the re-check got no result for each bad input"
    for error, (what, _, wanted) in zip(errors, bad):
        if not (isinstance(error, list) and len(error) == 2):
            return f"CourseDataset with {what}: no readable result"
        name, has_message = error
        if name != wanted.__name__:
            raised = f"raised {str(name)[:40]}" if name else "was accepted"
            return f"CourseDataset with {what} {raised}, not {wanted.__name__}"
        if has_message is not True:
            return f"CourseDataset with {what} raised {wanted.__name__} without a message"
    return ""


def judge_make_loader(values: dict[str, Any], seed: int) -> str:
    """Exercise 2: the batches of a DataLoader with the same batch_size, shuffle, drop_last and seed; a new order
    every epoch; with seed=None, the global seed's order."""
    index, global_seed = loader_scenario(seed)
    expected = []
    for shuffle, drop_last, size in LOADER_CONFIGS:
        generator = torch.Generator().manual_seed(seed + size)
        loader = DataLoader(index, batch_size=size, shuffle=shuffle, drop_last=drop_last, generator=generator)
        expected.append([[int(i) for i in labels] for _, labels in loader])
    if values.get("orders") != expected:
        return "the batches differ from DataLoader's with the same batch_size, shuffle, drop_last and seed"
    loader = DataLoader(index, batch_size=LOADER_CONFIGS[0][2], shuffle=True,
                        generator=torch.Generator().manual_seed(seed + LOADER_CONFIGS[0][2]))
    if values.get("second-epoch") != [order_of(loader) for _ in range(2)][1]:
        return "the second epoch of a seeded loader is not DataLoader's second epoch (a new order every epoch)"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(global_seed)
        unseeded = order_of(DataLoader(index, batch_size=LOADER_CONFIGS[0][2], shuffle=True))
    if values.get("unseeded") != unseeded:
        return "with seed=None the order does not follow the global seed (torch.manual_seed)"
    return ""


def judge_batch_sizes(values: dict[str, Any], seed: int) -> str:
    """Exercise 3: the batch sizes a real DataLoader produces, on drawn inputs and the edge cases."""
    cases = batching_cases(seed) + batching_edge_cases(seed)
    expected = [expected_sizes(*case) for case in cases]
    sizes = values.get("sizes")
    if sizes == expected:
        return ""
    if isinstance(sizes, list) and len(sizes) == len(expected):
        n, size, drop = next(case for case, got, want in zip(cases, sizes, expected) if got != want)
        return f"batch_sizes({n}, {size}, drop_last={drop}) differs from a real DataLoader's batch sizes"
    return "the batch sizes differ from a real DataLoader's"


JUDGES = {"ex1-tests": judge_dataset, "ex2-tests": judge_make_loader, "ex3-tests": judge_batch_sizes}


# --- the visible checks' expected results (course_utils/checks/expected/lesson01-*.json) -----------------

# Typical wrong answers to Exercise 3, most specific first: the check names the first that reproduces every case.
_SIZE_PATTERNS = (
    ("batch-sizes-remainder-dropped", lambda n, b, d: [b] * (n // b)),
    ("batch-sizes-drop-last-ignored", lambda n, b, d: expected_sizes(n, b, False)),
    ("batch-sizes-drop-last-inverted", lambda n, b, d: expected_sizes(n, b, not d)),
    ("batch-sizes-empty-last-batch", lambda n, b, d: [b] * (n // b) + ([] if d else [n % b])),
    ("batch-sizes-last-batch-full", lambda n, b, d: [b] * (n // b + (1 if n % b and not d else 0))),
    ("batch-sizes-loop-stops-early", lambda n, b, d: [min(b, n - start) for start in range(0, n - 1, b)
                                                      if min(b, n - start) == b or not d]),
)


def _sizes_of(cases: list[tuple[int, int, bool]]) -> dict[str, Any]:
    return {"expected": [expected_sizes(*case) for case in cases],
            "patterns": [[code, [rule(*case) for case in cases]] for code, rule in _SIZE_PATTERNS]}


def _batch_sizes_expected() -> dict[str, Any]:
    results = {str(seed): _sizes_of(seeded_batch_cases(seed)) for seed in CHECK_SEEDS}
    return {**results, "printed": _sizes_of(list(PRINTED_BATCH_CASES))}


def _make_loader_expected() -> dict[str, Any]:
    results = {}
    for seed in CHECK_SEEDS:
        n_samples, batch_size, loader_seed = loader_case(seed)
        dataset = TensorDataset(torch.zeros(n_samples, 1), torch.arange(n_samples))
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=True,
                            generator=torch.Generator().manual_seed(loader_seed))
        orders = []
        with torch.random.fork_rng(devices=[]):
            for global_seed in (loader_seed, loader_seed + 1):
                torch.manual_seed(global_seed)
                orders.append(order_of(DataLoader(dataset, batch_size=batch_size, shuffle=True)))
        results[str(seed)] = {"order": order_of(loader), "global": orders,
                              "sizes": expected_sizes(n_samples, batch_size, False),
                              "dropped": expected_sizes(n_samples, batch_size, True)}
    return results


EXPECTED = {"lesson01-batch-sizes": _batch_sizes_expected, "lesson01-make-loader": _make_loader_expected}
