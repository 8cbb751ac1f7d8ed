"""Lesson 01, Exercise 1 · ``CourseDataset``: its diagnoses, its visible check and its re-check probe.

:func:`check_course_dataset` builds the learner's dataset on seeded data of sizes and dtypes the
lesson never uses, and measures it by indexing (a dataset's word about itself is not trusted); then
it feeds it each bad input of the lesson's table. :func:`probe` is the kernel's half of the
grader's re-check: values only, on tensors drawn at grading time (:func:`dataset_tensors`).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import torch
from torch.utils.data import TensorDataset

from course_utils.checks.learner import call_or_fail, counting_calls, error_text
from course_utils.checks.lesson01.common import DATASET_SECTION, LESSON
from course_utils.diagnoses import Exercise, ForbiddenCall, fail_with

EXERCISE = Exercise(LESSON, "ex1-tests", "Exercise 1 · A `Dataset` of your own")
DIAGNOSES = EXERCISE.diagnoses(
    ("dataset-crashed", "CourseDataset raised an exception on valid inputs",
     "valid inputs are a 2-D floating-point features tensor (any float dtype) and 1-D integer targets (any int "
     "dtype) of the same length: accept them, and raise only for the cases in the table.", "interface",
     DATASET_SECTION),
    ("dataset-wraps-tensordataset", "CourseDataset hands the work to torch's TensorDataset, which is what this "
     "exercise asks you to write",
     "not allowed here: store the two tensors on self and index them yourself in __len__ and __getitem__.",
     "not-allowed", DATASET_SECTION),
    ("dataset-len-hard-coded", "len() gives 1000, the running example's size, for a dataset of another size",
     "not allowed: a hard-coded length. Return the number of samples you were given: len(self.targets).",
     "not-allowed", DATASET_SECTION),
    ("dataset-len-counts-features", "len() counts features (columns), not samples (rows)",
     "the samples are along dimension 0: return len(self.features) or self.features.shape[0].", "shapes",
     DATASET_SECTION),
    ("dataset-len", "len() is not the number of samples",
     "return len(self.targets), an int.", "interface", DATASET_SECTION),
    ("dataset-item-swapped", "ds[i] returns (targets[i], features[i]): the pair is the wrong way round",
     "return self.features[index], self.targets[index]: features first, as a DataLoader expects.", "interface",
     DATASET_SECTION),
    ("dataset-item-column", "ds[i] returns column i (one feature of every sample), not row i",
     "index the samples dimension: self.features[index] (not self.features[:, index]).", "shapes", DATASET_SECTION),
    ("dataset-item-everything", "ds[i] returns all the samples instead of sample i",
     "use the index: return self.features[index], self.targets[index].", "shapes", DATASET_SECTION),
    ("dataset-item-ignores-data", "ds[i] does not return the data the dataset was given (is it reading the "
     "notebook's global tensors?)",
     "keep the tensors passed to __init__ on self (self.features = features) and index those.", "data",
     DATASET_SECTION),
    ("dataset-item-off-by-one", "ds[i] returns a neighbouring sample (i + 1 or i - 1), not sample i",
     "Python and PyTorch count from 0: ds[0] is the first sample. Index with the index itself: "
     "self.features[index], self.targets[index] (no + 1 or - 1).", "data", DATASET_SECTION),
    ("dataset-item-float-target", "ds[i] returns the class label as a float, not as an integer",
     "return the label as it was given, self.targets[index] (an integer tensor): no .float() and no float(). "
     'Class labels feed nn.CrossEntropyLoss, which refuses float labels ("expected scalar type Long but found '
     'Float").', "dtypes", DATASET_SECTION),
    ("dataset-item-features-converted", "ds[i] returns the features converted to another dtype (e.g. float64 "
     "made float32 by .float())",
     "keep the features as they were given: any floating-point dtype is valid, so no .float() or .to(...) in "
     "__init__ or __getitem__.", "dtypes", DATASET_SECTION),
    ("dataset-item", "ds[i] is not the pair (features[i], targets[i])",
     "return a tuple of two tensors: self.features[index], self.targets[index].", "interface", DATASET_SECTION),
    ("dataset-no-error-message", "an error was raised without a message",
     'write what is wrong in every error, e.g. raise ValueError(f"{len(features)} feature rows but '
     '{len(targets)} targets").', "interface", DATASET_SECTION),
    ("dataset-wrong-error-type", "the wrong kind of error was raised for a bad input",
     "TypeError when a value has the wrong type or dtype, ValueError when it has the right type but a wrong "
     "shape or length (see the table).", "interface", DATASET_SECTION),
    ("dataset-accepts-length-mismatch", "features and targets of different lengths were accepted",
     "compare len(features) with len(targets) and raise ValueError when they differ.", "data", DATASET_SECTION),
    ("dataset-accepts-float-targets", "float targets were accepted",
     "targets are class labels: raise TypeError if targets.is_floating_point().", "dtypes", DATASET_SECTION),
    ("dataset-accepts-int-features", "integer features were accepted",
     "raise TypeError unless features.is_floating_point().", "dtypes", DATASET_SECTION),
    ("dataset-accepts-wrong-rank", "features that are not 2-D, or targets that are not 1-D, were accepted",
     "check features.ndim == 2 and targets.ndim == 1, and raise ValueError otherwise.", "shapes", DATASET_SECTION),
    ("dataset-accepts-non-tensor", "a Python list was accepted instead of a tensor",
     "check isinstance(features, torch.Tensor) (and the same for targets) first, and raise TypeError.",
     "interface", DATASET_SECTION),
)

# Library calls the answer must not make, found by the grader in the submitted source (course_tools.grade).
FORBIDDEN_CALLS = (
    ForbiddenCall("ex1-tests", "CourseDataset", ("torch.utils.data.TensorDataset",), "dataset-wraps-tensordataset"),
)


def _dataset_data(seed: int, n_samples: int, n_features: int,
                  float_dtype: torch.dtype, int_dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(4100 + seed)
    features = (torch.rand(n_samples, n_features, generator=generator, dtype=torch.float64) * 100).to(float_dtype)
    targets = torch.randint(0, 3, (n_samples,), generator=generator).to(int_dtype)
    return features, targets


def _same(a: Any, b: torch.Tensor) -> bool:
    return isinstance(a, torch.Tensor) and a.shape == b.shape and bool(torch.equal(a.to(b.dtype), b))


def _is_float_label(label: Any) -> bool:
    """A label that is a float: a Python float or a floating-point tensor (class labels are integers)."""
    return isinstance(label, float) or (isinstance(label, torch.Tensor) and label.is_floating_point())


def _check_items(dataset: Any, features: torch.Tensor, targets: torch.Tensor, subject: str) -> None:
    n_samples, n_features = features.shape
    for index in list(range(n_samples)) + [-1]:
        want = (features[index], targets[index])
        item = call_or_fail("dataset-item", operator.getitem, dataset, index, subject=subject,
                            expected=f"ds[{index}] = (features[{index}], targets[{index}])")
        shown = f"ds[{index}] = {item!r}"[:200]
        if not (isinstance(item, tuple) and len(item) == 2):
            if _same(item, features[index]):
                fail_with("dataset-item", expected="a pair (features[i], targets[i])",
                          found="only the features row", subject=subject)
            fail_with("dataset-item", expected="a pair (features[i], targets[i])", found=shown, subject=subject)
        x, y = item
        if _same(x, want[0]) and _same(torch.as_tensor(y), want[1]):
            if _is_float_label(y):
                fail_with("dataset-item-float-target",
                          expected=f"targets[{index}] as given, dtype {want[1].dtype}",
                          found=f"{y!r}"[:80] + ("" if isinstance(y, float) else f" (dtype {y.dtype})"),
                          subject=subject)
            continue
        if _same(torch.as_tensor(x), want[1]) and _same(y, want[0]):
            fail_with("dataset-item-swapped", expected="(features[i], targets[i])",
                      found="(targets[i], features[i])", subject=subject)
        if 0 <= index < n_features and _same(x, features[:, index]):
            fail_with("dataset-item-column", expected=f"row {index}: a tensor of shape ({n_features},)",
                      found=f"column {index}: a tensor of shape ({n_samples},)", subject=subject)
        if _same(x, features):
            fail_with("dataset-item-everything", expected=f"one row of shape ({n_features},)",
                      found=f"every row, shape {tuple(features.shape)}", subject=subject)
        if isinstance(x, torch.Tensor) and x.shape == want[0].shape and x.dtype != want[0].dtype:
            fail_with("dataset-item-features-converted",
                      expected=f"features[{index}] as given, dtype {want[0].dtype}",
                      found=f"dtype {x.dtype}: the features were converted", subject=subject)
        neighbours = [i for i in (index + 1, index - 1) if 0 <= index and 0 <= i < n_samples]
        if any(_same(x, features[i]) for i in neighbours):
            shifted = next(i for i in neighbours if _same(x, features[i]))
            fail_with("dataset-item-off-by-one", expected=f"ds[{index}] = sample {index}",
                      found=f"ds[{index}] = sample {shifted}", subject=subject)
        if isinstance(x, torch.Tensor) and x.shape == want[0].shape:
            fail_with("dataset-item-ignores-data", expected=f"features[{index}] = {want[0].tolist()}",
                      found=f"{x.tolist()}", subject=subject)
        fail_with("dataset-item",
                  expected=f"(features[{index}], targets[{index}]) = ({want[0].tolist()}, {int(want[1])})",
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
    return [(what, build(features.clone(), targets.clone()), error_type)
            for what, build, error_type, _ in _BAD_INPUTS]


def _check_validation(course_dataset: type, features: torch.Tensor, targets: torch.Tensor) -> None:
    for what, build, error_type, accepted_code in _BAD_INPUTS:
        subject = f"CourseDataset with {what}"
        try:
            course_dataset(*build(features.clone(), targets.clone()))
        except error_type as error:
            if not str(error).strip():
                fail_with("dataset-no-error-message",
                          expected=f"{error_type.__name__} with a message saying what is wrong",
                          found=f"{type(error).__name__}() with no message", subject=subject)
            continue
        except Exception as error:  # noqa: BLE001 - the wrong kind of error is the finding
            fail_with("dataset-wrong-error-type", expected=error_type.__name__, found=error_text(error),
                      subject=subject)
        fail_with(accepted_code, expected=f"{error_type.__name__}", found="no error: the dataset was created",
                  subject=subject)


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
        with counting_calls([TensorDataset], ["__init__", "__getitem__"]) as calls:
            dataset = call_or_fail("dataset-crashed", course_dataset, given_features, given_targets, subject=subject,
                                   expected="a dataset")
            length = call_or_fail("dataset-len", len, dataset, subject=subject, expected=size)
            if length != size or type(length) is not int:
                code = ("dataset-len-hard-coded" if length == 1000 else
                        "dataset-len-counts-features" if length == n_features else "dataset-len")
                fail_with(code, expected=f"len(ds) = {size}", found=f"len(ds) = {length!r}", subject=subject)
            _check_items(dataset, features, targets, subject)
        if calls or isinstance(dataset, TensorDataset):
            fail_with("dataset-wraps-tensordataset",
                      expected="your own __len__ and __getitem__ over the stored tensors",
                      found="TensorDataset does the indexing", subject="CourseDataset")
    _check_validation(course_dataset, *_dataset_data(seed, n_samples, n_features, torch.float32, torch.int64))


# --- the grader's re-check: the kernel's half (course_utils.verdict_probes) ----------------------------------

def dataset_tensors(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Features and labels of a small dataset drawn from ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    n = 5 + int(torch.randint(0, 40, (1,), generator=generator))
    features = torch.rand(n, 1 + int(torch.randint(0, 6, (1,), generator=generator)), generator=generator)
    return features, torch.randint(0, 4, (n,), generator=generator)


def dataset_variants(features: torch.Tensor, targets: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The datasets Exercise 1's re-check builds: as drawn, in float64 / int32, and a single sample."""
    return [(features, targets), (features.double(), targets.int()), (features[:1], targets[:1])]


def _label_type(label: Any) -> str:
    return str(label.dtype) if isinstance(label, torch.Tensor) else type(label).__name__


def _dataset_values(dataset: Any, n_samples: int) -> dict[str, Any]:
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


def probe(ns: dict[str, Any], seed: int) -> dict[str, Any]:
    """``CourseDataset`` on the datasets of :func:`dataset_variants` and on each bad input: values only."""
    features, targets = dataset_tensors(seed)
    datasets = dataset_variants(features, targets)
    found = [_dataset_values(ns["CourseDataset"](x.clone(), y.clone()), len(x)) for x, y in datasets]
    errors = [_raised(lambda args=args: ns["CourseDataset"](*args), wanted)
              for _, args, wanted in bad_inputs(features.clone(), targets.clone())]
    return {"datasets": found, "errors": errors}
