"""Lesson 02, Exercise 2 · ``normalize_splits``: its diagnoses, its visible checks and its re-check probe.

:func:`check_normalize_splits` runs the learner's ``normalize_splits`` with the course's stand-in
``Scaler`` (:class:`StandIn`, which scales by a rule of its own) in place of the learner's, so its
points depend on Exercise 2 alone; it names leakage (fitting on validation data, on each split, on
all data) by its numbers. :func:`probe` is the kernel's half of the grader's re-check.
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import Callable
from typing import Any

import torch

from course_utils.checks.core import CheckFailed
from course_utils.checks.learner import call_or_fail, counting_calls, error_text
from course_utils.checks.lesson02.common import (
    LESSON,
    METHODS,
    SPLITS_SECTION,
    difference,
    probe_sizes,
    seeded_splits,
    sklearn_calls,
    tensor_value,
    values_close,
)
from course_utils.checks.lesson02.ex1 import SKLEARN_SCALERS, check_scaler
from course_utils.diagnoses import Exercise, ForbiddenCall, codes_in, fail_with

EXERCISE = Exercise(LESSON, "ex2-tests", "Exercise 2 · Normalize the splits")
DIAGNOSES = EXERCISE.diagnoses(
    ("splits-exercise1-fails", "Exercise 1 (Scaler) still fails",
     "fix Exercise 1 first and run its check cell until it passes; then run this check again.", "earlier-exercise",
     SPLITS_SECTION),
    ("splits-crashed", "normalize_splits raised an exception",
     "scaler = Scaler(method).fit(train); return scaler.transform(train), scaler.transform(valid), scaler",
     "interface", SPLITS_SECTION),
    ("splits-uses-sklearn", "normalize_splits uses scikit-learn's scalers",
     "not allowed here: use your own Scaler(method) from Exercise 1.", "not-allowed", SPLITS_SECTION),
    ("splits-return", "normalize_splits does not return (train_scaled, valid_scaled, scaler)",
     "end with: return scaler.transform(train), scaler.transform(valid), scaler", "interface", SPLITS_SECTION),
    ("splits-return-order", "the scaled splits are returned in the wrong order",
     "return train_scaled first, then valid_scaled, then the scaler.", "interface", SPLITS_SECTION),
    ("splits-inplace", "normalize_splits changed train or valid in place",
     "return new tensors; never scale the inputs in place (x -= ...), the caller still needs the raw data.",
     "interface", SPLITS_SECTION),
    ("splits-fit-on-valid", "the scaler was fitted on the validation split",
     "fit on train only: Scaler(method).fit(train), then transform both splits with it.", "leakage",
     SPLITS_SECTION),
    ("splits-fit-each-split", "each split was scaled with its own statistics (valid with statistics of valid)",
     "fit one scaler on train, and transform valid with that same scaler; never fit on valid.", "leakage",
     SPLITS_SECTION),
    ("splits-fit-on-all", "the scaler was fitted on train and valid together",
     "fit on train only: statistics of all the data leak the validation split into training.", "leakage",
     SPLITS_SECTION),
    ("splits-method-ignored", "the method argument is not passed on to the Scaler",
     "use Scaler(method), not a fixed method.", "interface", SPLITS_SECTION),
    ("splits-default-method", "without a method, normalize_splits does not standardize",
     "the default is method='standard', as in the signature.", "interface", SPLITS_SECTION),
    ("splits-scaler-not-fitted-on-train", "the returned scaler is not the one fitted on train",
     "return the scaler you fitted on train, so that inverse_transform(valid_scaled) gives valid back.",
     "interface", SPLITS_SECTION),
    ("splits-values", "the scaled splits differ from a Scaler(method) fitted on train",
     "scaler = Scaler(method).fit(train); return scaler.transform(train), scaler.transform(valid), scaler",
     "numerics", SPLITS_SECTION),
)

# Library calls the answer must not make, found by the grader in the submitted source (course_tools.grade).
FORBIDDEN_CALLS = (
    ForbiddenCall("ex2-tests", "normalize_splits", SKLEARN_SCALERS, "splits-uses-sklearn"),
)


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


_SCALED_WITH_TRAIN = "both splits scaled with statistics of train (by the course's stand-in Scaler)"


def _judge_splits(result: Any, method: str, train: torch.Tensor, valid: torch.Tensor, *, default: bool,
                  subject: str) -> None:
    if not (isinstance(result, (tuple, list)) and len(result) == 3):
        fail_with("splits-return", expected="a tuple (train_scaled, valid_scaled, scaler)",
                  found=f"a {type(result).__name__}"
                  + (f" of {len(result)}" if isinstance(result, (tuple, list)) else ""),
                  subject=subject)
    train_scaled, valid_scaled, scaler = result
    expected_train, expected_valid = stand_in_scale(method, train, train), stand_in_scale(method, train, valid)
    if values_close(train_scaled, expected_valid) or values_close(valid_scaled, expected_train):
        fail_with("splits-return-order", expected=f"shapes {tuple(train.shape)}, {tuple(valid.shape)}",
                  found=f"shapes {tuple(getattr(train_scaled, 'shape', ()))}, "
                        f"{tuple(getattr(valid_scaled, 'shape', ()))}",
                  subject=subject)
    if not (values_close(train_scaled, expected_train) and values_close(valid_scaled, expected_valid)):
        other = "standard" if method == "minmax" else "minmax"
        everything = torch.cat([train, valid])
        mistakes = [
            ("splits-fit-on-valid", stand_in_scale(method, valid, train), stand_in_scale(method, valid, valid)),
            ("splits-fit-each-split", expected_train, stand_in_scale(method, valid, valid)),
            ("splits-fit-on-all", stand_in_scale(method, everything, train), stand_in_scale(method, everything, valid)),
            ("splits-default-method" if default else "splits-method-ignored",
             stand_in_scale(other, train, train), stand_in_scale(other, train, valid)),
        ]
        found = f"valid_scaled: {difference(valid_scaled, expected_valid)}"
        for code, wrong_train, wrong_valid in mistakes:
            if values_close(train_scaled, wrong_train) and values_close(valid_scaled, wrong_valid):
                fail_with(code, expected=_SCALED_WITH_TRAIN, found=found, subject=subject)
        fail_with("splits-values", expected=_SCALED_WITH_TRAIN, found=found, subject=subject)
    try:
        back = scaler.inverse_transform(valid_scaled.detach().clone())
    except Exception as error:  # noqa: BLE001
        back = error
    if not values_close(back, valid, round_trip=True):
        fail_with("splits-scaler-not-fitted-on-train", expected="scaler.inverse_transform(valid_scaled) == valid",
                  found=error_text(back) if isinstance(back, Exception) else difference(back, valid), subject=subject)


def _run_splits(function: Callable[..., Any], train: torch.Tensor, valid: torch.Tensor, method: str | None,
                subject: str) -> Any:
    given_train, given_valid = train.clone(), valid.clone()
    options = {} if method is None else {"method": method}
    result = call_or_fail("splits-crashed", function, given_train, given_valid, subject=subject,
                          expected="(train_scaled, valid_scaled, scaler)", **options)
    if not (torch.equal(given_train, train) and torch.equal(given_valid, valid)):
        fail_with("splits-inplace", expected="train and valid unchanged", found="changed in place", subject=subject)
    return result


def _uses(scaler_class: type | None) -> contextlib.AbstractContextManager[list[str]]:
    """Count calls into the learner's own Scaler class while normalize_splits runs."""
    if not isinstance(scaler_class, type):
        return contextlib.nullcontext([])
    return counting_calls([scaler_class], ["fit", "transform", "inverse_transform"])


_NOTED: set[int] = set()  # learner Scaler classes whose Exercise 1 failure was already mentioned


def check_normalize_splits(normalize_splits: Callable[..., Any], scaler_class: type | None = None, *,
                           seed: int = 0, n_samples: int = 23, n_features: int = 4) -> None:
    """Exercise 2, judged on its own: ``normalize_splits`` runs with the course's reference Scaler.

    The name ``Scaler`` inside ``normalize_splits`` is bound to the course's stand-in for the check. Only
    if the function still reaches the learner's own ``scaler_class`` (for example through a default
    argument), fails, and that class fails Exercise 1, does the message say "Exercise 1 still fails" first.
    """
    patched, _ = _with_stand_in(normalize_splits)
    train, valid = seeded_splits(seed + 50, n_samples, n_features)
    try:
        with sklearn_calls() as calls, _uses(scaler_class) as own_calls:
            for method in (None, "minmax", "standard"):
                shown = "" if method is None else f", method={method!r}"
                subject = f"normalize_splits(train of {n_samples} x {n_features}, valid of {len(valid)} rows{shown})"
                result = _run_splits(patched, train, valid, method, subject)
                _judge_splits(result, method or "standard", train, valid, default=method is None, subject=subject)
    except CheckFailed as failure:
        if calls:
            fail_with("splits-uses-sklearn", expected="your Scaler(method)",
                      found=f"{len(calls)} calls such as {calls[0]}", subject="normalize_splits")
        earlier = _exercise1_failure(scaler_class) if own_calls else None
        if earlier:
            fail_with("splits-exercise1-fails", expected="Exercise 1's check to pass", found=earlier,
                      subject="normalize_splits", also=tuple(codes_in(str(failure))[:1]))
        raise
    if calls:
        fail_with("splits-uses-sklearn", expected="your Scaler(method)",
                  found=f"{len(calls)} calls such as {calls[0]}", subject="normalize_splits")
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


# --- the grader's re-check: the kernel's half (course_utils.verdict_probes) ----------------------------------

def splits_scenario(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Exercise 2's re-check inputs: a training split and a validation split of another size."""
    n_samples, n_features = probe_sizes(seed + 1)
    return seeded_splits(seed + 50, n_samples, n_features)


def probe(ns: dict[str, Any], seed: int) -> dict[str, Any]:
    """``normalize_splits``, with the stand-in Scaler, on :func:`splits_scenario`'s splits: values only."""
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
                back = tensor_value(scaler.inverse_transform(valid_scaled.detach().clone()))
            except Exception:  # noqa: BLE001 - a scaler that cannot undo its scaling is a wrong value
                back = None
        values[str(method)] = {"three": three, "train": tensor_value(train_scaled), "valid": tensor_value(valid_scaled),
                               "back": back,
                               "unchanged": torch.equal(given_train, train) and torch.equal(given_valid, valid)}
    return values
