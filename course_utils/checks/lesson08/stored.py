"""The fixed inputs of lesson 08's visible checks, and the expected results stored for them.

A visible check compares the learner's final parameters with parameters stored as data
(``course_utils/checks/expected/lesson08-*.json``), computed once on the grader's side by
``course_tools.grade.judges.lesson08`` (``course expected 08_loop_at_scale``). Only the inputs are
listed here: the answers are not code in the student package.
"""

from __future__ import annotations

from typing import Any

import torch

from course_utils.checks import expected

# Each scenario is the keyword arguments a check runs with (its defaults filled in).
ACCUMULATION_SCENARIOS: tuple[dict[str, Any], ...] = (
    dict(seed=3, n_samples=250, batch_size=25, accumulation_steps=4),
    dict(seed=8, n_samples=230, batch_size=20, accumulation_steps=5),
    dict(seed=9, n_samples=120, batch_size=30, accumulation_steps=1),
    dict(seed=0, n_samples=200, batch_size=25, accumulation_steps=4),
)
FIT_SCENARIOS: tuple[dict[str, Any], ...] = (
    # max_norm below some single gradient elements: clipping by value (clip_grad_value_) changes them visibly.
    dict(seed=2, interval="batch", epochs=2, n_samples=250, batch_size=50, max_norm=0.1),
    dict(seed=4, interval="epoch", epochs=2, n_samples=250, batch_size=50, max_norm=0.15),
    dict(seed=12, interval="batch", epochs=3, n_samples=180, batch_size=40, max_norm=0.2),
    dict(seed=13, interval="epoch", epochs=3, n_samples=210, batch_size=25, max_norm=0.5),
)
DDP_SCENARIOS: tuple[dict[str, Any], ...] = (
    dict(seed=1, n_samples=400, batch_size=50, accumulation_steps=3, epochs=2),
    dict(seed=5, n_samples=201, batch_size=25, accumulation_steps=1, epochs=2),  # odd: the sampler pads or drops one
)
# DistributedSampler.set_epoch numbers the epochs from 1 (as the lesson says) or from 0: both are correct.
DDP_EPOCH_OFFSETS = (1, 0)


def key(scenario: dict[str, Any]) -> str:
    """The stored results' key of a scenario: its arguments, sorted."""
    return ",".join(f"{name}={scenario[name]}" for name in sorted(scenario))


def lookup(name: str, check: str, scenario: dict[str, Any], known: tuple[dict[str, Any], ...]) -> Any:
    """The results stored under ``lesson08-<name>`` for ``scenario``; a clear error for other inputs."""
    stored = expected.load(f"lesson08-{name}")
    if key(scenario) not in stored:
        listed = "; ".join(key(s) for s in known)
        raise ValueError(f"{check} has expected results for these inputs only: {listed} (asked for {key(scenario)})")
    return stored[key(scenario)]


def as_tensors(rows: list[list[Any]]) -> list[torch.Tensor]:
    """Stored parameters (nested lists) as float32 tensors."""
    return [torch.tensor(row, dtype=torch.float32) for row in rows]
