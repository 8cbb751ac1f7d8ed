"""Lesson 02's re-check judges: the learner's Scaler and normalize_splits, against PyTorch in float64.

The scenarios come from the student package's exercise modules (``course_utils.checks.lesson02.ex1``:
``scaler_scenario``; ``.ex2``: ``splits_scenario``); the reference is ``reference_scale`` here, the same numbers
as scikit-learn's scalers. Exercise 2 runs with the course's stand-in Scaler (``StandIn`` there), so it is
judged on its own. Tolerances are looser than the lesson's own checks, so that every correct style passes.
Whether scikit-learn did the work cannot be seen in values and stays with the in-kernel checks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch

from course_tools.grade.judges._compare import tensor_close
from course_utils.checks.lesson02.common import METHODS
from course_utils.checks.lesson02.ex1 import SCALER_CHECKS, fingerprint, scaler_check_tables, scaler_scenario
from course_utils.checks.lesson02.ex2 import splits_scenario, stand_in_scale


def _statistics(method: str, x: torch.Tensor, *, dim: int | None = 0, keepdim: bool = False,
                unbiased: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(shift, spread, constant) over ``dim`` (None: over every value at once)."""
    dims = tuple(range(x.ndim)) if dim is None else (dim,)
    low, high = x.amin(dim=dims, keepdim=keepdim), x.amax(dim=dims, keepdim=keepdim)
    if method == "minmax":
        shift, spread = low, high - low
    else:
        shift = x.mean(dim=dims, keepdim=keepdim)
        spread = x.std(dim=dims, keepdim=keepdim, unbiased=unbiased) if len(x) > 1 or not unbiased else high - low
    return shift, spread, high <= low


def reference_scale(method: str, fit_on: torch.Tensor, apply_to: torch.Tensor, *, dim: int | None = 0,
                    keepdim: bool = True, unbiased: bool = False, epsilon: float = 0.0) -> torch.Tensor:
    """``apply_to`` scaled with statistics of ``fit_on``: the right answer, or (with options) a typical mistake."""
    shift, spread, constant = _statistics(method, fit_on, dim=dim, keepdim=keepdim, unbiased=unbiased)
    scale = torch.where(constant, torch.ones_like(spread), spread) if epsilon == 0 else spread + epsilon
    return (apply_to - shift) / scale


def _formula_mistakes(method: str, fit_on: torch.Tensor,
                      apply_to: torch.Tensor) -> Iterator[tuple[str, torch.Tensor]]:
    """The results of typical mistakes on this data, most specific first (those that can be computed)."""
    other = "standard" if method == "minmax" else "minmax"
    shift, spread, _ = _statistics(method, fit_on, keepdim=True)
    mistakes: list[tuple[str, Callable[[], torch.Tensor]]] = [
        ("scaler-refits-in-transform", lambda: reference_scale(method, apply_to, apply_to)),
        ("scaler-dim1", lambda: reference_scale(method, fit_on, apply_to, dim=1)),
        # dim=1 without keepdim broadcasts the per-sample statistics along the rows of a square table
        ("scaler-dim1", lambda: reference_scale(method, fit_on, apply_to, dim=1, keepdim=False)),
        ("scaler-global-stats", lambda: reference_scale(method, fit_on, apply_to, dim=None)),
        ("scaler-unbiased-std", lambda: reference_scale(method, fit_on, apply_to, unbiased=True)),
    ]
    mistakes += [("scaler-epsilon", lambda eps=eps: reference_scale(method, fit_on, apply_to, epsilon=eps))
                 for eps in (1e-12, 1e-10, 1e-9, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3)]
    if method == "minmax":
        mistakes.append(("scaler-divides-by-max", lambda: (apply_to - shift) / fit_on.amax(dim=0, keepdim=True)))
    mistakes += [("scaler-no-shift", lambda: apply_to / spread),
                 ("scaler-method-ignored", lambda: reference_scale(other, fit_on, apply_to))]
    for code, compute in mistakes:
        if code == "scaler-unbiased-std" and method != "standard":
            continue
        try:
            yield code, compute()
        except RuntimeError:  # shapes that cannot broadcast: this mistake would have crashed instead
            continue


def _agrees(found: Any, expected: torch.Tensor, *, same_dtype: bool = False) -> bool:
    """``found`` is a float tensor of ``expected``'s shape with its values (and, if asked, its dtype); a float64
    answer is held to float64's precision, so that an epsilon added to every scale shows."""
    precise = dict(rtol=1e-6, atol=1e-8) if type(found) is torch.Tensor and found.dtype == torch.float64 else {}
    return tensor_close(found, expected, same_dtype=same_dtype, **precise)


def judge_scaler(values: dict[str, Any], seed: int) -> str:
    """Exercise 1: transform, inverse_transform, constant features and a second fit, for both methods."""
    scenario = scaler_scenario(seed)
    train, valid, constant = scenario["train"], scenario["valid"], scenario["constant"]
    if values.get("inputs-unchanged") is not True:
        return "the Scaler changed a tensor it was given, in place"
    for method in METHODS:
        name = f"Scaler({method!r})"
        if values.get(f"{method}-fit-returns-self") is not True:
            return f"{name}.fit(x) does not return the scaler itself"
        if not _agrees(values.get(f"{method}-transform"), reference_scale(method, train, valid), same_dtype=True):
            return f"{name} fitted on one table transforms another table to values (or a dtype) other than " \
                   f"(x - shift) / scale with the fitted per-feature statistics"
        if not _agrees(values.get(f"{method}-inverse"), valid):
            return f"{name}.inverse_transform(transform(x)) does not give x back"
        found = values.get(f"{method}-constant")
        if not _agrees(found, reference_scale(method, constant, constant), same_dtype=True):
            inexact, exact = scenario["constant_columns"]
            if (type(found) is torch.Tensor and found.shape == constant.shape
                    and _agrees(found[:, exact], torch.zeros(len(constant), dtype=torch.float64))
                    and not _agrees(found[:, inexact], torch.zeros(len(constant), dtype=torch.float64))):
                return (f"{name} does not turn a constant feature whose computed std is a rounding error (all "
                        f"{float(constant[0, inexact])}) into 0: test for a constant feature with max == min, not std == 0")
            return f"{name} does not scale data with constant features to finite values, 0 in the constant features"
        if not _agrees(values.get(f"{method}-constant-inverse"), valid):
            return f"{name} fitted with constant features: inverse_transform(transform(x)) does not give x back"
        single = scenario["single"]
        if not _agrees(values.get(f"{method}-single"), torch.zeros_like(single), same_dtype=True):
            return (f"{name} does not turn a single constant feature (all {float(single[0, 0])}, whose computed std "
                    f"is a rounding error) into 0: test for a constant feature with max == min, not std == 0")
        if not _agrees(values.get(f"{method}-refit"), reference_scale(method, valid, valid), same_dtype=True):
            return f"{name} fitted a second time does not use the statistics of the second fit"
    return ""


def judge_normalize_splits(values: dict[str, Any], seed: int) -> str:
    """Exercise 2, with the course's reference Scaler: both splits scaled with statistics of train."""
    train, valid = splits_scenario(seed)
    for method in (None, "minmax", "standard"):
        call = "normalize_splits(train, valid" + ("" if method is None else f", method={method!r}") + ")"
        found = values.get(str(method))
        if not isinstance(found, dict) or found.get("three") is not True:
            return f"{call} does not return (train_scaled, valid_scaled, scaler)"
        if found.get("unchanged") is not True:
            return f"{call} changed train or valid in place"
        used = method or "standard"
        if not (_agrees(found.get("train"), stand_in_scale(used, train, train))
                and _agrees(found.get("valid"), stand_in_scale(used, train, valid))):
            return f"{call} does not scale both splits with a Scaler({used!r}) fitted on train only"
        if not _agrees(found.get("back"), valid):
            return f"the scaler returned by {call} does not turn valid_scaled back into valid"
    return ""


JUDGES = {"ex1-tests": judge_scaler, "ex2-tests": judge_normalize_splits}


# --- the visible checks' expected results (course_utils/checks/expected/lesson02-*.json) -----------------

def _context(method: str, fit_on: torch.Tensor, apply_to: torch.Tensor) -> dict[str, Any]:
    """The right result of one transform and the typical mistakes' results, as fingerprints."""
    right = reference_scale(method, fit_on, apply_to)
    kept: list[tuple[str, torch.Tensor]] = []
    for code, wrong in _formula_mistakes(method, fit_on, apply_to):
        # a mistake the check could never tell from the right result, or from one kept already, is left out
        if (wrong.shape == right.shape and bool(torch.isfinite(wrong).all())
                and not torch.allclose(wrong, right, rtol=1e-7, atol=1e-9)
                and not any(torch.allclose(wrong, other, rtol=1e-9, atol=1e-12) for _, other in kept)):
            kept.append((code, wrong))
    expected = fingerprint(right)
    return {"expected": expected,
            "mistakes": [[code, fingerprint(wrong, expected["columns"])["fp"]] for code, wrong in kept]}


def _scaler_expected() -> dict[str, Any]:
    results = {}
    for seed, n_samples, n_features in SCALER_CHECKS:
        tables = scaler_check_tables(seed, n_samples, n_features)
        square, train, valid, constant = tables["square"], tables["train"], tables["valid"], tables["constant"]
        results[f"{seed}-{n_samples}-{n_features}"] = {
            method: {"square": _context(method, square, square), "valid": _context(method, train, valid),
                     "constant": _context(method, constant, constant),
                     "refit": fingerprint(reference_scale(method, valid, valid))} for method in METHODS}
    return results


def _running_example_expected() -> dict[str, Any]:
    from course_utils.data import VALIDATION_SEED, make_course_data

    features, _ = make_course_data()
    valid_features, _ = make_course_data(seed=VALIDATION_SEED)
    return {"standard": fingerprint(reference_scale("standard", features.double(), valid_features.double()))}


EXPECTED = {"lesson02-scaler": _scaler_expected, "lesson02-running-example": _running_example_expected}
