"""Seeding helpers: one call makes a lesson reproducible."""

from __future__ import annotations

import random

import numpy as np
import torch

from course_utils._validate import require_int

DEFAULT_SEED = 0


def seed_everything(seed: int = DEFAULT_SEED) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (all devices) and return a fresh seeded ``torch.Generator``.

    The returned generator is meant for ``DataLoader(..., generator=...)``: shuffles then depend
    on this seed alone, not on how many random numbers other code drew before.
    """
    seed = require_int(seed, "seed", minimum=0)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds CUDA and MPS generators
    return make_generator(seed)


def make_generator(seed: int = DEFAULT_SEED) -> torch.Generator:
    """Return a CPU ``torch.Generator`` seeded with ``seed``, independent of the global RNG."""
    seed = require_int(seed, "seed", minimum=0)
    return torch.Generator().manual_seed(seed)
