"""Lesson 01's re-check judges: CourseDataset, make_loader and batch_sizes, against PyTorch's DataLoader.

The scenarios come from :mod:`course_utils.verdict_probes` (``dataset_tensors``, ``batching_cases``),
which the kernel's probes build from the same seed.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader, TensorDataset

from course_tools.grade.judges._compare import tensors_close
from course_utils.verdict_probes import batching_cases, dataset_tensors


def judge_dataset(values: dict[str, Any], seed: int) -> str:
    """Exercise 1: len() and ds[i] == (features[i], targets[i])."""
    features, targets = dataset_tensors(seed)
    if values.get("length") != len(features):
        return f"len() gave {values.get('length')!r} for {len(features)} samples"
    if not tensors_close(values.get("features"), list(features)) or values.get("targets") != targets.tolist():
        return "ds[i] does not return (features[i], targets[i])"
    return ""


def judge_make_loader(values: dict[str, Any], seed: int) -> str:
    """Exercise 2: the batches of a DataLoader with the same batch_size, shuffle, drop_last and seed."""
    index = TensorDataset(torch.zeros(97, 1), torch.arange(97))
    expected = []
    for shuffle, drop_last, size in ((True, False, 10), (False, True, 16), (True, True, 7)):
        generator = torch.Generator().manual_seed(seed + size)
        loader = DataLoader(index, batch_size=size, shuffle=shuffle, drop_last=drop_last, generator=generator)
        expected.append([[int(i) for i in labels] for _, labels in loader])
    return "" if values.get("orders") == expected else \
        "the batches differ from DataLoader's with the same batch_size, shuffle, drop_last and seed"


def judge_batch_sizes(values: dict[str, Any], seed: int) -> str:
    """Exercise 3: the batch sizes a real DataLoader produces."""
    expected = [[len(b[0]) for b in DataLoader(TensorDataset(torch.arange(n)), batch_size=size, drop_last=drop)]
                for n, size, drop in batching_cases(seed)]
    return "" if values.get("sizes") == expected else "the batch sizes differ from a real DataLoader's"


JUDGES = {"ex1-tests": judge_dataset, "ex2-tests": judge_make_loader, "ex3-tests": judge_batch_sizes}
