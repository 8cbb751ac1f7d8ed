"""Lesson 01, Exercise 2 · ``make_loader``: its diagnoses, its visible check and its re-check probe.

:func:`check_make_loader` changes one argument at a time and compares the loader's epochs with
those of PyTorch's own ``DataLoader``, stored as data (``checks/expected/lesson01-make-loader.json``,
computed on the grader's side); a dataset whose labels are the sample indices makes an epoch's
labels its order. :func:`probe` is the kernel's half of the grader's re-check.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from course_utils.checks import expected as stored
from course_utils.checks.learner import call_or_fail
from course_utils.checks.lesson01.common import LESSON, LOADER_SECTION
from course_utils.diagnoses import Exercise, fail_with

EXERCISE = Exercise(LESSON, "ex2-tests", "Exercise 2 · Build a loader")
DIAGNOSES = EXERCISE.diagnoses(
    ("loader-crashed", "make_loader raised an exception",
     "make_loader(dataset, batch_size, shuffle=..., drop_last=..., seed=...) returns DataLoader(dataset, "
     "batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, generator=...).", "interface", LOADER_SECTION),
    ("loader-not-a-dataloader", "make_loader does not return a DataLoader",
     "return torch.utils.data.DataLoader(dataset, ...) itself, not a list of batches or an iterator.", "interface",
     LOADER_SECTION),
    ("loader-dataset-ignored", "the loader does not serve the dataset it was given",
     "pass the `dataset` argument to the DataLoader (not a global such as the lesson's dataset).", "data",
     LOADER_SECTION),
    ("loader-batch-size-ignored", "the batches do not have the requested batch_size",
     "pass batch_size=batch_size to the DataLoader.", "data", LOADER_SECTION),
    ("loader-drop-last-ignored", "drop_last=True still yields the smaller last batch",
     "pass drop_last=drop_last to the DataLoader.", "data", LOADER_SECTION),
    ("loader-always-drops-last", "drop_last=False loses the smaller last batch",
     "pass drop_last=drop_last (its default is False) instead of a fixed True.", "data", LOADER_SECTION),
    ("loader-shuffle-ignored", "shuffle=False still shuffles the samples",
     "pass shuffle=shuffle to the DataLoader instead of a fixed True.", "data", LOADER_SECTION),
    ("loader-never-shuffles", "shuffle=True gives the samples in their stored order",
     "pass shuffle=shuffle to the DataLoader (its own default is False).", "data", LOADER_SECTION),
    ("loader-global-seed", "make_loader reseeded the global random number generator (torch.manual_seed)",
     "never reseed the whole program inside a helper: pass generator=torch.Generator().manual_seed(seed).", "data",
     LOADER_SECTION),
    ("loader-fixed-seed", "the order is the same whatever seed is given (a seed is hard-coded)",
     "use the seed argument: torch.Generator().manual_seed(seed).", "data", LOADER_SECTION),
    ("loader-seed-ignored", "seed is ignored: the order follows the global random state instead of the seed",
     "when seed is given, pass generator=torch.Generator().manual_seed(seed) to the DataLoader.", "data",
     LOADER_SECTION),
    ("loader-same-order-every-epoch", "every epoch of one loader visits the samples in the same order",
     "pass the seeded generator to the DataLoader once; do not fix one permutation (e.g. with a list of "
     "indices).", "data", LOADER_SECTION),
    ("loader-order", "the shuffled order differs from DataLoader(..., "
     "generator=torch.Generator().manual_seed(seed))",
     "let the DataLoader shuffle with generator=torch.Generator().manual_seed(seed); no sampler of your own.",
     "data", LOADER_SECTION),
    ("loader-unseeded-not-global", "with seed=None the order does not follow the global seed "
     "(torch.manual_seed)",
     "with seed=None pass generator=None, so that the loader draws from PyTorch's global generator.", "data",
     LOADER_SECTION),
)

FORBIDDEN_CALLS = ()


def _index_dataset(n_samples: int) -> TensorDataset:
    """Each sample's label is its own index, so an epoch's labels are its order."""
    return TensorDataset(torch.zeros(n_samples, 1), torch.arange(n_samples))


def _epoch(loader: Any) -> tuple[list[int], list[int]]:
    """(order of sample indices, batch sizes) of one pass over ``loader``."""
    order, sizes = [], []
    for batch in loader:
        labels = batch[1] if isinstance(batch, (list, tuple)) and len(batch) == 2 else batch
        labels = torch.as_tensor(labels).reshape(-1)
        order += [int(i) for i in labels]
        sizes.append(len(labels))
    return order, sizes


def _make(make_loader: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    shown = ", ".join(["dataset"] + [repr(a) for a in args[1:]] + [f"{k}={v!r}" for k, v in kwargs.items()])
    subject = f"make_loader({shown})"
    loader = call_or_fail("loader-crashed", make_loader, *args, subject=subject, expected="a DataLoader", **kwargs)
    if not isinstance(loader, DataLoader):
        fail_with("loader-not-a-dataloader", expected="a torch.utils.data.DataLoader",
                  found=f"a {type(loader).__name__}", subject=subject)
    return loader


def _seed_problem(make_loader: Callable[..., Any], dataset: Dataset, batch_size: int, loader_seed: int,
                  expected: list[int]) -> str | None:
    """The diagnosis of the shuffled order (None if it is ``expected``, PyTorch's for this seed, new every epoch)."""
    everything = list(range(len(dataset)))
    before = torch.random.get_rng_state()
    loader = _make(make_loader, dataset, batch_size, seed=loader_seed)
    reseeded = not torch.equal(before, torch.random.get_rng_state())
    first, second = _epoch(loader)[0], _epoch(loader)[0]
    if first == expected:
        return "loader-same-order-every-epoch" if second == first else None
    if reseeded:
        return "loader-global-seed"
    if first == everything:
        return "loader-never-shuffles"
    if second == first:  # one fixed permutation: its first epoch cannot be DataLoader's either
        return "loader-same-order-every-epoch"
    if first == _epoch(_make(make_loader, dataset, batch_size, seed=loader_seed + 1))[0]:
        return "loader-fixed-seed"
    torch.manual_seed(loader_seed)
    again = _epoch(_make(make_loader, dataset, batch_size, seed=loader_seed))[0]
    return "loader-seed-ignored" if again != first else "loader-order"


def loader_case(seed: int) -> tuple[int, int, int]:
    """(n_samples, batch_size, loader_seed) of Exercise 2's check for ``seed``: a batch size that leaves a remainder."""
    rng = random.Random(seed)
    n_samples = rng.randrange(60, 160)
    batch_size = rng.choice([b for b in range(7, 40) if n_samples % b])
    return n_samples, batch_size, rng.randrange(1, 10_000)


def check_make_loader(make_loader: Callable[..., Any], *, seed: int = 0) -> None:
    """Exercise 2: every argument of ``make_loader`` must change the loader as it changes a DataLoader.

    The orders and sizes a real DataLoader gives for these inputs are stored data (``lesson01-make-loader``).
    """
    n_samples, batch_size, loader_seed = loader_case(seed)
    want = stored.for_seed("lesson01-make-loader", seed)
    dataset = _index_dataset(n_samples)
    subject = f"make_loader(dataset of {n_samples}, {batch_size}, seed={loader_seed})"
    everything = list(range(n_samples))
    with torch.random.fork_rng(devices=[]):  # the check reseeds; the notebook's random state is left alone
        order, sizes = _epoch(_make(make_loader, dataset, batch_size, shuffle=False, seed=loader_seed))
        if len(set(order)) != len(order) or not set(order) <= set(everything) or len(order) < n_samples - batch_size:
            fail_with("loader-dataset-ignored", expected=f"the {n_samples} samples of the given dataset",
                      found=f"{len(order)} samples, not those of the given dataset", subject=subject)
        _, dropped = _epoch(_make(make_loader, dataset, batch_size, shuffle=True, drop_last=True, seed=loader_seed))
        problems = []
        if sizes[0] != batch_size:
            problems.append("loader-batch-size-ignored")
        elif dropped != want["dropped"]:
            problems.append("loader-drop-last-ignored")
        elif sizes != want["sizes"]:
            problems.append("loader-always-drops-last")
        if order != everything:
            problems.append("loader-shuffle-ignored")
        seed_problem = _seed_problem(make_loader, dataset, batch_size, loader_seed, want["order"])
        problems += [seed_problem] if seed_problem else []
        if problems:
            found = _epoch(_make(make_loader, dataset, batch_size, seed=loader_seed))[0]
            fail_with(problems[0], subject=subject, also=problems[1:],
                      expected=f"batches of {batch_size} with {n_samples % batch_size} in the last one (none with "
                               f"drop_last=True); shuffle=False keeps the order 0, 1, 2, ...; shuffle=True, "
                               f"seed={loader_seed} gives PyTorch's order {want['order'][:5]}..., new every epoch",
                      found=f"batch sizes {sizes[:2]}...{sizes[-2:]} ({dropped[-2:]} at the end with drop_last=True); "
                            f"shuffle=False starts {order[:5]}; seed={loader_seed} starts {found[:5]}")

        # seed=None: the global generator decides, as for a plain DataLoader.
        orders = []
        for global_seed in (loader_seed, loader_seed + 1):
            torch.manual_seed(global_seed)
            orders.append(_epoch(_make(make_loader, dataset, batch_size))[0])
    if orders != want["global"]:
        fail_with("loader-unseeded-not-global",
                  expected="after torch.manual_seed(s), the order of DataLoader(..., shuffle=True)",
                  found=("the same order for two different global seeds" if orders[0] == orders[1] else "another order"),
                  subject=f"make_loader(dataset of {n_samples}, {batch_size}) with seed=None")


# --- the grader's re-check: the kernel's half (course_utils.verdict_probes) ----------------------------------

# (shuffle, drop_last, batch_size) of the loaders the probe builds; each is seeded with seed + batch_size
LOADER_CONFIGS = ((True, False, 10), (False, True, 16), (True, True, 7))


def loader_scenario(seed: int) -> tuple[TensorDataset, int]:
    """Exercise 2's re-check: a dataset whose labels are the sample indices, and a global seed for seed=None."""
    return TensorDataset(torch.zeros(97, 1), torch.arange(97)), 7 * seed + 3


def order_of(loader: Any) -> list[int]:
    """The labels of one epoch over ``loader``, in order (the sample indices, for :func:`loader_scenario`'s)."""
    return [int(i) for _, labels in loader for i in labels]


def probe(ns: dict[str, Any], seed: int) -> dict[str, Any]:
    """``make_loader``'s batches for each of :data:`LOADER_CONFIGS`, a second epoch, and an unseeded order."""
    index, global_seed = loader_scenario(seed)
    orders = []
    for shuffle, drop_last, size in LOADER_CONFIGS:
        loader = ns["make_loader"](index, size, shuffle=shuffle, drop_last=drop_last, seed=seed + size)
        orders.append([[int(i) for i in labels] for _, labels in loader])
    loader = ns["make_loader"](index, LOADER_CONFIGS[0][2], shuffle=True, seed=seed + LOADER_CONFIGS[0][2])
    epochs = [order_of(loader) for _ in range(2)]
    with torch.random.fork_rng(devices=[]):  # seed=None follows the global seed; the notebook's state is kept
        torch.manual_seed(global_seed)
        unseeded = order_of(ns["make_loader"](index, LOADER_CONFIGS[0][2], shuffle=True))
    return {"orders": orders, "second-epoch": epochs[1], "unseeded": unseeded}
