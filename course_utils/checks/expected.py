"""Expected results of the visible checks, stored as data beside the checks.

A visible check runs the learner's function on fixed inputs that the notebook never prints and
compares what it returns with results stored in ``checks/expected/<name>.json``. The grader's side
computes those results once with its reference answers (``course expected``, from the ``EXPECTED``
builders of ``course_tools.grade.judges.lessonNN``), so the student package holds no correct answer
as code. A test rebuilds every file and compares.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import torch

EXPECTED_DIR = Path(__file__).with_name("expected")


@cache
def _read(name: str) -> Any:
    path = EXPECTED_DIR / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"the course's expected results {path.name} are missing; "
                                f"an instructor regenerates them with `course expected`")
    return json.loads(path.read_text(encoding="utf-8"))


def load(name: str) -> Any:
    """The stored expected results ``name`` (plain JSON: dicts, lists, numbers, strings)."""
    return _read(name)


def tensor(values: Any, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Stored numbers as a tensor (stored floats are exact decimal forms of the computed values)."""
    return torch.tensor(values, dtype=dtype)


def for_seed(name: str, seed: int) -> Any:
    """The stored expected results ``name`` for one check seed (files keyed by ``str(seed)``)."""
    results = _read(name)
    if str(seed) not in results:
        stored_seeds = ", ".join(key for key in results if key.lstrip("-").isdigit())
        raise ValueError(f"the course stores the expected results {name} for seeds {stored_seeds} only, "
                         f"not for seed={seed}")
    return results[str(seed)]
