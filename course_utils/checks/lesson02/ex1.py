"""Lesson 02, Exercise 1 · ``Scaler``: its diagnoses, its visible checks and its re-check probe.

:func:`check_scaler` fits the learner's ``Scaler`` on seeded data whose features live on very
different scales, and compares every result with the right one, stored as data (computed on the
grader's side in float64: the same numbers as scikit-learn's ``MinMaxScaler`` / ``StandardScaler``).
A wrong result is matched against the stored results of typical mistakes (statistics over the wrong
dim, one global min/max, the unbiased std, statistics of the transformed data, ...) to name the
mistake. Every tensor handed to the learner's code is a fresh copy, compared with the original
afterwards: an in-place ``x -= shift`` is named, and never corrupts the notebook's own data.
:func:`probe` is the kernel's half of the grader's re-check.
"""

from __future__ import annotations

from typing import Any

import torch

from course_utils.checks import expected as stored
from course_utils.checks.core import CheckFailed
from course_utils.checks.learner import call_or_fail
from course_utils.checks.lesson02.common import (
    ATOL,
    CONSTANT_SECTION,
    LESSON,
    METHODS,
    MINMAX_SECTION,
    RTOL,
    SPLITS_SECTION,
    STANDARD_SECTION,
    difference,
    probe_sizes,
    seeded_data,
    seeded_splits,
    sklearn_calls,
    tensor_value,
    values_close,
)
from course_utils.diagnoses import Exercise, ForbiddenCall, fail_with

EXERCISE = Exercise(LESSON, "ex1-tests", "Exercise 1 · A `Scaler`")
DIAGNOSES = EXERCISE.diagnoses(
    ("scaler-crashed", "the Scaler raised an exception",
     "Scaler(method) with method 'minmax' or 'standard'; fit(x) returns self; transform(x) and "
     "inverse_transform(x) return new tensors of x's shape and dtype.", "interface", CONSTANT_SECTION),
    ("scaler-uses-sklearn", "the Scaler hands the work to scikit-learn's MinMaxScaler / StandardScaler",
     "not allowed here: that is the very thing this exercise asks you to write. Compute the statistics with "
     "torch (x.amin(dim=0), x.mean(dim=0), ...).", "not-allowed", CONSTANT_SECTION),
    ("scaler-fit-return", "fit does not return the scaler itself",
     "end fit with `return self`, so that Scaler(method).fit(train).transform(valid) works.", "interface",
     CONSTANT_SECTION),
    ("scaler-inplace", "the Scaler changed the tensor it was given, in place (e.g. x -= shift)",
     "compute a new tensor: return (x - self.shift) / self.scale. An in-place x -= shift overwrites the "
     "caller's data: your own features would be scaled again at every call.", "interface", CONSTANT_SECTION),
    ("scaler-dim1", "the statistics are taken over dim 1 (one per sample), not over dim 0 (one per feature)",
     "use x.amin(dim=0), x.amax(dim=0), x.mean(dim=0), x.std(dim=0, unbiased=False): one value per column.",
     "shapes", MINMAX_SECTION),
    ("scaler-global-stats", "one min/max (or mean/std) over all the features at once, instead of one per "
     "feature",
     "x.min() mixes every column; take the statistics per feature, over dim 0: x.amin(dim=0), x.amax(dim=0).",
     "shapes", MINMAX_SECTION),
    ("scaler-unbiased-std", "the standard deviation is the unbiased one (divides by n - 1)",
     "this course (like scikit-learn) uses the population std: x.std(dim=0, unbiased=False) (or correction=0).",
     "numerics", STANDARD_SECTION),
    ("scaler-refits-in-transform", "transform uses statistics of the data it is given, not those fit learned",
     "compute the statistics once, in fit, store them on self, and reuse them in transform: validation data "
     "scaled with its own statistics is leakage.", "leakage", SPLITS_SECTION),
    ("scaler-epsilon", "a small epsilon is added to every scale, which shifts every feature with a small spread",
     "keep the exact scale, and replace it by 1 only where the feature is constant: torch.where(high > low, "
     "spread, torch.ones_like(spread)).", "numerics", CONSTANT_SECTION),
    ("scaler-divides-by-max", "min-max scaling divides by the maximum, not by max - min",
     "x' = (x - min) / (max - min).", "numerics", CONSTANT_SECTION),
    ("scaler-no-shift", "the shift (minimum or mean) is not subtracted",
     "x' = (x - shift) / scale, with shift = the minimum ('minmax') or the mean ('standard').", "numerics",
     CONSTANT_SECTION),
    ("scaler-method-ignored", "the method argument is ignored or mixed up",
     "'minmax' uses min and max - min; 'standard' uses the mean and the population std.", "interface",
     CONSTANT_SECTION),
    ("scaler-formula", "the scaled values differ from (x - shift) / scale",
     "per feature: (x - min) / (max - min) for 'minmax', (x - mean) / std for 'standard', statistics from fit.",
     "numerics", CONSTANT_SECTION),
    ("scaler-dtype", "transform does not keep the input's dtype (or shape)",
     "do the arithmetic on x itself; do not build new tensors with torch.tensor(...) or .float().", "dtypes",
     CONSTANT_SECTION),
    ("scaler-constant-nan", "a constant feature gives NaN or inf (division by zero: max - min = 0 and std = 0)",
     "where the feature is constant use a scale of 1: torch.where(high > low, spread, torch.ones_like(spread)).",
     "numerics", CONSTANT_SECTION),
    ("scaler-constant-std-test", "a constant feature is tested with std == 0, which misses a constant such as "
     "0.3: its computed std is a tiny rounding error, not 0",
     "test for a constant feature with max == min, which is exact: torch.where(high > low, spread, "
     "torch.ones_like(spread)) with high, low = x.amax(dim=0), x.amin(dim=0).", "numerics", CONSTANT_SECTION),
    ("scaler-constant-feature", "a constant feature does not become 0",
     "with shift = its value and scale = 1, a constant feature becomes (c - c) / 1 = 0. Test for a constant "
     "feature with max == min (std == 0 can miss it by rounding).", "numerics", CONSTANT_SECTION),
    ("scaler-inverse-formula", "inverse_transform does not undo transform",
     "inverse_transform(x) = x * scale + shift, with the statistics fit stored.", "numerics", CONSTANT_SECTION),
    ("scaler-inverse-constant", "inverse_transform does not undo transform for a constant feature",
     "use the same scale in both directions: 1 where the feature is constant (store it in fit).", "numerics",
     CONSTANT_SECTION),
    ("scaler-refit-ignored", "a second fit does not replace the first fit's statistics",
     "fit always computes and stores new statistics, whatever was fitted before.", "interface", CONSTANT_SECTION),
)

# Library calls the answers must not make, found by the grader in the submitted source (course_tools.grade).
SKLEARN_SCALERS = ("sklearn.preprocessing.MinMaxScaler", "sklearn.preprocessing.StandardScaler",
                   "sklearn.preprocessing.minmax_scale", "sklearn.preprocessing.scale")
FORBIDDEN_CALLS = (
    ForbiddenCall("ex1-tests", "Scaler", SKLEARN_SCALERS, "scaler-uses-sklearn"),
)


# --- stored results: a few numbers that stand for a table -------------------------------------------
# The right results of Exercise 1's check, and those of each typical mistake, are computed on the grader's side
# (course_tools.grade.judges.lesson02) and stored as fingerprints: the mean and two fixed random projections of
# each table. Two tables whose values are close have close fingerprints, with a bound computed from the found
# values; different tables (almost surely) do not.

# (seed, n_samples, n_features) of the check_scaler calls whose results are stored: the notebook's and the tests'.
SCALER_CHECKS = ((4, 37, 6), (1, 9, 3), (2, 50, 7), (7, 12, 4))


def _projections(shape: tuple[int, ...], columns: list[float]) -> torch.Tensor:
    """The fixed weights of a fingerprint for tables of ``shape``: 1/N (the mean), then two seeded random tables;
    each column divided by its typical size, so that a column of small numbers counts as much as one of large."""
    generator = torch.Generator().manual_seed(9000 + 101 * shape[0] + shape[-1])
    numel = 1
    for size in shape:
        numel *= size
    weights = torch.cat([torch.full((1, *shape), 1.0 / numel, dtype=torch.float64),
                         torch.randn(2, *shape, generator=generator, dtype=torch.float64)])
    return weights / torch.tensor(columns, dtype=torch.float64)


def fingerprint(values: torch.Tensor, columns: list[float] | None = None) -> dict[str, Any]:
    """A table (samples, features) as stored data: its shape, the typical size of each column, and three
    weighted sums (the first one the mean, when every column has size 1)."""
    table = values.detach().double()
    if columns is None:
        typical = table.abs().mean(dim=0)
        columns = torch.where(typical > 0, typical, torch.ones_like(typical)).tolist()
    return {"shape": list(table.shape), "columns": columns, "mean": float(table.mean()),
            "fp": [float((w * table).sum()) for w in _projections(tuple(table.shape), columns)]}


def _matches(found: Any, entry: dict[str, Any], *, rtol: float | None = None, atol: float | None = None) -> bool:
    """``found`` is a finite float tensor of the entry's shape whose values are, within tolerance, the entry's."""
    if not (isinstance(found, torch.Tensor) and list(found.shape) == entry["shape"] and found.is_floating_point()):
        return False
    if rtol is None or atol is None:
        rtol, atol = (RTOL, ATOL) if found.dtype == torch.float64 else (1e-5, 1e-6)
    table = found.detach().double()
    if not bool(torch.isfinite(table).all()):
        return False
    for weights, stored_value in zip(_projections(tuple(table.shape), entry["columns"]), entry["fp"]):
        # |sum w (found - right)| <= sum |w| (atol + rtol |right|), with |right| ~ |found| (plus rounding slack)
        bound = float((weights.abs() * (atol + rtol * table.abs())).sum()) * 1.01 + 1e-300
        if abs(float((weights * table).sum()) - stored_value) > bound:
            return False
    return True


def _difference_from(found: Any, entry: dict[str, Any]) -> str:
    if not isinstance(found, torch.Tensor) or list(found.shape) != entry["shape"]:
        return f"{found!r}"[:120]
    return (f"values whose mean is {float(found.detach().double().mean()):.6g}; "
            f"the right values' mean is {entry['mean']:.6g}")


def _stored_scaler(seed: int, n_samples: int, n_features: int) -> dict[str, Any]:
    key = f"{seed}-{n_samples}-{n_features}"
    results = stored.load("lesson02-scaler")
    if key not in results:
        raise ValueError(f"check_scaler has stored results for (seed, n_samples, n_features) {SCALER_CHECKS} only")
    return results[key]


def _largest_change(after: torch.Tensor, before: torch.Tensor) -> str:
    if after.shape != before.shape:
        return f"shape {tuple(before.shape)} became {tuple(after.shape)}"
    return f"{float((after.double() - before.double()).abs().nan_to_num(float('inf')).max()):.3g}"


# --- Exercise 1 · Scaler --------------------------------------------------------------------------

class _Run:
    """Calls into the learner's scaler: each on a copy, checked for in-place changes and crashes."""

    def __init__(self, scaler_class: type) -> None:
        self.scaler_class = scaler_class

    def make(self, method: str) -> Any:
        return call_or_fail("scaler-crashed", self.scaler_class, method, subject=f"Scaler({method!r})",
                            expected="a scaler")

    def call(self, scaler: Any, name: str, x: torch.Tensor, subject: str) -> Any:
        given = x.clone()
        result = call_or_fail("scaler-crashed", getattr(scaler, name), given, subject=subject,
                              expected=f"{name} to return")
        if not torch.equal(given, x):
            fail_with("scaler-inplace", expected=f"the tensor given to {name} unchanged",
                      found=f"changed in place by {name} (largest change {_largest_change(given, x)})",
                      subject=subject)
        return result

    def fit(self, method: str, x: torch.Tensor, subject: str) -> Any:
        scaler = self.make(method)
        fitted = self.call(scaler, "fit", x, subject)
        if fitted is not scaler:
            fail_with("scaler-fit-return", expected="fit(x) returns the scaler itself (self)",
                      found=f"it returns {type(fitted).__name__} {fitted!r}"[:160], subject=subject)
        return scaler


_EXPECTED = {
    "scaler-refits-in-transform": "transform reuses the statistics fit stored",
    "scaler-dim1": "one statistic per feature, taken over dim 0 (the samples)",
    "scaler-global-stats": "one statistic per feature, taken over dim 0 (the samples)",
    "scaler-unbiased-std": "the population std, x.std(dim=0, unbiased=False)",
    "scaler-epsilon": "the exact spread as scale, and 1 only for a constant feature",
    "scaler-divides-by-max": "(x - min) / (max - min)",
    "scaler-no-shift": "(x - shift) / scale",
}


def _judge_transform(method: str, found: Any, want: dict[str, Any], subject: str) -> None:
    """``found`` against the stored right result of this transform, then against each typical mistake's."""
    expected = want["expected"]
    if _matches(found, expected):
        if found.dtype != torch.float64:
            fail_with("scaler-dtype", expected="dtype torch.float64", found=f"dtype {found.dtype}", subject=subject)
        return
    if not isinstance(found, torch.Tensor) or list(found.shape) != expected["shape"]:
        shown = f"shape {tuple(found.shape)}" if isinstance(found, torch.Tensor) else f"a {type(found).__name__}"
        fail_with("scaler-dtype", expected=f"a tensor of shape {tuple(expected['shape'])}", found=shown,
                  subject=subject)
    for code, prints in want["mistakes"]:
        if _matches(found, {**expected, "fp": prints}):
            fail_with(code, expected=_EXPECTED.get(code, f"Scaler({method!r}) as the exercise describes it"),
                      found=f"the result of this mistake: {_difference_from(found, expected)}", subject=subject)
    if found.is_floating_point() and _matches(found, expected, rtol=1e-4, atol=1e-5):
        fail_with("scaler-dtype", expected=f"float64 precision for float64 input ({RTOL:g} relative)",
                  found="float32 precision: were the statistics converted to float32?", subject=subject)
    fail_with("scaler-formula", expected="(x - shift) / scale per feature", found=_difference_from(found, expected),
              subject=subject)


# Constants whose std over n copies comes out as a tiny rounding error instead of 0 (for one feature, PyTorch's
# x.std(dim=0) sums rather than updating a running mean): a test ``std == 0`` misses them, ``max == min`` never does.
_INEXACT_CONSTANTS = (0.3, 0.1, 0.7, 3.3, 1.1, 0.9, 2.2, 0.6, 0.2, 1.3, 2.7, 0.33, 0.47, 5.1, 0.123, 7.7, 0.57)


def inexact_constant(n_samples: int) -> float:
    """A constant whose std over ``n_samples`` copies (one feature, float64) is not 0, such as 0.3."""
    def rounded(value: float) -> bool:
        column = torch.full((n_samples, 1), value, dtype=torch.float64)
        return float(column.std(dim=0, unbiased=False)) != 0.0 and float(column.std(dim=0)) != 0.0

    return next((value for value in _INEXACT_CONSTANTS if rounded(value)), _INEXACT_CONSTANTS[0])


def single_constant(n_samples: int) -> torch.Tensor:
    """A table of one constant feature, (n_samples, 1) float64, whose computed std is a rounding error, not 0."""
    return torch.full((n_samples, 1), inexact_constant(n_samples), dtype=torch.float64)


def _constant_data(train: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
    """``train`` with two constant features: one whose std rounds to a tiny non-zero number (e.g. 0.3), one
    all 0.0 (exactly std 0). Both have max == min."""
    constant = train.clone()
    columns = [1, train.shape[1] - 1]
    constant[:, columns[0]], constant[:, columns[1]] = inexact_constant(len(train)), 0.0
    return constant, columns


def _near_zero(column: torch.Tensor) -> bool:
    return bool(torch.isfinite(column).all()) and bool(column.detach().double().abs().max() <= 1e-6)


def _misses_inexact_constant(scaled: Any, columns: list[int]) -> bool:
    """The exactly constant feature became 0, the one whose std is a rounding error did not."""
    return (isinstance(scaled, torch.Tensor) and scaled.ndim == 2 and scaled.shape[1] > max(columns)
            and _near_zero(scaled[:, columns[1]]) and not _near_zero(scaled[:, columns[0]]))


def _shown_column(column: torch.Tensor) -> str:
    values = column.detach().double()
    finite = values[torch.isfinite(values)]
    if len(finite) < len(values):
        return f"{len(values) - len(finite)} NaN or inf values"
    return f"values from {float(finite.min()):.3g} to {float(finite.max()):.3g}"


def _check_single_constant(run: _Run, method: str, n_samples: int) -> None:
    """One constant feature such as 0.3: its std computes to a rounding error, so std == 0 misses it."""
    single = single_constant(n_samples)
    value = float(single[0, 0])
    subject = f"Scaler({method!r}) on {n_samples} x 1 data whose only feature is constant (all {value})"
    scaled = run.call(run.fit(method, single, subject), "transform", single, subject)
    if not (isinstance(scaled, torch.Tensor) and scaled.shape == single.shape and _near_zero(scaled)):
        shown = _shown_column(scaled[:, 0]) if isinstance(scaled, torch.Tensor) and scaled.ndim == 2 else \
            f"{scaled!r}"[:80]
        fail_with("scaler-constant-std-test", expected="0.0 everywhere (max == min: a constant feature, scale 1)",
                  found=f"{shown}: the std, {float(single.std(dim=0, unbiased=False)):.2g}, was taken for a spread",
                  subject=subject)


def scaler_check_tables(seed: int, n_samples: int, n_features: int) -> dict[str, Any]:
    """check_scaler's fixed inputs: a square table, a training and a validation split, the table with constant
    features (and their columns)."""
    train, valid = seeded_splits(seed, n_samples, n_features)
    constant, columns = _constant_data(train)
    return {"square": seeded_data(seed + 500, n_features, n_features), "train": train, "valid": valid,
            "constant": constant, "columns": columns}


def _check_method(run: _Run, method: str, seed: int, n_samples: int, n_features: int) -> None:
    name = f"Scaler({method!r})"
    tables, want = scaler_check_tables(seed, n_samples, n_features), _stored_scaler(seed, n_samples, n_features)[method]
    # A square table first: a dim mix-up shows in the values instead of crashing on a shape.
    square = tables["square"]
    subject = f"{name} fitted on {n_features} x {n_features} data, transforming the same data"
    scaler = run.fit(method, square, subject)
    _judge_transform(method, run.call(scaler, "transform", square, subject), want["square"], subject)

    train, valid = tables["train"], tables["valid"]
    subject = f"{name} fitted on {n_samples} x {n_features} data, transforming {len(valid)} other rows"
    scaler = run.fit(method, train, subject)
    scaled = run.call(scaler, "transform", valid, subject)
    _judge_transform(method, scaled, want["valid"], subject)
    subject = f"{name}: inverse_transform(transform(x)) for {len(valid)} rows it was not fitted on"
    back = run.call(scaler, "inverse_transform", scaled.detach(), subject)
    if not values_close(back, valid):
        fail_with("scaler-inverse-formula", expected="x again", found=difference(back, valid), subject=subject)

    constant, columns = tables["constant"], tables["columns"]
    value = float(constant[0, columns[0]])
    subject = f"{name} on data whose features {columns[0]} (all {value}) and {columns[1]} (all 0.0) are constant"
    scaler = run.fit(method, constant, subject)
    scaled = run.call(scaler, "transform", constant, subject)
    if _misses_inexact_constant(scaled, columns):
        fail_with("scaler-constant-std-test", expected=f"0.0 in feature {columns[0]} (all {value}) as in feature "
                                                       f"{columns[1]} (all 0.0)",
                  found=f"{_shown_column(scaled[:, columns[0]])} in feature {columns[0]}, 0.0 in feature {columns[1]}",
                  subject=subject)
    if isinstance(scaled, torch.Tensor) and not bool(torch.isfinite(scaled).all()):
        fail_with("scaler-constant-nan", expected="finite values, 0 in the constant features",
                  found=f"{int((~torch.isfinite(scaled)).sum())} NaN or inf values", subject=subject)
    if isinstance(scaled, torch.Tensor) and scaled.shape == constant.shape and not _near_zero(scaled[:, columns]):
        fail_with("scaler-constant-feature", expected="0.0 in the constant features",
                  found=f"values from {float(scaled[:, columns].min()):.3g} to {float(scaled[:, columns].max()):.3g}",
                  subject=subject)
    _judge_transform(method, scaled, want["constant"], subject)
    _check_single_constant(run, method, len(train))
    subject = f"{name} fitted with constant features, inverse_transform(transform(x)) for other rows"
    back = run.call(scaler, "inverse_transform", run.call(scaler, "transform", valid, subject).detach(), subject)
    if not values_close(back, valid):
        code = "scaler-inverse-constant" if values_close(back[:, [c for c in range(n_features) if c not in columns]],
                                                   valid[:, [c for c in range(n_features) if c not in columns]]) \
            else "scaler-inverse-formula"
        fail_with(code, expected="x again", found=difference(back, valid), subject=subject)

    subject = f"{name} fitted on one table, then fitted again on another"
    scaler = run.fit(method, train, subject)
    run.call(scaler, "fit", valid, subject)
    refitted = run.call(scaler, "transform", valid, subject)
    if not _matches(refitted, want["refit"]):
        code = "scaler-refit-ignored" if _matches(refitted, want["valid"]["expected"]) else "scaler-formula"
        fail_with(code, expected="the statistics of the second fit", found=_difference_from(refitted, want["refit"]),
                  subject=subject)


def check_scaler(scaler_class: type, *, seed: int = 4, n_samples: int = 37, n_features: int = 6) -> None:
    """Exercise 1: the learner's ``Scaler`` on seeded float64 data, both methods; raise naming the first mistake.

    (seed, n_samples, n_features) is one of SCALER_CHECKS, whose right results are stored (``lesson02-scaler``).
    """
    run = _Run(scaler_class)
    with sklearn_calls() as calls:
        try:
            for method in METHODS:
                _check_method(run, method, seed, n_samples, n_features)
        except CheckFailed:
            if not calls:
                raise
    if calls:
        fail_with("scaler-uses-sklearn", expected="statistics computed with torch",
                  found=f"{len(calls)} calls such as {calls[0]}", subject="Scaler")


def check_scaler_running_example(scaler_class: type, features: torch.Tensor, valid_features: torch.Tensor) -> None:
    """Scaler('standard') fitted on the running example's training split, transforming its validation split
    (on copies), against the stored result (``lesson02-running-example``: scikit-learn's StandardScaler's numbers)."""
    run = _Run(scaler_class)
    subject = "Scaler('standard') fitted on features, transforming valid_features (the running example)"
    scaler = run.fit("standard", features, subject)
    found = run.call(scaler, "transform", valid_features, subject)
    expected = stored.load("lesson02-running-example")["standard"]
    if not _matches(found, expected, rtol=1e-5, atol=1e-5):
        fail_with("scaler-formula",
                  expected="per feature: (x - mean) / std over dim 0, with x.std(dim=0, unbiased=False)",
                  found=_difference_from(found, expected), subject=subject)


# --- the grader's re-check: the kernel's half (course_utils.verdict_probes) ----------------------------------
# The kernel calls the learner's code on scenarios drawn from a seed chosen at grading time and sends
# back values only; the grader rebuilds the same scenarios with these builders and judges the values.

def scaler_scenario(seed: int) -> dict[str, Any]:
    """Exercise 1's re-check inputs: a training split, a validation split, and the split with constant features."""
    n_samples, n_features = probe_sizes(seed)
    train, valid = seeded_splits(seed, n_samples, n_features)
    constant, columns = _constant_data(train)
    return {"train": train, "valid": valid, "constant": constant, "constant_columns": columns,
            "single": single_constant(n_samples)}


def probe(ns: dict[str, Any], seed: int) -> dict[str, Any]:
    """The learner's ``Scaler`` on :func:`scaler_scenario`'s tables, both methods: values only."""
    scaler_class = ns["Scaler"]
    scenario = scaler_scenario(seed)
    given: list[tuple[torch.Tensor, torch.Tensor]] = []

    def copy_of(x: torch.Tensor) -> torch.Tensor:
        given.append((x.clone(), x))
        return given[-1][0]

    values: dict[str, Any] = {}
    for method in METHODS:
        scaler = scaler_class(method)
        values[f"{method}-fit-returns-self"] = scaler.fit(copy_of(scenario["train"])) is scaler
        scaled = scaler.transform(copy_of(scenario["valid"]))
        values[f"{method}-transform"] = tensor_value(scaled)
        values[f"{method}-inverse"] = tensor_value(scaler.inverse_transform(copy_of(scaled.detach()))) \
            if isinstance(scaled, torch.Tensor) else None
        constant = scaler_class(method)
        constant.fit(copy_of(scenario["constant"]))
        values[f"{method}-constant"] = tensor_value(constant.transform(copy_of(scenario["constant"])))
        scaled = constant.transform(copy_of(scenario["valid"]))
        values[f"{method}-constant-inverse"] = tensor_value(constant.inverse_transform(copy_of(scaled.detach()))) \
            if isinstance(scaled, torch.Tensor) else None
        single = scaler_class(method)
        single.fit(copy_of(scenario["single"]))
        values[f"{method}-single"] = tensor_value(single.transform(copy_of(scenario["single"])))
        refitted = scaler_class(method)
        refitted.fit(copy_of(scenario["train"]))
        refitted.fit(copy_of(scenario["valid"]))
        values[f"{method}-refit"] = tensor_value(refitted.transform(copy_of(scenario["valid"])))
    values["inputs-unchanged"] = all(torch.equal(after, before) for after, before in given)
    return values
