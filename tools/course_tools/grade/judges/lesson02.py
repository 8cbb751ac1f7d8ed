"""Lesson 02's re-check judges: the learner's Scaler and normalize_splits, against PyTorch in float64.

The scenarios come from :mod:`course_utils.checks.lesson02` (``scaler_scenario``, ``splits_scenario``);
the reference is ``reference_scale`` there, the same numbers as scikit-learn's scalers. Tolerances are
looser than the lesson's own checks, so that every correct style passes. Whether scikit-learn did the
work cannot be seen in values and stays with the in-kernel checks.
"""

from __future__ import annotations

from typing import Any

import torch

from course_utils.checks.lesson02 import METHODS, reference_scale, scaler_scenario, splits_scenario


def _close(found: Any, expected: torch.Tensor, *, same_dtype: bool = False) -> bool:
    """``found`` is a float tensor of ``expected``'s shape with its values (and, if asked, its dtype)."""
    if not (type(found) is torch.Tensor and found.shape == expected.shape and found.is_floating_point()):
        return False
    if same_dtype and found.dtype != expected.dtype:
        return False
    rtol, atol = (1e-6, 1e-8) if found.dtype == torch.float64 else (1e-4, 1e-5)
    return bool(torch.allclose(found.double(), expected.double(), rtol=rtol, atol=atol))


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
        if not _close(values.get(f"{method}-transform"), reference_scale(method, train, valid), same_dtype=True):
            return f"{name} fitted on one table transforms another table to values (or a dtype) other than " \
                   f"(x - shift) / scale with the fitted per-feature statistics"
        if not _close(values.get(f"{method}-inverse"), valid):
            return f"{name}.inverse_transform(transform(x)) does not give x back"
        found = values.get(f"{method}-constant")
        if not _close(found, reference_scale(method, constant, constant), same_dtype=True):
            inexact, exact = scenario["constant_columns"]
            if (type(found) is torch.Tensor and found.shape == constant.shape
                    and _close(found[:, exact], torch.zeros(len(constant), dtype=torch.float64))
                    and not _close(found[:, inexact], torch.zeros(len(constant), dtype=torch.float64))):
                return (f"{name} does not turn a constant feature whose computed std is a rounding error (all "
                        f"{float(constant[0, inexact])}) into 0: test for a constant feature with max == min, not std == 0")
            return f"{name} does not scale data with constant features to finite values, 0 in the constant features"
        if not _close(values.get(f"{method}-constant-inverse"), valid):
            return f"{name} fitted with constant features: inverse_transform(transform(x)) does not give x back"
        single = scenario["single"]
        if not _close(values.get(f"{method}-single"), torch.zeros_like(single), same_dtype=True):
            return (f"{name} does not turn a single constant feature (all {float(single[0, 0])}, whose computed std "
                    f"is a rounding error) into 0: test for a constant feature with max == min, not std == 0")
        if not _close(values.get(f"{method}-refit"), reference_scale(method, valid, valid), same_dtype=True):
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
        if not (_close(found.get("train"), reference_scale(used, train, train))
                and _close(found.get("valid"), reference_scale(used, train, valid))):
            return f"{call} does not scale both splits with a Scaler({used!r}) fitted on train only"
        if not _close(found.get("back"), valid):
            return f"the scaler returned by {call} does not turn valid_scaled back into valid"
    return ""


JUDGES = {"ex1-tests": judge_scaler, "ex2-tests": judge_normalize_splits}
