"""The course's running dataset: 1000 samples x 10 raw features in 0-100, 3 classes.

Each class is a cloud of points around its own centre; features are whole numbers from 0 to 100,
like readings of an instrument with that scale. A few readings sit at the limits (the instrument
saturates), so every feature spans exactly 0-100 and min-max scaling maps a raw 50 to 0.5. The class centres are
fixed (the same for every ``seed``), so differently seeded draws are train and validation sets
of one and the same task.

The difficulty is tuned so that lesson 07's default recipe (``course_utils.recipe``) reproduces
the original material's trace: epoch 1 loss about 1.2 and accuracy about 0.45, epoch 5 loss about
0.35 and accuracy about 0.88 (``tests/test_reference_trace.py`` measures it).
"""

from __future__ import annotations

import torch

from course_utils._validate import require_int

N_SAMPLES = 1000
N_FEATURES = 10
N_CLASSES = 3
BATCH_SIZE = 100
RAW_MIN = 0.0
RAW_MAX = 100.0

TRAIN_SEED = 0
VALIDATION_SEED = 1

# The task itself: centres drawn once from this seed, CENTRE_SPREAD around the middle of the
# range, and per-feature noise NOISE_STD. Changing any of these changes every lesson's numbers.
_CENTRE_SEED = 1234
CENTRE_SPREAD = 20.0
NOISE_STD = 15.0
SATURATION_RATE = 0.01


def class_centres(n_features: int = N_FEATURES, n_classes: int = N_CLASSES) -> torch.Tensor:
    """Return the fixed class centres, shape ``(n_classes, n_features)``, in raw units."""
    n_features = require_int(n_features, "n_features", minimum=1)
    n_classes = require_int(n_classes, "n_classes", minimum=2)
    generator = torch.Generator().manual_seed(_CENTRE_SEED)
    offsets = (torch.rand(n_classes, n_features, generator=generator) - 0.5) * 2 * CENTRE_SPREAD
    return (RAW_MIN + RAW_MAX) / 2 + offsets


def make_course_data(
    n_samples: int = N_SAMPLES,
    *,
    n_features: int = N_FEATURES,
    n_classes: int = N_CLASSES,
    seed: int = TRAIN_SEED,
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw the running example: raw ``features`` (``dtype``, 0-100) and ``targets`` (int64 labels).

    The same ``seed`` always gives the same tensors; use :data:`TRAIN_SEED` and
    :data:`VALIDATION_SEED` for a training and a validation set of the same task.
    """
    n_samples = require_int(n_samples, "n_samples", minimum=1)
    seed = require_int(seed, "seed", minimum=0)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point torch dtype such as torch.float32, got {dtype!r}")
    centres = class_centres(n_features, n_classes)
    generator = torch.Generator().manual_seed(seed)
    targets = torch.randint(0, n_classes, (n_samples,), generator=generator)
    noise = NOISE_STD * torch.randn(n_samples, n_features, generator=generator)
    features = (centres[targets] + noise).round().clamp(RAW_MIN, RAW_MAX)
    saturated = torch.rand(n_samples, n_features, generator=generator) < SATURATION_RATE
    limits = torch.where(torch.rand(n_samples, n_features, generator=generator) < 0.5, RAW_MIN, RAW_MAX)
    features = torch.where(saturated, limits, features)
    return features.to(dtype), targets.to(torch.int64)
