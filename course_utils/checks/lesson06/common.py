"""What lesson 06's exercises share: the lesson's name, the stored results' seeds, the probes' values.

The checks compare with results stored as data for their fixed inputs (``expected/lesson06-*.json``),
computed on the grader's side (``course_tools.grade.judges.lesson06``): no update rule or training
step ships here as code.
"""

from __future__ import annotations

from typing import Any

import torch

from course_utils.checks import expected as stored

LESSON = "06_optimizer_step"
CHECK_SEEDS = (0, 3)  # the seeds whose expected results are stored; the notebook's checks use the default, 3


def stored_results(name: str, seed: int) -> Any:
    """The stored expected results ``name`` for the check inputs of ``seed``."""
    if seed not in CHECK_SEEDS:
        raise ValueError(f"the lesson 06 checks run with seed in {CHECK_SEEDS}, not {seed!r}: "
                         "their expected results are stored for those inputs only")
    return stored.load(name)[str(seed)]


def stored_tensors(nested: list[Any]) -> list[list[torch.Tensor]]:
    """Stored parameters, step by step (or call by call), as tensors."""
    return [[stored.tensor(p) for p in step] for step in nested]


def probe_values(tensors: list[Any]) -> list[torch.Tensor | None]:
    """Plain tensor copies of ``tensors`` (None for what is no tensor: a value the judge rejects)."""
    return [t.detach().clone().as_subclass(torch.Tensor) if isinstance(t, torch.Tensor) else None for t in tensors]
