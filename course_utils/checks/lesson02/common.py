"""What lesson 02's exercises share: the lesson's name and sections, seeded data, and how values are compared.

The seeded tables (:func:`seeded_data`, :func:`seeded_splits`) are built the same way by the visible
checks, by the kernel's probes and by the grader's judges (``course_tools.grade.judges.lesson02``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

from course_utils.checks.learner import counting_calls

LESSON = "02_normalization"
METHODS = ("minmax", "standard")

# The lesson's sections a diagnosis sends a student back to.
MINMAX_SECTION = "2 · Min-max scaling: 0-100 becomes 0-1"
STANDARD_SECTION = "3 · Standardization: mean 0, standard deviation 1"
CONSTANT_SECTION = "4 · Constant features, and the way back"
SPLITS_SECTION = "5 · Fit on the training split only"

# float64 results are compared in float64's precision; float32 ones in float32's
RTOL, ATOL = 1e-7, 1e-9


# --- seeded data the notebook never prints ------------------------------------------------------

def seeded_data(seed: int, n_samples: int, n_features: int, *, centre: float = 3.0, spread: float = 1.0,
                noise_seed: int | None = None) -> torch.Tensor:
    """float64 data whose features live on scales from 1e-3 to 1e3, in an order set by ``seed``."""
    exponents = torch.tensor([-3.0, 0.0, 3.0, -1.0, 2.0, 1.0, -2.0], dtype=torch.float64)
    sizes = 10 ** exponents[torch.arange(n_features) % len(exponents)]
    sizes = sizes[torch.randperm(n_features, generator=torch.Generator().manual_seed(seed))]
    generator = torch.Generator().manual_seed(7300 + (seed if noise_seed is None else noise_seed))
    noise = torch.randn(n_samples, n_features, generator=generator, dtype=torch.float64)
    return (noise * spread + centre) * sizes


def seeded_splits(seed: int, n_samples: int, n_features: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A training split and a shifted, wider validation split of another size, features on the same scales."""
    train = seeded_data(seed, n_samples, n_features)
    valid = seeded_data(seed, n_samples // 2 + 3, n_features, centre=5.0, spread=2.0, noise_seed=seed + 1000)
    return train, valid


def probe_sizes(seed: int) -> tuple[int, int]:
    """(n_samples, n_features) of a re-check scenario, drawn from ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    n_samples = 5 + int(torch.randint(0, 40, (1,), generator=generator))
    return n_samples, 3 + int(torch.randint(0, 5, (1,), generator=generator))


# --- comparing what the learner's code returned -------------------------------------------------

def values_close(found: Any, expected: torch.Tensor, *, round_trip: bool = False) -> bool:
    """Close in the found dtype's precision; a round trip (x scaled and back) may also lose that precision of the
    table's largest value, in every element."""
    if not (isinstance(found, torch.Tensor) and found.shape == expected.shape and found.is_floating_point()):
        return False
    rtol, atol = (RTOL, ATOL) if found.dtype == torch.float64 else (1e-5, 1e-6)
    if round_trip and expected.numel():
        atol += rtol * float(expected.double().abs().max())
    return (bool(torch.isfinite(found).all() == torch.isfinite(expected).all())
            and torch.allclose(found.detach().double(), expected.double(), rtol=rtol, atol=atol))


def difference(found: Any, expected: torch.Tensor) -> str:
    """How far ``found`` is from ``expected``, as a failure message's ``found:`` says it."""
    if not isinstance(found, torch.Tensor) or found.shape != expected.shape:
        return f"{found!r}"[:120]
    worst = (found.detach().double() - expected).abs().nan_to_num(float("inf")).max()
    return f"largest difference from the reference {float(worst):.3g}"


def tensor_value(result: Any) -> torch.Tensor | None:
    """A plain tensor copy of ``result``, or None when it is no tensor (a value the judge rejects)."""
    return result.detach().clone().as_subclass(torch.Tensor) if isinstance(result, torch.Tensor) else None


@contextlib.contextmanager
def sklearn_calls() -> Iterator[list[str]]:
    """Count calls of scikit-learn's two scalers while learner code runs (if scikit-learn is installed)."""
    try:
        from sklearn import preprocessing
    except ImportError:  # without scikit-learn nobody can call it
        yield []
        return
    with counting_calls([preprocessing.MinMaxScaler, preprocessing.StandardScaler],
                        ["fit", "partial_fit", "transform", "fit_transform", "inverse_transform"]) as calls:
        yield calls
