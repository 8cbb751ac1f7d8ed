"""Lesson 01's catalogue of typical mistakes, and the checks that recognise them by behaviour.

Each check runs the learner's code on seeded inputs the notebook never prints, compares what it
does with what PyTorch's own ``DataLoader`` does (orders and batch sizes stored as data,
``checks/expected/lesson01-*.json``, computed on the grader's side), and names the first mistake it
recognises with :func:`course_utils.diagnoses.raise_diagnosis`:

- :func:`check_course_dataset` for Exercise 1 (``CourseDataset``, the lesson that teaches input validation);
- :func:`check_make_loader` for Exercise 2 (``make_loader``);
- :func:`check_batch_sizes` for Exercise 3 (``batch_sizes``).

A check never trusts what the learner's objects say about themselves: lengths, orders and sizes are
measured by iterating, and comparisons use plain Python values built here.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import random
import textwrap
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, TensorDataset

from course_utils.checks import expected as stored
from course_utils.checks.learner import error_text
from course_utils.diagnoses import Diagnosis, ForbiddenCall, by_code, raise_diagnosis

LESSON = "01_dataloader_batching"
_SECTIONS = {"ex1-tests": "2 · Dataset: what one sample is",
             "ex2-tests": "3 · DataLoader: from samples to batches",
             "ex3-tests": "3 · DataLoader: from samples to batches"}
# The examples the lesson prints for Exercise 3: a function that only knows these is hard-coded.
PRINTED_BATCH_CASES = ((1000, 100, False), (1000, 64, False), (1000, 64, True))
# The seeds whose expected results are stored (``checks/expected/lesson01-*.json``, written by the grader's
# side): the notebook's own (5, 8) and those the course's tests use.
CHECK_SEEDS = (0, 1, 2, 3, 5, 8, 17)


def _row(code: str, exercise: str, family: str, what: str, hint: str) -> Diagnosis:
    return Diagnosis(code, what, hint, family, lesson=LESSON, exercise=exercise, section=_SECTIONS[exercise])


CATALOGUE = (
    # Exercise 1 · CourseDataset
    _row("dataset-crashed", "ex1-tests", "interface", "CourseDataset raised an exception on valid inputs",
         "valid inputs are a 2-D floating-point features tensor (any float dtype) and 1-D integer targets "
         "(any int dtype) of the same length: accept them, and raise only for the cases in the table."),
    _row("dataset-wraps-tensordataset", "ex1-tests", "not-allowed",
         "CourseDataset hands the work to torch's TensorDataset, which is what this exercise asks you to write",
         "not allowed here: store the two tensors on self and index them yourself in __len__ and __getitem__."),
    _row("dataset-len-hard-coded", "ex1-tests", "not-allowed",
         "len() gives 1000, the running example's size, for a dataset of another size",
         "not allowed: a hard-coded length. Return the number of samples you were given: len(self.targets)."),
    _row("dataset-len-counts-features", "ex1-tests", "shapes",
         "len() counts features (columns), not samples (rows)",
         "the samples are along dimension 0: return len(self.features) or self.features.shape[0]."),
    _row("dataset-len", "ex1-tests", "interface", "len() is not the number of samples",
         "return len(self.targets), an int."),
    _row("dataset-item-swapped", "ex1-tests", "interface",
         "ds[i] returns (targets[i], features[i]): the pair is the wrong way round",
         "return self.features[index], self.targets[index]: features first, as a DataLoader expects."),
    _row("dataset-item-column", "ex1-tests", "shapes", "ds[i] returns column i (one feature of every sample), not row i",
         "index the samples dimension: self.features[index] (not self.features[:, index])."),
    _row("dataset-item-everything", "ex1-tests", "shapes", "ds[i] returns all the samples instead of sample i",
         "use the index: return self.features[index], self.targets[index]."),
    _row("dataset-item-ignores-data", "ex1-tests", "data",
         "ds[i] does not return the data the dataset was given (is it reading the notebook's global tensors?)",
         "keep the tensors passed to __init__ on self (self.features = features) and index those."),
    _row("dataset-item-off-by-one", "ex1-tests", "data",
         "ds[i] returns a neighbouring sample (i + 1 or i - 1), not sample i",
         "Python and PyTorch count from 0: ds[0] is the first sample. Index with the index itself: "
         "self.features[index], self.targets[index] (no + 1 or - 1)."),
    _row("dataset-item-float-target", "ex1-tests", "dtypes",
         "ds[i] returns the class label as a float, not as an integer",
         "return the label as it was given, self.targets[index] (an integer tensor): no .float() and no float(). "
         "Class labels feed nn.CrossEntropyLoss, which refuses float labels "
         "(\"expected scalar type Long but found Float\")."),
    _row("dataset-item-features-converted", "ex1-tests", "dtypes",
         "ds[i] returns the features converted to another dtype (e.g. float64 made float32 by .float())",
         "keep the features as they were given: any floating-point dtype is valid, so no .float() or .to(...) in "
         "__init__ or __getitem__."),
    _row("dataset-item", "ex1-tests", "interface", "ds[i] is not the pair (features[i], targets[i])",
         "return a tuple of two tensors: self.features[index], self.targets[index]."),
    _row("dataset-no-error-message", "ex1-tests", "interface", "an error was raised without a message",
         "write what is wrong in every error, e.g. raise ValueError(f\"{len(features)} feature rows but "
         "{len(targets)} targets\")."),
    _row("dataset-wrong-error-type", "ex1-tests", "interface", "the wrong kind of error was raised for a bad input",
         "TypeError when a value has the wrong type or dtype, ValueError when it has the right type but a wrong "
         "shape or length (see the table)."),
    _row("dataset-accepts-length-mismatch", "ex1-tests", "data",
         "features and targets of different lengths were accepted",
         "compare len(features) with len(targets) and raise ValueError when they differ."),
    _row("dataset-accepts-float-targets", "ex1-tests", "dtypes", "float targets were accepted",
         "targets are class labels: raise TypeError if targets.is_floating_point()."),
    _row("dataset-accepts-int-features", "ex1-tests", "dtypes", "integer features were accepted",
         "raise TypeError unless features.is_floating_point()."),
    _row("dataset-accepts-wrong-rank", "ex1-tests", "shapes",
         "features that are not 2-D, or targets that are not 1-D, were accepted",
         "check features.ndim == 2 and targets.ndim == 1, and raise ValueError otherwise."),
    _row("dataset-accepts-non-tensor", "ex1-tests", "interface", "a Python list was accepted instead of a tensor",
         "check isinstance(features, torch.Tensor) (and the same for targets) first, and raise TypeError."),
    # Exercise 2 · make_loader
    _row("loader-crashed", "ex2-tests", "interface", "make_loader raised an exception",
         "make_loader(dataset, batch_size, shuffle=..., drop_last=..., seed=...) returns "
         "DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, generator=...)."),
    _row("loader-not-a-dataloader", "ex2-tests", "interface", "make_loader does not return a DataLoader",
         "return torch.utils.data.DataLoader(dataset, ...) itself, not a list of batches or an iterator."),
    _row("loader-dataset-ignored", "ex2-tests", "data", "the loader does not serve the dataset it was given",
         "pass the `dataset` argument to the DataLoader (not a global such as the lesson's dataset)."),
    _row("loader-batch-size-ignored", "ex2-tests", "data", "the batches do not have the requested batch_size",
         "pass batch_size=batch_size to the DataLoader."),
    _row("loader-drop-last-ignored", "ex2-tests", "data", "drop_last=True still yields the smaller last batch",
         "pass drop_last=drop_last to the DataLoader."),
    _row("loader-always-drops-last", "ex2-tests", "data", "drop_last=False loses the smaller last batch",
         "pass drop_last=drop_last (its default is False) instead of a fixed True."),
    _row("loader-shuffle-ignored", "ex2-tests", "data", "shuffle=False still shuffles the samples",
         "pass shuffle=shuffle to the DataLoader instead of a fixed True."),
    _row("loader-never-shuffles", "ex2-tests", "data", "shuffle=True gives the samples in their stored order",
         "pass shuffle=shuffle to the DataLoader (its own default is False)."),
    _row("loader-global-seed", "ex2-tests", "data",
         "make_loader reseeded the global random number generator (torch.manual_seed)",
         "never reseed the whole program inside a helper: pass generator=torch.Generator().manual_seed(seed)."),
    _row("loader-fixed-seed", "ex2-tests", "data", "the order is the same whatever seed is given (a seed is hard-coded)",
         "use the seed argument: torch.Generator().manual_seed(seed)."),
    _row("loader-seed-ignored", "ex2-tests", "data",
         "seed is ignored: the order follows the global random state instead of the seed",
         "when seed is given, pass generator=torch.Generator().manual_seed(seed) to the DataLoader."),
    _row("loader-same-order-every-epoch", "ex2-tests", "data", "every epoch of one loader visits the samples in the same order",
         "pass the seeded generator to the DataLoader once; do not fix one permutation (e.g. with a list of indices)."),
    _row("loader-order", "ex2-tests", "data",
         "the shuffled order differs from DataLoader(..., generator=torch.Generator().manual_seed(seed))",
         "let the DataLoader shuffle with generator=torch.Generator().manual_seed(seed); no sampler of your own."),
    _row("loader-unseeded-not-global", "ex2-tests", "data",
         "with seed=None the order does not follow the global seed (torch.manual_seed)",
         "with seed=None pass generator=None, so that the loader draws from PyTorch's global generator."),
    # Exercise 3 · batch_sizes
    _row("batch-sizes-crashed", "ex3-tests", "interface", "batch_sizes raised an exception",
         "for any n_samples >= 0 and batch_size >= 1: full batches first, then the remainder unless drop_last."),
    _row("batch-sizes-uses-loader", "ex3-tests", "not-allowed",
         "batch_sizes builds a DataLoader or BatchSampler to count the batches",
         "not allowed here: the exercise is to predict the sizes without building a loader. "
         "Use divmod(n_samples, batch_size)."),
    _row("batch-sizes-hard-coded", "ex3-tests", "not-allowed",
         "batch_sizes gives the lesson's printed examples but not other inputs (hard-coded answers)",
         "not allowed: compute from the arguments. full, rest = divmod(n_samples, batch_size), then "
         "[batch_size] * full, plus [rest] if rest and not drop_last."),
    _row("batch-sizes-not-a-list", "ex3-tests", "interface", "batch_sizes does not return a list",
         "return a list of ints, e.g. [100, 100, ...], not a number, tuple, tensor or generator."),
    _row("batch-sizes-floats", "ex3-tests", "dtypes", "the batch sizes are floats, not ints",
         "use integer division: n_samples // batch_size (or divmod), never n_samples / batch_size."),
    _row("batch-sizes-remainder-dropped", "ex3-tests", "data",
         "the smaller last batch is missing although drop_last=False",
         "add the remainder n_samples % batch_size as a last batch when it is not 0 and drop_last is False."),
    _row("batch-sizes-drop-last-ignored", "ex3-tests", "data", "the smaller last batch is kept although drop_last=True",
         "with drop_last=True leave out the remainder."),
    _row("batch-sizes-drop-last-inverted", "ex3-tests", "data",
         "drop_last works the wrong way round (kept when True, dropped when False)",
         "keep the remainder only if rest and not drop_last."),
    _row("batch-sizes-empty-last-batch", "ex3-tests", "data",
         "a batch of size 0 is added when batch_size divides n_samples",
         "add the remainder only when it is not 0: [rest] if rest else []."),
    _row("batch-sizes-last-batch-full", "ex3-tests", "data",
         "the last batch is as big as the others, although fewer samples are left for it",
         "the last batch holds n_samples % batch_size samples, not batch_size."),
    _row("batch-sizes-loop-stops-early", "ex3-tests", "data",
         "the batch that starts at the last sample is missing: the loop stops one sample early",
         "loop over every start, range(0, n_samples, batch_size), not range(0, n_samples - 1, batch_size); or use "
         "divmod(n_samples, batch_size)."),
    _row("batch-sizes-wrong", "ex3-tests", "data", "the batch sizes differ from those of a real DataLoader",
         "full batches first, then the remainder unless drop_last; nothing at all for 0 samples."),
)
DIAGNOSES = by_code(CATALOGUE)

# Library calls the answers must not make, found by the grader in the submitted source (course_tools.grade).
FORBIDDEN_CALLS = (
    ForbiddenCall("ex1-tests", "CourseDataset", ("torch.utils.data.TensorDataset",), "dataset-wraps-tensordataset"),
    ForbiddenCall("ex3-tests", "batch_sizes", ("torch.utils.data.DataLoader", "torch.utils.data.BatchSampler"),
                  "batch-sizes-uses-loader"),
)


def _fail(code: str, *, expected: Any, found: Any, subject: str, also: tuple[str, ...] | list[str] = ()) -> None:
    raise_diagnosis(DIAGNOSES[code], expected=expected, found=found, subject=subject,
                    also=[DIAGNOSES[c] for c in also if c != code])



# --- Exercise 1 · CourseDataset -----------------------------------------------------------------

def _dataset_data(seed: int, n_samples: int, n_features: int,
                  float_dtype: torch.dtype, int_dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(4100 + seed)
    features = (torch.rand(n_samples, n_features, generator=generator, dtype=torch.float64) * 100).to(float_dtype)
    targets = torch.randint(0, 3, (n_samples,), generator=generator).to(int_dtype)
    return features, targets


@contextlib.contextmanager
def _counting(cls: type, *names: str) -> Iterator[list[str]]:
    """Count calls of ``cls``'s methods ``names`` (the class is patched for the duration)."""
    calls: list[str] = []
    patches = []
    for name in names:
        original = getattr(cls, name)

        def wrapper(*args: Any, _original: Callable = original, _name: str = name, **kwargs: Any) -> Any:
            calls.append(_name)
            return _original(*args, **kwargs)

        patches.append(mock.patch.object(cls, name, wrapper))
    with contextlib.ExitStack() as stack:
        for patch in patches:
            stack.enter_context(patch)
        yield calls


def _same(a: Any, b: torch.Tensor) -> bool:
    return isinstance(a, torch.Tensor) and a.shape == b.shape and bool(torch.equal(a.to(b.dtype), b))


def _is_float_label(label: Any) -> bool:
    """A label that is a float: a Python float or a floating-point tensor (class labels are integers)."""
    return isinstance(label, float) or (isinstance(label, torch.Tensor) and label.is_floating_point())


def _check_items(dataset: Any, features: torch.Tensor, targets: torch.Tensor, subject: str) -> None:
    n_samples, n_features = features.shape
    for index in list(range(n_samples)) + [-1]:
        want = (features[index], targets[index])
        try:
            item = dataset[index]
        except Exception as error:  # noqa: BLE001 - a crash is a finding
            _fail("dataset-item", expected=f"ds[{index}] = (features[{index}], targets[{index}])",
                  found=error_text(error), subject=subject)
        shown = f"ds[{index}] = {item!r}"[:200]
        if not (isinstance(item, tuple) and len(item) == 2):
            if _same(item, features[index]):
                _fail("dataset-item", expected="a pair (features[i], targets[i])", found="only the features row",
                      subject=subject)
            _fail("dataset-item", expected="a pair (features[i], targets[i])", found=shown, subject=subject)
        x, y = item
        if _same(x, want[0]) and _same(torch.as_tensor(y), want[1]):
            if _is_float_label(y):
                _fail("dataset-item-float-target", expected=f"targets[{index}] as given, dtype {want[1].dtype}",
                      found=f"{y!r}"[:80] + ("" if isinstance(y, float) else f" (dtype {y.dtype})"), subject=subject)
            continue
        if _same(torch.as_tensor(x), want[1]) and _same(y, want[0]):
            _fail("dataset-item-swapped", expected="(features[i], targets[i])", found="(targets[i], features[i])",
                  subject=subject)
        if 0 <= index < n_features and _same(x, features[:, index]):
            _fail("dataset-item-column", expected=f"row {index}: a tensor of shape ({n_features},)",
                  found=f"column {index}: a tensor of shape ({n_samples},)", subject=subject)
        if _same(x, features):
            _fail("dataset-item-everything", expected=f"one row of shape ({n_features},)",
                  found=f"every row, shape {tuple(features.shape)}", subject=subject)
        if isinstance(x, torch.Tensor) and x.shape == want[0].shape and x.dtype != want[0].dtype:
            _fail("dataset-item-features-converted", expected=f"features[{index}] as given, dtype {want[0].dtype}",
                  found=f"dtype {x.dtype}: the features were converted", subject=subject)
        neighbours = [i for i in (index + 1, index - 1) if 0 <= index and 0 <= i < n_samples]
        if any(_same(x, features[i]) for i in neighbours):
            shifted = next(i for i in neighbours if _same(x, features[i]))
            _fail("dataset-item-off-by-one", expected=f"ds[{index}] = sample {index}",
                  found=f"ds[{index}] = sample {shifted}", subject=subject)
        if isinstance(x, torch.Tensor) and x.shape == want[0].shape:
            _fail("dataset-item-ignores-data", expected=f"features[{index}] = {want[0].tolist()}",
                  found=f"{x.tolist()}", subject=subject)
        _fail("dataset-item", expected=f"(features[{index}], targets[{index}]) = ({want[0].tolist()}, {int(want[1])})",
              found=shown, subject=subject)


_BAD_INPUTS = (
    # (what is wrong, build bad arguments from good ones, the error expected, the diagnosis if accepted)
    ("features and targets of different lengths", lambda f, t: (f, t[:-1]), ValueError,
     "dataset-accepts-length-mismatch"),
    ("float targets", lambda f, t: (f, t.double()), TypeError, "dataset-accepts-float-targets"),
    ("integer features", lambda f, t: (f.round().long(), t), TypeError, "dataset-accepts-int-features"),
    ("1-D features", lambda f, t: (f[:, 0], t), ValueError, "dataset-accepts-wrong-rank"),
    ("2-D targets", lambda f, t: (f, t.reshape(-1, 1)), ValueError, "dataset-accepts-wrong-rank"),
    ("features given as a list", lambda f, t: (f.tolist(), t), TypeError, "dataset-accepts-non-tensor"),
)


def bad_inputs(features: torch.Tensor, targets: torch.Tensor) -> list[tuple[str, tuple[Any, Any], type]]:
    """(what is wrong, bad arguments built from good ones, the error expected): the table of Exercise 1."""
    return [(what, build(features.clone(), targets.clone()), error_type) for what, build, error_type, _ in _BAD_INPUTS]


def _check_validation(course_dataset: type, features: torch.Tensor, targets: torch.Tensor) -> None:
    for what, build, error_type, accepted_code in _BAD_INPUTS:
        subject = f"CourseDataset with {what}"
        try:
            course_dataset(*build(features.clone(), targets.clone()))
        except error_type as error:
            if not str(error).strip():
                _fail("dataset-no-error-message", expected=f"{error_type.__name__} with a message saying what is wrong",
                      found=f"{type(error).__name__}() with no message", subject=subject)
            continue
        except Exception as error:  # noqa: BLE001 - the wrong kind of error is the finding
            _fail("dataset-wrong-error-type", expected=error_type.__name__, found=error_text(error), subject=subject)
        _fail(accepted_code, expected=f"{error_type.__name__}", found="no error: the dataset was created", subject=subject)


def check_course_dataset(course_dataset: type, *, seed: int = 0, n_samples: int | None = None) -> None:
    """Exercise 1: build ``course_dataset`` on seeded data of a size the lesson never uses; check it all."""
    n_samples = n_samples if n_samples is not None else 5 + seed % 7
    n_features = 2 + seed % 3
    # both dtype pairs of the table, then a dataset of a single sample (as the grader's re-check does)
    for float_dtype, int_dtype, size in ((torch.float32, torch.int64, n_samples),
                                         (torch.float64, torch.int32, n_samples), (torch.float32, torch.int64, 1)):
        features, targets = _dataset_data(seed, size, n_features, float_dtype, int_dtype)
        given_features, given_targets = features.clone(), targets.clone()
        subject = f"CourseDataset over {size} samples of {n_features} {float_dtype} features"
        with _counting(TensorDataset, "__init__", "__getitem__") as calls:
            try:
                dataset = course_dataset(given_features, given_targets)
            except Exception as error:  # noqa: BLE001
                _fail("dataset-crashed", expected="a dataset", found=error_text(error), subject=subject)
            try:
                length = len(dataset)
            except Exception as error:  # noqa: BLE001
                _fail("dataset-len", expected=size, found=error_text(error), subject=subject)
            if length != size or type(length) is not int:
                code = ("dataset-len-hard-coded" if length == 1000 else
                        "dataset-len-counts-features" if length == n_features else "dataset-len")
                _fail(code, expected=f"len(ds) = {size}", found=f"len(ds) = {length!r}", subject=subject)
            _check_items(dataset, features, targets, subject)
        if calls or isinstance(dataset, TensorDataset):
            _fail("dataset-wraps-tensordataset", expected="your own __len__ and __getitem__ over the stored tensors",
                  found="TensorDataset does the indexing", subject="CourseDataset")
    _check_validation(course_dataset, *_dataset_data(seed, n_samples, n_features, torch.float32, torch.int64))


# --- Exercise 2 · make_loader -------------------------------------------------------------------

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
    try:
        loader = make_loader(*args, **kwargs)
    except Exception as error:  # noqa: BLE001
        _fail("loader-crashed", expected="a DataLoader", found=error_text(error), subject=subject)
    if not isinstance(loader, DataLoader):
        _fail("loader-not-a-dataloader", expected="a torch.utils.data.DataLoader",
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
            _fail("loader-dataset-ignored", expected=f"the {n_samples} samples of the given dataset",
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
            _fail(problems[0], subject=subject, also=problems[1:],
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
        _fail("loader-unseeded-not-global",
              expected="after torch.manual_seed(s), the order of DataLoader(..., shuffle=True)",
              found=("the same order for two different global seeds" if orders[0] == orders[1] else "another order"),
              subject=f"make_loader(dataset of {n_samples}, {batch_size}) with seed=None")


# --- Exercise 3 · batch_sizes -------------------------------------------------------------------

def seeded_batch_cases(seed: int) -> list[tuple[int, int, bool]]:
    """Seeded inputs: a remainder, an exact fit, fewer samples than one batch, no samples, batch size 1."""
    rng = random.Random(seed)
    size = rng.randrange(3, 50)
    cases = [(size * rng.randrange(2, 9) + rng.randrange(1, size), size, drop) for drop in (False, True)]
    size = rng.randrange(2, 40)
    cases += [(size * rng.randrange(1, 8), size, rng.random() < 0.5)]
    size = rng.randrange(5, 200)
    cases += [(rng.randrange(1, size), size, False), (rng.randrange(1, size), size, True)]
    cases += [(0, rng.randrange(1, 10), False), (rng.randrange(2, 9), 1, rng.random() < 0.5)]
    return cases


def _same_sizes(found: Any, expected: list[int]) -> bool:
    """Equal as a list of ints: an object that claims equality with anything does not pass."""
    return (type(found) is list and len(found) == len(expected) and all(type(v) is int for v in found)
            and found == expected)


def _call_sizes(batch_sizes: Callable[..., Any], case: tuple[int, int, bool]) -> tuple[Any, BaseException | None]:
    try:
        return batch_sizes(*case), None
    except Exception as error:  # noqa: BLE001
        return None, error


def _mentions_printed_numbers(function: Callable[..., Any]) -> bool:
    """True if the function's source holds the printed examples' numbers (1000, 64, 40, 960) as literals."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError, SyntaxError):
        return False
    constants = {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)}
    return bool(constants & {1000, 64, 40, 960})


def batch_cases(seed: int) -> list[tuple[int, int, bool]]:
    """Every input of Exercise 3's check for ``seed``: the seeded ones, then the lesson's printed examples."""
    return seeded_batch_cases(seed) + list(PRINTED_BATCH_CASES)


def check_batch_sizes(batch_sizes: Callable[..., Any], *, seed: int = 0) -> None:
    """Exercise 3: ``batch_sizes`` against a real DataLoader on seeded inputs; name the pattern of any mistake.

    What a DataLoader gives for these inputs, and what each typical mistake gives, are stored data
    (``lesson01-batch-sizes``): ``{"expected": [...], "patterns": [[code, [...]], ...]}``, one list entry
    per case, the patterns most specific first; the printed examples' once, under "printed".
    """
    cases = batch_cases(seed)
    seeded, printed = stored.for_seed("lesson01-batch-sizes", seed), stored.load("lesson01-batch-sizes")["printed"]
    want = {"expected": seeded["expected"] + printed["expected"],
            "patterns": [[code, sizes + dict(printed["patterns"])[code]] for code, sizes in seeded["patterns"]]}
    right = dict(zip(cases, want["expected"]))
    with _counting(DataLoader, "__init__") as made, _counting(BatchSampler, "__iter__", "__len__") as sampled:
        results = {case: _call_sizes(batch_sizes, case) for case in cases}
    if made or sampled:
        _fail("batch-sizes-uses-loader", expected="arithmetic on n_samples and batch_size",
              found=f"{len(made)} DataLoader(s) built inside batch_sizes", subject="batch_sizes")

    def shown(case: tuple[int, int, bool]) -> str:
        return f"batch_sizes({case[0]}, {case[1]}, drop_last={case[2]})"

    wrong = [case for case in results if not _same_sizes(results[case][0], right[case])]
    if not wrong:
        return
    printed_ok = not any(case in wrong for case in PRINTED_BATCH_CASES) and _mentions_printed_numbers(batch_sizes)
    case = wrong[0]
    result, error = results[case]
    expected = f"{shown(case)} = {right[case]}"
    if error is not None:
        code = "batch-sizes-hard-coded" if printed_ok else "batch-sizes-crashed"
        _fail(code, expected=expected, found=error_text(error), subject=shown(case))
    if not isinstance(result, list):
        _fail("batch-sizes-not-a-list", expected=expected, found=f"a {type(result).__name__}: {result!r}"[:200],
              subject=shown(case))
    if any(isinstance(v, float) for v in result):
        _fail("batch-sizes-floats", expected=expected, found=repr(result)[:200], subject=shown(case))
    for code, sizes in want["patterns"]:  # most specific first, as stored
        if all(_same_sizes(results[c][0], pattern) for c, pattern in zip(cases, sizes)):
            _fail(code, expected=expected, found=f"{result}", subject=shown(case))
    _fail("batch-sizes-hard-coded" if printed_ok else "batch-sizes-wrong", expected=expected, found=f"{result}",
          subject=shown(case))
