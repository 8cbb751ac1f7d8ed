"""Lesson 02's catalogue of typical mistakes, and the checks that recognise them by behaviour.

- :func:`check_scaler` (Exercise 1) fits the learner's ``Scaler`` on seeded data whose features live
  on very different scales, and compares every result with the right one, stored as data (computed
  on the grader's side in float64: the same numbers as scikit-learn's ``MinMaxScaler`` /
  ``StandardScaler``). A wrong result is matched against the stored results of typical mistakes
  (statistics over the wrong dim, one global min/max, the unbiased std, statistics of the
  transformed data, ...) to name the mistake.
- :func:`check_normalize_splits` (Exercise 2) runs the learner's ``normalize_splits`` with the
  course's stand-in ``Scaler`` (:class:`StandIn`, which scales by a rule of its own) in place of the
  learner's, so its points depend on Exercise 2 alone; it names leakage (fitting on validation
  data, on each split, on all data) by its numbers.

Every tensor handed to learner code is a fresh copy, compared with the original afterwards: an
in-place ``x -= shift`` is named, and never corrupts the notebook's own data.
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import torch

from course_utils.checks import expected as stored
from course_utils.checks.core import CheckFailed
from course_utils.checks.learner import error_text
from course_utils.diagnoses import Diagnosis, ForbiddenCall, by_code, codes_in, raise_diagnosis

LESSON = "02_normalization"
METHODS = ("minmax", "standard")
_SECTIONS = {"ex1-tests": "4 · Constant features, and the way back",
             "ex2-tests": "5 · Fit on the training split only"}
_SECTION_OF = {"scaler-dim1": "2 · Min-max scaling: 0-100 becomes 0-1",
               "scaler-global-stats": "2 · Min-max scaling: 0-100 becomes 0-1",
               "scaler-unbiased-std": "3 · Standardization: mean 0, standard deviation 1",
               "scaler-refits-in-transform": "5 · Fit on the training split only"}
_RTOL, _ATOL = 1e-7, 1e-9


def _row(code: str, exercise: str, family: str, what: str, hint: str) -> Diagnosis:
    section = _SECTION_OF.get(code, _SECTIONS[exercise])
    return Diagnosis(code, what, hint, family, lesson=LESSON, exercise=exercise, section=section)


CATALOGUE = (
    # Exercise 1 · Scaler
    _row("scaler-crashed", "ex1-tests", "interface", "the Scaler raised an exception",
         "Scaler(method) with method 'minmax' or 'standard'; fit(x) returns self; transform(x) and "
         "inverse_transform(x) return new tensors of x's shape and dtype."),
    _row("scaler-uses-sklearn", "ex1-tests", "not-allowed",
         "the Scaler hands the work to scikit-learn's MinMaxScaler / StandardScaler",
         "not allowed here: that is the very thing this exercise asks you to write. Compute the statistics "
         "with torch (x.amin(dim=0), x.mean(dim=0), ...)."),
    _row("scaler-fit-return", "ex1-tests", "interface", "fit does not return the scaler itself",
         "end fit with `return self`, so that Scaler(method).fit(train).transform(valid) works."),
    _row("scaler-inplace", "ex1-tests", "interface",
         "the Scaler changed the tensor it was given, in place (e.g. x -= shift)",
         "compute a new tensor: return (x - self.shift) / self.scale. An in-place x -= shift overwrites the "
         "caller's data: your own features would be scaled again at every call."),
    _row("scaler-dim1", "ex1-tests", "shapes",
         "the statistics are taken over dim 1 (one per sample), not over dim 0 (one per feature)",
         "use x.amin(dim=0), x.amax(dim=0), x.mean(dim=0), x.std(dim=0, unbiased=False): one value per column."),
    _row("scaler-global-stats", "ex1-tests", "shapes",
         "one min/max (or mean/std) over all the features at once, instead of one per feature",
         "x.min() mixes every column; take the statistics per feature, over dim 0: x.amin(dim=0), x.amax(dim=0)."),
    _row("scaler-unbiased-std", "ex1-tests", "numerics",
         "the standard deviation is the unbiased one (divides by n - 1)",
         "this course (like scikit-learn) uses the population std: x.std(dim=0, unbiased=False) (or correction=0)."),
    _row("scaler-refits-in-transform", "ex1-tests", "leakage",
         "transform uses statistics of the data it is given, not those fit learned",
         "compute the statistics once, in fit, store them on self, and reuse them in transform: validation "
         "data scaled with its own statistics is leakage."),
    _row("scaler-epsilon", "ex1-tests", "numerics",
         "a small epsilon is added to every scale, which shifts every feature with a small spread",
         "keep the exact scale, and replace it by 1 only where the feature is constant: "
         "torch.where(high > low, spread, torch.ones_like(spread))."),
    _row("scaler-divides-by-max", "ex1-tests", "numerics", "min-max scaling divides by the maximum, not by max - min",
         "x' = (x - min) / (max - min)."),
    _row("scaler-no-shift", "ex1-tests", "numerics", "the shift (minimum or mean) is not subtracted",
         "x' = (x - shift) / scale, with shift = the minimum ('minmax') or the mean ('standard')."),
    _row("scaler-method-ignored", "ex1-tests", "interface", "the method argument is ignored or mixed up",
         "'minmax' uses min and max - min; 'standard' uses the mean and the population std."),
    _row("scaler-formula", "ex1-tests", "numerics", "the scaled values differ from (x - shift) / scale",
         "per feature: (x - min) / (max - min) for 'minmax', (x - mean) / std for 'standard', statistics from fit."),
    _row("scaler-dtype", "ex1-tests", "dtypes", "transform does not keep the input's dtype (or shape)",
         "do the arithmetic on x itself; do not build new tensors with torch.tensor(...) or .float()."),
    _row("scaler-constant-nan", "ex1-tests", "numerics",
         "a constant feature gives NaN or inf (division by zero: max - min = 0 and std = 0)",
         "where the feature is constant use a scale of 1: torch.where(high > low, spread, torch.ones_like(spread))."),
    _row("scaler-constant-std-test", "ex1-tests", "numerics",
         "a constant feature is tested with std == 0, which misses a constant such as 0.3: its computed std is a "
         "tiny rounding error, not 0",
         "test for a constant feature with max == min, which is exact: "
         "torch.where(high > low, spread, torch.ones_like(spread)) with high, low = x.amax(dim=0), x.amin(dim=0)."),
    _row("scaler-constant-feature", "ex1-tests", "numerics", "a constant feature does not become 0",
         "with shift = its value and scale = 1, a constant feature becomes (c - c) / 1 = 0. Test for a constant "
         "feature with max == min (std == 0 can miss it by rounding)."),
    _row("scaler-inverse-formula", "ex1-tests", "numerics", "inverse_transform does not undo transform",
         "inverse_transform(x) = x * scale + shift, with the statistics fit stored."),
    _row("scaler-inverse-constant", "ex1-tests", "numerics",
         "inverse_transform does not undo transform for a constant feature",
         "use the same scale in both directions: 1 where the feature is constant (store it in fit)."),
    _row("scaler-refit-ignored", "ex1-tests", "interface", "a second fit does not replace the first fit's statistics",
         "fit always computes and stores new statistics, whatever was fitted before."),
    # Exercise 2 · normalize_splits
    _row("splits-exercise1-fails", "ex2-tests", "earlier-exercise", "Exercise 1 (Scaler) still fails",
         "fix Exercise 1 first and run its check cell until it passes; then run this check again."),
    _row("splits-crashed", "ex2-tests", "interface", "normalize_splits raised an exception",
         "scaler = Scaler(method).fit(train); return scaler.transform(train), scaler.transform(valid), scaler"),
    _row("splits-uses-sklearn", "ex2-tests", "not-allowed", "normalize_splits uses scikit-learn's scalers",
         "not allowed here: use your own Scaler(method) from Exercise 1."),
    _row("splits-return", "ex2-tests", "interface", "normalize_splits does not return (train_scaled, valid_scaled, scaler)",
         "end with: return scaler.transform(train), scaler.transform(valid), scaler"),
    _row("splits-return-order", "ex2-tests", "interface", "the scaled splits are returned in the wrong order",
         "return train_scaled first, then valid_scaled, then the scaler."),
    _row("splits-inplace", "ex2-tests", "interface", "normalize_splits changed train or valid in place",
         "return new tensors; never scale the inputs in place (x -= ...), the caller still needs the raw data."),
    _row("splits-fit-on-valid", "ex2-tests", "leakage", "the scaler was fitted on the validation split",
         "fit on train only: Scaler(method).fit(train), then transform both splits with it."),
    _row("splits-fit-each-split", "ex2-tests", "leakage",
         "each split was scaled with its own statistics (valid with statistics of valid)",
         "fit one scaler on train, and transform valid with that same scaler; never fit on valid."),
    _row("splits-fit-on-all", "ex2-tests", "leakage", "the scaler was fitted on train and valid together",
         "fit on train only: statistics of all the data leak the validation split into training."),
    _row("splits-method-ignored", "ex2-tests", "interface", "the method argument is not passed on to the Scaler",
         "use Scaler(method), not a fixed method."),
    _row("splits-default-method", "ex2-tests", "interface", "without a method, normalize_splits does not standardize",
         "the default is method='standard', as in the signature."),
    _row("splits-scaler-not-fitted-on-train", "ex2-tests", "interface",
         "the returned scaler is not the one fitted on train",
         "return the scaler you fitted on train, so that inverse_transform(valid_scaled) gives valid back."),
    _row("splits-values", "ex2-tests", "numerics", "the scaled splits differ from a Scaler(method) fitted on train",
         "scaler = Scaler(method).fit(train); return scaler.transform(train), scaler.transform(valid), scaler"),
)
DIAGNOSES = by_code(CATALOGUE)

# Library calls the answers must not make, found by the grader in the submitted source (course_tools.grade).
_SKLEARN_SCALERS = ("sklearn.preprocessing.MinMaxScaler", "sklearn.preprocessing.StandardScaler",
                    "sklearn.preprocessing.minmax_scale", "sklearn.preprocessing.scale")
FORBIDDEN_CALLS = (
    ForbiddenCall("ex1-tests", "Scaler", _SKLEARN_SCALERS, "scaler-uses-sklearn"),
    ForbiddenCall("ex2-tests", "normalize_splits", _SKLEARN_SCALERS, "splits-uses-sklearn"),
)


def _fail(code: str, *, expected: Any, found: Any, subject: str, also: tuple[str, ...] = ()) -> None:
    raise_diagnosis(DIAGNOSES[code], expected=expected, found=found, subject=subject,
                    also=[DIAGNOSES[c] for c in also if c != code])



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
        rtol, atol = (_RTOL, _ATOL) if found.dtype == torch.float64 else (1e-5, 1e-6)
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
    return f"values whose mean is {float(found.detach().double().mean()):.6g}; the right values' mean is {entry['mean']:.6g}"


def _stored_scaler(seed: int, n_samples: int, n_features: int) -> dict[str, Any]:
    key = f"{seed}-{n_samples}-{n_features}"
    results = stored.load("lesson02-scaler")
    if key not in results:
        raise ValueError(f"check_scaler has stored results for (seed, n_samples, n_features) {SCALER_CHECKS} only")
    return results[key]


# --- the stand-in Scaler of Exercise 2's check ---------------------------------------------------------------

_STAND_IN_OFFSETS = {"minmax": 0.25, "standard": -0.5}


class StandIn:
    """What the checks of Exercise 2 put in place of the learner's ``Scaler``, so that its points depend on
    Exercise 2 alone. It scales by a rule of its own, (x - (mean + offset)) / (max - min + 1), with an offset per
    method: no answer to Exercise 1, but numbers that tell which data it was fitted on, and with which method."""

    def __init__(self, method: str = "minmax") -> None:
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        self.method = method
        self.shift: torch.Tensor | None = None
        self.scale: torch.Tensor | None = None

    def fit(self, x: torch.Tensor) -> StandIn:
        self.shift = x.mean(dim=0) + _STAND_IN_OFFSETS[self.method]
        self.scale = x.amax(dim=0) - x.amin(dim=0) + 1.0
        return self

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.shift.to(x.dtype)) / self.scale.to(x.dtype)

    def inverse_transform(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale.to(x.dtype) + self.shift.to(x.dtype)

    def fit_transform(self, x: torch.Tensor) -> torch.Tensor:
        return self.fit(x).transform(x)


def stand_in_scale(method: str, fit_on: torch.Tensor, apply_to: torch.Tensor) -> torch.Tensor:
    """``apply_to`` scaled by a stand-in fitted on ``fit_on``."""
    return StandIn(method).fit(fit_on).transform(apply_to)


# --- seeded data the notebook never prints ------------------------------------------------------

def _data(seed: int, n_samples: int, n_features: int, *, centre: float = 3.0, spread: float = 1.0,
          noise_seed: int | None = None) -> torch.Tensor:
    """float64 data whose features live on scales from 1e-3 to 1e3, in an order set by ``seed``."""
    exponents = torch.tensor([-3.0, 0.0, 3.0, -1.0, 2.0, 1.0, -2.0], dtype=torch.float64)
    sizes = 10 ** exponents[torch.arange(n_features) % len(exponents)]
    sizes = sizes[torch.randperm(n_features, generator=torch.Generator().manual_seed(seed))]
    generator = torch.Generator().manual_seed(7300 + (seed if noise_seed is None else noise_seed))
    noise = torch.randn(n_samples, n_features, generator=generator, dtype=torch.float64)
    return (noise * spread + centre) * sizes


def _splits(seed: int, n_samples: int, n_features: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A training split and a shifted, wider validation split of another size, features on the same scales."""
    train = _data(seed, n_samples, n_features)
    valid = _data(seed, n_samples // 2 + 3, n_features, centre=5.0, spread=2.0, noise_seed=seed + 1000)
    return train, valid


def _close(found: Any, expected: torch.Tensor, *, round_trip: bool = False) -> bool:
    """Close in the found dtype's precision; a round trip (x scaled and back) may also lose that precision of the
    table's largest value, in every element."""
    if not (isinstance(found, torch.Tensor) and found.shape == expected.shape and found.is_floating_point()):
        return False
    rtol, atol = (_RTOL, _ATOL) if found.dtype == torch.float64 else (1e-5, 1e-6)
    if round_trip and expected.numel():
        atol += rtol * float(expected.double().abs().max())
    return (bool(torch.isfinite(found).all() == torch.isfinite(expected).all())
            and torch.allclose(found.detach().double(), expected.double(), rtol=rtol, atol=atol))


def _largest_change(after: torch.Tensor, before: torch.Tensor) -> str:
    if after.shape != before.shape:
        return f"shape {tuple(before.shape)} became {tuple(after.shape)}"
    return f"{float((after.double() - before.double()).abs().nan_to_num(float('inf')).max()):.3g}"


def _difference(found: torch.Tensor, expected: torch.Tensor) -> str:
    if not isinstance(found, torch.Tensor) or found.shape != expected.shape:
        return f"{found!r}"[:120]
    worst = (found.detach().double() - expected).abs().nan_to_num(float("inf")).max()
    return f"largest difference from the reference {float(worst):.3g}"


@contextlib.contextmanager
def _sklearn_calls() -> Iterator[list[str]]:
    """Count calls of scikit-learn's two scalers while learner code runs (if scikit-learn is installed)."""
    calls: list[str] = []
    try:
        from sklearn import preprocessing
    except ImportError:  # without scikit-learn nobody can call it
        yield calls
        return
    with contextlib.ExitStack() as stack:
        for cls in (preprocessing.MinMaxScaler, preprocessing.StandardScaler):
            for name in ("fit", "partial_fit", "transform", "fit_transform", "inverse_transform"):
                original = getattr(cls, name)

                def wrapper(*args: Any, _original: Callable = original, _name: str = f"{cls.__name__}.{name}",
                            **kwargs: Any) -> Any:
                    calls.append(_name)
                    return _original(*args, **kwargs)

                stack.enter_context(mock.patch.object(cls, name, wrapper))
        yield calls


# --- Exercise 1 · Scaler --------------------------------------------------------------------------

class _Run:
    """Calls into the learner's scaler: each on a copy, checked for in-place changes and crashes."""

    def __init__(self, scaler_class: type) -> None:
        self.scaler_class = scaler_class

    def make(self, method: str) -> Any:
        try:
            return self.scaler_class(method)
        except Exception as error:  # noqa: BLE001
            _fail("scaler-crashed", expected="a scaler", found=error_text(error), subject=f"Scaler({method!r})")

    def call(self, scaler: Any, name: str, x: torch.Tensor, subject: str) -> Any:
        given = x.clone()
        try:
            result = getattr(scaler, name)(given)
        except Exception as error:  # noqa: BLE001
            _fail("scaler-crashed", expected=f"{name} to return", found=error_text(error), subject=subject)
        if not torch.equal(given, x):
            _fail("scaler-inplace", expected=f"the tensor given to {name} unchanged",
                  found=f"changed in place by {name} (largest change {_largest_change(given, x)})", subject=subject)
        return result

    def fit(self, method: str, x: torch.Tensor, subject: str) -> Any:
        scaler = self.make(method)
        fitted = self.call(scaler, "fit", x, subject)
        if fitted is not scaler:
            _fail("scaler-fit-return", expected="fit(x) returns the scaler itself (self)",
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
            _fail("scaler-dtype", expected="dtype torch.float64", found=f"dtype {found.dtype}", subject=subject)
        return
    if not isinstance(found, torch.Tensor) or list(found.shape) != expected["shape"]:
        shown = f"shape {tuple(found.shape)}" if isinstance(found, torch.Tensor) else f"a {type(found).__name__}"
        _fail("scaler-dtype", expected=f"a tensor of shape {tuple(expected['shape'])}", found=shown, subject=subject)
    for code, prints in want["mistakes"]:
        if _matches(found, {**expected, "fp": prints}):
            _fail(code, expected=_EXPECTED.get(code, f"Scaler({method!r}) as the exercise describes it"),
                  found=f"the result of this mistake: {_difference_from(found, expected)}", subject=subject)
    if found.is_floating_point() and _matches(found, expected, rtol=1e-4, atol=1e-5):
        _fail("scaler-dtype", expected=f"float64 precision for float64 input ({_RTOL:g} relative)",
              found="float32 precision: were the statistics converted to float32?", subject=subject)
    _fail("scaler-formula", expected="(x - shift) / scale per feature", found=_difference_from(found, expected),
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
        _fail("scaler-constant-std-test", expected="0.0 everywhere (max == min: a constant feature, scale 1)",
              found=f"{shown}: the std, {float(single.std(dim=0, unbiased=False)):.2g}, was taken for a spread",
              subject=subject)


def scaler_check_tables(seed: int, n_samples: int, n_features: int) -> dict[str, Any]:
    """check_scaler's fixed inputs: a square table, a training and a validation split, the table with constant
    features (and their columns)."""
    train, valid = _splits(seed, n_samples, n_features)
    constant, columns = _constant_data(train)
    return {"square": _data(seed + 500, n_features, n_features), "train": train, "valid": valid,
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
    if not _close(back, valid):
        _fail("scaler-inverse-formula", expected="x again", found=_difference(back, valid), subject=subject)

    constant, columns = tables["constant"], tables["columns"]
    value = float(constant[0, columns[0]])
    subject = f"{name} on data whose features {columns[0]} (all {value}) and {columns[1]} (all 0.0) are constant"
    scaler = run.fit(method, constant, subject)
    scaled = run.call(scaler, "transform", constant, subject)
    if _misses_inexact_constant(scaled, columns):
        _fail("scaler-constant-std-test", expected=f"0.0 in feature {columns[0]} (all {value}) as in feature "
                                                   f"{columns[1]} (all 0.0)",
              found=f"{_shown_column(scaled[:, columns[0]])} in feature {columns[0]}, 0.0 in feature {columns[1]}",
              subject=subject)
    if isinstance(scaled, torch.Tensor) and not bool(torch.isfinite(scaled).all()):
        _fail("scaler-constant-nan", expected="finite values, 0 in the constant features",
              found=f"{int((~torch.isfinite(scaled)).sum())} NaN or inf values", subject=subject)
    if isinstance(scaled, torch.Tensor) and scaled.shape == constant.shape and not _near_zero(scaled[:, columns]):
        _fail("scaler-constant-feature", expected="0.0 in the constant features",
              found=f"values from {float(scaled[:, columns].min()):.3g} to {float(scaled[:, columns].max()):.3g}",
              subject=subject)
    _judge_transform(method, scaled, want["constant"], subject)
    _check_single_constant(run, method, len(train))
    subject = f"{name} fitted with constant features, inverse_transform(transform(x)) for other rows"
    back = run.call(scaler, "inverse_transform", run.call(scaler, "transform", valid, subject).detach(), subject)
    if not _close(back, valid):
        code = "scaler-inverse-constant" if _close(back[:, [c for c in range(n_features) if c not in columns]],
                                                   valid[:, [c for c in range(n_features) if c not in columns]]) \
            else "scaler-inverse-formula"
        _fail(code, expected="x again", found=_difference(back, valid), subject=subject)

    subject = f"{name} fitted on one table, then fitted again on another"
    scaler = run.fit(method, train, subject)
    run.call(scaler, "fit", valid, subject)
    refitted = run.call(scaler, "transform", valid, subject)
    if not _matches(refitted, want["refit"]):
        code = "scaler-refit-ignored" if _matches(refitted, want["valid"]["expected"]) else "scaler-formula"
        _fail(code, expected="the statistics of the second fit", found=_difference_from(refitted, want["refit"]),
              subject=subject)


def check_scaler(scaler_class: type, *, seed: int = 4, n_samples: int = 37, n_features: int = 6) -> None:
    """Exercise 1: the learner's ``Scaler`` on seeded float64 data, both methods; raise naming the first mistake.

    (seed, n_samples, n_features) is one of SCALER_CHECKS, whose right results are stored (``lesson02-scaler``).
    """
    run = _Run(scaler_class)
    with _sklearn_calls() as calls:
        try:
            for method in METHODS:
                _check_method(run, method, seed, n_samples, n_features)
        except CheckFailed:
            if not calls:
                raise
    if calls:
        _fail("scaler-uses-sklearn", expected="statistics computed with torch",
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
        _fail("scaler-formula", expected="per feature: (x - mean) / std over dim 0, with x.std(dim=0, unbiased=False)",
              found=_difference_from(found, expected), subject=subject)


# --- Exercise 2 · normalize_splits ----------------------------------------------------------------

def _with_stand_in(function: Callable[..., Any]) -> tuple[Callable[..., Any], list[Any]]:
    """``function`` with the name ``Scaler`` bound to the course's stand-in; the list records its instances."""
    made: list[Any] = []

    class Scaler(StandIn):
        def __init__(self, method: str = "minmax") -> None:
            super().__init__(method)
            made.append(self)

    if not isinstance(function, types.FunctionType):
        return function, made
    namespace = dict(function.__globals__)
    namespace["Scaler"] = Scaler
    patched = types.FunctionType(function.__code__, namespace, function.__name__, function.__defaults__,
                                 function.__closure__)
    patched.__kwdefaults__ = function.__kwdefaults__
    return patched, made


def _exercise1_failure(scaler_class: type | None) -> str | None:
    """The first line of Exercise 1's failure for the learner's Scaler, or None if it passes."""
    if scaler_class is None:
        return None
    try:
        check_scaler(scaler_class)
    except CheckFailed as failure:
        return next(line.strip() for line in str(failure).strip().splitlines()).lstrip("✗ ")
    except Exception as error:  # noqa: BLE001 - a crash of Exercise 1 is a failure of Exercise 1
        return error_text(error)
    return None


def _judge_splits(result: Any, method: str, train: torch.Tensor, valid: torch.Tensor, *, default: bool,
                  subject: str) -> None:
    if not (isinstance(result, (tuple, list)) and len(result) == 3):
        _fail("splits-return", expected="a tuple (train_scaled, valid_scaled, scaler)",
              found=f"a {type(result).__name__}" + (f" of {len(result)}" if isinstance(result, (tuple, list)) else ""),
              subject=subject)
    train_scaled, valid_scaled, scaler = result
    expected_train, expected_valid = stand_in_scale(method, train, train), stand_in_scale(method, train, valid)
    if _close(train_scaled, expected_valid) or _close(valid_scaled, expected_train):
        _fail("splits-return-order", expected=f"shapes {tuple(train.shape)}, {tuple(valid.shape)}",
              found=f"shapes {tuple(getattr(train_scaled, 'shape', ()))}, {tuple(getattr(valid_scaled, 'shape', ()))}",
              subject=subject)
    if not (_close(train_scaled, expected_train) and _close(valid_scaled, expected_valid)):
        other = "standard" if method == "minmax" else "minmax"
        everything = torch.cat([train, valid])
        mistakes = [
            ("splits-fit-on-valid", stand_in_scale(method, valid, train), stand_in_scale(method, valid, valid)),
            ("splits-fit-each-split", expected_train, stand_in_scale(method, valid, valid)),
            ("splits-fit-on-all", stand_in_scale(method, everything, train), stand_in_scale(method, everything, valid)),
            ("splits-default-method" if default else "splits-method-ignored",
             stand_in_scale(other, train, train), stand_in_scale(other, train, valid)),
        ]
        found = f"valid_scaled: {_difference(valid_scaled, expected_valid)}"
        for code, wrong_train, wrong_valid in mistakes:
            if _close(train_scaled, wrong_train) and _close(valid_scaled, wrong_valid):
                _fail(code, expected="both splits scaled with statistics of train (by the course's stand-in Scaler)", found=found, subject=subject)
        _fail("splits-values", expected="both splits scaled with statistics of train (by the course's stand-in Scaler)", found=found, subject=subject)
    try:
        back = scaler.inverse_transform(valid_scaled.detach().clone())
    except Exception as error:  # noqa: BLE001
        back = error
    if not _close(back, valid, round_trip=True):
        _fail("splits-scaler-not-fitted-on-train", expected="scaler.inverse_transform(valid_scaled) == valid",
              found=error_text(back) if isinstance(back, Exception) else _difference(back, valid), subject=subject)


def _run_splits(function: Callable[..., Any], train: torch.Tensor, valid: torch.Tensor, method: str | None,
                subject: str) -> Any:
    given_train, given_valid = train.clone(), valid.clone()
    try:
        result = function(given_train, given_valid) if method is None else function(given_train, given_valid,
                                                                                    method=method)
    except Exception as error:  # noqa: BLE001
        _fail("splits-crashed", expected="(train_scaled, valid_scaled, scaler)", found=error_text(error),
              subject=subject)
    if not (torch.equal(given_train, train) and torch.equal(given_valid, valid)):
        _fail("splits-inplace", expected="train and valid unchanged", found="changed in place", subject=subject)
    return result


def _uses(scaler_class: type | None) -> contextlib.AbstractContextManager[list[str]]:
    """Count calls into the learner's own Scaler class while normalize_splits runs."""
    if not isinstance(scaler_class, type):
        return contextlib.nullcontext([])
    return _counting_methods(scaler_class, ("fit", "transform", "inverse_transform"))


@contextlib.contextmanager
def _counting_methods(cls: type, names: tuple[str, ...]) -> Iterator[list[str]]:
    calls: list[str] = []
    with contextlib.ExitStack() as stack:
        for name in names:
            original = getattr(cls, name, None)
            if not callable(original):
                continue

            def wrapper(*args: Any, _original: Callable = original, _name: str = name, **kwargs: Any) -> Any:
                calls.append(_name)
                return _original(*args, **kwargs)

            stack.enter_context(mock.patch.object(cls, name, wrapper))
        yield calls


_NOTED: set[int] = set()  # learner Scaler classes whose Exercise 1 failure was already mentioned


def check_normalize_splits(normalize_splits: Callable[..., Any], scaler_class: type | None = None, *,
                           seed: int = 0, n_samples: int = 23, n_features: int = 4) -> None:
    """Exercise 2, judged on its own: ``normalize_splits`` runs with the course's reference Scaler.

    The name ``Scaler`` inside ``normalize_splits`` is bound to the course's stand-in for the check. Only
    if the function still reaches the learner's own ``scaler_class`` (for example through a default
    argument), fails, and that class fails Exercise 1, does the message say "Exercise 1 still fails" first.
    """
    patched, _ = _with_stand_in(normalize_splits)
    train, valid = _splits(seed + 50, n_samples, n_features)
    try:
        with _sklearn_calls() as calls, _uses(scaler_class) as own_calls:
            for method in (None, "minmax", "standard"):
                shown = "" if method is None else f", method={method!r}"
                subject = f"normalize_splits(train of {n_samples} x {n_features}, valid of {len(valid)} rows{shown})"
                result = _run_splits(patched, train, valid, method, subject)
                _judge_splits(result, method or "standard", train, valid, default=method is None, subject=subject)
    except CheckFailed as failure:
        if calls:
            _fail("splits-uses-sklearn", expected="your Scaler(method)", found=f"{len(calls)} calls such as {calls[0]}",
                  subject="normalize_splits")
        earlier = _exercise1_failure(scaler_class) if own_calls else None
        if earlier:
            _fail("splits-exercise1-fails", expected="Exercise 1's check to pass", found=earlier,
                  subject="normalize_splits", also=tuple(codes_in(str(failure))[:1]))
        raise
    if calls:
        _fail("splits-uses-sklearn", expected="your Scaler(method)", found=f"{len(calls)} calls such as {calls[0]}",
              subject="normalize_splits")
    earlier = _exercise1_failure(scaler_class) if scaler_class is not None and id(scaler_class) not in _NOTED else None
    if earlier:
        _NOTED.add(id(scaler_class))
        print(f"note: normalize_splits passes with the course's own Scaler, but your Scaler (Exercise 1) "
              f"still fails: {earlier}")


def check_splits_running_example(normalize_splits: Callable[..., Any], features: torch.Tensor,
                                 valid_features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The running example through ``normalize_splits`` (the stand-in Scaler, copies of the data).

    Returns (train_scaled, valid_scaled) for method='minmax', scaled by the stand-in.
    """
    patched, _ = _with_stand_in(normalize_splits)
    subject = "normalize_splits(features, valid_features, method='minmax') on the running example"
    result = _run_splits(patched, features, valid_features, "minmax", subject)
    _judge_splits(result, "minmax", features.double(), valid_features.double(), default=False, subject=subject)
    return result[0], result[1]


# --- PROBES: the grader's re-check (course_utils.verdict_probes) ------------------------------------
# The kernel calls the learner's code on scenarios drawn from a seed chosen at grading time and sends
# back values only; the grader rebuilds the same scenarios with these builders and judges the values.

def _probe_sizes(seed: int) -> tuple[int, int]:
    """(n_samples, n_features) of a re-check scenario, drawn from ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    n_samples = 5 + int(torch.randint(0, 40, (1,), generator=generator))
    return n_samples, 3 + int(torch.randint(0, 5, (1,), generator=generator))


def scaler_scenario(seed: int) -> dict[str, Any]:
    """Exercise 1's re-check inputs: a training split, a validation split, and the split with constant features."""
    n_samples, n_features = _probe_sizes(seed)
    train, valid = _splits(seed, n_samples, n_features)
    constant, columns = _constant_data(train)
    return {"train": train, "valid": valid, "constant": constant, "constant_columns": columns,
            "single": single_constant(n_samples)}


def splits_scenario(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Exercise 2's re-check inputs: a training split and a validation split of another size."""
    n_samples, n_features = _probe_sizes(seed + 1)
    return _splits(seed + 50, n_samples, n_features)


def _value(result: Any) -> torch.Tensor | None:
    """A plain tensor copy of ``result``, or None when it is no tensor (a value the judge rejects)."""
    return result.detach().clone().as_subclass(torch.Tensor) if isinstance(result, torch.Tensor) else None


def _probe_scaler(ns: dict[str, Any], seed: int) -> dict[str, Any]:
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
        values[f"{method}-transform"] = _value(scaled)
        values[f"{method}-inverse"] = _value(scaler.inverse_transform(copy_of(scaled.detach()))) \
            if isinstance(scaled, torch.Tensor) else None
        constant = scaler_class(method)
        constant.fit(copy_of(scenario["constant"]))
        values[f"{method}-constant"] = _value(constant.transform(copy_of(scenario["constant"])))
        scaled = constant.transform(copy_of(scenario["valid"]))
        values[f"{method}-constant-inverse"] = _value(constant.inverse_transform(copy_of(scaled.detach()))) \
            if isinstance(scaled, torch.Tensor) else None
        single = scaler_class(method)
        single.fit(copy_of(scenario["single"]))
        values[f"{method}-single"] = _value(single.transform(copy_of(scenario["single"])))
        refitted = scaler_class(method)
        refitted.fit(copy_of(scenario["train"]))
        refitted.fit(copy_of(scenario["valid"]))
        values[f"{method}-refit"] = _value(refitted.transform(copy_of(scenario["valid"])))
    values["inputs-unchanged"] = all(torch.equal(after, before) for after, before in given)
    return values


def _probe_normalize_splits(ns: dict[str, Any], seed: int) -> dict[str, Any]:
    patched, _ = _with_stand_in(ns["normalize_splits"])  # Exercise 2 is judged on its own
    train, valid = splits_scenario(seed)
    values: dict[str, Any] = {}
    for method in (None, "minmax", "standard"):
        given_train, given_valid = train.clone(), valid.clone()
        result = patched(given_train, given_valid) if method is None else patched(given_train, given_valid,
                                                                                  method=method)
        three = isinstance(result, (tuple, list)) and len(result) == 3
        train_scaled, valid_scaled, scaler = result if three else (None, None, None)
        back = None
        if isinstance(valid_scaled, torch.Tensor):
            try:
                back = _value(scaler.inverse_transform(valid_scaled.detach().clone()))
            except Exception:  # noqa: BLE001 - a scaler that cannot undo its scaling is a wrong value
                back = None
        values[str(method)] = {"three": three, "train": _value(train_scaled), "valid": _value(valid_scaled),
                               "back": back,
                               "unchanged": torch.equal(given_train, train) and torch.equal(given_valid, valid)}
    return values


PROBES = {"ex1-tests": _probe_scaler, "ex2-tests": _probe_normalize_splits}
